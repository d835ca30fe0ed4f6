"""The two probe recipes: the safety probe and the delegation-value (DV) probe.

One home for the models that read the features: the cascade's defaults
(:class:`~skctd.CalibratedDelegationCascade` with ``probe=None`` /
``dv_estimator=None``), ``skctd run`` and ``benchmarks/reproduce_paper.py`` all
build them here, so the three agree on the recipe and its hyper-parameter grid.

Both standardise the features first (activations of an LLM have coordinates of
very different scales) and choose their penalty by cross-validation on the data
they are fitted on, so neither needs tuning by hand.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["make_dv_probe", "make_safety_probe"]

# the grids, as the paper's reproduction reports them
_SAFETY_PROBE_CS = np.logspace(-4, 2, 13)
_DV_PROBE_ALPHAS = np.logspace(-1, 5, 13)


def make_safety_probe(random_state: Any = None) -> Pipeline:
    """The safety probe: standardised features, then a tuned logistic regression.

    ``StandardScaler`` followed by an L2 :class:`~sklearn.linear_model.LogisticRegression`
    whose ``C`` is chosen among 13 values in ``logspace(-4, 2)`` by 5-fold
    stratified, shuffled cross-validation on the log-loss
    (:class:`~sklearn.model_selection.GridSearchCV`, refitted on all the data with
    the best ``C``).

    Parameters
    ----------
    random_state : int, RandomState instance or None, default=None
        Shuffling of the 5 cross-validation folds that choose ``C``. Pass an int
        for the same folds at every fit.

    Returns
    -------
    probe : Pipeline
        Unfitted. After ``fit``, the chosen ``C`` is
        ``probe[-1].best_params_["C"]`` and the fitted logistic regression is
        ``probe[-1].best_estimator_``.

    See Also
    --------
    make_dv_probe : The DV probe's recipe.
    skctd.CalibratedDelegationCascade : Uses this recipe when ``probe=None``.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skctd.probes import make_safety_probe
    >>> X, y = make_classification(n_samples=300, random_state=0)
    >>> probe = make_safety_probe(random_state=0).fit(X, y)
    >>> probe.predict_proba(X[:2]).shape
    (2, 2)
    >>> float(probe[-1].best_params_["C"])
    1.0
    """
    return make_pipeline(
        StandardScaler(),
        GridSearchCV(
            LogisticRegression(max_iter=5000),
            {"C": _SAFETY_PROBE_CS},
            cv=StratifiedKFold(5, shuffle=True, random_state=random_state),
            scoring="neg_log_loss",
        ),
    )


def make_dv_probe() -> Pipeline:
    """The DV probe: standardised features, then a tuned ridge regression.

    ``StandardScaler`` followed by :class:`~sklearn.linear_model.RidgeCV`, whose
    penalty is chosen among 13 values in ``logspace(-1, 5)`` by efficient
    leave-one-out cross-validation (deterministic: no random state).

    Returns
    -------
    dv_probe : Pipeline
        Unfitted. After ``fit``, the chosen penalty is ``dv_probe[-1].alpha_``.

    See Also
    --------
    make_safety_probe : The safety probe's recipe.
    skctd.delegation_value : The target the DV probe is fitted to.
    skctd.CalibratedDelegationCascade : Uses this recipe when ``dv_estimator=None``.

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.probes import make_dv_probe
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.normal(size=(200, 5))
    >>> v = Z[:, 0] - 0.5 * Z[:, 1] + rng.normal(0, 0.1, 200)
    >>> dv = make_dv_probe().fit(Z, v)
    >>> float(dv[-1].alpha_)
    0.1
    """
    return make_pipeline(StandardScaler(), RidgeCV(alphas=_DV_PROBE_ALPHAS))

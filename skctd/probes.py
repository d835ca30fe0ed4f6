"""The two probe recipes: the safety probe and the delegation-value (DV) probe.

One home for the models that read the features: the cascade's defaults
(:class:`~skctd.CalibratedDelegationCascade` with ``probe=None`` /
``dv_estimator=None``), ``skctd run`` and ``benchmarks/reproduce_paper.py`` all
build them here, so the three agree on the recipe and its hyper-parameter grid.

Both standardise the features first (activations of an LLM have coordinates of
very different scales) and choose their penalty by cross-validation on the data
they are fitted on, so neither needs tuning by hand.

The DV probe may also read the safety probe's own view of the input
(:func:`probe_features`: its logit and its uncertainty), appended after the
activations by the cascade (``dv_features="activations+probe"``). Those two
columns carry most of what is predictable about the delegation value; among
hundreds of activation coordinates under one shared ridge penalty they would be
shrunk like any other, so :class:`DVFeatureScaler` gives them a larger scale
(a smaller effective penalty).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from skctd.utils import check_scores

__all__ = [
    "DV_PROBE_KINDS",
    "N_PROBE_FEATURES",
    "DVFeatureScaler",
    "make_dv_probe",
    "make_safety_probe",
    "probe_features",
]

#: The DV-probe recipes of :func:`make_dv_probe`.
DV_PROBE_KINDS = ("ridge", "boosting")

#: Number of columns of :func:`probe_features`.
N_PROBE_FEATURES = 2

# probabilities are clipped to [_EPS, 1 - _EPS] before the logit (|logit| <= 13.8)
_EPS = 1e-6

# the grids, as the paper's reproduction reports them
_SAFETY_PROBE_CS = np.logspace(-4, 2, 13)
_DV_PROBE_ALPHAS = np.logspace(-1, 5, 13)
# the boosting of the non-linear DV probe: scikit-learn's defaults (learning rate
# 0.1, 100 iterations, 31 leaves, 20 rows per leaf). Smaller, slower trees
# (0.05, 200, 8 leaves) ranked about as well but gained less AUROC on XSTest with
# GPT-4 refusals (benchmarks/bench_dv_probe.py)
_BOOSTING: dict = {}


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


def probe_features(probe_scores: Any) -> np.ndarray:
    """The safety probe's view of each input, as features for the DV probe.

    Two columns: the probe's logit ``log(p / (1 - p))`` and its uncertainty
    ``4 p (1 - p)`` (1 at ``p = 0.5``, 0 at a certain score), with ``p`` clipped to
    ``[1e-6, 1 - 1e-6]``. Why these two: the delegation value
    ``v = P_e(y|x) - P_p(y|x)`` subtracts the probe's probability of the true
    label, whose expectation for a calibrated probe is ``1 - 2 p (1 - p)`` -- a
    function of the uncertainty alone -- and the logit lets the DV probe learn
    that the expert helps more on one side of the decision than the other.

    Parameters
    ----------
    probe_scores : array-like of shape (n,)
        ``P(y = 1 | x)`` of the safety probe, in [0, 1]. To train a DV probe, use
        out-of-fold probe scores, the ones its targets are computed from.

    Returns
    -------
    features : ndarray of shape (n, 2)

    See Also
    --------
    DVFeatureScaler : Scales these columns up before a shared ridge penalty.

    Examples
    --------
    >>> from skctd.probes import probe_features
    >>> probe_features([0.5, 0.9]).round(3)
    array([[0.   , 1.   ],
           [2.197, 0.36 ]])
    """
    p = np.clip(check_scores(probe_scores, "probe_scores", unit=True), _EPS, 1 - _EPS)
    return np.column_stack([np.log(p) - np.log1p(-p), 4.0 * p * (1.0 - p)])


class DVFeatureScaler(TransformerMixin, BaseEstimator):
    """Standardise every column, then scale up the last ``n_probe_features``.

    The DV probe's input is the activations followed by a few probe features
    (:func:`probe_features`). A ridge penalty shared by all columns shrinks each
    standardised column alike; multiplying the probe features by
    ``probe_weight`` divides their effective penalty by ``probe_weight ** 2``, so
    two informative columns are not drowned among hundreds of activation
    coordinates. ``probe_weight=1`` is a plain :class:`~sklearn.preprocessing.StandardScaler`.

    Parameters
    ----------
    n_probe_features : int, default=2
        Number of trailing columns that hold probe features.
    probe_weight : float, default=10.0
        Factor applied to the standardised probe features.

    Attributes
    ----------
    mean_, scale_ : ndarray of shape (n_features,)
        Column means and standard deviations (1 for a constant column).
    n_features_in_ : int
        Number of columns seen during ``fit``.
    feature_names_in_ : ndarray of str
        Only when ``X`` has string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.probes import DVFeatureScaler
    >>> X = np.array([[0.0, 1.0, -2.0], [2.0, 3.0, 2.0]])
    >>> DVFeatureScaler(n_probe_features=1, probe_weight=10.0).fit_transform(X)
    array([[ -1.,  -1., -10.],
           [  1.,   1.,  10.]])
    """

    _parameter_constraints: dict = {
        "n_probe_features": [Interval(numbers.Integral, 0, None, closed="left")],
        "probe_weight": [Interval(numbers.Real, 0, None, closed="neither")],
    }

    def __init__(self, n_probe_features: int = 2, probe_weight: float = 10.0) -> None:
        self.n_probe_features = n_probe_features
        self.probe_weight = probe_weight

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None) -> DVFeatureScaler:
        """Learn the column means and standard deviations.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Activations followed by ``n_probe_features`` probe features.
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        X = validate_data(self, X, dtype=np.float64)
        if self.n_probe_features > X.shape[1]:
            raise ValueError(
                f"n_probe_features={self.n_probe_features} but X has only "
                f"{X.shape[1]} columns; the probe features are the last columns of X."
            )
        self.mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Standardise, and multiply the probe features by ``probe_weight``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        out = (X - self.mean_) / self.scale_
        if self.n_probe_features:
            out[:, -self.n_probe_features :] *= self.probe_weight
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The input feature names (the transform keeps every column).

        Parameters
        ----------
        input_features : array-like of str, optional

        Returns
        -------
        names : ndarray of str
        """
        from sklearn.utils.validation import _check_feature_names_in

        check_is_fitted(self)
        return _check_feature_names_in(self, input_features)


def make_dv_probe(
    kind: str = "ridge",
    *,
    n_probe_features: int = 0,
    probe_weight: float = 10.0,
    n_components: int = 32,
    random_state: Any = None,
) -> Pipeline:
    """The DV probe: a regression of the delegation value on the features.

    - ``kind="ridge"`` with ``n_probe_features=0``: the paper's DV probe,
      ``StandardScaler`` followed by :class:`~sklearn.linear_model.RidgeCV` whose
      penalty is chosen among 13 values in ``logspace(-1, 5)`` by efficient
      leave-one-out cross-validation (deterministic: no random state).
    - ``kind="ridge"`` with probe features (the last ``n_probe_features`` columns,
      see :func:`probe_features`): the same, with :class:`DVFeatureScaler` in
      place of the ``StandardScaler``, so the probe features get a penalty
      ``probe_weight ** 2`` times smaller than the activations.
    - ``kind="boosting"``: a :class:`~sklearn.ensemble.HistGradientBoostingRegressor`
      on the first ``n_components`` principal components of the standardised
      activations, plus the probe features as they are (non-linear: it can learn
      that the expert helps only in some regions of the probe's scores).

    Parameters
    ----------
    kind : {"ridge", "boosting"}, default="ridge"
    n_probe_features : int, default=0
        Number of trailing columns of the input that are probe features (the
        cascade appends :data:`N_PROBE_FEATURES` of them with
        ``dv_features="activations+probe"``).
    probe_weight : float, default=10.0
        ``kind="ridge"`` only: the scale of the standardised probe features.
    n_components : int, default=32
        ``kind="boosting"`` only: principal components of the activations (at
        most their number of columns).
    random_state : int, RandomState instance or None, default=None
        ``kind="boosting"`` only: seeds the PCA solver and the boosting.

    Returns
    -------
    dv_probe : Pipeline
        Unfitted. For ``kind="ridge"``, after ``fit`` the chosen penalty is
        ``dv_probe[-1].alpha_``.

    See Also
    --------
    make_safety_probe : The safety probe's recipe.
    probe_features : The probe features the cascade appends.
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
    >>> boosted = make_dv_probe("boosting", n_probe_features=1, n_components=3,
    ...                         random_state=0).fit(Z, v)
    >>> boosted.predict(Z[:2]).shape
    (2,)
    """
    if kind not in DV_PROBE_KINDS:
        raise ValueError(f"kind must be one of {DV_PROBE_KINDS}, got {kind!r}.")
    if not isinstance(n_probe_features, numbers.Integral) or n_probe_features < 0:
        raise ValueError(
            f"n_probe_features must be an integer >= 0, got {n_probe_features!r}."
        )
    k = int(n_probe_features)
    if kind == "ridge":
        scaler = (
            StandardScaler()
            if k == 0
            else DVFeatureScaler(n_probe_features=k, probe_weight=probe_weight)
        )
        return make_pipeline(scaler, RidgeCV(alphas=_DV_PROBE_ALPHAS))
    activations = make_pipeline(
        StandardScaler(), PCA(n_components=n_components, random_state=random_state)
    )
    if k == 0:
        features = activations
    else:
        features = ColumnTransformer(
            [
                ("activations", activations, slice(0, -k)),
                ("probe", "passthrough", slice(-k, None)),
            ]
        )
    return Pipeline(
        [
            ("features", features),
            ("boosting", HistGradientBoostingRegressor(**_BOOSTING, random_state=random_state)),
        ]
    )

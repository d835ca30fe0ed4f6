"""The Calibrate-Then-Delegate meta-estimator."""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    _fit_context,
    clone,
)
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import check_cv, cross_val_predict, train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Bunch, _safe_indexing, check_random_state, get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _raise_for_params,
    process_routing,
)
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import (
    _check_method_params,
    _num_samples,
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from skctd.calibration import Risk, calibrate_threshold, check_constraints
from skctd.delegation import choose_combine, delegation_value, uncertainty_signal
from skctd.experts import BaseExpert, ExpertReport, as_expert
from skctd.probes import (
    DV_PROBE_KINDS,
    N_PROBE_FEATURES,
    make_dv_probe,
    make_safety_probe,
    probe_features,
)
from skctd.recalibration import ScoreCalibrator
from skctd.utils import check_known_labels

__all__ = ["CalibratedDelegationCascade"]

_MIN_CALIBRATION_ROWS = 4


class CalibratedDelegationCascade(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """A probe/expert cascade whose expert-call rate is guaranteed below a budget.

    Calibrate-Then-Delegate (CTD): a cheap *probe* scores every input; a
    *delegation-value* (DV) model ``d(x)`` predicts how much the *expert* would
    improve on the probe for that input; the expert is called only when
    ``d(x) > threshold_``. The threshold is calibrated by Learn-then-Test on held-out
    data, so that Pr over the calibration draw (R(lambda) <= alpha) >= 1 - delta for
    ``lambda = threshold_``, where R is the expected delegation rate on exchangeable
    future inputs (a bound on the long-run rate, not a cap per batch); among the
    thresholds it certifies, it picks the one with the best accuracy (or AUROC) on
    the optimisation split.

    Each decision depends on one input only, so the cascade serves a stream one input
    at a time: a batch gives exactly what each row gives alone.

    .. warning::

        Calibrate on data that neither probe saw during training, drawn like the
        deployment traffic. Calibrating on training data (for example with
        :meth:`calibrate` on the rows given to :meth:`fit`) is data leakage: the
        probes look better there than on new inputs and the budget guarantee no
        longer holds.

    Read more in the :ref:`User Guide <cascade>`.

    Parameters
    ----------
    expert : BaseExpert, callable, classifier or str
        The expensive model, called on the *raw* rows of ``X`` that are delegated.
        Required, like the ``estimator`` of scikit-learn's meta-estimators: there
        is no sensible default expert. A callable ``f(X_rows) -> P(classes_[1])``
        is wrapped in :class:`~skctd.FunctionExpert`, a fitted classifier in
        :class:`~skctd.ClassifierExpert`, a ``"module:function"`` string is
        imported and wrapped as a function (see :func:`~skctd.as_expert`).
    probe : classifier, default=None
        The safety probe, fitted on the features. ``None`` means
        :func:`skctd.probes.make_safety_probe` (standardised features, logistic
        regression with ``C`` tuned by 5-fold cross-validated log-loss), seeded
        from ``random_state``. Pass ``FrozenEstimator(fitted_probe)``
        (:class:`sklearn.frozen.FrozenEstimator`) to use a probe trained on other
        data as is; it is then not cross-fitted either (see ``cv``).
    dv_estimator : regressor, {"ridge", "boosting"} or None, default=None
        The DV probe, fitted to predict the delegation value from its input (see
        ``dv_features``). ``None`` or ``"ridge"`` means
        :func:`skctd.probes.make_dv_probe` ``("ridge")``: standardised input, ridge
        regression with its penalty tuned by leave-one-out, the probe features
        (if any) scaled up so that they are penalised less than the activations.
        ``"boosting"``: gradient boosting on 32 principal components of the
        activations and the probe features (``make_dv_probe("boosting")``, seeded
        from ``random_state``).
    dv_features : {"activations+probe", "activations"}, default="activations+probe"
        The DV probe's input. ``"activations"``: the features only (the paper's
        DV probe; with ``dv_estimator=None`` it is the paper's recipe).
        ``"activations+probe"``: the features followed by the probe's own view of
        the row, :func:`skctd.probes.probe_features` of its score (logit and
        uncertainty) -- out-of-fold probe scores at ``fit`` (the ones the DV
        targets come from), the fitted probe's scores afterwards. A custom
        ``dv_estimator`` then receives ``n_features + 2`` columns, the two probe
        features last.
    featurizer : transformer, default=None
        Applied to the raw ``X`` to get the probes' features (for example
        :class:`~skctd.ActivationTransformer`). ``None``: ``X`` already holds
        numeric features. The expert always receives the raw rows.
    alpha : float in (0, 1), default=0.2
        Budget: the largest acceptable expected fraction of inputs sent to the
        expert.
    delta : float in (0, 1), default=0.1
        The guarantee holds with probability at least ``1 - delta`` over the draw
        of the calibration data.
    signal : {"dv", "uncertainty"}, default="dv"
        Delegation signal: the DV probe's prediction, or the probe's uncertainty
        ``-|F(p(x)) - 0.5|`` with ``F`` the empirical CDF of the probe scores on
        the calibration data (the baseline of McKenzie et al., 2025).
    dv_target : {"continuous", "binary"}, default="continuous"
        Target of the DV probe: ``P_expert(y|x) - P_probe(y|x)``, or
        ``1[probe wrong and expert right]``.
    performance_risk : {"accuracy", "auroc"} or callable, default="accuracy"
        What the calibration optimises among the thresholds that respect the
        budget: ``1 - accuracy``, ``1 - AUROC``, or ``f(y, scores) -> risk in [0, 1]``.
    pareto : bool, default=True
        Keep only the Pareto-efficient thresholds (budget vs performance) before
        testing (CTD). ``False`` tests every threshold and picks the most
        aggressive certified one (budget-only LTT).
    constraints : dict, list of Risk or None, default=None
        Risks to certify together with the budget, e.g. ``{"harm": 0.0}`` (the
        *no-harm certificate*: the cascade is not less accurate than the probe
        alone) or ``{"harm": 0.0, "miss": 0.05}``; keys are the names of
        ``skctd.calibration.BUILTIN_RISKS`` (``"harm"``, ``"error"``,
        ``"miss"``, ``"miss_marginal"``, ``"cost"``, ``"cost_share"``) and values
        their levels, or give a list of :class:`~skctd.Risk` (user losses).
        ``None``: the budget alone (the paper's procedure). See
        :ref:`guarantees` for what each certificate says.
    cost : callable or None, default=None
        Per-row expert cost as a function of the raw rows, ``f(X_rows) ->
        array of shape (n_rows,)`` of non-negative numbers (tokens, cents...),
        for the ``"cost"`` and ``"cost_share"`` constraints, e.g. the prompt
        length. Use a module-level function (a lambda does not pickle). Or give
        the costs of the rows themselves to :meth:`fit` / :meth:`calibrate`
        (their ``cost`` keyword).
    cost_max : float or None, default=None
        A bound on every cost (scales the cost into [0, 1]). ``None``: the
        largest cost of the optimisation split; the certificate then bounds the
        mean of ``min(cost, cost_max)`` (a warning counts the rows above it).
    testing_order : {"auto", "pvalue", "lambda", "single"}, default="auto"
        Order of the fixed-sequence test (see :func:`~skctd.calibrate_threshold`):
        ``"auto"`` is the paper's order (conservative to aggressive) without
        ``constraints`` and the optimisation split's estimated p-values (Pareto
        Testing) with them.
    selection : {"best", "one_se"}, default="best"
        The pick among the certified thresholds: the best optimisation-split
        performance (the paper), or the most conservative one within one standard
        error of it (``performance_risk="accuracy"`` only).
    n_thresholds : int, default=100
        Number of candidate thresholds (quantiles of the signal).
    calibration_size : float, int or None, default=0.3
        Part of the data given to ``fit`` that is held out to calibrate the
        threshold (a fraction, or a number of rows). ``None`` uses all the data to
        train the probes; call :meth:`calibrate` on fresh held-out data afterwards.
    opt_fraction : float in (0, 1), default=0.3
        Within the calibration data, the fraction used to pick candidate
        thresholds and estimate their performance; the rest tests the budget.
    cv : int, cross-validation generator or iterable, default=5
        Cross-fitting of the probe on the training part: the DV targets use
        out-of-fold probe scores, which reflect the probe's errors on unseen data.
        Not used for a ``FrozenEstimator`` probe: it was trained on other data, so
        its scores on the training part are already out-of-sample and are used
        directly.
    combine : {"auto", "replace", "average"}, default="auto"
        On delegated rows, the final score is the expert's score (``"replace"``,
        the paper's rule), or the mean of the expert's and the probe's
        (``"average"``). ``"auto"`` chooses at each calibration, on the
        optimisation part of the calibration data only
        (:func:`skctd.choose_combine`); the choice is in ``combine_``. The testing
        part is not looked at, so the guarantee is exact whatever is chosen.
        ``"auto"`` is the default because it kept the cascade at or above the
        probe alone for all five XSTest refusal experts where ``"replace"`` fell
        below it for the two weakest (measured, see :ref:`dv_options`).
    expert_calibration : {"sigmoid", "isotonic"} or None, default=None
        Recalibrate the expert's scores (:class:`skctd.recalibration.ScoreCalibrator`,
        Platt or isotonic) on the training part. The DV targets use
        cross-fitted (out-of-fold, ``cv``) recalibrated scores, and the map refitted
        on the whole training part (``expert_calibrator_``) transforms every expert
        score the cascade uses afterwards: in :meth:`calibrate`, in :meth:`route`
        and in the final scores. Useful for an expert that ranks well but puts its
        scores on the wrong side of 0.5. The expert is then called on the training
        part even with ``signal="uncertainty"``.
    random_state : int, RandomState instance or None, default=None
        Controls the training/calibration split, the folds of the default probe's
        cross-validation and the split inside the calibration.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two class labels. Scores are probabilities of ``classes_[1]``; to
        encode labels as 0/1 the same way, use
        ``skctd.utils.check_known_labels(y, cascade.classes_)``.
    featurizer_ : transformer or None
        The fitted featurizer.
    probe_ : classifier
        The fitted safety probe.
    dv_estimator_ : regressor or None
        The fitted DV probe (``None`` when ``signal="uncertainty"``).
    expert_calibrator_ : ScoreCalibrator or None
        The fitted recalibration of the expert's scores (``None`` without
        ``expert_calibration``).
    combine_ : str
        ``"replace"`` or ``"average"``: how delegated rows are scored (the choice
        of the last calibration for ``combine="auto"``).
    expert_ : BaseExpert
        The wrapped expert.
    threshold_ : float
        Calibrated threshold: a row is delegated when its signal is above it
        (``inf`` = never delegate).
    calibration_ : CalibrationResult or None
        Details of the calibration (grid, p-values, Pareto front, certified set;
        with ``constraints``: each risk's p-values and levels, the certified
        guarantee in one sentence, ``guarantee()``, ``blocked_by``, the risks that
        stopped the testing sequence, i.e. why the cascade does not delegate
        more, and ``rows_needed`` when no delegating threshold was certified).
    reference_scores_ : ndarray
        Sorted probe scores of the calibration data (the ECDF of the uncertainty
        signal).
    expert_report_ : ExpertReport
        Expert calls made during ``fit`` / ``calibrate``.
    n_features_in_ : int
        Number of features seen during ``fit`` (only without a featurizer).
    feature_names_in_ : ndarray of str
        Names of features seen during ``fit`` (only without a featurizer, when
        ``X`` has string column names).

    See Also
    --------
    skctd.calibrate_threshold : The Learn-then-Test calibration on arrays.
    skctd.ActivationTransformer : LLM hidden states as features.
    skctd.probes.make_safety_probe : The default probe.
    skctd.evaluation.evaluate_cascade : The paper's evaluation of a fitted cascade.

    Notes
    -----
    Without ``constraints`` the guarantee is on the budget only,
    ``P(R_B(threshold_) <= alpha) >= 1 - delta``, and assumes the calibration data
    and future inputs are exchangeable. It says nothing about accuracy; the Pareto
    filter only avoids thresholds that hurt accuracy on the optimisation split.
    When no threshold can be certified (too little calibration data for this
    ``alpha`` and ``delta``), the cascade never delegates and warns.

    With ``constraints`` every certified risk holds together with the budget, with
    probability at least ``1 - delta``. Never delegating (``threshold_ = inf``)
    surely meets the budget, ``"cost"``, ``"cost_share"`` and ``"harm"``
    constraints, so it is a safe fallback for them; the ``"error"`` and
    ``"miss"`` rates of never delegating are the probe's own and are tested like
    any threshold: when even they cannot be certified, the cascade falls back to
    never delegating *without* a guarantee, and the warning says so. For
    deployment, ``constraints={"harm": 0.0}`` is recommended (``skctd run``
    uses it by default).

    What the calibration may look at: ``combine="auto"`` chooses on the
    optimisation part only, like the candidate thresholds and their order, and
    ``expert_calibration`` is fitted on the training part; neither touches the
    testing part, so the guarantee is unchanged.

    ``fit`` routes metadata such as ``sample_weight`` to the featurizer, the probe
    (including its cross-fitting) and the DV probe when scikit-learn's metadata
    routing is enabled (``sklearn.set_config(enable_metadata_routing=True)`` and
    ``probe.set_fit_request(sample_weight=True)``, ...); the threshold calibration
    itself is unweighted.

    References
    ----------
    Calibrate-Then-Delegate: safety monitoring with risk and budget guarantees via
    model cascades. Angelopoulos et al. (2022), Learn then Test.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from skctd import CalibratedDelegationCascade
    >>> X, y = make_classification(n_samples=2000, n_informative=5, random_state=0)
    >>> def oracle_like_expert(X_rows):  # a strong expert: a fixed function of the row
    ...     return 1 / (1 + np.exp(-4 * X_rows @ np.linspace(-1, 1, X_rows.shape[1])))
    >>> cascade = CalibratedDelegationCascade(
    ...     oracle_like_expert, alpha=0.2, delta=0.1, random_state=0
    ... ).fit(X, y)
    >>> routed = cascade.route(X[:500])
    >>> bool(routed.delegated.mean() <= 0.3)
    True
    >>> cascade.predict_proba(X[:3]).shape
    (3, 2)

    Certify also that the cascade is not less accurate than its probe alone:

    >>> safe = CalibratedDelegationCascade(
    ...     oracle_like_expert, constraints={"harm": 0.0}, random_state=0
    ... ).fit(X, y)
    >>> safe.calibration_.constraints
    ('budget', 'harm')
    >>> print(safe.calibration_.guarantee())  # doctest: +NORMALIZE_WHITESPACE
    With probability >= 0.9 over the calibration data: at most 20% of inputs are
    sent to the expert; the cascade is not less accurate than the probe alone.
    """

    _parameter_constraints: dict = {
        "expert": [BaseExpert, HasMethods(["predict_proba"]), callable, str],
        "probe": [HasMethods(["fit", "predict_proba"]), None],
        "dv_estimator": [
            HasMethods(["fit", "predict"]),
            StrOptions(set(DV_PROBE_KINDS)),
            None,
        ],
        "dv_features": [StrOptions({"activations", "activations+probe"})],
        "featurizer": [HasMethods(["fit", "transform"]), None],
        "alpha": [Interval(numbers.Real, 0, 1, closed="neither")],
        "delta": [Interval(numbers.Real, 0, 1, closed="neither")],
        "signal": [StrOptions({"dv", "uncertainty"})],
        "dv_target": [StrOptions({"continuous", "binary"})],
        "performance_risk": [StrOptions({"accuracy", "auroc"}), callable],
        "pareto": ["boolean"],
        "constraints": [dict, list, None],
        "cost": [callable, None],
        "cost_max": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "testing_order": [StrOptions({"auto", "pvalue", "lambda", "single"})],
        "selection": [StrOptions({"best", "one_se"})],
        "n_thresholds": [Interval(numbers.Integral, 1, None, closed="left")],
        "calibration_size": [
            Interval(numbers.Real, 0, 1, closed="neither"),
            Interval(numbers.Integral, 1, None, closed="left"),
            None,
        ],
        "opt_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "cv": ["cv_object"],
        "combine": [StrOptions({"replace", "average", "auto"})],
        "expert_calibration": [StrOptions({"sigmoid", "isotonic"}), None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        expert: Any,
        *,
        probe: Any = None,
        dv_estimator: Any = None,
        dv_features: str = "activations+probe",
        featurizer: Any = None,
        alpha: float = 0.2,
        delta: float = 0.1,
        signal: str = "dv",
        dv_target: str = "continuous",
        performance_risk: Any = "accuracy",
        pareto: bool = True,
        constraints: dict | list | None = None,
        cost: Any = None,
        cost_max: float | None = None,
        testing_order: str = "auto",
        selection: str = "best",
        n_thresholds: int = 100,
        calibration_size: float | int | None = 0.3,
        opt_fraction: float = 0.3,
        cv: Any = 5,
        combine: str = "auto",
        expert_calibration: str | None = None,
        random_state: Any = None,
    ) -> None:
        self.expert = expert
        self.probe = probe
        self.dv_estimator = dv_estimator
        self.dv_features = dv_features
        self.featurizer = featurizer
        self.alpha = alpha
        self.delta = delta
        self.signal = signal
        self.dv_target = dv_target
        self.performance_risk = performance_risk
        self.pareto = pareto
        self.constraints = constraints
        self.cost = cost
        self.cost_max = cost_max
        self.testing_order = testing_order
        self.selection = selection
        self.n_thresholds = n_thresholds
        self.calibration_size = calibration_size
        self.opt_fraction = opt_fraction
        self.cv = cv
        self.combine = combine
        self.expert_calibration = expert_calibration
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(
        self,
        X: Any,
        y: Any,
        *,
        expert_scores: Any = None,
        cost: Any = None,
        **fit_params: Any,
    ) -> CalibratedDelegationCascade:
        """Fit the probe and the DV probe, then calibrate the threshold.

        The data are split (stratified) into a training part, which fits the probe
        and, through out-of-fold probe scores and the expert's scores, the DV probe;
        and a calibration part (``calibration_size``), which calibrates the
        threshold. The expert is called at most once per row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence of inputs
            Numeric features, or raw inputs (texts, conversations) when a
            ``featurizer`` is set.
        y : array-like of shape (n_samples,)
            Binary labels (any two values).
        expert_scores : array-like of shape (n_samples,), default=None
            The expert's probability of ``classes_[1]`` for each row of ``X``, if
            already known; the expert is then not called during ``fit``. NaN marks
            rows the expert failed on (the probe score is used for them).
        cost : array-like of shape (n_samples,), default=None
            The expert's cost of each row of ``X`` (tokens, cents...), for the
            ``"cost"`` / ``"cost_share"`` constraints; only the calibration
            part's costs are used. Instead of the ``cost`` parameter (not both).
        **fit_params : dict
            Metadata (e.g. ``sample_weight``) routed to the ``fit`` of the
            featurizer, the probe (also in its cross-fitting) and the DV probe,
            sliced to the training part. Only with metadata routing enabled
            (``sklearn.set_config(enable_metadata_routing=True)``); each inner
            estimator says what it takes, e.g.
            ``LogisticRegression().set_fit_request(sample_weight=True)``.

        Returns
        -------
        self : object
            The fitted cascade.
        """
        _raise_for_params(fit_params, self, "fit")
        X, y = self._validate_X_y(X, y)
        y = self._check_binary(y)
        le = LabelEncoder().fit(y)
        self.classes_ = le.classes_
        y_enc = le.transform(y)
        n = _num_samples(X)
        expert_scores = self._check_expert_scores(expert_scores, n)
        cost = self._check_cost(cost, n, calibrating=self.calibration_size is not None)
        routed = process_routing(self, "fit", **fit_params)
        self.expert_ = as_expert(self.expert)
        self.expert_report_ = ExpertReport()
        rng = check_random_state(self.random_state)

        train_idx, cal_idx = self._split(y_enc, rng)
        calibration_seed = rng.randint(np.iinfo(np.int32).max)
        probe = self.probe
        if probe is None:
            probe = make_safety_probe(random_state=rng.randint(np.iinfo(np.int32).max))
        X_train = _safe_indexing(X, train_idx)
        y_train, y_train_enc = y[train_idx], y_enc[train_idx]

        def train_params(params):
            return _check_method_params(X, params=params, indices=train_idx)

        if self.featurizer is None:
            self.featurizer_ = None
        else:
            self.featurizer_ = clone(self.featurizer).fit(
                X_train, y_train, **train_params(routed.featurizer.fit)
            )
        Z = self._featurize(X)
        Z_train = Z[train_idx]

        probe_params = train_params(routed.probe.fit)
        self.probe_ = clone(probe).fit(Z_train, y_train, **probe_params)

        need_expert = self.signal == "dv" or self.expert_calibration is not None
        e_train = (
            self._expert_scores_for(X, train_idx, expert_scores) if need_expert else None
        )
        self.expert_calibrator_ = None
        e_dv = e_train
        if self.expert_calibration is not None:
            e_dv = self._fit_expert_calibrator(e_train, y_train_enc)

        if self.signal == "dv":
            if isinstance(probe, FrozenEstimator):
                # trained on other data: its scores here are already out-of-sample
                p_train = self._probe_scores(Z_train)
            else:
                cv = check_cv(self.cv, y_train, classifier=True)
                oof = cross_val_predict(
                    clone(probe),
                    Z_train,
                    y_train,
                    cv=cv,
                    method="predict_proba",
                    params={**probe_params, **train_params(routed.splitter.split)},
                )
                p_train = oof[:, 1]
            e_dv = np.where(np.isnan(e_dv), p_train, e_dv)  # failed calls: v = 0
            v = delegation_value(y_train_enc, p_train, e_dv, kind=self.dv_target)
            dv = self._dv_recipe(rng)
            dv_input = self._dv_input(Z_train, p_train)
            self._check_prefitted_dv(dv, dv_input.shape[1])
            self.dv_estimator_ = clone(dv).fit(
                dv_input,
                v,
                **train_params(routed.dv_estimator.fit),
            )
        else:
            self.dv_estimator_ = None

        if cal_idx is None:
            self._set_uncalibrated()
        else:
            self._calibrate(
                X,
                Z[cal_idx],
                cal_idx,
                y_enc[cal_idx],
                expert_scores,
                random_state=calibration_seed,
                cost=self._calibration_cost(X, cal_idx, cost),
            )
        return self

    @_fit_context(prefer_skip_nested_validation=False)
    def calibrate(
        self, X: Any, y: Any, *, expert_scores: Any = None, cost: Any = None
    ) -> CalibratedDelegationCascade:
        """Recalibrate the threshold on fresh held-out data; the probes are kept.

        Use it after ``fit(..., calibration_size=None)``, or when traffic drifts, or
        to try another ``alpha`` / ``delta`` (``set_params`` first) without
        retraining. The data must not have been used to train the probes (see the
        warning in the class description).

        Parameters
        ----------
        X : array-like or sequence of inputs
            Calibration inputs, in the same form as for ``fit``.
        y : array-like of shape (n_samples,)
            Their labels, among ``classes_``.
        expert_scores : array-like of shape (n_samples,), default=None
            The expert's scores for these rows, if already known (NaN for a failed
            call: the probe score is used).
        cost : array-like of shape (n_samples,), default=None
            The expert's cost of each row, for the ``"cost"`` / ``"cost_share"``
            constraints (instead of the ``cost`` parameter, not both).

        Returns
        -------
        self : object
            The recalibrated cascade.
        """
        check_is_fitted(self, "probe_")
        X, y = self._validate_X_y(X, y, reset=False)
        y_enc = check_known_labels(y, self.classes_)
        n = _num_samples(X)
        expert_scores = self._check_expert_scores(expert_scores, n)
        cost = self._check_cost(cost, n, calibrating=True)
        self.expert_report_ = ExpertReport()
        rng = check_random_state(self.random_state)
        self._calibrate(
            X,
            self._featurize(X),
            np.arange(n),
            y_enc,
            expert_scores,
            random_state=rng.randint(np.iinfo(np.int32).max),
            cost=self._calibration_cost(X, np.arange(n), cost),
        )
        return self

    def _calibrate(
        self, X, Z_cal, cal_idx, y_cal, expert_scores, *, random_state, cost=None
    ) -> None:
        p_cal = self._probe_scores(Z_cal)
        self.reference_scores_ = np.sort(p_cal)
        n_cal = len(cal_idx)
        if n_cal < _MIN_CALIBRATION_ROWS:
            warnings.warn(
                f"Only {n_cal} calibration rows: the threshold cannot be calibrated, "
                "so the cascade never delegates (probe only). Give more data to fit "
                "or call calibrate() on a held-out set.",
                UserWarning,
                stacklevel=3,
            )
            self._set_uncalibrated(keep_reference=True)
            return
        signal = self._signal(Z_cal, p_cal)
        e_cal = self.transform_expert_scores(
            self._expert_scores_for(X, cal_idx, expert_scores)
        )
        e_cal = np.where(np.isnan(e_cal), p_cal, e_cal)  # failed calls: probe score
        # "auto" calibrates with both rules on the same optimisation/testing split
        # and keeps the one chosen on the optimisation rows alone
        rules = ("replace", "average") if self.combine == "auto" else (self.combine,)
        results, caught = {}, {}
        for rule in rules:
            with warnings.catch_warnings(record=True) as caught[rule]:
                warnings.simplefilter("always")
                results[rule] = calibrate_threshold(
                    signal,
                    y_cal,
                    p_cal,
                    e_cal,
                    alpha=self.alpha,
                    delta=self.delta,
                    n_thresholds=self.n_thresholds,
                    performance_risk=self.performance_risk,
                    pareto=self.pareto,
                    opt_fraction=self.opt_fraction,
                    combine=rule,
                    random_state=random_state,
                    **self._constraint_kwargs(cost),
                )
        if self.combine == "auto":
            opt = results["replace"].opt_indices
            rule = choose_combine(
                signal[opt],
                y_cal[opt],
                p_cal[opt],
                e_cal[opt],
                alpha=self.alpha,
                performance_risk=self.performance_risk,
                n_thresholds=self.n_thresholds,
            )
        for w in caught[rule]:  # re-issue from here so users see where it came from
            warnings.warn(w.message, w.category, stacklevel=3)
        self.combine_ = rule
        self.calibration_ = results[rule]
        self.threshold_ = float(self.calibration_.threshold)

    def _set_uncalibrated(self, keep_reference: bool = False) -> None:
        self.calibration_ = None
        self.threshold_ = float("inf")
        self.combine_ = "replace" if self.combine == "auto" else self.combine
        if not keep_reference:
            self.reference_scores_ = np.empty(0)

    def get_metadata_routing(self) -> MetadataRouter:
        """Get the metadata routing of this object.

        ``fit`` routes metadata to the ``fit`` of the featurizer (when set), the
        probe, the DV probe (when ``signal="dv"``), and to the ``split`` of the
        cross-fitting splitter ``cv``. See scikit-learn's user guide on metadata
        routing for how the mechanism works.

        Returns
        -------
        routing : MetadataRouter
            A :class:`~sklearn.utils.metadata_routing.MetadataRouter` encapsulating
            routing information.
        """
        fit = MethodMapping().add(caller="fit", callee="fit")
        router = MetadataRouter(owner=self)
        if self.featurizer is not None:
            router.add(featurizer=self.featurizer, method_mapping=fit)
        probe = make_safety_probe() if self.probe is None else self.probe
        router.add(probe=probe, method_mapping=fit)
        if self.signal == "dv":
            dv = self._dv_recipe(None)
            router.add(dv_estimator=dv, method_mapping=fit)
        router.add(
            splitter=check_cv(self.cv),
            method_mapping=MethodMapping().add(caller="fit", callee="split"),
        )
        return router

    # --------------------------------------------------------------- prediction
    def route(self, X: Any, *, call_expert: bool = True) -> Bunch:
        """Route each row: probe score, signal, delegation, expert score, final score.

        The expert is called once, on the delegated rows only, or not at all with
        ``call_expert=False``.

        Parameters
        ----------
        X : array-like or sequence of inputs
            Inputs in the same form as for ``fit``.
        call_expert : bool, default=True
            ``False`` computes everything the cascade decides without calling the
            expert: ``probe_scores``, ``signal`` and ``delegated`` are as with
            ``True``; ``expert_scores`` is NaN on every row, ``expert_failed`` is
            all ``False``, the ``expert_report`` is empty and ``scores`` holds the
            probe scores (what the cascade would return if no expert answered).
            Use it to evaluate the cascade with expert scores computed elsewhere.

        Returns
        -------
        routing : Bunch
            ``probe_scores``, ``signal``, ``delegated`` (bool), ``expert_scores``
            (NaN where the expert was not called or failed), ``expert_failed``
            (bool), ``scores`` (final probability of ``classes_[1]``),
            ``threshold`` and ``expert_report`` (an :class:`~skctd.ExpertReport`:
            calls, failures, retries, cache hits).

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.linear_model import LogisticRegression
        >>> from skctd import CalibratedDelegationCascade
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(600, 3))
        >>> y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
        >>> def expert(rows):
        ...     return 1 / (1 + np.exp(-5 * (rows[:, 0] + rows[:, 1] * rows[:, 2])))
        >>> cascade = CalibratedDelegationCascade(
        ...     expert, probe=LogisticRegression(), alpha=0.3, random_state=0
        ... ).fit(X[:400], y[:400])
        >>> quiet = cascade.route(X[400:], call_expert=False)
        >>> bool(np.isnan(quiet.expert_scores).all()), quiet.expert_report.n_rows
        (True, 0)
        >>> bool(np.array_equal(quiet.scores, quiet.probe_scores))
        True
        """
        check_is_fitted(self, "probe_")
        X = self._validate_X(X)
        Z = self._featurize(X)
        p = self._probe_scores(Z)
        signal = self._signal(Z, p)
        delegated = signal > self.threshold_
        raw = np.full(len(p), np.nan)
        report = ExpertReport()
        idx = np.flatnonzero(delegated) if call_expert else np.empty(0, dtype=int)
        if idx.size:
            raw[idx], report = self.expert_.score_with_report(_safe_indexing(X, idx))
            report.failed_rows = [int(idx[r]) for r in report.failed_rows]
        e = self.transform_expert_scores(raw)
        failed = delegated & np.isnan(e) if call_expert else np.zeros_like(delegated)
        ok = delegated & ~np.isnan(e)
        scores = p.copy()
        scores[ok] = e[ok] if self.combine_ == "replace" else 0.5 * (e[ok] + p[ok])
        return Bunch(
            probe_scores=p,
            signal=signal,
            delegated=delegated,
            expert_scores=e,
            expert_raw_scores=raw,
            expert_failed=failed,
            scores=scores,
            threshold=self.threshold_,
            expert_report=report,
        )

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of the cascade (expert on delegated rows).

        Parameters
        ----------
        X : array-like or sequence of inputs
            Inputs in the same form as for ``fit``.

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
            Columns follow ``classes_``.
        """
        s = self.route(X).scores
        return np.column_stack([1.0 - s, s])

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels: ``classes_[1]`` where the cascade score is >= 0.5.

        Parameters
        ----------
        X : array-like or sequence of inputs
            Inputs in the same form as for ``fit``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "probe_")
        s = self.route(X).scores
        return self.classes_[(s >= 0.5).astype(int)]

    def delegation_signal(self, X: Any) -> np.ndarray:
        """The delegation signal of each row (higher = more worth delegating).

        This is ``d(x)`` for ``signal="dv"`` and the probe uncertainty for
        ``signal="uncertainty"``. It is deliberately not called
        ``decision_function``: scikit-learn's scorers (``roc_auc``) would read it
        as a class score.

        Parameters
        ----------
        X : array-like or sequence of inputs

        Returns
        -------
        signal : ndarray of shape (n_samples,)
        """
        return self.route(X, call_expert=False).signal

    def delegate(self, X: Any) -> np.ndarray:
        """Which rows would be sent to the expert (the expert is not called).

        Parameters
        ----------
        X : array-like or sequence of inputs

        Returns
        -------
        mask : ndarray of bool of shape (n_samples,)
        """
        return self.route(X, call_expert=False).delegated

    # ---------------------------------------------------------------- internals
    def _validate_X_y(self, X, y, reset=True):
        if self.featurizer is None:
            _refuse_raw_inputs(X)
            return validate_data(self, X, y, reset=reset)
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        return X, y

    def _validate_X(self, X):
        if self.featurizer is None:
            _refuse_raw_inputs(X)
            return validate_data(self, X, reset=False)
        return X

    def _check_binary(self, y):
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        if y_type != "binary":
            raise ValueError(
                "Only binary classification is supported. Unknown label type: "
                f"{y_type}. Encode the target as two classes (e.g. 0 = safe, 1 = unsafe)."
            )
        if np.unique(y).size < 2:
            raise ValueError(
                "y contains only one class; the cascade needs both classes to train "
                "the probe."
            )
        return y

    def _split(self, y_enc, rng):
        n = len(y_enc)
        if self.calibration_size is None:
            return np.arange(n), None
        idx = np.arange(n)
        try:
            train_idx, cal_idx = train_test_split(
                idx,
                test_size=self.calibration_size,
                stratify=y_enc,
                random_state=rng.randint(np.iinfo(np.int32).max),
            )
        except ValueError as exc:
            raise ValueError(
                f"Cannot split {n} rows into training and calibration parts with "
                f"calibration_size={self.calibration_size!r} ({exc}). Give more data, "
                "or set calibration_size=None and call calibrate() on held-out data."
            ) from exc
        return np.sort(train_idx), np.sort(cal_idx)

    def _featurize(self, X) -> np.ndarray:
        if self.featurizer_ is None:
            return X
        Z = self.featurizer_.transform(X)
        return check_array(Z, input_name="featurizer output")

    def _probe_scores(self, Z) -> np.ndarray:
        classes = list(self.probe_.classes_)
        positive = self.classes_[1]
        if positive in classes:
            col = classes.index(positive)
        elif len(classes) == 2:
            col = 1
        else:
            raise ValueError(
                f"The probe's classes {classes} do not match the cascade's classes "
                f"{self.classes_.tolist()}."
            )
        return np.asarray(self.probe_.predict_proba(Z)[:, col], dtype=float)

    def _signal(self, Z, p) -> np.ndarray:
        if self.signal == "dv":
            d = self.dv_estimator_.predict(self._dv_input(Z, p))
            return np.asarray(d, dtype=float).ravel()
        if self.reference_scores_.size == 0:
            return np.zeros(len(p))
        return uncertainty_signal(p, self.reference_scores_)

    def _check_expert_scores(self, expert_scores, n):
        if expert_scores is None:
            return None
        scores = column_or_1d(np.asarray(expert_scores, dtype=float))
        if scores.shape[0] != n:
            raise ValueError(
                f"expert_scores has {scores.shape[0]} values but X has {n} rows; "
                "give one expert score per row of X."
            )
        bad = np.isfinite(scores) & ((scores < 0) | (scores > 1))
        if bad.any() or np.isinf(scores).any():
            rows = np.flatnonzero(bad | np.isinf(scores))[:10].tolist()
            raise ValueError(
                f"expert_scores must be probabilities in [0, 1] (NaN for a failed "
                f"call); rows {rows} are not."
            )
        return scores

    def _expert_scores_for(self, X, idx, expert_scores):
        """Raw expert scores of the rows ``idx`` (NaN where the call failed; the
        callers let the probe score stand in for those). Warns when every call
        failed."""
        errors = []
        if expert_scores is not None:
            e = expert_scores[idx].copy()
        else:
            e, report = self.expert_.score_with_report(_safe_indexing(X, idx))
            self.expert_report_.merge(report)
            errors = report.errors
            e = np.asarray(e, dtype=float)
        missing = np.isnan(e)
        if missing.size and missing.all():
            source = "expert_scores is NaN" if expert_scores is not None else (
                "the expert failed"
            )
            why = f" ({'; '.join(errors[:3])})" if errors else ""
            warnings.warn(
                f"{source} on all {missing.size} of {missing.size} rows{why}: the "
                "probe score stands in for every one, so the cascade learns nothing "
                "from the expert. Check the expert before trusting this cascade.",
                UserWarning,
                stacklevel=4,
            )
        return e

    # ------------------------------------------------------------- constraints
    def _risks(self) -> list:
        """The constraints as Risk objects (names and levels checked), [] without."""
        given = self.constraints or []
        for r in given.values() if isinstance(given, dict) else given:
            if isinstance(r, Risk) and r.kind in ("cost", "cost_share"):
                raise ValueError(
                    f"Give the cost constraint {r.name!r} as constraints="
                    f"{{'{r.kind}': level}}: the cascade splits its data itself, so "
                    "the costs come from fit(..., cost=...) / calibrate(..., "
                    "cost=...) or the cost parameter (a function of the raw rows), "
                    "not from a Risk."
                )
        # a placeholder cost lets the names and levels be checked before the
        # costs of the calibration rows are known
        risks = check_constraints(self.constraints, np.zeros(1), self.cost_max)
        if self.selection == "one_se" and self.performance_risk != "accuracy":
            raise ValueError(
                "selection='one_se' needs performance_risk='accuracy'; use "
                "selection='best' with another performance risk."
            )
        return risks

    def _needs_cost(self) -> bool:
        return any(r.kind in ("cost", "cost_share") for r in self._risks())

    def _check_cost(self, cost, n, *, calibrating):
        """Validate the ``cost`` keyword of fit / calibrate (and the constraints)."""
        needs = self._needs_cost()
        if cost is None:
            if needs and calibrating and self.cost is None:
                raise ValueError(
                    f"The constraints {[r.name for r in self._risks()]} include a cost "
                    "budget, which needs the expert's cost of every row: pass "
                    "cost=<array, one cost per row of X> to fit / calibrate, or set "
                    "the cost parameter to a function of the raw rows (e.g. their "
                    "length)."
                )
            return None
        if self.cost is not None:
            raise ValueError(
                "cost is given twice: as the cost parameter (a function) and to "
                "fit / calibrate (an array). Give one of them."
            )
        c = np.asarray(cost, dtype=float)
        if c.ndim != 1 or c.shape[0] != n:
            raise ValueError(
                f"cost must hold one number per row of X ({n}), got shape {c.shape}."
            )
        if not np.all(np.isfinite(c)) or np.any(c < 0):
            rows = np.flatnonzero(~np.isfinite(c) | (c < 0))[:10].tolist()
            raise ValueError(
                f"cost must hold finite non-negative numbers; rows {rows} do not."
            )
        if not needs:
            warnings.warn(
                "cost is given but no constraint uses it (add e.g. "
                "constraints={'cost_share': 0.3}); it is ignored.",
                UserWarning,
                stacklevel=3,
            )
        return c

    def _calibration_cost(self, X, idx, cost):
        """Costs of the calibration rows ``idx`` (None when no constraint needs them)."""
        if idx is None or not self._needs_cost():
            return None
        if cost is not None:
            return cost[idx]
        c = np.asarray(self.cost(_safe_indexing(X, idx)), dtype=float)
        if c.shape != (len(idx),) or not np.all(np.isfinite(c)) or np.any(c < 0):
            raise ValueError(
                f"The cost function {getattr(self.cost, '__name__', self.cost)!r} "
                f"must return one finite non-negative number per row ({len(idx)} "
                f"rows), got shape {c.shape}."
            )
        return c

    def _constraint_kwargs(self, cost) -> dict:
        """The keywords of calibrate_threshold beyond the paper's procedure."""
        return dict(
            constraints=self.constraints or None,
            cost=cost,
            cost_max=self.cost_max,
            testing_order=self.testing_order,
            selection=self.selection,
        )

    def _fit_expert_calibrator(self, e_train, y_train_enc) -> np.ndarray:
        """Fit ``expert_calibrator_`` on the training rows with an expert score and
        return their out-of-fold recalibrated scores (NaN kept)."""
        ok = ~np.isnan(e_train)
        y_ok = y_train_enc[ok]
        if ok.sum() < 2 or np.unique(y_ok).size < 2:
            raise ValueError(
                f"expert_calibration={self.expert_calibration!r} needs expert scores "
                "of both classes on the training part; the expert answered on "
                f"{int(ok.sum())} training rows. Set expert_calibration=None or give "
                "more data."
            )
        calibrator = ScoreCalibrator(self.expert_calibration)
        self.expert_calibrator_ = clone(calibrator).fit(e_train[ok, None], y_ok)
        # cross-fitted like the probe: the folds of cv (5 stratified folds when some
        # expert calls failed, since cv's splits index all the training rows)
        cv = check_cv(self.cv if ok.all() else 5, y_ok, classifier=True)
        out = np.full(e_train.shape, np.nan)
        out[ok] = cross_val_predict(
            calibrator, e_train[ok, None], y_ok, cv=cv, method="predict_proba"
        )[:, 1]
        return out

    def _dv_recipe(self, rng):
        """The unfitted DV probe: the given estimator or a recipe of skctd.probes."""
        if self.dv_estimator is not None and not isinstance(self.dv_estimator, str):
            return self.dv_estimator
        kind = self.dv_estimator or "ridge"
        k = N_PROBE_FEATURES if self.dv_features == "activations+probe" else 0
        seed = None
        if kind == "boosting":
            seed = None if rng is None else rng.randint(np.iinfo(np.int32).max)
        return make_dv_probe(kind, n_probe_features=k, random_state=seed)

    def _check_prefitted_dv(self, dv, n_columns: int) -> None:
        """A pre-fitted (e.g. frozen) DV probe must read what the cascade feeds it."""
        n_in = getattr(dv, "n_features_in_", None)
        if n_in is not None and n_in != n_columns:
            hint = (
                " With dv_features='activations+probe' the cascade appends "
                f"{N_PROBE_FEATURES} probe features to the features; set "
                "dv_features='activations' for a DV probe fitted on the features alone."
                if self.dv_features == "activations+probe"
                else ""
            )
            raise ValueError(
                f"dv_estimator was fitted on {n_in} columns but the cascade feeds it "
                f"{n_columns} (dv_features={self.dv_features!r}).{hint}"
            )

    def _dv_input(self, Z, p) -> np.ndarray:
        """What the DV probe reads: the features, then the probe features of ``p``."""
        if self.dv_features == "activations":
            return Z
        return np.hstack([np.asarray(Z, dtype=float), probe_features(p)])

    def transform_expert_scores(self, scores: Any) -> np.ndarray:
        """The expert's scores as the cascade uses them.

        With ``expert_calibration``, the recalibrated scores
        (``expert_calibrator_``, fitted on the training part); otherwise the
        scores unchanged. NaN (a failed call) stays NaN.

        Parameters
        ----------
        scores : array-like of shape (n_samples,)
            Raw expert probabilities of ``classes_[1]``, in [0, 1].

        Returns
        -------
        scores : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.linear_model import LogisticRegression
        >>> from skctd import CalibratedDelegationCascade
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(600, 2))
        >>> y = (X[:, 0] > 0).astype(int)
        >>> def biased(rows):  # ranks well, but says "unsafe" to almost everything
        ...     return 1 / (1 + np.exp(-(3 + 2 * rows[:, 0])))
        >>> cascade = CalibratedDelegationCascade(
        ...     biased, probe=LogisticRegression(), expert_calibration="sigmoid",
        ...     random_state=0).fit(X, y)
        >>> raw = biased(X[:6])
        >>> (raw >= 0.5).astype(int), y[:6]
        (array([1, 1, 1, 1, 1, 1]), array([1, 1, 0, 1, 0, 0]))
        >>> (cascade.transform_expert_scores(raw) >= 0.5).astype(int)
        array([1, 1, 0, 1, 0, 0])
        """
        check_is_fitted(self, "probe_")
        e = np.asarray(scores, dtype=float)
        if self.expert_calibrator_ is None:
            return e.copy()
        e = column_or_1d(e)
        out = np.full(e.shape, np.nan)
        ok = ~np.isnan(e)
        if ok.any():
            out[ok] = self.expert_calibrator_.predict_proba(e[ok, None])[:, 1]
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        if self.featurizer is not None:
            inner = get_tags(self.featurizer).input_tags
            tags.input_tags.string = inner.string
            tags.input_tags.two_d_array = inner.two_d_array
            tags.input_tags.allow_nan = inner.allow_nan
        return tags


def _refuse_raw_inputs(X) -> None:
    """A clear error for texts or conversations given without a featurizer."""
    first = None
    if isinstance(X, str):
        first = X
    elif isinstance(X, (list, tuple)) and len(X):
        first = X[0]
    elif isinstance(X, np.ndarray) and X.dtype.kind in "OUS" and X.size:
        first = X.reshape(-1)[0]
    raw = isinstance(first, str) or (
        isinstance(first, (list, tuple)) and len(first) and isinstance(first[0], dict)
    )
    if raw:
        raise ValueError(
            "X holds raw inputs (texts or conversations) but the cascade has no "
            "featurizer: pass featurizer= (e.g. skctd.ActivationTransformer(...)) to "
            "turn them into the probes' features, or give numeric features."
        )

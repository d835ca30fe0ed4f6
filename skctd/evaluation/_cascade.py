"""The whole evaluation protocol in one call: on a fitted cascade, or on cached scores.

:func:`evaluate_cascade` takes a fitted, calibrated
:class:`~skctd.CalibratedDelegationCascade` and a labelled test pool;
:func:`evaluate_scores` takes the same pool as arrays of scores (for scores cached
by a long pipeline, as ``benchmarks/reproduce_paper.py`` has them). Both run the
protocol of :mod:`skctd.evaluation` (budget sweep of every method, guarantee
validation over random splits, group analysis, DV ranking curve, binary vs
continuous DV), keep one calibration's diagnostics and check the paper's claims
(:func:`~skctd.evaluation.check_claims`) on the numbers measured; the result is a
:class:`CascadeEvaluation`. :func:`skctd.report.write_report` renders it.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from skctd.calibration import (
    CalibrationResult,
    calibrate_threshold,
    check_constraints,
    min_test_size,
    n_opt_rows,
)
from skctd.delegation import delegation_value, uncertainty_signal
from skctd.evaluation._binary import BinaryContinuousResult, binary_vs_continuous
from skctd.evaluation._claims import check_claims
from skctd.evaluation._groups import GroupResult, group_analysis
from skctd.evaluation._guarantee import GuaranteeResult, validate_guarantee
from skctd.evaluation._ranking import (
    RankingCurveResult,
    average_ranking_curves,
    dv_ranking_curve,
)
from skctd.evaluation._splits import calibration_masks, protocol_splits
from skctd.evaluation._sweep import DEFAULT_ALPHAS, SweepResult, budget_sweep
from skctd.utils import (
    check_binary_labels,
    check_known_labels,
    check_positive_int,
    check_same_length,
    check_scores,
    to_jsonable,
)

__all__ = ["CascadeEvaluation", "evaluate_cascade", "evaluate_scores"]


@dataclass(repr=False, eq=False)
class CascadeEvaluation:
    """Everything :func:`evaluate_cascade` or :func:`evaluate_scores` measured.

    Write it to a folder (``report.md``, ``results.json``, figures) with
    :func:`skctd.report.write_report`.

    Attributes
    ----------
    sweep : SweepResult
        Budget sweep of every method (Figures 3-4 of the paper).
    guarantee : GuaranteeResult
        Realised delegation rates over random splits at ``alpha`` (Appendix D).
    groups : GroupResult or None
        Group analysis at ``alpha`` (Table 1); None without groups.
    ranking : RankingCurveResult
        Mean delegation value of the top-k evaluation rows by DV, by uncertainty,
        random and oracle (Figure 5).
    binary : BinaryContinuousResult or None
        DV probes on the binary vs continuous target (Appendix A); None without
        ``dv_binary_scores``.
    calibration : CalibrationResult or None
        One CTD calibration at ``alpha`` (diagnostics): the cascade's own
        ``calibration_`` for :func:`evaluate_cascade`, a calibration on the
        calibration half for :func:`evaluate_scores`. None when the cascade is not
        calibrated.
    reference : dict
        Sizes, probe-only and expert-only AUROC / accuracy on the evaluation half,
        effective delegation capacity, the smallest calibration size that can
        certify anything at ``alpha``, ``delta``.
    claims : dict
        Claim key (see :data:`~skctd.evaluation.CLAIMS`) ->
        ``{"claim", "holds", "detail"}``.
    settings : dict
        The parameters of the evaluation.
    """

    sweep: SweepResult
    guarantee: GuaranteeResult
    groups: GroupResult | None
    ranking: RankingCurveResult
    binary: BinaryContinuousResult | None
    calibration: CalibrationResult | None
    reference: dict
    claims: dict
    settings: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        held = sum(bool(c["holds"]) for c in self.claims.values())
        return (
            f"CascadeEvaluation(n_calibration={self.sweep.n_calibration}, "
            f"n_evaluation={self.sweep.n_evaluation}, claims_holding={held}/"
            f"{len(self.claims)})"
        )

    def to_dict(self) -> dict:
        """JSON-serialisable dict of every number (non-finite -> ``None``)."""
        cr = self.calibration
        return to_jsonable(
            {
                "settings": self.settings,
                "reference": self.reference,
                "claims": self.claims,
                "budget_sweep": self.sweep.table,
                "guarantee": {
                    "alpha": self.guarantee.alpha,
                    "delta": self.guarantee.delta,
                    "n_splits": self.guarantee.n_splits,
                    "violation_rate": self.guarantee.violation_rate,
                    "violation_se": self.guarantee.violation_se,
                    "levels": self.guarantee.levels,
                    "risk_violation_rate": self.guarantee.risk_violation_rate,
                    "risk_violation_se": self.guarantee.risk_violation_se,
                    "risk_mean": {
                        m: {k: float(np.nanmean(v)) for k, v in d.items()}
                        for m, d in self.guarantee.risk_values.items()
                    },
                    "any_violation_rate": self.guarantee.any_violation_rate,
                    "any_violation_se": self.guarantee.any_violation_se,
                    "n_uncertified": self.guarantee.n_uncertified,
                    "n_never_delegate": self.guarantee.n_never_delegate,
                    "mean_rate": {k: float(v.mean()) for k, v in self.guarantee.rates.items()},
                    "rates": self.guarantee.rates,
                },
                "groups": None if self.groups is None else self.groups.table,
                "ranking": self.ranking.table,
                "binary_vs_continuous": None if self.binary is None else self.binary.table,
                "calibration": None
                if cr is None
                else {
                    "alpha": self.settings.get("alpha"),
                    "threshold": cr.threshold,
                    "n_certified": int(np.sum(cr.certified)),
                    "n_thresholds": int(cr.thresholds.size),
                    "n_test": int(cr.test_indices.size),
                    **_calibration_guarantee(cr),
                },
            }
        )

    def summary(self) -> str:
        """A few lines for a terminal."""
        r = self.reference
        lines = [
            f"test pool: {r['n_calibration']} calibration + {r['n_evaluation']} "
            f"evaluation rows; effective delegation capacity {r['effective_capacity']:.3f}",
            f"probe only: AUROC {r['probe_auroc']:.4f}, accuracy {r['probe_accuracy']:.4f}; "
            f"expert only: AUROC {r['expert_auroc']:.4f}, accuracy {r['expert_accuracy']:.4f}",
            self.guarantee.summary(),
        ]
        cr = self.calibration
        if cr is not None and len(cr.constraints) > 1:
            lines.append(
                "certified: " + (cr.guarantee() or "nothing (no guarantee holds)")
            )
            if not cr.delegates:
                lines.append(
                    "the cascade does not delegate; blocked by: "
                    + (", ".join(cr.blocked_by) or "-")
                )
        lines.append("paper claims:")
        for c in self.claims.values():
            lines.append(f"  [{'holds' if c['holds'] else 'FAILS'}] {c['claim']}: {c['detail']}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------
def evaluate_cascade(
    cascade: Any,
    X: Any,
    y: Any,
    *,
    expert_scores: Any = None,
    groups: Any = None,
    dv_binary_scores: Any = None,
    calibration_mask: Any = None,
    calibration_size: float = 0.5,
    alphas: Any = None,
    batch_sizes: Any = (32, 64, 128),
    n_splits: int = 500,
    n_repeats: int = 20,
    shuffle: bool = True,
    tolerance: float = 0.005,
    n_se: float = 2.0,
    random_state: Any = 0,
    cost: Any = None,
) -> CascadeEvaluation:
    """Run the paper's evaluation protocol on a fitted cascade and a test pool.

    The cascade scores every row of ``X`` without calling the expert
    (:meth:`~skctd.CalibratedDelegationCascade.route` with ``call_expert=False``):
    its probe scores and its DV signal, with the expert's scores of every row, go
    through :func:`evaluate_scores` at the cascade's ``alpha``, ``delta``,
    ``n_thresholds``, ``opt_fraction``, ``performance_risk``, ``constraints``,
    ``cost_max``, ``testing_order`` and ``selection``. The calibration
    diagnostics are the cascade's own ``calibration_`` (the threshold it deploys):
    nothing is calibrated twice.

    The pool is split ``n_repeats`` times into a calibration and an evaluation
    half (the first split's calibration half is ``calibration_mask`` or a random
    ``calibration_size`` share, the others are random); on each split the budget
    sweep recalibrates CTD and the uncertainty baseline on the calibration half at
    every budget and scores them on the evaluation half, and the verdicts compare
    the methods split by split. To make the cascade's own threshold come from the
    first calibration half, calibrate it first on those rows
    (``cascade.calibrate(X[mask], y[mask])``, as ``skctd run`` does).

    If the cascade recalibrates its expert's scores (``expert_calibration``),
    the expert scores go through :meth:`~skctd.CalibratedDelegationCascade.transform_expert_scores`
    first, as they do when the cascade runs.

    Parameters
    ----------
    cascade : CalibratedDelegationCascade
        Fitted, with ``signal="dv"``. The sweep evaluates Pareto LTT on the
        cascade's DV signal, scoring delegated rows with the cascade's ``combine``
        (``"auto"`` chooses per split on the optimisation rows), whatever its
        ``pareto``.
    X : array-like or sequence of inputs
        The test pool, in the form the cascade takes; not used to fit the probes.
    y : array-like of shape (n_samples,)
        Its labels, among ``cascade.classes_``.
    expert_scores : array-like of shape (n_samples,), default=None
        The expert's probability of ``classes_[1]`` for each row, if known (NaN
        for a failed call: the row keeps its probe score, as in ``route``).
        ``None`` calls the cascade's expert on every row of ``X``.
    groups : array-like of shape (n_samples,), default=None
        Group labels (e.g. source data set) for the group analysis.
    dv_binary_scores : array-like of shape (n_samples,), default=None
        Signal of a second cascade whose DV probe was trained on the binary
        delegation value (``dv_target="binary"``), for Appendix A's comparison.
    calibration_mask : array-like of bool of shape (n_samples,), default=None
        Rows of the calibration half; default a random ``calibration_size`` share.
    calibration_size : float, default=0.5
    alphas : array-like of float, default=None
        Budgets of the sweep; default 20 levels in [0.05, 0.95].
    batch_sizes : sequence of int, default=(32, 64, 128)
        Batch sizes of the top-k baselines.
    n_splits : int, default=500
        Random splits of the guarantee validation.
    n_repeats : int, default=20
        Calibration/evaluation splits of the budget sweep, the ranking curves and
        the claims: every number is a mean over them with its standard error. The
        first split's calibration half is ``calibration_mask`` (the group analysis
        and the diagnostics use that split); ``n_repeats=1`` is the paper's
        single-split protocol.
    shuffle : bool, default=True
        Shuffle the evaluation stream (seeded) before the batched top-k.
    tolerance : float, default=0.005
        Differences of AUROC / accuracy / mean delegation value smaller than this
        are ties when the claims are checked, whatever their standard error.
    n_se : float, default=2.0
        A difference between two methods counts only beyond ``n_se`` standard
        errors of the paired per-split differences (see
        :func:`~skctd.evaluation.check_claims`).
    random_state : int, RandomState instance or None, default=0
    cost : array-like of shape (n_samples,), default=None
        The expert's cost of each row, for the cascade's ``"cost"`` /
        ``"cost_share"`` constraints; default: the cascade's ``cost`` function
        of the rows.

    Returns
    -------
    evaluation : CascadeEvaluation

    See Also
    --------
    evaluate_scores : The same protocol on arrays of scores.
    skctd.report.write_report : Writes the evaluation to a folder.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skctd import CalibratedDelegationCascade
    >>> from skctd.evaluation import evaluate_cascade
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 3))
    >>> y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    >>> def expert(rows):
    ...     return 1 / (1 + np.exp(-5 * (rows[:, 0] + rows[:, 1] * rows[:, 2])))
    >>> cascade = CalibratedDelegationCascade(
    ...     expert, probe=LogisticRegression(), calibration_size=None, random_state=0
    ... ).fit(X[:1000], y[:1000])
    >>> test = np.arange(1000, 2000)
    >>> mask = np.arange(1000) < 500
    >>> cascade = cascade.calibrate(X[test][mask], y[test][mask])
    >>> ev = evaluate_cascade(cascade, X[test], y[test], calibration_mask=mask,
    ...                       alphas=[0.1, 0.3], n_splits=50)
    >>> ev.calibration is cascade.calibration_
    True
    >>> ev.reference["n_calibration"], ev.reference["n_evaluation"]
    (500, 500)
    """
    check_is_fitted(cascade, "probe_")
    if cascade.signal != "dv":
        raise ValueError(
            "evaluate_cascade compares the cascade's DV signal with the uncertainty "
            f"baseline; this cascade uses signal={cascade.signal!r}. Evaluate a "
            "cascade with signal='dv'."
        )
    routing = cascade.route(X, call_expert=False)
    p = routing.probe_scores
    y01 = check_known_labels(y, cascade.classes_)
    check_same_length(X=p, y=y01)
    if expert_scores is None:
        expert_scores = cascade.expert_.score(X)
    e = np.asarray(expert_scores, dtype=float)
    if e.ndim != 1 or e.shape[0] != p.shape[0]:
        raise ValueError(
            f"expert_scores must have shape ({p.shape[0]},), one score per row of X; "
            f"got shape {e.shape}."
        )
    e = cascade.transform_expert_scores(e)
    e = np.where(np.isnan(e), p, e)  # a failed call keeps the probe score
    risks = check_constraints(cascade.constraints, np.zeros(1))
    needs_cost = any(r.kind in ("cost", "cost_share") for r in risks)
    if needs_cost and cost is None and cascade.cost is not None:
        cost = cascade.cost(X)
    return _evaluate(
        y01,
        p,
        e,
        routing.signal,
        calibration=cascade.calibration_,
        calibrate=False,
        groups=groups,
        dv_binary_scores=dv_binary_scores,
        alphas=alphas,
        alpha=cascade.alpha,
        delta=cascade.delta,
        batch_sizes=batch_sizes,
        n_splits=n_splits,
        n_thresholds=cascade.n_thresholds,
        performance_risk=cascade.performance_risk,
        opt_fraction=cascade.opt_fraction,
        calibration_mask=calibration_mask,
        calibration_size=calibration_size,
        n_repeats=n_repeats,
        shuffle=shuffle,
        combine=cascade.combine,
        tolerance=tolerance,
        n_se=n_se,
        random_state=random_state,
        procedure=_procedure(
            cascade.constraints,
            cost,
            cascade.cost_max,
            cascade.testing_order,
            cascade.selection,
        ),
    )


def evaluate_scores(
    y: Any,
    probe_scores: Any,
    expert_scores: Any,
    dv_scores: Any,
    *,
    groups: Any = None,
    dv_binary_scores: Any = None,
    alphas: Any = None,
    alpha: float = 0.2,
    delta: float = 0.1,
    batch_sizes: Any = (32, 64, 128),
    n_splits: int = 500,
    n_thresholds: int = 100,
    performance_risk: str = "accuracy",
    opt_fraction: float = 0.3,
    calibration_mask: Any = None,
    calibration_size: float = 0.5,
    n_repeats: int = 20,
    shuffle: bool = True,
    combine: str = "replace",
    tolerance: float = 0.005,
    n_se: float = 2.0,
    random_state: Any = 0,
    constraints: Any = None,
    cost: Any = None,
    cost_max: float | None = None,
    testing_order: str = "auto",
    selection: str = "best",
) -> CascadeEvaluation:
    """Run the paper's evaluation protocol on the scores of a test pool.

    The budget sweep, the ranking curves and the claims use ``n_repeats``
    calibration/evaluation splits of the pool (the first one's calibration half
    is ``calibration_mask`` or a random ``calibration_size`` share); the group
    analysis and one CTD calibration at ``alpha`` (the diagnostics) use the first
    split; the guarantee validation draws ``n_splits`` fresh random splits of the
    whole pool.

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels of the test pool.
    probe_scores, expert_scores : array-like of shape (n,)
        ``P(y = 1 | x)`` of the probe and the expert.
    dv_scores : array-like of shape (n,)
        DV-probe predictions (trained on the continuous delegation value).
    groups : array-like of shape (n,), optional
        Group labels (e.g. source data set) for the group analysis.
    dv_binary_scores : array-like of shape (n,), optional
        Predictions of a DV probe trained on the binary delegation value
        (Appendix A).
    alphas : array-like of float, optional
        Budgets of the sweep; default 20 levels in [0.05, 0.95].
    alpha : float, default=0.2
        The single budget of the group analysis, the guarantee validation and
        the calibration diagnostics.
    delta : float, default=0.1
    batch_sizes : sequence of int, default=(32, 64, 128)
        Batch sizes of the top-k baselines.
    n_splits : int, default=500
        Random splits of the guarantee validation.
    n_thresholds : int, default=100
    performance_risk : {"accuracy", "auroc"}, default="accuracy"
        What the calibrations optimise among the certified thresholds.
    opt_fraction : float, default=0.3
        Share of a calibration half that picks the candidate thresholds (the rest
        tests the budget), as in :func:`~skctd.calibrate_threshold`.
    calibration_mask : array-like of bool, optional
        Rows of the calibration half; default a random ``calibration_size`` share.
    calibration_size : float, default=0.5
    n_repeats : int, default=20
        Calibration/evaluation splits of the budget sweep, the ranking curves and
        the claims: every number is a mean over them with its standard error. The
        first split's calibration half is ``calibration_mask`` (the group analysis
        and the diagnostics use that split); ``n_repeats=1`` is the paper's
        single-split protocol.
    shuffle : bool, default=True
        Shuffle the evaluation stream (seeded) before the batched top-k.
    combine : {"replace", "average", "auto"}, default="replace"
        Score of delegated rows in the sweep (see
        :func:`~skctd.evaluation.budget_sweep`).
    tolerance : float, default=0.005
        Differences of AUROC / accuracy / mean delegation value smaller than this
        are ties when the claims are checked, whatever their standard error.
    n_se : float, default=2.0
        A difference between two methods counts only beyond ``n_se`` standard
        errors of the paired per-split differences (see
        :func:`~skctd.evaluation.check_claims`).
    random_state : int, RandomState instance or None, default=0
    constraints, cost, cost_max, testing_order, selection
        The calibration procedure, as in :func:`~skctd.calibrate_threshold`
        (``cost``: one cost per row of the pool): the budget sweep, the guarantee
        validation (which then also reports each constraint's violation rate) and
        the diagnostic calibration use it.

    Returns
    -------
    evaluation : CascadeEvaluation

    See Also
    --------
    evaluate_cascade : The same protocol on a fitted cascade.

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.evaluation import evaluate_scores
    >>> rng = np.random.default_rng(0)
    >>> n = 1200
    >>> y = rng.integers(0, 2, n)
    >>> probe = np.clip(0.5 + (2 * y - 1) * rng.normal(0.1, 0.3, n), 0, 1)
    >>> expert = np.clip(0.5 + (2 * y - 1) * rng.normal(0.3, 0.2, n), 0, 1)
    >>> v = np.where(y == 1, expert - probe, probe - expert)
    >>> dv = v + rng.normal(0, 0.3, n)
    >>> ev = evaluate_scores(y, probe, expert, dv, alphas=[0.1, 0.3, 0.5],
    ...                      n_splits=50, alpha=0.3)
    >>> ev.reference["n_calibration"], ev.reference["n_evaluation"]
    (600, 600)
    >>> ev.claims["ctd_ge_probe_only"]["holds"]
    True
    """
    y = check_binary_labels(y).astype(int)
    p = check_scores(probe_scores, "probe_scores", unit=True)
    e = check_scores(expert_scores, "expert_scores", unit=True)
    dv = check_scores(dv_scores, "dv_scores")
    check_same_length(y=y, probe_scores=p, expert_scores=e, dv_scores=dv)
    return _evaluate(
        y,
        p,
        e,
        dv,
        calibration=None,
        calibrate=True,
        groups=groups,
        dv_binary_scores=dv_binary_scores,
        alphas=alphas,
        alpha=alpha,
        delta=delta,
        batch_sizes=batch_sizes,
        n_splits=n_splits,
        n_thresholds=n_thresholds,
        performance_risk=performance_risk,
        opt_fraction=opt_fraction,
        calibration_mask=calibration_mask,
        calibration_size=calibration_size,
        n_repeats=n_repeats,
        shuffle=shuffle,
        combine=combine,
        tolerance=tolerance,
        n_se=n_se,
        random_state=random_state,
        procedure=_procedure(constraints, cost, cost_max, testing_order, selection),
    )


def _procedure(constraints, cost, cost_max, testing_order, selection) -> dict:
    """The calibration keywords beyond the paper's procedure (constraints as Risk
    objects holding the pool's costs and their bound)."""
    risks = check_constraints(constraints, cost, cost_max)
    return dict(
        constraints=risks or None, testing_order=testing_order, selection=selection
    )


def _calibration_guarantee(cr: CalibrationResult) -> dict:
    """What ``results.json`` records of the certified guarantee of a calibration."""
    i = cr.selected_index
    return {
        "constraints": list(cr.constraints),
        "levels": cr.levels,
        "guarantee": cr.guarantee(),
        "certified_chosen": bool(cr.certified[i]),
        "delegates": bool(cr.delegates),
        "risk_pvalues_chosen": {k: float(v[i]) for k, v in cr.risk_pvalues.items()},
        "risks_test_chosen": {k: float(v[i]) for k, v in cr.risks_test.items()},
        "blocked_by": list(cr.blocked_by),
        "rows_needed": cr.rows_needed,
        "n_tested": int(cr.testing_order.size),
    }


# --------------------------------------------------------------------------------------
# the protocol
# --------------------------------------------------------------------------------------
def _evaluate(
    y: np.ndarray,
    p: np.ndarray,
    e: np.ndarray,
    dv: np.ndarray,
    *,
    calibration: CalibrationResult | None,
    calibrate: bool,
    groups: Any,
    dv_binary_scores: Any,
    alphas: Any,
    alpha: float,
    delta: float,
    batch_sizes: Any,
    n_splits: int,
    n_thresholds: int,
    performance_risk: Any,
    opt_fraction: float,
    calibration_mask: Any,
    calibration_size: float,
    n_repeats: int,
    shuffle: bool,
    combine: str,
    tolerance: float,
    n_se: float,
    random_state: Any,
    procedure: dict | None = None,
) -> CascadeEvaluation:
    """The protocol on validated 0/1 labels and finite scores.

    ``calibrate=True`` calibrates CTD at ``alpha`` on the first split's
    calibration half for the diagnostics; otherwise ``calibration`` (a cascade's,
    possibly None) is kept.
    """
    n = y.shape[0]
    alphas = DEFAULT_ALPHAS if alphas is None else np.asarray(alphas, dtype=float)
    n_repeats = check_positive_int(n_repeats, "n_repeats")
    rng = check_random_state(random_state)
    cal = calibration_masks(
        n,
        calibration_mask=calibration_mask,
        calibration_size=calibration_size,
        random_state=rng,
    )[0]
    seed = int(rng.randint(np.iinfo(np.int32).max))
    common = dict(
        delta=delta,
        n_thresholds=n_thresholds,
        performance_risk=performance_risk,
        opt_fraction=opt_fraction,
        random_state=seed,
    )
    protocol = dict(n_repeats=n_repeats, shuffle=shuffle, combine=combine)

    procedure = dict(procedure or {})  # constraints, testing_order, selection
    sweep = budget_sweep(
        y, p, e, dv, calibration_mask=cal, alphas=alphas, batch_sizes=batch_sizes,
        **protocol, **common, **procedure,
    )
    guarantee = validate_guarantee(
        y, p, e, dv, alpha=alpha, n_splits=n_splits,
        calibration_size=float(cal.mean()), **common, **procedure,
    )
    group_res = None
    if groups is not None:
        g = np.asarray(groups).astype(str)
        if g.shape != (n,):
            raise ValueError(f"groups must have shape ({n},), got {g.shape}.")
        group_res = group_analysis(
            y, p, e, dv, g, alpha=alpha, batch_size=max(batch_sizes),
            calibration_mask=cal, **common,
        )
    # the ranking curves on the evaluation halves of the sweep's splits (same draws)
    splits = protocol_splits(
        n, calibration_mask=cal, n_repeats=n_repeats, opt_fraction=opt_fraction,
        shuffle=shuffle, random_state=seed,
    )
    v = delegation_value(y, p, e)
    per_split = []
    for sp in splits:
        ev_idx = np.sort(sp.evaluation)
        u = uncertainty_signal(p[ev_idx], np.sort(p[sp.calibration]))
        per_split.append(
            dv_ranking_curve(v[ev_idx], {"DV probe": dv[ev_idx], "Uncertainty": u})
        )
    ranking = average_ranking_curves(per_split)
    binary = None
    if dv_binary_scores is not None:
        db = check_scores(dv_binary_scores, "dv_binary_scores")
        check_same_length(y=y, dv_binary_scores=db)
        binary = binary_vs_continuous(
            y, p, e, db, dv, batch_size=max(batch_sizes), calibration_mask=cal,
            alphas=alphas, **protocol, **common,
        )
    if calibrate:
        cal_idx = np.flatnonzero(cal)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # reported in the tables
            calibration = calibrate_threshold(
                dv[cal_idx], y[cal_idx], p[cal_idx], e[cal_idx], alpha=alpha,
                delta=delta, n_thresholds=n_thresholds,
                performance_risk=performance_risk, opt_fraction=opt_fraction,
                combine="replace" if combine == "auto" else combine,
                random_state=seed, **_subset_procedure(procedure, cal_idx),
            )

    def mean_of(method: str, metric: str) -> float:
        return float(sweep.curve(method, metric)[1][0])

    ev_idx = np.flatnonzero(~cal)
    reference = {
        "n": int(n),
        "n_calibration": int(cal.sum()),
        "n_evaluation": int(ev_idx.size),
        "n_repeats": n_repeats,
        "positive_rate": float(np.mean(y == 1)),
        "probe_auroc": mean_of("probe_only", "auroc"),
        "probe_accuracy": mean_of("probe_only", "accuracy"),
        "expert_auroc": mean_of("expert_only", "auroc"),
        "expert_accuracy": mean_of("expert_only", "accuracy"),
        "effective_capacity": sweep.effective_capacity,
        "mean_v": float(np.mean([v[sp.evaluation].mean() for sp in splits])),
        "min_calibration_size": _min_calibration_size(alpha, delta, opt_fraction),
    }
    settings = {
        "alphas": alphas,
        "alpha": float(alpha),
        "delta": float(delta),
        "batch_sizes": tuple(int(b) for b in batch_sizes),
        "n_splits": int(n_splits),
        "n_repeats": n_repeats,
        "shuffle": bool(shuffle),
        "combine": combine,
        "n_thresholds": int(n_thresholds),
        "tolerance": float(tolerance),
        "n_se": float(n_se),
        "random_state": random_state if isinstance(random_state, int) else None,
        "constraints": {
            r.name: r.level for r in (procedure.get("constraints") or [])
        },
        "testing_order": procedure.get("testing_order", "auto"),
        "selection": procedure.get("selection", "best"),
    }
    result = CascadeEvaluation(
        sweep=sweep, guarantee=guarantee, groups=group_res, ranking=ranking,
        binary=binary, calibration=calibration, reference=reference, claims={},
        settings=settings,
    )
    result.claims = check_claims(result, tolerance=tolerance, n_se=n_se)
    return result


def _subset_procedure(procedure: dict, rows: np.ndarray) -> dict:
    """The procedure with the constraints' costs of ``rows`` only."""
    out = dict(procedure)
    risks = out.get("constraints")
    if risks:
        out["constraints"] = [
            r if r.cost is None else _with_cost(r, r.cost[rows]) for r in risks
        ]
    return out


def _with_cost(risk, cost):
    """A copy of a cost Risk with other per-row costs."""
    new = copy.copy(risk)
    new.cost = cost
    return new


def _min_calibration_size(alpha: float, delta: float, opt_fraction: float) -> int:
    """Fewest calibration rows whose testing part can certify anything at ``alpha``."""
    n_test = min_test_size(alpha, delta)
    n = max(2, math.ceil(n_test / (1 - opt_fraction)) - 2)
    while n - n_opt_rows(n, opt_fraction) < n_test:  # at most a few steps
        n += 1
    return n


def _auroc(y: np.ndarray, s: np.ndarray) -> float:
    if np.unique(y).size < 2:
        return float("nan")
    return float(roc_auc_score(y, s))

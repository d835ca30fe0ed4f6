"""The paper's evaluation protocol on cached arrays.

Every function here takes plain arrays -- labels, probe scores, expert scores,
delegation-value (DV) predictions, group labels -- so a full protocol runs in
seconds once the activations and the expert scores are cached:

- :func:`budget_sweep`: AUROC, accuracy, realised delegation rate and mean
  delegation value of the delegated rows per method and budget (Figures 3-4);
- :func:`validate_guarantee`: realised delegation rates over many random
  calibration/evaluation splits, budget-only vs Pareto LTT (Appendix D, Figure 11);
- :func:`group_analysis` / :func:`group_table`: per-group delegation rates and
  mean delegation values (Table 1);
- :func:`dv_ranking_curve`: mean delegation value of the top-k rows by each signal
  vs k/N (Figure 5);
- :func:`binary_vs_continuous`: DV probes trained on the binary vs the continuous
  delegation value (Appendix A).

The protocol: the test pool is split into a calibration half and an evaluation
half. The calibrated methods (CTD on the DV signal, "Unc. calibrated" on the
uncertainty signal whose ECDF comes from the calibration half's probe scores)
calibrate on the calibration half and are scored on the evaluation half; the
batched top-k baselines run on the evaluation half as a stream, in its order.
A model predicts the positive class when its score is ``>= 0.5``.

Results are small dataclasses holding a tidy table (a dict of equal-length
columns); ``to_frame()`` returns a :class:`pandas.DataFrame` (the ``report``
extra) and ``to_dict()`` a JSON-serialisable dict.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.utils import check_random_state

from skctd.calibration import calibrate_budget_sweep, opt_test_split
from skctd.delegation import delegation_value, topk_delegation_mask, uncertainty_signal
from skctd.utils import (
    check_budgets,
    check_cascade_arrays,
    check_fraction,
    check_positive_int,
    check_same_length,
    check_scores,
    import_optional,
    to_jsonable,
)

__all__ = [
    "DEFAULT_ALPHAS",
    "calibration_masks",
    "METHODS",
    "METHOD_LABELS",
    "SweepResult",
    "GuaranteeResult",
    "GroupResult",
    "RankingCurveResult",
    "BinaryContinuousResult",
    "budget_sweep",
    "validate_guarantee",
    "group_table",
    "group_analysis",
    "dv_ranking_curve",
    "binary_vs_continuous",
    "cascade_metrics",
]

#: The paper's 20 budgets.
DEFAULT_ALPHAS = np.linspace(0.05, 0.95, 20)

#: Method keys of :func:`budget_sweep`, in plotting order.
METHODS = (
    "ctd",
    "unc_calibrated",
    "dv_topk",
    "unc_topk",
    "oracle_topk",
    "probe_only",
    "expert_only",
)

#: Display names of the methods (as in the paper's figures).
METHOD_LABELS = {
    "ctd": "CTD",
    "unc_calibrated": "Unc. calibrated",
    "dv_topk": "DV top-k",
    "unc_topk": "Unc. top-k",
    "oracle_topk": "Oracle top-k",
    "probe_only": "Probe only",
    "expert_only": "Expert only",
}

_CALIBRATED = ("ctd", "unc_calibrated")
_TOPK = ("dv_topk", "unc_topk", "oracle_topk")
_METRICS = ("auroc", "accuracy", "delegation_rate", "mean_v_delegated")


# --------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------
def _check_pool(y, probe_scores, expert_scores, **signals) -> tuple[np.ndarray, ...]:
    """The arrays of a test pool (see check_cascade_arrays), at least 4 rows."""
    arrays = check_cascade_arrays(y, probe_scores, expert_scores, **signals)
    n = arrays[0].shape[0]
    if n < 4:
        raise ValueError(f"Need at least 4 rows for the protocol, got {n}.")
    return arrays


def _check_alphas(alphas: Any) -> np.ndarray:
    return DEFAULT_ALPHAS.copy() if alphas is None else check_budgets(alphas)


def _check_batch_sizes(batch_sizes: Any) -> tuple[int, ...]:
    values = [batch_sizes] if np.ndim(batch_sizes) == 0 else list(batch_sizes)
    if not values:
        raise ValueError("batch_sizes is empty; give at least one batch size.")
    return tuple(check_positive_int(b, f"batch_sizes[{i}]") for i, b in enumerate(values))


def calibration_masks(
    n: int,
    *,
    calibration_mask: Any = None,
    calibration_size: float = 0.5,
    n_splits: int = 1,
    random_state: Any = None,
) -> list[np.ndarray]:
    """Boolean masks of the calibration half of a test pool, one per split.

    The protocol calibrates on the rows of a mask and evaluates on the others.
    Either the mask is given (one split), or ``n_splits`` random masks of
    ``floor(calibration_size * n + 0.5)`` rows are drawn one after the other, each
    by ``random_state.permutation(n)`` -- the splits :func:`budget_sweep`,
    :func:`validate_guarantee`, :func:`group_analysis` and
    :func:`skctd.evaluate_cascade` draw for the same ``random_state``.

    Parameters
    ----------
    n : int
        Number of rows of the pool.
    calibration_mask : array-like of bool, shape (n,), optional
        A fixed calibration half (at least 2 calibration and 1 evaluation row);
        returned as the only mask.
    calibration_size : float, default=0.5
        Share of the rows drawn for calibration when ``calibration_mask`` is None,
        in (0, 1).
    n_splits : int, default=1
        Number of random masks (1 with a fixed ``calibration_mask``).
    random_state : int, RandomState instance or None, default=None
        A ``RandomState`` instance is advanced, so the draws that follow (e.g. the
        optimisation/testing split of each calibration half) continue its stream.

    Returns
    -------
    masks : list of ndarray of bool, shape (n,)
        ``True`` for the calibration rows of each split.

    Examples
    --------
    >>> from skctd.evaluation import calibration_masks
    >>> masks = calibration_masks(6, n_splits=2, random_state=0)
    >>> [m.astype(int).tolist() for m in masks]
    [[0, 1, 1, 0, 0, 1], [0, 1, 0, 1, 1, 0]]
    """
    n_splits = check_positive_int(n_splits, "n_splits")
    if calibration_mask is not None:
        m = np.asarray(calibration_mask)
        if m.dtype != bool or m.shape != (n,):
            raise ValueError(
                f"calibration_mask must be a boolean array of shape ({n},), got "
                f"dtype {m.dtype} and shape {m.shape}."
            )
        if m.sum() < 2 or (~m).sum() < 1:
            raise ValueError(
                "calibration_mask must leave at least 2 calibration rows and 1 "
                "evaluation row."
            )
        if n_splits != 1:
            raise ValueError(
                "n_splits > 1 draws random splits; it cannot be combined with a "
                "fixed calibration_mask."
            )
        return [m]
    size = check_fraction(calibration_size, "calibration_size")
    n_cal = int(math.floor(size * n + 0.5))
    if n_cal < 2 or n_cal > n - 1:
        raise ValueError(
            f"calibration_size={calibration_size} leaves {n_cal} of {n} rows for "
            "calibration; both halves need rows."
        )
    rng = check_random_state(random_state)
    masks = []
    for _ in range(n_splits):
        m = np.zeros(n, dtype=bool)
        m[rng.permutation(n)[:n_cal]] = True
        masks.append(m)
    return masks


def _opt_test_split(cal_idx: np.ndarray, opt_fraction: float, rng) -> tuple:
    opt, test = opt_test_split(cal_idx.size, opt_fraction=opt_fraction, random_state=rng)
    return cal_idx[opt], cal_idx[test]


# --------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------
def _auroc_columns(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC of every column of ``scores`` (ties count one half), NaN for one class."""
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        warnings.warn(
            f"The evaluation rows hold a single class (y={int(y[0]) if y.size else '?'} "
            "only); AUROC is undefined and reported as NaN.",
            UserWarning,
            stacklevel=3,
        )
        return np.full(scores.shape[1], np.nan)
    ranks = rankdata(scores, axis=0)
    return (ranks[y].sum(axis=0) - n1 * (n1 + 1) / 2) / (n1 * n0)


def cascade_metrics(
    y: Any, probe_scores: Any, expert_scores: Any, delegated: Any, v: Any = None
) -> dict[str, np.ndarray]:
    """Metrics of the cascade score for one or many delegation masks.

    The cascade score of a row is the expert score when it is delegated and the
    probe score otherwise.

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels.
    probe_scores, expert_scores : array-like of shape (n,)
        ``P(y = 1 | x)`` of the probe and the expert.
    delegated : array-like of bool, shape (n,) or (n, m)
        One delegation mask per column.
    v : array-like of shape (n,), optional
        Delegation values; default: the continuous ones of ``y``, probe and expert.

    Returns
    -------
    metrics : dict of str to ndarray of shape (m,)
        ``auroc``, ``accuracy`` (at 0.5), ``delegation_rate`` and
        ``mean_v_delegated`` (NaN where nothing is delegated).

    Examples
    --------
    >>> from skctd.evaluation import cascade_metrics
    >>> m = cascade_metrics([1, 0, 1, 0], [0.4, 0.2, 0.9, 0.6], [0.9, 0.1, 0.8, 0.1],
    ...                     [True, False, False, True])
    >>> m["accuracy"], m["delegation_rate"], m["mean_v_delegated"]
    (array([1.]), array([0.5]), array([0.5]))
    """
    y, p, e = _check_pool(y, probe_scores, expert_scores)
    d = np.asarray(delegated, dtype=bool)
    d = d.reshape(d.shape[0], -1)
    v = delegation_value(y, p, e) if v is None else check_scores(v, "v")
    check_same_length(y=y, delegated=d, v=v)
    s = np.where(d, e[:, None], p[:, None])
    n_del = d.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_v = np.where(n_del > 0, (v[:, None] * d).sum(axis=0) / n_del, np.nan)
    out = {
        "auroc": _auroc_columns(y, s),
        "accuracy": ((s >= 0.5) == y[:, None]).mean(axis=0),
        "delegation_rate": n_del / d.shape[0],
        "mean_v_delegated": mean_v,
    }
    return out


# --------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------
def _frame(columns: Mapping[str, Any]):
    pd = import_optional("pandas", extra="report", purpose="results as a DataFrame")
    return pd.DataFrame({k: np.asarray(v) for k, v in columns.items()})


class _TableMixin:
    """``to_frame`` / ``to_dict`` over the ``table`` attribute."""

    table: dict

    def to_frame(self):
        """The tidy table as a :class:`pandas.DataFrame` (needs the ``report`` extra)."""
        return _frame(self.table)

    def to_dict(self) -> dict:
        """JSON-serialisable dict (non-finite numbers become ``None``)."""
        return to_jsonable(
            {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        )


# --------------------------------------------------------------------------------------
# budget sweep
# --------------------------------------------------------------------------------------
@dataclass(repr=False, eq=False)
class SweepResult(_TableMixin):
    """Result of :func:`budget_sweep`.

    Attributes
    ----------
    table : dict of str to ndarray
        Tidy table, one row per (method, batch size, budget). Columns: ``method``
        (a key of :data:`METHOD_LABELS`), ``batch_size`` (0 for methods that are
        not batched), ``alpha``, ``auroc``, ``accuracy``, ``delegation_rate``,
        ``mean_v_delegated`` (NaN when nothing is delegated), the ``*_std`` of
        these four over the repeats (0 with one repeat) and ``threshold`` (the
        calibrated threshold, median over the repeats; NaN for uncalibrated
        methods, ``inf`` when nothing was certified). ``probe_only`` and
        ``expert_only`` repeat their constant values at every budget.
    alphas : ndarray of shape (n_alphas,)
    delta : float
    batch_sizes : tuple of int
    methods : tuple of str
    n_repeats : int
    n_calibration, n_evaluation : int
        Sizes of the two halves.
    thresholds : dict of str to ndarray of shape (n_repeats, n_alphas)
        Calibrated thresholds of ``ctd`` and ``unc_calibrated`` per repeat.
    effective_capacity : float
        Share of evaluation rows with a positive delegation value (mean over
        repeats).
    """

    table: dict
    alphas: np.ndarray
    delta: float
    batch_sizes: tuple
    methods: tuple
    n_repeats: int
    n_calibration: int
    n_evaluation: int
    thresholds: dict = field(default_factory=dict)
    effective_capacity: float = float("nan")

    def curve(
        self, method: str, metric: str = "auroc", batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One method's metric against the budget.

        Parameters
        ----------
        method : str
            A key of :data:`METHOD_LABELS`.
        metric : {"auroc", "accuracy", "delegation_rate", "mean_v_delegated"}
        batch_size : int, optional
            For top-k methods: the batch size (default: the largest swept).

        Returns
        -------
        alphas, mean, std : ndarray of shape (n_alphas,)
        """
        if metric not in _METRICS:
            raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}.")
        if method not in self.methods:
            raise ValueError(f"method {method!r} was not swept; have {self.methods}.")
        b = 0
        if method in _TOPK:
            b = max(self.batch_sizes) if batch_size is None else int(batch_size)
            if b not in self.batch_sizes:
                raise ValueError(
                    f"batch_size {b} was not swept; have {self.batch_sizes}."
                )
        t = self.table
        rows = (t["method"] == method) & (t["batch_size"] == b)
        return t["alpha"][rows], t[metric][rows], t[metric + "_std"][rows]

    def __repr__(self) -> str:
        return (
            f"SweepResult(methods={len(self.methods)}, n_alphas={self.alphas.size}, "
            f"batch_sizes={self.batch_sizes}, n_repeats={self.n_repeats}, "
            f"n_calibration={self.n_calibration}, n_evaluation={self.n_evaluation})"
        )


def _check_methods(methods: Any) -> tuple[str, ...]:
    if methods is None:
        return METHODS
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"methods must be a subset of {METHODS}, got {methods!r}.")
    return tuple(m for m in METHODS if m in methods)


def budget_sweep(
    y: Any,
    probe_scores: Any,
    expert_scores: Any,
    dv_scores: Any,
    *,
    calibration_mask: Any = None,
    calibration_size: float = 0.5,
    alphas: Any = None,
    delta: float = 0.1,
    n_thresholds: int = 100,
    batch_sizes: Sequence[int] = (32, 64, 128),
    performance_risk: str = "accuracy",
    opt_fraction: float = 0.3,
    dv_kind: str = "continuous",
    methods: Sequence[str] | None = None,
    n_repeats: int = 1,
    random_state: Any = 0,
) -> SweepResult:
    """Cascade performance against the delegation budget for every method.

    Methods (keys of :data:`METHOD_LABELS`): ``ctd`` (Pareto-LTT threshold on the
    DV signal), ``unc_calibrated`` (the same calibration on the uncertainty signal
    ``-|F(p) - 0.5|``, ``F`` the ECDF of the calibration half's probe scores),
    ``dv_topk``, ``unc_topk`` and ``oracle_topk`` (the ``floor(alpha * B)`` highest
    DV / uncertainty / true delegation values of each batch of ``B`` evaluation
    rows, in their order), ``probe_only`` and ``expert_only``.

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels of the test pool (1 = unsafe).
    probe_scores, expert_scores : array-like of shape (n,)
        ``P(y = 1 | x)`` of the probe and of the expert on the pool.
    dv_scores : array-like of shape (n,)
        DV-probe predictions ``d(x)`` on the pool (higher = delegate first).
    calibration_mask : array-like of bool, shape (n,), optional
        Rows of the calibration half (the rest is evaluated). Default: a random
        half (``calibration_size``) drawn with ``random_state``.
    calibration_size : float, default=0.5
        Share of the pool used for calibration when ``calibration_mask`` is None.
    alphas : array-like of float, optional
        Budgets; default :data:`DEFAULT_ALPHAS` (20 levels in [0.05, 0.95]).
    delta : float, default=0.1
        LTT confidence parameter.
    n_thresholds : int, default=100
        Size of the candidate threshold grid.
    batch_sizes : sequence of int, default=(32, 64, 128)
        Batch sizes of the top-k baselines.
    performance_risk : {"accuracy", "auroc"}, default="accuracy"
        Performance risk of the Pareto filter.
    opt_fraction : float, default=0.3
        Share of the calibration half used to build the grid and Pareto front.
    dv_kind : {"continuous", "binary"}, default="continuous"
        Delegation value used by the oracle and in ``mean_v_delegated``.
    methods : sequence of str, optional
        Subset of :data:`METHODS` to run (default: all).
    n_repeats : int, default=1
        Number of random calibration/evaluation splits to average over (needs
        ``calibration_mask=None``).
    random_state : int, RandomState instance or None, default=0
        Controls the splits; the default makes the sweep deterministic.

    Returns
    -------
    result : SweepResult

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.evaluation import budget_sweep
    >>> rng = np.random.default_rng(0)
    >>> n = 2000
    >>> y = rng.integers(0, 2, n)
    >>> probe = np.clip(0.5 + (2 * y - 1) * rng.normal(0.15, 0.3, n), 0, 1)
    >>> expert = np.where(y == 1, 0.95, 0.05)          # a perfect expert
    >>> dv = np.where(y == 1, expert - probe, probe - expert)  # an oracle DV probe
    >>> res = budget_sweep(y, probe, expert, dv, alphas=[0.1, 0.5], batch_sizes=[128])
    >>> alphas, acc, _ = res.curve("ctd", "accuracy")
    >>> bool(acc[1] > acc[0])
    True
    >>> res.table["method"][:3]
    array(['ctd', 'ctd', 'unc_calibrated'], dtype=object)
    """
    y, p, e, dv = _check_pool(y, probe_scores, expert_scores, dv_scores=dv_scores)
    n = y.shape[0]
    alphas = _check_alphas(alphas)
    batch_sizes = _check_batch_sizes(batch_sizes)
    methods = _check_methods(methods)
    n_repeats = check_positive_int(n_repeats, "n_repeats")
    opt_fraction = check_fraction(opt_fraction, "opt_fraction")
    rng = check_random_state(random_state)
    if calibration_mask is not None and n_repeats != 1:
        raise ValueError(
            "n_repeats > 1 draws random splits; it cannot be combined with a fixed "
            "calibration_mask."
        )
    masks = calibration_masks(
        n,
        calibration_mask=calibration_mask,
        calibration_size=calibration_size,
        n_splits=n_repeats,
        random_state=rng,
    )
    v_all = delegation_value(y, p, e, kind=dv_kind)
    v_cont = delegation_value(y, p, e)

    # (method, batch) -> list over repeats of dict metric -> (n_alphas,)
    collected: dict[tuple[str, int], list[dict]] = {}
    thresholds = {m: np.full((n_repeats, alphas.size), np.nan) for m in _CALIBRATED}
    capacity = []
    ones = np.ones((1, alphas.size), dtype=bool)
    for r, cal in enumerate(masks):
        cal_idx, ev_idx = np.flatnonzero(cal), np.flatnonzero(~cal)
        ye, pe, ee, ve = y[ev_idx], p[ev_idx], e[ev_idx], v_all[ev_idx]
        capacity.append(float(np.mean(v_cont[ev_idx] > 0)))
        ref = np.sort(p[cal_idx])
        u = uncertainty_signal(p, ref)
        signals = {"ctd": dv, "unc_calibrated": u}

        def add(key, delegated, ye=ye, pe=pe, ee=ee, ve=ve):
            collected.setdefault(key, []).append(
                cascade_metrics(ye, pe, ee, delegated, v=ve)
            )

        opt_idx, test_idx = _opt_test_split(cal_idx, opt_fraction, rng)
        for m in _CALIBRATED:
            if m not in methods:
                continue
            res = calibrate_budget_sweep(
                signals[m],
                y,
                p,
                e,
                alphas=alphas,
                delta=delta,
                splits=[(opt_idx, test_idx)],
                n_thresholds=n_thresholds,
                performance_risk=performance_risk,
            )
            thr = res.thresholds[0]
            thresholds[m][r] = thr
            add((m, 0), signals[m][ev_idx][:, None] > thr[None, :])
        topk_signals = {"dv_topk": dv[ev_idx], "unc_topk": u[ev_idx], "oracle_topk": ve}
        for m in _TOPK:
            if m not in methods:
                continue
            for b in batch_sizes:
                masks_ab = np.column_stack(
                    [topk_delegation_mask(topk_signals[m], a, b) for a in alphas]
                )
                add((m, b), masks_ab)
        if "probe_only" in methods:
            add(("probe_only", 0), np.repeat(~ones, ev_idx.size, axis=0))
        if "expert_only" in methods:
            add(("expert_only", 0), np.repeat(ones, ev_idx.size, axis=0))

    cols: dict[str, list] = {
        k: []
        for k in ("method", "batch_size", "alpha", *_METRICS)
        + tuple(f"{m}_std" for m in _METRICS)
        + ("threshold",)
    }
    for (m, b), runs in collected.items():
        cols["method"].append(np.full(alphas.size, m, dtype=object))
        cols["batch_size"].append(np.full(alphas.size, b, dtype=np.int64))
        cols["alpha"].append(alphas)
        for metric in _METRICS:
            stack = np.vstack([run[metric] for run in runs])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                cols[metric].append(np.nanmean(stack, axis=0))
                cols[metric + "_std"].append(np.nanstd(stack, axis=0))
        cols["threshold"].append(
            np.median(thresholds[m], axis=0)
            if m in _CALIBRATED
            else np.full(alphas.size, np.nan)
        )
    table = {k: np.concatenate(v) for k, v in cols.items()}
    return SweepResult(
        table=table,
        alphas=alphas,
        delta=float(delta),
        batch_sizes=batch_sizes,
        methods=methods,
        n_repeats=n_repeats,
        n_calibration=int(masks[0].sum()),
        n_evaluation=int((~masks[0]).sum()),
        thresholds={m: t for m, t in thresholds.items() if m in methods},
        effective_capacity=float(np.mean(capacity)),
    )


# --------------------------------------------------------------------------------------
# guarantee validation
# --------------------------------------------------------------------------------------
_VARIANTS = ("budget_only", "pareto")


@dataclass(repr=False, eq=False)
class GuaranteeResult(_TableMixin):
    """Result of :func:`validate_guarantee`.

    Attributes
    ----------
    alpha, delta : float
    n_splits : int
    rates : dict of str to ndarray of shape (n_splits,)
        Realised delegation rate on the evaluation half of each split, for
        ``"budget_only"`` and ``"pareto"`` LTT.
    thresholds : dict of str to ndarray of shape (n_splits,)
        Calibrated threshold of each split (``inf``: never delegate, either
        because nothing was certified or because never delegating was the
        certified threshold with the best performance).
    violation_rate : dict of str to float
        Share of splits whose realised rate exceeds ``alpha``.
    violation_se : dict of str to float
        Binomial standard error ``sqrt(r (1 - r) / n_splits)`` of the violation rate.
    n_uncertified : dict of str to int
        Splits where nothing was certified, not even "never delegate" (the
        calibration part was too small for ``alpha`` and ``delta``).
    n_never_delegate : dict of str to int
        Splits whose calibrated threshold is ``inf`` (rate 0), certified or not.
    table : dict of str to ndarray
        Tidy per-split table: ``split``, ``method``, ``rate``, ``threshold``,
        ``violated``.
    """

    alpha: float
    delta: float
    n_splits: int
    rates: dict
    thresholds: dict
    violation_rate: dict
    violation_se: dict
    n_uncertified: dict
    table: dict
    n_never_delegate: dict = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for logs and reports."""
        lines = [
            f"Budget guarantee over {self.n_splits} splits, alpha={self.alpha:g}, "
            f"delta={self.delta:g}"
        ]
        for m in _VARIANTS:
            lines.append(
                f"  {m:>11}: violation rate {self.violation_rate[m]:.3f} "
                f"(SE {self.violation_se[m]:.3f}), mean realised rate "
                f"{self.rates[m].mean():.4f}, never delegating "
                f"{self.n_never_delegate.get(m, 0)}, uncertified {self.n_uncertified[m]}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"GuaranteeResult(alpha={self.alpha:g}, delta={self.delta:g}, "
            f"n_splits={self.n_splits}, "
            f"violation_budget_only={self.violation_rate['budget_only']:.3f}, "
            f"violation_pareto={self.violation_rate['pareto']:.3f})"
        )


def validate_guarantee(
    y: Any,
    probe_scores: Any,
    expert_scores: Any,
    signal: Any,
    *,
    alpha: float = 0.3,
    delta: float = 0.1,
    n_splits: int = 500,
    calibration_size: float = 0.5,
    n_thresholds: int = 100,
    performance_risk: str = "accuracy",
    opt_fraction: float = 0.3,
    random_state: Any = 0,
) -> GuaranteeResult:
    """Realised delegation rates over random calibration/evaluation splits.

    For each of ``n_splits`` random splits of the pool, calibrate a threshold on
    the calibration part (budget-only LTT and Pareto-filtered LTT, on the same
    optimisation/testing split) and measure the share of the evaluation part it
    delegates (the paper's Appendix D). With exchangeable rows, the share of
    splits whose realised rate exceeds ``alpha`` should be at most about
    ``delta``.

    Parameters
    ----------
    y, probe_scores, expert_scores : array-like of shape (n,)
        Labels and scores of the pool.
    signal : array-like of shape (n,)
        Delegation signal, normally the DV predictions ``d(x)``. (The uncertainty
        signal depends on the calibration half's ECDF and is not validated here.)
    alpha : float, default=0.3
    delta : float, default=0.1
    n_splits : int, default=500
    calibration_size : float, default=0.5
    n_thresholds, performance_risk, opt_fraction
        As in :func:`skctd.calibrate_threshold`.
    random_state : int, RandomState instance or None, default=0

    Returns
    -------
    result : GuaranteeResult

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.evaluation import validate_guarantee
    >>> rng = np.random.default_rng(0)
    >>> n = 1000
    >>> y = rng.integers(0, 2, n)
    >>> probe = rng.uniform(size=n)
    >>> expert = np.where(y == 1, 0.9, 0.1)
    >>> res = validate_guarantee(y, probe, expert, rng.normal(size=n), n_splits=50)
    >>> res.rates["pareto"].shape
    (50,)
    >>> bool(res.violation_rate["budget_only"] <= 0.1 + 3 * 0.05)
    True
    """
    y, p, e, s = _check_pool(y, probe_scores, expert_scores, signal=signal)
    n = y.shape[0]
    alpha = check_fraction(alpha, "alpha")
    delta = check_fraction(delta, "delta")
    opt_fraction = check_fraction(opt_fraction, "opt_fraction")
    n_splits = check_positive_int(n_splits, "n_splits")
    rng = check_random_state(random_state)
    masks = calibration_masks(
        n, calibration_size=calibration_size, n_splits=n_splits, random_state=rng
    )
    splits, evals = [], []
    for cal in masks:
        splits.append(_opt_test_split(np.flatnonzero(cal), opt_fraction, rng))
        evals.append(np.flatnonzero(~cal))
    rates, thresholds, vr, se, unc, never = {}, {}, {}, {}, {}, {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*certif.*")
        for m in _VARIANTS:
            res = calibrate_budget_sweep(
                s,
                y,
                p,
                e,
                alphas=[alpha],
                delta=delta,
                splits=splits,
                n_thresholds=n_thresholds,
                performance_risk=performance_risk,
                pareto=m == "pareto",
            )
            thresholds[m] = res.thresholds[:, 0]
            rates[m] = res.delegation_rate(s, evals)[:, 0]
            r = float(np.mean(rates[m] > alpha))
            vr[m] = r
            se[m] = math.sqrt(r * (1 - r) / n_splits)
            unc[m] = int(np.sum(res.n_certified[:, 0] == 0))
            never[m] = int(np.sum(~np.isfinite(thresholds[m])))
    table = {
        "split": np.tile(np.arange(n_splits), len(_VARIANTS)),
        "method": np.repeat(np.array(_VARIANTS, dtype=object), n_splits),
        "rate": np.concatenate([rates[m] for m in _VARIANTS]),
        "threshold": np.concatenate([thresholds[m] for m in _VARIANTS]),
        "violated": np.concatenate([rates[m] > alpha for m in _VARIANTS]),
    }
    return GuaranteeResult(
        alpha=alpha,
        delta=delta,
        n_splits=n_splits,
        rates=rates,
        thresholds=thresholds,
        violation_rate=vr,
        violation_se=se,
        n_uncertified=unc,
        table=table,
        n_never_delegate=never,
    )


# --------------------------------------------------------------------------------------
# group analysis
# --------------------------------------------------------------------------------------
@dataclass(repr=False, eq=False)
class GroupResult(_TableMixin):
    """Result of :func:`group_table` / :func:`group_analysis`.

    Attributes
    ----------
    table : dict of str to ndarray
        One row per group: ``group``, ``n``, ``mean_v_all``, and for each method
        ``<method>``: ``mean_v_<method>`` (mean delegation value of its delegated
        rows in the group, NaN if none), ``rate_<method>`` (share of the group's
        rows delegated) and ``share_<method>`` (share of the method's delegations
        that fall in the group).
    methods : tuple of str
    alpha : float or None
        Budget (``group_analysis`` only).
    threshold : float or None
        CTD threshold (``group_analysis`` only).
    """

    table: dict
    methods: tuple
    alpha: float | None = None
    threshold: float | None = None

    def __repr__(self) -> str:
        return (
            f"GroupResult(groups={len(self.table['group'])}, methods={self.methods}, "
            f"alpha={self.alpha})"
        )


def group_table(v: Any, groups: Any, masks: Mapping[str, Any]) -> GroupResult:
    """Per-group delegation rates and mean delegation values.

    Parameters
    ----------
    v : array-like of shape (n,)
        Delegation values of the rows.
    groups : array-like of shape (n,)
        Group label of each row (any hashable values).
    masks : mapping of str to array-like of bool, shape (n,)
        Delegation mask of each method.

    Returns
    -------
    result : GroupResult

    Examples
    --------
    >>> from skctd.evaluation import group_table
    >>> res = group_table([0.5, -0.5, 1.0, 0.0], ["a", "a", "b", "b"],
    ...                   {"ctd": [True, False, True, True]})
    >>> res.table["mean_v_ctd"], res.table["rate_ctd"]
    (array([0.5, 0.5]), array([0.5, 1. ]))
    """
    v = check_scores(v, "v")
    g = np.asarray(groups)
    if g.shape != v.shape:
        raise ValueError(f"groups must have shape {v.shape}, got {g.shape}.")
    if not masks:
        raise ValueError("masks is empty; give at least one method's delegation mask.")
    names, inv = np.unique(g, return_inverse=True)
    counts = np.bincount(inv, minlength=names.size)
    table: dict[str, np.ndarray] = {
        "group": names.astype(object),
        "n": counts,
        "mean_v_all": np.bincount(inv, weights=v, minlength=names.size) / counts,
    }
    for m, mask in masks.items():
        d = np.asarray(mask, dtype=bool)
        if d.shape != v.shape:
            raise ValueError(f"masks[{m!r}] must have shape {v.shape}, got {d.shape}.")
        k = np.bincount(inv, weights=d, minlength=names.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            table[f"mean_v_{m}"] = np.where(
                k > 0, np.bincount(inv, weights=v * d, minlength=names.size) / k, np.nan
            )
            table[f"rate_{m}"] = k / counts
            table[f"share_{m}"] = (
                k / d.sum() if d.any() else np.full(names.size, np.nan)
            )
    return GroupResult(table=table, methods=tuple(masks))


def group_analysis(
    y: Any,
    probe_scores: Any,
    expert_scores: Any,
    dv_scores: Any,
    groups: Any,
    *,
    alpha: float = 0.2,
    delta: float = 0.1,
    batch_size: int = 128,
    calibration_mask: Any = None,
    calibration_size: float = 0.5,
    n_thresholds: int = 100,
    performance_risk: str = "accuracy",
    opt_fraction: float = 0.3,
    dv_kind: str = "continuous",
    random_state: Any = 0,
) -> GroupResult:
    """Group-conditional analysis at one budget (the paper's Table 1).

    Calibrates CTD on the calibration half (as :func:`budget_sweep`, same split
    for the same ``random_state``), runs Unc. top-k on the evaluation half, and
    tabulates per group of the evaluation half: the mean delegation value of all
    rows, of the CTD-delegated and of the Unc.-top-k-delegated rows, and the
    delegation rates (methods ``"ctd"`` and ``"unc_topk"``).

    Parameters
    ----------
    y, probe_scores, expert_scores, dv_scores : array-like of shape (n,)
        As in :func:`budget_sweep`.
    groups : array-like of shape (n,)
        Group label of each row (e.g. the source dataset).
    alpha : float, default=0.2
    delta : float, default=0.1
    batch_size : int, default=128
        Batch size of Unc. top-k.
    calibration_mask, calibration_size, n_thresholds, performance_risk, \
opt_fraction, dv_kind, random_state
        As in :func:`budget_sweep`.

    Returns
    -------
    result : GroupResult

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.evaluation import group_analysis
    >>> rng = np.random.default_rng(0)
    >>> n = 2000
    >>> y = rng.integers(0, 2, n)
    >>> probe = rng.uniform(size=n)
    >>> expert = np.where(y == 1, 0.9, 0.1)
    >>> dv = np.where(y == 1, expert - probe, probe - expert)
    >>> groups = rng.choice(["hh", "tool"], n)
    >>> res = group_analysis(y, probe, expert, dv, groups)
    >>> list(res.table["group"])
    ['hh', 'tool']
    >>> bool(np.all(res.table["mean_v_ctd"] > res.table["mean_v_all"]))
    True
    """
    y, p, e, dv = _check_pool(y, probe_scores, expert_scores, dv_scores=dv_scores)
    n = y.shape[0]
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups must have shape ({n},), got {g.shape}.")
    alpha = check_fraction(alpha, "alpha")
    # draw the split as budget_sweep does, so the same random_state gives the same one
    rng = check_random_state(random_state)
    cal = calibration_masks(
        n,
        calibration_mask=calibration_mask,
        calibration_size=calibration_size,
        random_state=rng,
    )[0]
    sweep = budget_sweep(
        y,
        p,
        e,
        dv,
        calibration_mask=cal,
        alphas=[alpha],
        delta=delta,
        n_thresholds=n_thresholds,
        batch_sizes=[batch_size],
        performance_risk=performance_risk,
        opt_fraction=opt_fraction,
        dv_kind=dv_kind,
        methods=("ctd",),
        random_state=rng,
    )
    ev = np.flatnonzero(~cal)
    thr = float(sweep.thresholds["ctd"][0, 0])
    u = uncertainty_signal(p[ev], np.sort(p[cal]))
    v = delegation_value(y[ev], p[ev], e[ev], kind=dv_kind)
    masks = {
        "ctd": dv[ev] > thr,
        "unc_topk": topk_delegation_mask(u, alpha, batch_size),
    }
    res = group_table(v, g[ev], masks)
    res.alpha = float(alpha)
    res.threshold = thr
    return res


# --------------------------------------------------------------------------------------
# DV ranking curve
# --------------------------------------------------------------------------------------
@dataclass(repr=False, eq=False)
class RankingCurveResult(_TableMixin):
    """Result of :func:`dv_ranking_curve`.

    Attributes
    ----------
    fractions : ndarray of shape (m,)
        Selection fractions ``k / N``.
    k : ndarray of int, shape (m,)
        Number of rows selected at each fraction.
    curves : dict of str to ndarray of shape (m,)
        Mean delegation value of the top-k rows by each signal, plus ``"random"``
        and ``"oracle"``.
    table : dict of str to ndarray
        Tidy version: ``signal``, ``fraction``, ``k``, ``mean_v``.
    """

    fractions: np.ndarray
    k: np.ndarray
    curves: dict
    table: dict

    def __repr__(self) -> str:
        return f"RankingCurveResult(signals={list(self.curves)}, points={self.k.size})"


def dv_ranking_curve(
    v: Any,
    signals: Mapping[str, Any],
    *,
    fractions: Any = None,
    n_permutations: int = 0,
    random_state: Any = 0,
) -> RankingCurveResult:
    """Mean delegation value of the top-k rows by each signal, against k/N.

    Parameters
    ----------
    v : array-like of shape (n,)
        True delegation values.
    signals : mapping of str to array-like of shape (n,)
        Ranking signals (higher = delegate first), e.g.
        ``{"DV probe": d, "Uncertainty": u}``. Ties go to the earlier row.
    fractions : array-like of float, optional
        Selection fractions in (0, 1]; default 100 points from 0.01 to 1.
        ``k = max(1, round(fraction * n))``.
    n_permutations : int, default=0
        ``0``: the ``"random"`` curve is its exact expectation, ``mean(v)`` at every
        k. Otherwise the mean over that many random orderings.
    random_state : int, RandomState instance or None, default=0
        Used when ``n_permutations > 0``.

    Returns
    -------
    result : RankingCurveResult
        Curves for every signal given, ``"random"`` and ``"oracle"`` (ranking by
        ``v`` itself, an upper bound at every k).

    Examples
    --------
    >>> from skctd.evaluation import dv_ranking_curve
    >>> res = dv_ranking_curve([1.0, -1.0, 0.5, 0.0], {"dv": [0.9, 0.1, 0.2, 0.8]},
    ...                        fractions=[0.25, 0.5, 1.0])
    >>> res.curves["dv"], res.curves["oracle"], res.curves["random"]
    (array([1.  , 0.5 , 0.125]), array([1.   , 0.75 , 0.125]), array([0.125, 0.125, 0.125]))
    """
    v = check_scores(v, "v")
    n = v.size
    if n == 0:
        raise ValueError("v is empty.")
    if fractions is None:
        fractions = np.linspace(0.01, 1.0, 100)
    fr = np.atleast_1d(np.asarray(fractions, dtype=float))
    if fr.ndim != 1 or not np.all((fr > 0) & (fr <= 1)):
        raise ValueError(f"fractions must lie in (0, 1], got {fractions!r}.")
    k = np.maximum(1, np.rint(fr * n).astype(np.int64))

    def top_mean(order: np.ndarray) -> np.ndarray:
        return np.cumsum(v[order])[k - 1] / k

    curves: dict[str, np.ndarray] = {}
    for name, sig in signals.items():
        s = check_scores(sig, f"signals[{name!r}]")
        if s.shape != v.shape:
            raise ValueError(
                f"signals[{name!r}] must have shape {v.shape}, got {s.shape}."
            )
        curves[str(name)] = top_mean(np.argsort(-s, kind="stable"))
    if int(n_permutations) > 0:
        rng = check_random_state(random_state)
        curves["random"] = np.mean(
            [top_mean(rng.permutation(n)) for _ in range(int(n_permutations))], axis=0
        )
    else:
        curves["random"] = np.full(k.size, v.mean())
    curves["oracle"] = top_mean(np.argsort(-v, kind="stable"))
    table = {
        "signal": np.repeat(np.array(list(curves), dtype=object), k.size),
        "fraction": np.tile(fr, len(curves)),
        "k": np.tile(k, len(curves)),
        "mean_v": np.concatenate(list(curves.values())),
    }
    return RankingCurveResult(fractions=fr, k=k, curves=curves, table=table)


# --------------------------------------------------------------------------------------
# binary vs continuous DV
# --------------------------------------------------------------------------------------
@dataclass(repr=False, eq=False)
class BinaryContinuousResult(_TableMixin):
    """Result of :func:`binary_vs_continuous`.

    Attributes
    ----------
    binary, continuous : SweepResult
        The sweeps with the DV probe trained on each formulation.
    table : dict of str to ndarray
        ``method``, ``batch_size``, ``alpha``, and per metric the binary, the
        continuous value and ``diff_<metric>`` = continuous - binary.
    """

    binary: SweepResult
    continuous: SweepResult
    table: dict

    def to_dict(self) -> dict:
        """JSON-serialisable dict of the comparison table."""
        return to_jsonable({"table": self.table})

    def __repr__(self) -> str:
        return f"BinaryContinuousResult(n_alphas={self.binary.alphas.size})"


def binary_vs_continuous(
    y: Any,
    probe_scores: Any,
    expert_scores: Any,
    dv_binary: Any,
    dv_continuous: Any,
    *,
    methods: Sequence[str] = ("dv_topk", "ctd"),
    batch_size: int = 128,
    **sweep_params: Any,
) -> BinaryContinuousResult:
    """Compare DV probes trained on the binary and on the continuous DV (Appendix A).

    Runs :func:`budget_sweep` twice on the same split (same ``random_state`` or
    ``calibration_mask``), once with each DV probe's predictions as the signal.

    Parameters
    ----------
    y, probe_scores, expert_scores : array-like of shape (n,)
    dv_binary, dv_continuous : array-like of shape (n,)
        Predictions of the DV probe trained on the binary and on the continuous
        delegation value.
    methods : sequence of str, default=("dv_topk", "ctd")
        Methods that use the DV signal (the paper's Table 2 is DV top-k).
    batch_size : int, default=128
    **sweep_params
        Other keyword arguments of :func:`budget_sweep` (``alphas``,
        ``calibration_mask``, ``random_state``, ...).

    Returns
    -------
    result : BinaryContinuousResult

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.evaluation import binary_vs_continuous
    >>> rng = np.random.default_rng(0)
    >>> n = 1000
    >>> y = rng.integers(0, 2, n)
    >>> probe = rng.uniform(size=n)
    >>> expert = np.where(y == 1, 0.9, 0.1)
    >>> v = np.where(y == 1, expert - probe, probe - expert)
    >>> res = binary_vs_continuous(y, probe, expert, (v > 0.4).astype(float), v,
    ...                            alphas=[0.2, 0.4])
    >>> sorted(set(res.table["method"]))
    ['ctd', 'dv_topk']
    """
    methods = _check_methods(methods)
    bad = [m for m in methods if m not in ("ctd", "dv_topk")]
    if bad:
        raise ValueError(
            f"methods must use the DV signal ('ctd', 'dv_topk'), got {bad}."
        )
    for key in ("methods", "batch_sizes", "dv_scores"):
        if key in sweep_params:
            raise TypeError(f"binary_vs_continuous sets {key!r} itself.")
    common = dict(methods=methods, batch_sizes=[batch_size], **sweep_params)
    rb = budget_sweep(y, probe_scores, expert_scores, dv_binary, **common)
    rc = budget_sweep(y, probe_scores, expert_scores, dv_continuous, **common)
    table = {k: rb.table[k] for k in ("method", "batch_size", "alpha")}
    for m in _METRICS:
        table[f"{m}_binary"] = rb.table[m]
        table[f"{m}_continuous"] = rc.table[m]
        table[f"diff_{m}"] = rc.table[m] - rb.table[m]
    return BinaryContinuousResult(binary=rb, continuous=rc, table=table)

"""Cascade performance against the budget for every method (Figures 3-4)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from skctd.calibration import calibrate_budget_sweep
from skctd.delegation import delegation_value, topk_delegation_mask, uncertainty_signal
from skctd.evaluation._metrics import METRICS, cascade_metrics
from skctd.evaluation._results import TableMixin
from skctd.evaluation._splits import (
    calibration_masks,
    check_pool,
    split_calibration_half,
)
from skctd.utils import check_budgets, check_fraction, check_positive_int

__all__ = [
    "DEFAULT_ALPHAS",
    "METHODS",
    "METHOD_LABELS",
    "SweepResult",
    "budget_sweep",
    "check_methods",
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


def _check_alphas(alphas: Any) -> np.ndarray:
    return DEFAULT_ALPHAS.copy() if alphas is None else check_budgets(alphas)


def _check_batch_sizes(batch_sizes: Any) -> tuple[int, ...]:
    values = [batch_sizes] if np.ndim(batch_sizes) == 0 else list(batch_sizes)
    if not values:
        raise ValueError("batch_sizes is empty; give at least one batch size.")
    return tuple(
        check_positive_int(b, f"batch_sizes[{i}]") for i, b in enumerate(values)
    )


@dataclass(repr=False, eq=False)
class SweepResult(TableMixin):
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
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}.")
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


def check_methods(methods: Any) -> tuple[str, ...]:
    """A subset of :data:`METHODS` (all of them for None), in :data:`METHODS` order."""
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
    constraints: Any = None,
    cost: Any = None,
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
    constraints : mapping or list of Risk, optional
        Extra risks certified with the budget by the calibrated methods (e.g.
        ``{"harm": 0.0}``); see :func:`skctd.calibrate_threshold`.
    cost : array-like of shape (n,), optional
        Per-row costs of the pool, for ``"cost"`` / ``"cost_share"`` constraints.

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
    y, p, e, dv = check_pool(y, probe_scores, expert_scores, dv_scores=dv_scores)
    n = y.shape[0]
    alphas = _check_alphas(alphas)
    batch_sizes = _check_batch_sizes(batch_sizes)
    methods = check_methods(methods)
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

        opt_idx, test_idx = split_calibration_half(cal_idx, opt_fraction, rng)
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
                constraints=constraints,
                cost=cost,
                random_state=rng,  # drawn from only for betting p-values
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
        for k in ("method", "batch_size", "alpha", *METRICS)
        + tuple(f"{m}_std" for m in METRICS)
        + ("threshold",)
    }
    for (m, b), runs in collected.items():
        cols["method"].append(np.full(alphas.size, m, dtype=object))
        cols["batch_size"].append(np.full(alphas.size, b, dtype=np.int64))
        cols["alpha"].append(alphas)
        for metric in METRICS:
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

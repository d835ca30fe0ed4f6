"""Cascade performance against the budget for every method (Figures 3-4)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from skctd.calibration import calibrate_budget_sweep
from skctd.delegation import (
    choose_combine,
    delegation_value,
    topk_delegation_mask,
    uncertainty_signal,
)
from skctd.evaluation._metrics import METRICS, cascade_metrics
from skctd.evaluation._results import TableMixin
from skctd.evaluation._splits import check_pool, protocol_splits
from skctd.utils import check_budgets, check_fraction, check_positive_int

__all__ = [
    "DEFAULT_ALPHAS",
    "METHODS",
    "METHOD_LABELS",
    "SweepResult",
    "budget_sweep",
    "check_methods",
    "mean_and_se",
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
# the calibrated method whose combine choice a top-k baseline follows (combine="auto")
_FOLLOWS = {"dv_topk": "ctd", "oracle_topk": "ctd", "unc_topk": "unc_calibrated"}
_COMBINE = ("replace", "average", "auto")


def mean_and_se(values: Any, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the mean along ``axis``, ignoring NaN.

    The standard error is ``std(ddof=1) / sqrt(m)`` over the ``m`` non-NaN values;
    it is NaN where fewer than two values are finite (one split says nothing about
    the spread over splits).

    Parameters
    ----------
    values : array-like
        E.g. one metric per split along ``axis``.
    axis : int, default=-1

    Returns
    -------
    mean, se : ndarray
    """
    x = np.asarray(values, dtype=float)
    m = np.sum(~np.isnan(x), axis=axis)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(x, axis=axis)
        se = np.nanstd(x, axis=axis, ddof=1) / np.sqrt(m)
    return mean, np.where(m >= 2, se, np.nan)


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
        ``mean_v_delegated`` (NaN when nothing is delegated) -- each the mean over
        the splits --, their ``*_se`` (standard error of that mean over the
        splits, ``std(ddof=1) / sqrt(n_repeats)``; NaN with a single split) and
        ``*_std`` (standard deviation over the splits), and ``threshold`` (the
        calibrated threshold, median over the splits; NaN for uncalibrated
        methods, ``inf`` when nothing was certified). ``probe_only`` and
        ``expert_only`` repeat their per-split values at every budget.
    per_split : dict of str to ndarray of shape (n_rows, n_repeats)
        Each metric of each row of ``table`` on every split (what the means and
        standard errors summarise; paired differences between methods come from
        here, see :meth:`difference`).
    alphas : ndarray of shape (n_alphas,)
    delta : float
    batch_sizes : tuple of int
    methods : tuple of str
    n_repeats : int
        Number of calibration/evaluation splits.
    n_calibration, n_evaluation : int
        Sizes of the two halves.
    thresholds : dict of str to ndarray of shape (n_repeats, n_alphas)
        Calibrated thresholds of ``ctd`` and ``unc_calibrated`` per split.
    combine : str
        How delegated rows were scored (``"replace"``, ``"average"`` or
        ``"auto"``).
    averaged : dict of str to ndarray of bool, shape (n_repeats, n_alphas)
        For ``combine="auto"``: where each calibrated method chose ``"average"``
        on its optimisation split (empty otherwise).
    shuffle : bool
        Whether the evaluation stream was shuffled before the batched top-k.
    effective_capacity : float
        Share of evaluation rows with a positive delegation value (mean over
        splits).
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
    per_split: dict = field(default_factory=dict)
    combine: str = "replace"
    averaged: dict = field(default_factory=dict)
    shuffle: bool = True

    def _rows(self, method: str, batch_size: int | None) -> np.ndarray:
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
        return (t["method"] == method) & (t["batch_size"] == b)

    @staticmethod
    def _check_metric(metric: str) -> None:
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}.")

    def curve(
        self, method: str, metric: str = "auroc", batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One method's metric against the budget: mean and standard error.

        Parameters
        ----------
        method : str
            A key of :data:`METHOD_LABELS`.
        metric : {"auroc", "accuracy", "delegation_rate", "mean_v_delegated"}
        batch_size : int, optional
            For top-k methods: the batch size (default: the largest swept).

        Returns
        -------
        alphas, mean, se : ndarray of shape (n_alphas,)
            ``se`` is the standard error of the mean over the splits (NaN with a
            single split).
        """
        self._check_metric(metric)
        rows = self._rows(method, batch_size)
        t = self.table
        return t["alpha"][rows], t[metric][rows], t[metric + "_se"][rows]

    def split_values(
        self, method: str, metric: str = "auroc", batch_size: int | None = None
    ) -> np.ndarray:
        """One method's metric on every split.

        Parameters
        ----------
        method, metric, batch_size
            As in :meth:`curve`.

        Returns
        -------
        values : ndarray of shape (n_alphas, n_repeats)
        """
        self._check_metric(metric)
        return self.per_split[metric][self._rows(method, batch_size)]

    def difference(
        self,
        method: str,
        baseline: str,
        metric: str = "auroc",
        *,
        batch_size: int | None = None,
        baseline_batch_size: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Paired difference ``method - baseline`` over the splits, per budget.

        Both methods were scored on the same evaluation rows of each split, so the
        difference is taken split by split and then averaged: its standard error
        is that of the paired differences, much smaller than the two curves'
        standard errors combined when the methods move together from split to
        split.

        Parameters
        ----------
        method, baseline : str
            Keys of :data:`METHOD_LABELS`.
        metric : {"auroc", "accuracy", "delegation_rate", "mean_v_delegated"}
        batch_size, baseline_batch_size : int, optional
            Batch sizes of top-k methods (default: the largest swept).

        Returns
        -------
        alphas, mean, se : ndarray of shape (n_alphas,)
            Mean of the per-split differences and its standard error (NaN with a
            single split).

        Examples
        --------
        >>> import numpy as np
        >>> from skctd.evaluation import budget_sweep
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 2, 600)
        >>> probe = np.clip(0.5 + (2 * y - 1) * rng.normal(0.1, 0.3, 600), 0, 1)
        >>> expert = np.where(y == 1, 0.9, 0.1)
        >>> dv = np.where(y == 1, expert - probe, probe - expert)
        >>> sweep = budget_sweep(y, probe, expert, dv, alphas=[0.3], n_repeats=10)
        >>> _, gain, se = sweep.difference("ctd", "probe_only", "accuracy")
        >>> bool(gain[0] > 5 * se[0] > 0)
        True
        """
        self._check_metric(metric)
        a = self.split_values(method, metric, batch_size)
        b = self.split_values(baseline, metric, baseline_batch_size)
        mean, se = mean_and_se(a - b, axis=1)
        return self.alphas.copy(), mean, se

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
    n_repeats: int = 20,
    shuffle: bool = True,
    combine: str = "replace",
    random_state: Any = 0,
    constraints: Any = None,
    cost: Any = None,
    testing_order: str = "auto",
    selection: str = "best",
) -> SweepResult:
    """Cascade performance against the delegation budget for every method.

    Methods (keys of :data:`METHOD_LABELS`): ``ctd`` (Pareto-LTT threshold on the
    DV signal), ``unc_calibrated`` (the same calibration on the uncertainty signal
    ``-|F(p) - 0.5|``, ``F`` the ECDF of the calibration half's probe scores),
    ``dv_topk``, ``unc_topk`` and ``oracle_topk`` (the ``floor(alpha * B)`` highest
    DV / uncertainty / true delegation values of each batch of ``B`` evaluation
    rows, in the order of the evaluation stream), ``probe_only`` and
    ``expert_only``.

    **Many splits.** The protocol is repeated on ``n_repeats`` random
    calibration/evaluation splits of the pool (the optimisation/testing split
    inside each calibration half is redrawn each time, and so is the order of the
    evaluation stream with ``shuffle``); the table reports each metric's mean over
    the splits and its standard error. One split can flip a comparison between two
    methods on a few hundred rows; compare methods with :meth:`SweepResult.difference`,
    the paired differences over the same splits. ``n_repeats=1`` with a
    ``calibration_mask`` is the paper's single-split figure.

    **Shuffled stream.** The top-k baselines cut the evaluation rows into batches
    in stream order. Data files are often sorted (by source, by label), which
    makes each batch nearly one group; the authors' code shuffles the stream
    first, and so does ``shuffle=True`` (seeded by ``random_state``, a new order on
    every split). ``shuffle=False`` keeps the pool's order.

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels of the test pool (1 = unsafe).
    probe_scores, expert_scores : array-like of shape (n,)
        ``P(y = 1 | x)`` of the probe and of the expert on the pool.
    dv_scores : array-like of shape (n,)
        DV-probe predictions ``d(x)`` on the pool (higher = delegate first).
    calibration_mask : array-like of bool, shape (n,), optional
        Rows of the calibration half of the first split (the rest is evaluated);
        the other ``n_repeats - 1`` splits are random halves of the same size.
        Default: every split is a random ``calibration_size`` share.
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
    n_repeats : int, default=20
        Number of calibration/evaluation splits to average over.
    shuffle : bool, default=True
        Shuffle the evaluation stream (seeded) before the batched top-k.
    combine : {"replace", "average", "auto"}, default="replace"
        Score of a delegated row, for every method but ``expert_only``: the
        expert's, or the mean of the expert's and the probe's
        (:func:`~skctd.combined_scores`). ``"auto"``: each calibrated method
        chooses per split and budget on its optimisation rows
        (:func:`~skctd.choose_combine`), as the cascade does; the top-k baselines
        follow the choice of the calibrated method of the same signal (the oracle
        follows CTD).
    random_state : int, RandomState instance or None, default=0
        Controls the splits and the shuffles; the default makes the sweep
        deterministic.
    constraints : mapping or list of Risk, optional
        Extra risks certified with the budget by the calibrated methods (e.g.
        ``{"harm": 0.0}``); see :func:`skctd.calibrate_threshold`.
    cost : array-like of shape (n,), optional
        Per-row costs of the pool, for ``"cost"`` / ``"cost_share"`` constraints.
    testing_order, selection : str, default="auto", "best"
        As in :func:`skctd.calibrate_threshold`.

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
    >>> alphas, acc, se = res.curve("ctd", "accuracy")
    >>> bool(acc[1] > acc[0] + 10 * se[0])
    True
    >>> res.n_repeats, res.table["method"][:3]
    (20, array(['ctd', 'ctd', 'unc_calibrated'], dtype=object))
    """
    y, p, e, dv = check_pool(y, probe_scores, expert_scores, dv_scores=dv_scores)
    n = y.shape[0]
    alphas = _check_alphas(alphas)
    batch_sizes = _check_batch_sizes(batch_sizes)
    methods = check_methods(methods)
    n_repeats = check_positive_int(n_repeats, "n_repeats")
    opt_fraction = check_fraction(opt_fraction, "opt_fraction")
    if combine not in _COMBINE:
        raise ValueError(f"combine must be one of {_COMBINE}, got {combine!r}.")
    rng = check_random_state(random_state)
    splits = protocol_splits(
        n,
        calibration_mask=calibration_mask,
        calibration_size=calibration_size,
        n_repeats=n_repeats,
        opt_fraction=opt_fraction,
        shuffle=bool(shuffle),
        random_state=rng,
    )
    v_all = delegation_value(y, p, e, kind=dv_kind)
    v_cont = delegation_value(y, p, e)
    d_rows = {c: e if c == "replace" else 0.5 * (e + p) for c in ("replace", "average")}
    n_alphas = alphas.size
    common = dict(
        alphas=alphas,
        delta=delta,
        n_thresholds=n_thresholds,
        performance_risk=performance_risk,
        constraints=constraints,
        cost=cost,
        testing_order=testing_order,
        selection=selection,
        random_state=rng,  # drawn from only for betting p-values
    )
    fixed = ("replace", "average") if combine == "auto" else (combine,)

    # (method, batch) -> metric -> (n_repeats, n_alphas)
    keys = [(m, 0) for m in methods if m not in _TOPK]
    keys += [(m, b) for m in methods if m in _TOPK for b in batch_sizes]
    values = {k: {mt: np.empty((n_repeats, n_alphas)) for mt in METRICS} for k in keys}
    thresholds = {m: np.full((n_repeats, n_alphas), np.nan) for m in _CALIBRATED}
    averaged = {m: np.zeros((n_repeats, n_alphas), dtype=bool) for m in _CALIBRATED}
    capacity = np.empty(n_repeats)
    # CTD's signal is the same on every split: one calibration call per combine
    ctd_thr = {}
    if "ctd" in methods:
        for c in fixed:
            ctd_thr[c] = calibrate_budget_sweep(
                dv, y, p, e, splits=[(s.opt, s.test) for s in splits],
                combine=c, **common,
            ).thresholds
    ones = np.ones((1, n_alphas), dtype=bool)
    for r, sp in enumerate(splits):
        ev = sp.evaluation
        ye, pe, ve = y[ev], p[ev], v_all[ev]
        capacity[r] = float(np.mean(v_cont[ev] > 0))
        u = uncertainty_signal(p, np.sort(p[sp.calibration]))
        signals = {"ctd": dv, "unc_calibrated": u}
        # which combine each calibrated method uses, per budget
        avg = {}
        for m in _CALIBRATED:
            if combine == "auto":
                o = sp.opt
                choice = choose_combine(
                    signals[m][o], y[o], p[o], e[o], alpha=alphas,
                    performance_risk=performance_risk, n_thresholds=n_thresholds,
                )
                avg[m] = choice == "average"
            else:
                avg[m] = np.full(n_alphas, combine == "average")
            averaged[m][r] = avg[m]

        def metrics(key, delegated, use_avg, r=r, ev=ev, ye=ye, pe=pe, ve=ve):
            out = {}
            for c in fixed:
                res = cascade_metrics(ye, pe, d_rows[c][ev], delegated, v=ve)
                for mt in METRICS:
                    out.setdefault(mt, []).append(res[mt])
            for mt in METRICS:
                vals = out[mt][0] if len(fixed) == 1 else np.where(
                    use_avg, out[mt][1], out[mt][0]
                )
                values[key][mt][r] = vals

        for m in _CALIBRATED:
            if m not in methods:
                continue
            if m == "ctd":
                by_c = {c: ctd_thr[c][r] for c in fixed}
            else:
                by_c = {
                    c: calibrate_budget_sweep(
                        u, y, p, e, splits=[(sp.opt, sp.test)], combine=c, **common
                    ).thresholds[0]
                    for c in fixed
                }
            thr = by_c[fixed[0]] if len(fixed) == 1 else np.where(
                avg[m], by_c["average"], by_c["replace"]
            )
            thresholds[m][r] = thr
            metrics((m, 0), signals[m][ev][:, None] > thr[None, :], avg[m])
        topk_signals = {"dv_topk": dv[ev], "unc_topk": u[ev], "oracle_topk": ve}
        for m in _TOPK:
            if m not in methods:
                continue
            for b in batch_sizes:
                mask = topk_delegation_mask(topk_signals[m], alphas, b)
                metrics((m, b), mask, avg[_FOLLOWS[m]])
        if "probe_only" in methods:
            metrics(("probe_only", 0), np.repeat(~ones, ev.size, axis=0), False)
        if "expert_only" in methods:  # the expert alone, whatever the combine
            res = cascade_metrics(ye, pe, e[ev], np.repeat(ones, ev.size, axis=0), v=ve)
            for mt in METRICS:
                values[("expert_only", 0)][mt][r] = res[mt]

    cols: dict[str, list] = {
        k: []
        for k in ("method", "batch_size", "alpha", *METRICS)
        + tuple(f"{m}_se" for m in METRICS)
        + tuple(f"{m}_std" for m in METRICS)
        + ("threshold",)
    }
    per_split: dict[str, list] = {mt: [] for mt in METRICS}
    for (m, b) in keys:
        cols["method"].append(np.full(n_alphas, m, dtype=object))
        cols["batch_size"].append(np.full(n_alphas, b, dtype=np.int64))
        cols["alpha"].append(alphas)
        for mt in METRICS:
            runs = values[(m, b)][mt]  # (n_repeats, n_alphas)
            mean, se = mean_and_se(runs, axis=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                std = np.nanstd(runs, axis=0)
            cols[mt].append(mean)
            cols[mt + "_se"].append(se)
            cols[mt + "_std"].append(std)
            per_split[mt].append(runs.T)
        cols["threshold"].append(
            np.median(thresholds[m], axis=0)
            if m in _CALIBRATED
            else np.full(n_alphas, np.nan)
        )
    table = {k: np.concatenate(v) for k, v in cols.items()}
    return SweepResult(
        table=table,
        alphas=alphas,
        delta=float(delta),
        batch_sizes=batch_sizes,
        methods=methods,
        n_repeats=n_repeats,
        n_calibration=int(splits[0].calibration.sum()),
        n_evaluation=int(splits[0].evaluation.size),
        thresholds={m: t for m, t in thresholds.items() if m in methods},
        effective_capacity=float(np.mean(capacity)),
        per_split={mt: np.concatenate(v) for mt, v in per_split.items()},
        combine=combine,
        averaged={m: a for m, a in averaged.items() if combine == "auto" and m in methods},
        shuffle=bool(shuffle),
    )

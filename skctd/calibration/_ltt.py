"""Learn-then-Test calibration of a delegation threshold (pure numpy / scipy).

The cascade delegates a row to the expert when its delegation signal exceeds a
threshold ``lam``. This module picks ``lam`` so that the expected share of delegated
rows (the *budget risk*) is at most ``alpha`` with probability at least ``1 - delta``
over the draw of the calibration data (Angelopoulos et al., 2022, "Learn then
Test"), optionally restricting the tested thresholds to the Pareto front of budget
and performance (Laufer-Goldshtein et al., 2023, "Pareto testing").

Everything is vectorised and O(n log m) for n rows and m thresholds: each row is
placed between two consecutive thresholds (``np.searchsorted`` into the short
grid), ``np.bincount`` and suffix sums then give the number of delegated rows and
the accuracy of the cascade of every threshold, and the binomial tail of every
(threshold, budget) pair is one broadcast call. The AUROC performance risk sorts the
2n candidate scores (probe and expert) once and then costs O(n) per threshold. There is no Python loop over thresholds or rows, except around a
user-supplied ``performance_risk`` callable.

The building blocks (:func:`binomial_pvalues`, :func:`hoeffding_bentkus_pvalues`,
:func:`fixed_sequence_test`, :func:`bonferroni_test`, :func:`pareto_efficient`,
:func:`candidate_thresholds`) are public; :func:`calibrate_threshold` runs the whole
procedure once and :func:`calibrate_budget_sweep` runs it for many budgets and many
random splits at once (the evaluation protocol of the paper).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special
from sklearn.utils import check_random_state

from skctd.utils import (
    check_binary_labels,
    check_budgets,
    check_fraction,
    check_positive_int,
    check_same_length,
    check_scores,
)

__all__ = [
    "BudgetSweepResult",
    "CalibrationResult",
    "binomial_pvalues",
    "bonferroni_test",
    "calibrate_budget_sweep",
    "calibrate_threshold",
    "candidate_thresholds",
    "fixed_sequence_test",
    "hoeffding_bentkus_pvalues",
    "min_test_size",
    "pareto_efficient",
]

_PERFORMANCE_RISKS = ("accuracy", "auroc")
_FWER = ("fixed_sequence", "bonferroni")
_COMBINE = ("replace", "average")
# Block size (threshold rows x samples) of the score matrix built for AUROC / callables.
_MATRIX_BLOCK = 2_000_000
# Tolerance for floor/ceil of products such as n * r computed in floating point.
_EPS = 1e-9


# --------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------
def _check_inputs(signal, y, probe_scores, expert_scores):
    signal = check_scores(signal, "signal")
    y = check_binary_labels(y)
    p = check_scores(probe_scores, "probe_scores", unit=True)
    e = check_scores(expert_scores, "expert_scores", unit=True)
    check_same_length(signal=signal, y=y, probe_scores=p, expert_scores=e)
    return signal, y, p, e


def _check_options(n_thresholds, performance_risk, fwer, combine, opt_fraction):
    n_thresholds = check_positive_int(n_thresholds, "n_thresholds")
    if not callable(performance_risk) and performance_risk not in _PERFORMANCE_RISKS:
        raise ValueError(
            f"performance_risk must be one of {_PERFORMANCE_RISKS} or a callable "
            f"(y, scores) -> risk, got {performance_risk!r}."
        )
    if fwer not in _FWER:
        raise ValueError(f"fwer must be one of {_FWER}, got {fwer!r}.")
    if combine not in _COMBINE:
        raise ValueError(f"combine must be one of {_COMBINE}, got {combine!r}.")
    opt_fraction = check_fraction(opt_fraction, "opt_fraction")
    return n_thresholds, opt_fraction


def _n_opt_rows(n: int, opt_fraction: float) -> int:
    n_opt = max(1, int(math.floor(opt_fraction * n + 0.5)))
    if n < 2 or n_opt > n - 1:
        raise ValueError(
            f"Too few calibration rows: got {n} rows with opt_fraction={opt_fraction}, "
            "but both the optimisation split and the testing split need at least one "
            "row. Give more calibration data (hundreds of rows in practice)."
        )
    return n_opt


def _random_split(n: int, n_opt: int, rng: np.random.RandomState):
    """Sorted indices of a uniformly random split into n_opt and n - n_opt rows."""
    in_opt = np.zeros(n, dtype=bool)
    in_opt[rng.permutation(n)[:n_opt]] = True
    return np.flatnonzero(in_opt), np.flatnonzero(~in_opt)


def min_test_size(alpha: float, delta: float) -> int:
    """Smallest test-split size ``n`` with ``(1 - alpha) ** n <= delta``.

    Below it, not even "never delegate" can be certified: the binomial p-value of a
    threshold that delegates nothing on the test split is ``(1 - alpha) ** n``.

    Parameters
    ----------
    alpha : float
        Budget, in (0, 1).
    delta : float
        Confidence parameter, in (0, 1).

    Returns
    -------
    n : int
        ``ceil(log(delta) / log(1 - alpha))``, corrected for rounding.

    Examples
    --------
    >>> from skctd import min_test_size
    >>> min_test_size(0.1, 0.1)
    22
    """
    alpha = check_fraction(alpha, "alpha")
    delta = check_fraction(delta, "delta")
    n = max(1, math.ceil(math.log(delta) / math.log1p(-alpha)))
    # guard against rounding of the logarithms in either direction
    while n > 1 and (1.0 - alpha) ** (n - 1) <= delta:
        n -= 1
    while (1.0 - alpha) ** n > delta:
        n += 1
    return n


# --------------------------------------------------------------------------------------
# p-values and FWER procedures
# --------------------------------------------------------------------------------------
def binomial_pvalues(k: Any, n: int, alpha: Any) -> np.ndarray:
    """Binomial p-values ``P(Binomial(n, alpha) <= k)`` of the nulls ``R > alpha``.

    For a Bernoulli loss (here: "the row is delegated") with ``k`` losses among ``n``
    exchangeable rows, this is a valid p-value for the null hypothesis that the
    expected loss exceeds ``alpha``; the one-sided binomial test is uniformly most
    powerful (Angelopoulos et al., 2022).

    Parameters
    ----------
    k : array-like of int
        Number of losses (delegated rows) per hypothesis, each in ``[0, n]``.
    n : int
        Number of rows the losses were counted on.
    alpha : float or array-like of float
        Risk level(s) in (0, 1); broadcast against ``k``.

    Returns
    -------
    pvalues : ndarray of float
        ``scipy.stats.binom.cdf(k, n, alpha)``, with the broadcast shape.

    Examples
    --------
    >>> from skctd import binomial_pvalues
    >>> binomial_pvalues([0, 1, 5], 5, 0.2)
    array([0.32768, 0.73728, 1.     ])
    """
    n = check_positive_int(n, "n")
    k_arr = np.asarray(k)
    if k_arr.size and (
        not np.all(np.isfinite(k_arr.astype(float)))
        or np.any(k_arr != np.floor(k_arr))
        or k_arr.min() < 0
        or k_arr.max() > n
    ):
        raise ValueError(f"k must hold integer counts in [0, n={n}], got {k!r}.")
    alpha_arr = np.asarray(alpha, dtype=float)
    if not np.all(np.isfinite(alpha_arr)) or np.any(
        (alpha_arr <= 0) | (alpha_arr >= 1)
    ):
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha!r}.")
    # bdtr is what scipy.stats.binom.cdf evaluates, without the distribution overhead
    return special.bdtr(k_arr.astype(float), n, alpha_arr)


def hoeffding_bentkus_pvalues(risk_hat: Any, n: int, alpha: float) -> np.ndarray:
    """Hoeffding-Bentkus p-values for losses bounded in [0, 1].

    For the null ``R > alpha`` and an empirical risk ``r`` on ``n`` rows (Angelopoulos
    et al., 2022, Prop. 3 / Bates et al., 2021)::

        p = min(exp(-n h1(min(r, alpha), alpha)),
                e * P(Binomial(n, alpha) <= ceil(n r)))

    with ``h1(a, b) = a log(a / b) + (1 - a) log((1 - a) / (1 - b))``, capped at 1.
    Edges: ``r = 0`` gives ``h1 = -log(1 - alpha)`` (``0 log 0 = 0``), and
    ``r >= alpha`` gives ``p = 1``. ``ceil(n r)`` tolerates a relative rounding error
    of 1e-9 in ``n r`` (so ``r = 3 / 10`` with ``n = 10`` counts 3 losses, not 4).
    Use it for non-binary losses; for the 0/1 delegation loss the binomial p-value
    (:func:`binomial_pvalues`) is exact and more powerful.

    Parameters
    ----------
    risk_hat : array-like of float
        Empirical risks in [0, 1].
    n : int
        Number of rows each empirical risk was computed on.
    alpha : float
        Risk level in (0, 1).

    Returns
    -------
    pvalues : ndarray of float
        Valid p-values in (0, 1], same shape as ``risk_hat``.

    Examples
    --------
    >>> from skctd import hoeffding_bentkus_pvalues
    >>> p = hoeffding_bentkus_pvalues([0.0, 0.05, 0.1, 0.3], 100, 0.2)
    >>> [f"{v:.3g}" for v in p]
    ['2.04e-10', '5.08e-05', '0.0155', '1']
    """
    n = check_positive_int(n, "n")
    alpha = check_fraction(alpha, "alpha")
    r = np.asarray(risk_hat, dtype=float)
    if not np.all(np.isfinite(r)) or np.any((r < 0) | (r > 1)):
        raise ValueError(
            f"risk_hat must hold finite values in [0, 1], got {risk_hat!r}."
        )
    a = np.minimum(r, alpha)
    h1 = special.xlogy(a, a / alpha) + special.xlogy(1 - a, (1 - a) / (1 - alpha))
    p_hoeffding = np.exp(-n * h1)
    k = np.ceil(n * r * (1 - _EPS))
    p_bentkus = np.e * special.bdtr(k, n, alpha)
    p = np.minimum(np.minimum(p_hoeffding, p_bentkus), 1.0)
    return np.where(r >= alpha, 1.0, p)


def fixed_sequence_test(pvalues: Any, delta: float) -> int:
    """Fixed-sequence testing: how many leading hypotheses are certified.

    The hypotheses are tested in the given order, each at the full level ``delta``;
    testing stops at the first p-value above ``delta`` (a NaN p-value also stops
    it). This controls the family-wise error rate at ``delta`` when the order is
    fixed before the data are seen (Bauer, 1991).

    Parameters
    ----------
    pvalues : array-like of float, shape (m,)
        P-values in testing order (most conservative first).
    delta : float
        FWER level in (0, 1).

    Returns
    -------
    n_certified : int
        The hypotheses ``0 .. n_certified - 1`` are certified (rejected nulls).

    Examples
    --------
    >>> from skctd import fixed_sequence_test
    >>> fixed_sequence_test([0.01, 0.05, 0.2, 0.01], delta=0.1)
    2
    """
    delta = check_fraction(delta, "delta")
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be 1-D, got shape {p.shape}.")
    fail = ~(p <= delta)
    return int(np.argmax(fail)) if fail.any() else int(p.size)


def bonferroni_test(pvalues: Any, delta: float) -> np.ndarray:
    """Bonferroni correction: certify each hypothesis with ``p <= delta / m``.

    Parameters
    ----------
    pvalues : array-like of float, shape (m,)
        P-values (NaN is never certified).
    delta : float
        FWER level in (0, 1).

    Returns
    -------
    certified : ndarray of bool, shape (m,)

    Examples
    --------
    >>> from skctd import bonferroni_test
    >>> bonferroni_test([0.01, 0.05, 0.03], delta=0.1)
    array([ True, False,  True])
    """
    delta = check_fraction(delta, "delta")
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be 1-D, got shape {p.shape}.")
    if p.size == 0:
        return np.zeros(0, dtype=bool)
    return p <= delta / p.size


# --------------------------------------------------------------------------------------
# Pareto filter and threshold grid
# --------------------------------------------------------------------------------------
def pareto_efficient(risks: Any) -> np.ndarray:
    """Pareto-efficient rows of a risk matrix (every column is minimised).

    A row is efficient when no other row is ``<=`` in every column and ``<`` in at
    least one. Exact duplicates do not dominate each other, so every copy of an
    efficient point is kept (and every copy of a dominated point is dropped): the
    filter never has to break a tie between hypotheses that look the same on the
    optimisation split.

    Two columns take ``O(m log m)`` (lexicographic sort and a running minimum);
    more columns use a blocked ``O(m^2 r)`` pairwise comparison.

    Parameters
    ----------
    risks : array-like of float, shape (m, r)
        One row per candidate, one column per risk. No NaN.

    Returns
    -------
    efficient : ndarray of bool, shape (m,)

    Examples
    --------
    >>> from skctd import pareto_efficient
    >>> pareto_efficient([[0.0, 0.3], [0.1, 0.2], [0.2, 0.2], [0.1, 0.2], [0.3, 0.1]])
    array([ True,  True, False,  True,  True])
    """
    x = np.asarray(risks, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"risks must be a 2-D array (m, r), got shape {x.shape}.")
    if np.isnan(x).any():
        raise ValueError("risks contains NaN; Pareto dominance is undefined for NaN.")
    m, r = x.shape
    if m == 0:
        return np.zeros(0, dtype=bool)
    if r == 1:
        return x[:, 0] == x[:, 0].min()
    if r == 2:
        order = np.lexsort((x[:, 1], x[:, 0]))  # by first column, then second
        a, b = x[order, 0], x[order, 1]
        new_group = np.empty(m, dtype=bool)
        new_group[0] = True
        new_group[1:] = a[1:] != a[:-1]
        group_start = np.maximum.accumulate(np.where(new_group, np.arange(m), 0))
        group_min_b = b[group_start]  # smallest second risk among equal first risks
        running_min = np.minimum.accumulate(b)
        # smallest second risk among rows with a strictly smaller first risk
        before = np.where(
            group_start > 0, running_min[np.maximum(group_start - 1, 0)], np.inf
        )
        eff_sorted = (b == group_min_b) & (b < before)
        efficient = np.empty(m, dtype=bool)
        efficient[order] = eff_sorted
        return efficient
    dominated = np.zeros(m, dtype=bool)
    block = max(1, _MATRIX_BLOCK // max(1, m * r))
    for start in range(0, m, block):  # blocks of rows, not a per-row loop
        xi = x[start : start + block, None, :]  # (b, 1, r): candidates
        le = np.all(x[None, :, :] <= xi, axis=2)  # (b, m): j <= i everywhere
        lt = np.any(x[None, :, :] < xi, axis=2)  # j < i somewhere
        dominated[start : start + block] = np.any(le & lt, axis=1)
    return ~dominated


def _grid(signal: np.ndarray, n_thresholds: int) -> np.ndarray:
    levels = np.linspace(0.0, 1.0, n_thresholds)
    q = np.quantile(signal, levels, method="lower")
    return np.concatenate(([np.inf], np.unique(q)[::-1]))


def candidate_thresholds(signal: Any, n_thresholds: int = 100) -> np.ndarray:
    """Candidate thresholds: ``+inf`` then descending quantiles of the signal.

    The policy of a threshold ``lam`` delegates the rows with ``signal > lam``, so
    ``+inf`` (first) never delegates and later thresholds delegate more and more.
    The quantiles are taken at ``n_thresholds`` evenly spaced levels in [0, 1] with
    ``method="lower"``, so each one is an observed signal value; duplicates (from
    ties in the signal) are dropped, so no two thresholds select the same rows of
    ``signal`` and the grid may hold fewer than ``n_thresholds + 1`` values.

    Parameters
    ----------
    signal : array-like of float, shape (n,)
        Delegation signal (higher = more worth delegating). Finite values.
    n_thresholds : int, default=100
        Number of quantile levels.

    Returns
    -------
    thresholds : ndarray of float, shape (<= n_thresholds + 1,)
        Strictly decreasing, ``thresholds[0] == inf``.

    Examples
    --------
    >>> from skctd import candidate_thresholds
    >>> candidate_thresholds([0.1, 0.1, 0.1, 0.5, 0.9], n_thresholds=5)
    array([inf, 0.9, 0.5, 0.1])
    """
    signal = check_scores(signal, "signal")
    n_thresholds = check_positive_int(n_thresholds, "n_thresholds")
    if signal.size == 0:
        raise ValueError("signal is empty; candidate thresholds need at least one row.")
    return _grid(signal, n_thresholds)


# --------------------------------------------------------------------------------------
# the two stages of the calibration
# --------------------------------------------------------------------------------------
def _auroc_risks(bins, n_grid, y, p, d) -> np.ndarray:
    """1 - AUROC of the cascade of every threshold, without a sort per threshold.

    Each row has two candidate scores, ``p`` (kept) and ``d`` (delegated); at the
    threshold of index ``j`` exactly one is *active*: ``d`` when the row is
    delegated (``bins >= n_grid - j``), else ``p``. All 2n candidates are sorted
    once; the Mann-Whitney statistic of threshold ``j`` is then, over the active
    positive candidates, the number of active negative candidates below their tie
    group plus half of those inside it -- a cumulative count along the sorted
    order, O(n) per threshold (blocks of thresholds at a time).
    """
    n = y.shape[0]
    n1 = int(y.sum())
    n0 = n - n1
    if n1 == 0 or n0 == 0:
        warnings.warn(
            "The optimisation split holds a single class, so AUROC is undefined; "
            "every threshold gets performance risk 0.5 (chance). The Pareto filter "
            "then keeps only the thresholds that delegate nothing on that split, so "
            "the cascade will not delegate. Use more calibration data or "
            "performance_risk='accuracy'.",
            UserWarning,
            stacklevel=4,
        )
        return np.full(n_grid, 0.5)
    values = np.concatenate([p, d])
    order = np.argsort(values, kind="stable")
    v = values[order]
    entry_bin = np.concatenate([bins, bins])[order]
    entry_is_d = order >= n
    entry_pos = np.concatenate([y, y])[order]
    new_group = np.empty(2 * n, dtype=bool)
    new_group[0] = True
    new_group[1:] = v[1:] != v[:-1]
    starts = np.flatnonzero(new_group)
    ends = np.append(starts[1:], 2 * n)
    group = np.cumsum(new_group) - 1
    pos = np.flatnonzero(entry_pos)  # the positive candidates
    lo_pos, hi_pos = starts[group[pos]], ends[group[pos]]
    neg = ~entry_pos
    cut = n_grid - np.arange(n_grid)  # delegated at threshold j iff bin >= cut[j]
    risks = np.empty(n_grid)
    block = max(1, _MATRIX_BLOCK // (2 * n))
    for lo in range(0, n_grid, block):  # blocks of thresholds
        c = cut[lo : lo + block, None]
        active = np.where(entry_is_d, entry_bin >= c, entry_bin < c)
        below = np.zeros((c.shape[0], 2 * n + 1), dtype=np.int64)
        np.cumsum(active & neg, axis=1, out=below[:, 1:])
        # twice the contribution of each positive candidate, zero when inactive
        twice = (below[:, lo_pos] + below[:, hi_pos]) * active[:, pos]
        auc = 0.5 * twice.sum(axis=1) / (n1 * n0)
        risks[lo : lo + block] = 1.0 - auc
    return risks


def _callable_risks(func, start, y_s, p_s, d_s) -> np.ndarray:
    n = y_s.shape[0]
    cols = np.arange(n)
    y_int = y_s.astype(int)
    out = np.empty(start.shape[0])
    for j, st in enumerate(start):  # a user function: one call per threshold
        scores = np.where(cols >= st, d_s, p_s)
        value = float(func(y_int, scores))
        if not np.isfinite(value):
            raise ValueError(
                f"performance_risk returned {value!r}; it must return a finite risk "
                "(lower is better, ideally in [0, 1])."
            )
        out[j] = value
    return out


@dataclass
class _OptStage:
    thresholds: np.ndarray
    budget: np.ndarray
    performance: np.ndarray
    tested: np.ndarray


def _bins(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Number of finite thresholds of ``grid`` strictly below each value.

    ``grid`` is +inf first, then strictly decreasing; ``searchsorted`` into this
    short grid costs O(n log m) and needs no sort of the data.
    """
    return np.searchsorted(grid[:0:-1], values, side="left")


def _sum_above(bins: np.ndarray, grid: np.ndarray, weights=None) -> np.ndarray:
    """For every threshold of ``grid``, the number (or the sum of ``weights``) of
    the values strictly above it, from their ``_bins``: a ``bincount`` and suffix
    sums.
    """
    m = grid.shape[0]
    hist = np.bincount(bins, weights=weights, minlength=m)
    suffix = np.cumsum(hist[::-1])[::-1]  # suffix[i] = hist[i:].sum()
    # value > i-th smallest finite threshold  <=>  bins >= i + 1
    above = np.zeros(m, dtype=suffix.dtype)
    above[1:] = suffix[1:][::-1]
    return above


def _opt_stage(
    sig,
    y,
    p,
    e,
    *,
    n_thresholds,
    performance_risk,
    pareto,
    combine,
    need_performance=True,
) -> _OptStage:
    """Grid, empirical risks and Pareto filter on the optimisation split."""
    n = sig.shape[0]
    grid = _grid(sig, n_thresholds)
    bins = _bins(sig, grid)
    k = _sum_above(bins, grid)
    budget = k / n
    d = e if combine == "replace" else 0.5 * (e + p)
    if not need_performance:
        perf = np.full(grid.shape[0], np.nan)
    elif performance_risk == "accuracy":
        correct_p = (p >= 0.5) == y
        correct_d = (d >= 0.5) == y
        gain = correct_d.astype(np.int64) - correct_p
        # gains are small integers: the float sums are exact
        n_correct = int(correct_p.sum()) + np.rint(_sum_above(bins, grid, gain))
        perf = (n - n_correct) / n
    elif performance_risk == "auroc":
        perf = _auroc_risks(bins, grid.shape[0], y, p, d)
    else:
        order = np.argsort(sig, kind="stable")
        start = n - k  # rows order[start:] have signal > threshold
        perf = _callable_risks(performance_risk, start, y[order], p[order], d[order])
    if pareto:
        tested = pareto_efficient(np.column_stack([budget, perf]))
    else:
        tested = np.ones(grid.shape[0], dtype=bool)
    return _OptStage(grid, budget, perf, tested)


def _test_stage(test_signal, opt: _OptStage, alphas, delta, *, fwer, pareto):
    """Binomial tests on the test split for every budget at once.

    Returns k (per threshold), p-values and certified masks of shape
    (n_thresholds, n_alphas) (NaN / False off the tested set), and the index of the
    chosen threshold per budget (0, i.e. +inf, when nothing is certified).
    """
    n_test = test_signal.shape[0]
    grid = opt.thresholds
    k = _sum_above(_bins(test_signal, grid), grid)
    idx = np.flatnonzero(opt.tested)  # already ordered conservative -> aggressive
    pv_t = special.bdtr(k[idx, None].astype(float), n_test, alphas[None, :])
    if fwer == "fixed_sequence":
        cert_t = np.logical_and.accumulate(pv_t <= delta, axis=0)
    else:
        cert_t = pv_t <= delta / idx.size
    any_cert = cert_t.any(axis=0)
    if pareto:
        # lowest optimisation-split performance risk; argmin returns the first
        # minimum, i.e. the largest threshold among ties
        masked = np.where(cert_t, opt.performance[idx, None], np.inf)
        choice_t = np.argmin(masked, axis=0)
    else:
        # most aggressive certified = last certified in the descending order
        choice_t = idx.size - 1 - np.argmax(cert_t[::-1], axis=0)
    chosen = np.where(any_cert, idx[choice_t], 0)
    pvalues = np.full((grid.shape[0], alphas.shape[0]), np.nan)
    pvalues[idx] = pv_t
    certified = np.zeros((grid.shape[0], alphas.shape[0]), dtype=bool)
    certified[idx] = cert_t
    return k, pvalues, certified, chosen, any_cert


def _no_certification_message(n_test, alpha, delta, n_tested=1) -> str:
    level, rule = delta, "(1 - alpha)^n <= delta"
    if n_tested > 1:  # Bonferroni tests every hypothesis at delta / m
        level, rule = delta / n_tested, f"(1 - alpha)^n <= delta/{n_tested}"
    return (
        f"No threshold could be certified with n={n_test} test-split rows at "
        f"alpha={alpha:g} and delta={delta:g}, so the cascade never delegates "
        f"(threshold=+inf, probe only). Certifying even 'never delegate' needs at "
        f"least n={min_test_size(alpha, level)} test-split rows ({rule}); give "
        "more calibration data, or raise alpha or delta."
    )


# --------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False, eq=False)
class CalibrationResult:
    """Everything :func:`calibrate_threshold` computed.

    Arrays named ``*_opt`` / ``*_test`` and the masks are indexed like
    ``thresholds`` (the grid: ``+inf`` first, then decreasing), which is also the
    testing order.

    Attributes
    ----------
    threshold : float
        The chosen threshold ``lam*``; delegate when ``signal > threshold``.
        ``+inf`` (never delegate) when nothing was certified.
    selected_index : int
        Position of ``threshold`` in ``thresholds``.
    thresholds : ndarray of shape (m,)
        Candidate grid (quantiles of the signal on the optimisation split).
    certified : ndarray of bool, shape (m,)
        Thresholds whose null ``R_B > alpha`` was rejected.
    pvalues : ndarray of shape (m,)
        Binomial p-values on the test split; NaN for thresholds that were not
        tested (removed by the Pareto filter). Thresholds after the first failure
        of the fixed sequence keep their p-value but are not certified.
    budget_risk_opt, performance_risk_opt : ndarray of shape (m,)
        Empirical delegation rate and performance risk on the optimisation split.
    budget_risk_test : ndarray of shape (m,)
        Empirical delegation rate on the test split.
    pareto_mask : ndarray of bool, shape (m,)
        Thresholds kept by the Pareto filter (all True when ``pareto=False``).
    opt_indices, test_indices : ndarray of int
        Rows (positions in the arrays given) of the two splits, sorted.
    alpha, delta : float
        Budget and confidence parameter.
    n_opt, n_test : int
        Sizes of the two splits.
    pareto : bool
    fwer : str
    performance_risk : str
        Name of the performance risk (the function's name for a callable).
    """

    threshold: float
    selected_index: int
    thresholds: np.ndarray
    certified: np.ndarray
    pvalues: np.ndarray
    budget_risk_opt: np.ndarray
    performance_risk_opt: np.ndarray
    budget_risk_test: np.ndarray
    pareto_mask: np.ndarray
    opt_indices: np.ndarray
    test_indices: np.ndarray
    alpha: float
    delta: float
    n_opt: int
    n_test: int
    pareto: bool = True
    fwer: str = "fixed_sequence"
    performance_risk: str = "accuracy"

    @property
    def n_certified(self) -> int:
        """Number of certified thresholds."""
        return int(self.certified.sum())

    @property
    def delegates(self) -> bool:
        """Whether the chosen threshold delegates anything (it is finite)."""
        return bool(np.isfinite(self.threshold))

    def __repr__(self) -> str:
        i = self.selected_index
        return (
            f"CalibrationResult(threshold={self.threshold:.6g}, alpha={self.alpha:g}, "
            f"delta={self.delta:g}, n_test={self.n_test}, "
            f"certified={self.n_certified}/{self.thresholds.size}, "
            f"pareto_front={int(self.pareto_mask.sum())}, "
            f"budget_opt={self.budget_risk_opt[i]:.4f}, "
            f"budget_test={self.budget_risk_test[i]:.4f}, "
            f"{self.performance_risk}_risk_opt={self.performance_risk_opt[i]:.4f})"
        )

    def summary(self) -> str:
        """A few lines describing the calibration, for logs and reports."""
        i = self.selected_index
        method = "Pareto-filtered LTT" if self.pareto else "budget-only LTT"
        lines = [
            f"{method} ({self.fwer}), alpha={self.alpha:g}, delta={self.delta:g}",
            f"  splits: n_opt={self.n_opt}, n_test={self.n_test}",
            f"  grid: {self.thresholds.size} thresholds, "
            f"{int(self.pareto_mask.sum())} tested, {self.n_certified} certified",
            f"  chosen threshold: {self.threshold:.6g} "
            f"(delegation rate opt={self.budget_risk_opt[i]:.4f}, "
            f"test={self.budget_risk_test[i]:.4f}; "
            f"{self.performance_risk} risk opt={self.performance_risk_opt[i]:.4f})",
        ]
        return "\n".join(lines)


@dataclass(frozen=True, repr=False, eq=False)
class BudgetSweepResult:
    """Thresholds calibrated by :func:`calibrate_budget_sweep`.

    Attributes
    ----------
    thresholds : ndarray of shape (n_splits, n_alphas)
        Chosen threshold per split and budget (``+inf`` when nothing certified).
    alphas : ndarray of shape (n_alphas,)
    delta : float
    n_certified : ndarray of int, shape (n_splits, n_alphas)
        Number of certified thresholds.
    n_test : ndarray of int, shape (n_splits,)
        Test-split size of each split.
    budget_risk_opt, performance_risk_opt : ndarray of shape (n_splits, n_alphas)
        Optimisation-split risks of the chosen thresholds (performance is NaN
        with ``pareto=False``, where it plays no role and is not computed).
    opt_indices, test_indices : list of ndarray
        The splits used (positions in the arrays given).
    details : list of CalibrationResult or None
        Per split, the result at the first budget, when ``return_details=True``
        (the grid, Pareto mask and risks do not depend on the budget).
    """

    thresholds: np.ndarray
    alphas: np.ndarray
    delta: float
    n_certified: np.ndarray
    n_test: np.ndarray
    budget_risk_opt: np.ndarray
    performance_risk_opt: np.ndarray
    opt_indices: list = field(default_factory=list)
    test_indices: list = field(default_factory=list)
    details: list | None = None

    def delegation_rate(
        self, signal: Any, indices: Sequence[Any] | None = None
    ) -> np.ndarray:
        """Share of rows each chosen threshold delegates.

        Parameters
        ----------
        signal : array-like of shape (n,)
            Delegation signal of the evaluation rows.
        indices : sequence of n_splits index arrays, optional
            Rows of ``signal`` to evaluate split ``i`` on (e.g. the evaluation part
            of the i-th calibration/evaluation split). Default: all rows, for every
            split.

        Returns
        -------
        rates : ndarray of shape (n_splits, n_alphas)
        """
        signal = check_scores(signal, "signal")
        n_splits = self.thresholds.shape[0]
        if indices is not None and len(indices) != n_splits:
            raise ValueError(
                f"indices has {len(indices)} entries but there are {n_splits} splits."
            )
        sorted_all = np.sort(signal) if indices is None else None
        rates = np.empty(self.thresholds.shape)
        for i in range(n_splits):  # one searchsorted per split
            s = sorted_all if indices is None else np.sort(signal[indices[i]])
            rates[i] = (s.size - np.searchsorted(s, self.thresholds[i], "right")) / max(
                s.size, 1
            )
        return rates

    def __repr__(self) -> str:
        n_splits, n_alphas = self.thresholds.shape
        none = int((self.n_certified == 0).sum())
        return (
            f"BudgetSweepResult(n_splits={n_splits}, n_alphas={n_alphas}, "
            f"delta={self.delta:g}, uncertified={none})"
        )


# --------------------------------------------------------------------------------------
# public entry points
# --------------------------------------------------------------------------------------
def _risk_name(performance_risk) -> str:
    if callable(performance_risk):
        return getattr(performance_risk, "__name__", type(performance_risk).__name__)
    return str(performance_risk)


def calibrate_threshold(
    signal: Any,
    y: Any,
    probe_scores: Any,
    expert_scores: Any,
    *,
    alpha: float,
    delta: float,
    n_thresholds: int = 100,
    performance_risk: str | Callable[[np.ndarray, np.ndarray], float] = "accuracy",
    pareto: bool = True,
    fwer: str = "fixed_sequence",
    opt_fraction: float = 0.3,
    combine: str = "replace",
    random_state: Any = None,
) -> CalibrationResult:
    """Calibrate a delegation threshold by (Pareto-filtered) Learn-then-Test.

    1. Split the rows at random into an optimisation part ``D_opt``
       (``opt_fraction``) and a testing part ``D_test``.
    2. Candidate thresholds: ``+inf`` and quantiles of the signal on ``D_opt`` only
       (:func:`candidate_thresholds`), so the hypotheses and their order are fixed
       before ``D_test`` is looked at.
    3. On ``D_opt``, for every threshold ``lam``: the delegation rate ``R_B`` and the
       performance risk ``R_P`` of the cascade score ``s = expert if signal > lam
       else probe``.
    4. Keep the Pareto-efficient thresholds in ``(R_B, R_P)`` (all of them with
       ``pareto=False``), ordered from conservative (large ``lam``) to aggressive.
    5. On ``D_test`` (``n`` rows): binomial p-value ``P(Bin(n, alpha) <= k(lam))``
       with ``k(lam) = #{signal > lam}``, then fixed-sequence testing at ``delta``
       (or Bonferroni).
    6. ``lam*`` = the certified threshold with the lowest ``R_P`` on ``D_opt`` (ties:
       the larger threshold); with ``pareto=False`` (the paper's budget-only LTT)
       the most aggressive certified threshold. Nothing certified: ``+inf`` and a
       ``UserWarning``.

    Guarantee: ``P(R_B(lam*) <= alpha) >= 1 - delta`` over the draw of the
    calibration rows, when they are exchangeable with future inputs.

    Parameters
    ----------
    signal : array-like of shape (n,)
        Delegation signal of the calibration rows (higher = delegate first);
        finite values (NaN or inf raise ``ValueError``).
    y : array-like of shape (n,)
        Labels encoded as 0/1 (1 = positive / unsafe class).
    probe_scores, expert_scores : array-like of shape (n,)
        ``P(y = 1 | x)`` of the probe and of the expert, in [0, 1].
    alpha : float
        Budget: the largest acceptable expected delegation rate, in (0, 1).
    delta : float
        Allowed probability of exceeding the budget, in (0, 1).
    n_thresholds : int, default=100
        Number of quantile levels of the grid (``+inf`` comes on top).
    performance_risk : {"accuracy", "auroc"} or callable, default="accuracy"
        ``"accuracy"``: 1 - accuracy of ``s`` at 0.5 (predict 1 when ``s >= 0.5``).
        ``"auroc"``: 1 - AUROC of ``s``; if ``D_opt`` holds a single class, AUROC is
        undefined, every threshold gets risk 0.5 and a warning is raised (the
        Pareto filter then keeps only thresholds that delegate nothing on
        ``D_opt``). A callable ``f(y, scores) -> float`` (lower is better) is called
        once per threshold.
    pareto : bool, default=True
        Pareto-filter the thresholds before testing and choose by performance.
        ``False``: test all thresholds, choose the most aggressive certified.
    fwer : {"fixed_sequence", "bonferroni"}, default="fixed_sequence"
        Family-wise error control over the tested thresholds.
    opt_fraction : float, default=0.3
        Share of the rows in ``D_opt``, in (0, 1).
    combine : {"replace", "average"}, default="replace"
        Score of delegated rows: the expert's, or the mean of expert and probe.
    random_state : int, RandomState instance or None, default=None
        Controls the optimisation/testing split.

    Returns
    -------
    result : CalibrationResult

    See Also
    --------
    calibrate_budget_sweep : Many budgets and splits at once.
    skctd.CalibratedDelegationCascade : The estimator that calls this function.

    References
    ----------
    Angelopoulos, Bates, Candès, Jordan, Lei (2022). Learn then Test: Calibrating
    predictive algorithms to achieve risk control. Laufer-Goldshtein, Fisch,
    Barzilay, Jaakkola (2023). Efficiently controlling multiple risks with Pareto
    testing.

    Examples
    --------
    >>> import numpy as np
    >>> from skctd import calibrate_threshold
    >>> rng = np.random.default_rng(0)
    >>> n = 2000
    >>> y = rng.integers(0, 2, n)
    >>> signal = rng.uniform(size=n)
    >>> probe = np.clip(y + rng.normal(0, 0.6, n), 0, 1)  # noisy probe
    >>> expert = np.where(rng.uniform(size=n) < 0.95, y, 1 - y).astype(float)
    >>> res = calibrate_threshold(signal, y, probe, expert, alpha=0.2, delta=0.1,
    ...                           random_state=0)
    >>> bool(0.75 < res.threshold < 0.9)
    True
    >>> bool(res.certified[res.selected_index])
    True
    """
    alpha = check_fraction(alpha, "alpha")
    delta = check_fraction(delta, "delta")
    n_thresholds, opt_fraction = _check_options(
        n_thresholds, performance_risk, fwer, combine, opt_fraction
    )
    signal, y, p, e = _check_inputs(signal, y, probe_scores, expert_scores)
    n = signal.shape[0]
    n_opt = _n_opt_rows(n, opt_fraction)
    opt_idx, test_idx = _random_split(n, n_opt, check_random_state(random_state))

    opt = _opt_stage(
        signal[opt_idx],
        y[opt_idx],
        p[opt_idx],
        e[opt_idx],
        n_thresholds=n_thresholds,
        performance_risk=performance_risk,
        pareto=bool(pareto),
        combine=combine,
    )
    k, pvalues, certified, chosen, any_cert = _test_stage(
        signal[test_idx], opt, np.array([alpha]), delta, fwer=fwer, pareto=bool(pareto)
    )
    n_test = test_idx.size
    if not any_cert[0]:
        warnings.warn(
            _no_certification_message(
                n_test,
                alpha,
                delta,
                int(opt.tested.sum()) if fwer == "bonferroni" else 1,
            ),
            UserWarning,
            stacklevel=2,
        )
    i = int(chosen[0])
    return CalibrationResult(
        threshold=float(opt.thresholds[i]),
        selected_index=i,
        thresholds=opt.thresholds,
        certified=certified[:, 0],
        pvalues=pvalues[:, 0],
        budget_risk_opt=opt.budget,
        performance_risk_opt=opt.performance,
        budget_risk_test=k / n_test,
        pareto_mask=opt.tested,
        opt_indices=opt_idx,
        test_indices=test_idx,
        alpha=alpha,
        delta=delta,
        n_opt=int(n_opt),
        n_test=int(n_test),
        pareto=bool(pareto),
        fwer=fwer,
        performance_risk=_risk_name(performance_risk),
    )


def _check_splits(splits, n) -> tuple[list, list]:
    opts, tests = [], []
    for i, pair in enumerate(splits):
        try:
            o, t = pair
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"splits[{i}] must be a pair (opt_indices, test_indices)."
            ) from exc
        o = np.asarray(o)
        t = np.asarray(t)
        for name, ix in (("opt", o), ("test", t)):
            if ix.ndim != 1 or ix.size == 0 or not np.issubdtype(ix.dtype, np.integer):
                raise ValueError(
                    f"splits[{i}] {name} indices must be a non-empty 1-D integer array."
                )
            if ix.min() < 0 or ix.max() >= n:
                raise ValueError(
                    f"splits[{i}] {name} indices must lie in [0, {n}), the rows of "
                    "the arrays given."
                )
        if np.intersect1d(o, t).size:
            raise ValueError(
                f"splits[{i}]: the optimisation and testing indices overlap; they must "
                "be disjoint or the guarantee is lost."
            )
        opts.append(o)
        tests.append(t)
    if not opts:
        raise ValueError("splits is empty.")
    return opts, tests


def calibrate_budget_sweep(
    signal: Any,
    y: Any,
    probe_scores: Any,
    expert_scores: Any,
    *,
    alphas: Any,
    delta: float,
    n_splits: int = 1,
    splits: Iterable[tuple[Any, Any]] | None = None,
    n_thresholds: int = 100,
    performance_risk: str | Callable[[np.ndarray, np.ndarray], float] = "accuracy",
    pareto: bool = True,
    fwer: str = "fixed_sequence",
    opt_fraction: float = 0.3,
    combine: str = "replace",
    random_state: Any = None,
    return_details: bool = False,
) -> BudgetSweepResult:
    """Run :func:`calibrate_threshold` for many budgets and many splits at once.

    The grid, the optimisation-split risks and the Pareto filter depend only on the
    optimisation split, not on the budget, so they are computed once per split;
    the binomial tests and the fixed sequence for all budgets are then one
    broadcast over ``(thresholds, alphas)``. For split ``i`` and budget ``alphas[j]``
    the result equals ``calibrate_threshold(...)`` on the same split.

    Two ways to give the splits:

    - ``splits=None``: ``n_splits`` random optimisation/testing splits of all the
      rows (``opt_fraction``, ``random_state``), as ``calibrate_threshold`` draws them.
    - ``splits=[(opt_idx, test_idx), ...]``: precomputed index pairs into the arrays
      given. This is how to run the evaluation protocol of the paper in one call:
      pass the whole test pool, and for each of the 500 calibration/evaluation
      splits the optimisation/testing split *of its calibration part*. The
      evaluation part never enters, and :meth:`BudgetSweepResult.delegation_rate`
      measures the realised rates on it.

    Parameters
    ----------
    signal, y, probe_scores, expert_scores : array-like of shape (n,)
        As in :func:`calibrate_threshold`.
    alphas : array-like of float
        Budgets, each in (0, 1).
    delta : float
        Confidence parameter in (0, 1).
    n_splits : int, default=1
        Number of random splits when ``splits`` is None (must stay 1 or equal
        ``len(splits)`` otherwise).
    splits : iterable of (opt_indices, test_indices), optional
        Precomputed disjoint index pairs (overrides ``opt_fraction``).
    n_thresholds, performance_risk, pareto, fwer, opt_fraction, combine
        As in :func:`calibrate_threshold`.
    random_state : int, RandomState instance or None, default=None
        Controls the random splits (unused with ``splits``).
    return_details : bool, default=False
        Also return, per split, the full :class:`CalibrationResult` at ``alphas[0]``.

    Returns
    -------
    result : BudgetSweepResult
        ``result.thresholds[i, j]`` is the threshold of split ``i`` at
        ``alphas[j]``.

    Warns
    -----
    UserWarning
        Once, summarising the (split, budget) pairs where nothing was certified.

    Examples
    --------
    The paper's protocol: 20 budgets x 50 calibration/evaluation splits of a pool.

    >>> import numpy as np
    >>> from skctd import calibrate_budget_sweep
    >>> rng = np.random.default_rng(0)
    >>> n = 3000
    >>> y = rng.integers(0, 2, n)
    >>> signal = rng.uniform(size=n)
    >>> probe = np.clip(y + rng.normal(0, 0.6, n), 0, 1)
    >>> expert = np.where(rng.uniform(size=n) < 0.95, y, 1 - y).astype(float)
    >>> splits, evals = [], []
    >>> for _ in range(50):
    ...     perm = rng.permutation(n)
    ...     cal, ev = perm[: n // 2], perm[n // 2 :]
    ...     splits.append((cal[:450], cal[450:]))  # 30% opt / 70% test of cal
    ...     evals.append(ev)
    >>> alphas = np.linspace(0.05, 0.95, 20)
    >>> res = calibrate_budget_sweep(signal, y, probe, expert, alphas=alphas,
    ...                              delta=0.1, splits=splits)
    >>> res.thresholds.shape
    (50, 20)
    >>> rates = res.delegation_rate(signal, evals)
    >>> bool(np.mean(rates > alphas) < 0.1)
    True
    """
    alphas = check_budgets(alphas)
    delta = check_fraction(delta, "delta")
    n_thresholds, opt_fraction = _check_options(
        n_thresholds, performance_risk, fwer, combine, opt_fraction
    )
    signal, y, p, e = _check_inputs(signal, y, probe_scores, expert_scores)
    n = signal.shape[0]
    if splits is None:
        n_splits = check_positive_int(n_splits, "n_splits")
        n_opt = _n_opt_rows(n, opt_fraction)
        rng = check_random_state(random_state)
        opts, tests = [], []
        for _ in range(n_splits):
            o, t = _random_split(n, n_opt, rng)
            opts.append(o)
            tests.append(t)
    else:
        opts, tests = _check_splits(splits, n)
        if n_splits not in (1, len(opts)):
            raise ValueError(
                f"n_splits={n_splits} conflicts with the {len(opts)} splits given; "
                "leave n_splits at its default when passing splits."
            )
        n_splits = len(opts)

    pareto = bool(pareto)
    n_alphas = alphas.shape[0]
    thresholds = np.empty((n_splits, n_alphas))
    n_certified = np.empty((n_splits, n_alphas), dtype=np.int64)
    n_test = np.empty(n_splits, dtype=np.int64)
    budget_opt = np.empty((n_splits, n_alphas))
    perf_opt = np.empty((n_splits, n_alphas))
    details = [] if return_details else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(n_splits):  # one vectorised calibration per split
            o, t = opts[i], tests[i]
            opt = _opt_stage(
                signal[o],
                y[o],
                p[o],
                e[o],
                n_thresholds=n_thresholds,
                performance_risk=performance_risk,
                pareto=pareto,
                combine=combine,
                need_performance=pareto or return_details,
            )
            k, pvalues, certified, chosen, _ = _test_stage(
                signal[t], opt, alphas, delta, fwer=fwer, pareto=pareto
            )
            thresholds[i] = opt.thresholds[chosen]
            n_certified[i] = certified.sum(axis=0)
            n_test[i] = t.size
            budget_opt[i] = opt.budget[chosen]
            perf_opt[i] = opt.performance[chosen]
            if return_details:
                details.append(
                    CalibrationResult(
                        threshold=float(opt.thresholds[chosen[0]]),
                        selected_index=int(chosen[0]),
                        thresholds=opt.thresholds,
                        certified=certified[:, 0],
                        pvalues=pvalues[:, 0],
                        budget_risk_opt=opt.budget,
                        performance_risk_opt=opt.performance,
                        budget_risk_test=k / t.size,
                        pareto_mask=opt.tested,
                        opt_indices=o,
                        test_indices=t,
                        alpha=float(alphas[0]),
                        delta=delta,
                        n_opt=int(o.size),
                        n_test=int(t.size),
                        pareto=pareto,
                        fwer=fwer,
                        performance_risk=_risk_name(performance_risk),
                    )
                )
    # re-issue distinct warnings once (e.g. the single-class AUROC warning)
    for msg in dict.fromkeys(str(w.message) for w in caught):
        warnings.warn(msg, UserWarning, stacklevel=2)
    none = n_certified == 0
    if none.any():
        bad_alpha = alphas[none.any(axis=0)]
        worst = int(n_test.min())
        warnings.warn(
            f"Nothing was certified for {int(none.sum())} of {none.size} "
            f"(split, budget) pairs, which then never delegate (threshold=+inf). "
            f"Affected budgets: {np.round(bad_alpha, 4).tolist()}; delta={delta:g}; "
            f"smallest test split n={worst}. "
            + _no_certification_message(worst, float(bad_alpha.min()), delta),
            UserWarning,
            stacklevel=2,
        )
    return BudgetSweepResult(
        thresholds=thresholds,
        alphas=alphas,
        delta=delta,
        n_certified=n_certified,
        n_test=n_test,
        budget_risk_opt=budget_opt,
        performance_risk_opt=perf_opt,
        opt_indices=opts,
        test_indices=tests,
        details=details,
    )

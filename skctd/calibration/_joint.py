"""The test stage of (multi-risk) Learn-then-Test for one optimisation/testing split.

Every candidate threshold ``lam`` carries a vector of risks: the budget (one per
``alpha`` of a sweep) and the constraints (``_constraints.py``). Its null is
"some risk exceeds its level" and its p-value the largest of its risks' p-values
(valid for the union null). The hypotheses are ordered on the optimisation split
only (so the order is fixed before the test split is read), then tested on the
test split by fixed-sequence testing (or Bonferroni). Everything is vectorised
over thresholds and budgets: per-threshold sums are suffix sums over the
threshold bins; the betting p-value is cumulative sums along the rows of a
(rows x thresholds) loss matrix, in blocks.

Testing orders (``testing_order``):

- ``"lambda"``: the tested thresholds from conservative (large ``lam``) to
  aggressive -- the paper's order, exact for the budget alone, whose risk is
  monotone in ``lam``.
- ``"pvalue"``: Pareto Testing (Laufer-Goldshtein et al., 2023): ascending
  p-values *estimated on the optimisation split* as if it had the test split's
  size, ``+inf`` first when every constraint surely holds there. Needed for risks
  that are not monotone in ``lam`` (harm): the conservative end delegates a
  handful of rows, where a no-harm null has no power, and a walk in ``lam`` order
  stops there.
- ``"single"``: one candidate -- the best optimisation-split performance among the
  thresholds whose estimated p-value is at most ``delta`` -- after ``+inf``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from skctd.calibration._constraints import (
    PreparedRisk,
    threshold_counts,
    threshold_sums,
)
from skctd.calibration._fwer import bonferroni_test, fixed_sequence_test
from skctd.calibration._grid import count_above
from skctd.calibration._pareto import pareto_efficient
from skctd.calibration._pvalues import (
    betting_pvalues,
    binomial_pvalues,
    hoeffding_bentkus_pvalues,
    sign_test_pvalues,
)

__all__ = [
    "SELECTIONS",
    "SplitOutcome",
    "TESTING_ORDERS",
    "binom_cdf_real",
    "run_split",
]

TESTING_ORDERS = ("auto", "lambda", "pvalue", "single")
SELECTIONS = ("best", "one_se")
# Elements (rows x thresholds) of the betting loss matrices built at once.
_MATRIX_BLOCK = 2_000_000
# Test-split sizes searched for the "rows needed" estimate.
_N_GRID = np.unique(np.rint(np.geomspace(1, 1e8, 80)))


def binom_cdf_real(k, n, p) -> np.ndarray:
    """``P(Binomial(n, p) <= k)`` continued to real ``k`` and ``n`` (regularised
    incomplete beta ``I_{1-p}(n - k, k + 1)``); 1 for ``k >= n``, 0 for ``k < 0``.
    Used for p-values *estimated* from the optimisation split, not for tests."""
    k, n, p = np.broadcast_arrays(
        np.asarray(k, float), np.asarray(n, float), np.asarray(p, float)
    )
    out = np.ones(k.shape)
    inside = (k < n) & (n > 0)
    with np.errstate(invalid="ignore"):
        val = special.betainc(
            np.where(inside, n - k, 1.0),
            np.where(inside, np.maximum(k, 0.0) + 1.0, 1.0),
            1.0 - p,
        )
    out = np.where(inside, val, out)
    return np.where(k < 0, 0.0, out)


@dataclass
class _RiskStats:
    """One risk on one split: optimisation-split estimates and test p-values."""

    name: str
    method: str
    level: float  # on the loss scale
    certain_at_inf: bool
    r_opt: np.ndarray  # (m,) loss-scale empirical risk on D_opt (NaN: no rows)
    var_opt: np.ndarray  # (m,) per-row variance of the loss on D_opt
    worse_opt: np.ndarray | None  # (m,) share of loss-1 rows (sign test)
    better_opt: np.ndarray | None
    share: float  # share of rows the risk counts (active), estimated on D_opt
    r_test: np.ndarray  # (m,) loss-scale empirical risk on D_test
    n_test: int  # rows it counts on D_test
    user_opt: np.ndarray  # (m,) in the units of the level
    user_test: np.ndarray
    c_max: float = math.nan
    n_capped: int = 0
    pvalues: np.ndarray | None = None  # (m,) on D_test, NaN off the tested set


@dataclass
class SplitOutcome:
    """What the test stage of one split computed (arrays over the grid, and per
    budget where the budget enters)."""

    k_test: np.ndarray  # (m,) rows of D_test above each threshold
    pvalues: np.ndarray  # (m, b) combined p-values, NaN off the tested set
    certified: np.ndarray  # (m, b)
    chosen: np.ndarray  # (b,) grid index
    tested: np.ndarray  # (m,) bool: the Pareto front (or all)
    order: np.ndarray  # (k, b) grid indices in testing order
    order_length: np.ndarray  # (b,) hypotheses in each column's sequence
    budget_pvalues: np.ndarray  # (m, b)
    stats: list = field(default_factory=list)  # list of _RiskStats
    blocked_index: np.ndarray | None = None  # (b,) grid index, -1 if none
    blocked_by: list | None = None  # per budget: tuple of risk names
    rows_needed: np.ndarray | None = None  # (b,) test rows, NaN if not estimated
    rows_needed_index: np.ndarray | None = None  # (b,) grid index of the estimate


def _edge_pvalues(level: float, size) -> np.ndarray | None:
    """P-values at a trivial level: >= 1 always holds, <= 0 never is shown."""
    if level >= 1:
        return np.zeros(size)
    if level <= 0:
        return np.ones(size)
    return None


def _risk_stats(
    pr: PreparedRisk, grid, bins_o, bins_t, opt_rows, test_rows, perm, delta
) -> tuple[_RiskStats, tuple]:
    """Optimisation-split estimates of one risk, and its test rows (kept and
    delegated losses, bins, random order) for :func:`_test_pvalues`."""
    keep, dele, level, c_max = pr.split(opt_rows)
    ko, do, kt, dt = keep[opt_rows], dele[opt_rows], keep[test_rows], dele[test_rows]
    bo, bt = bins_o, bins_t
    perm_t = perm
    share = 1.0
    if pr.active is not None:
        ao, at = pr.active[opt_rows], pr.active[test_rows]
        ko, do, bo = ko[ao], do[ao], bo[ao]
        kt, dt, bt = kt[at], dt[at], bt[at]
        share = float(ao.mean()) if ao.size else 0.0
        if perm is not None:  # the random order restricted to the active rows
            rank = np.full(at.size, -1)
            rank[np.flatnonzero(at)] = np.arange(int(at.sum()))
            perm_t = rank[perm[at[perm]]]
    n_o, n_t = ko.size, kt.size
    m = grid.size
    nan = np.full(m, np.nan)
    if n_o:
        s1 = threshold_sums(bo, grid, ko, do)
        s2 = threshold_sums(bo, grid, ko, do, power=2)
        r_opt = s1 / n_o
        var_opt = np.maximum(s2 / n_o - r_opt**2, 0.0)
    else:
        r_opt, var_opt = nan.copy(), nan.copy()
    worse = better = None
    if pr.method == "sign" and n_o:
        worse = threshold_counts(bo, grid, ko, do, 1.0) / n_o
        better = threshold_counts(bo, grid, ko, do, 0.0) / n_o
    r_test = threshold_sums(bt, grid, kt, dt) / n_t if n_t else nan.copy()
    mean_c_o = mean_c_t = math.nan
    n_capped = 0
    if pr.cost is not None:
        c_o, c_t = pr.cost[opt_rows], pr.cost[test_rows]
        # mean normalised cost min(c, c_max) / c_max of each split
        mean_c_o = float(np.minimum(c_o, c_max).mean()) / c_max if c_o.size else np.nan
        mean_c_t = float(np.minimum(c_t, c_max).mean()) / c_max if c_t.size else np.nan
        n_capped = int(np.sum(c_t > c_max))
    return _RiskStats(
        name=pr.name,
        method=pr.method,
        level=level,
        certain_at_inf=pr.risk.holds_at_inf,
        r_opt=r_opt,
        var_opt=var_opt,
        worse_opt=worse,
        better_opt=better,
        share=share,
        r_test=r_test,
        n_test=n_t,
        user_opt=pr.to_user_units(r_opt, c_max, mean_c_o),
        user_test=pr.to_user_units(r_test, c_max, mean_c_t),
        c_max=c_max,
        n_capped=n_capped,
        pvalues=None,
    ), (kt, dt, bt, perm_t)


def _test_pvalues(st: _RiskStats, grid, idx, test_data, delta) -> np.ndarray:
    """P-values of one risk on the test split at the grid indices ``idx``."""
    kt, dt, bt, perm = test_data
    m = grid.size
    k = idx.size
    n = st.n_test
    edge = _edge_pvalues(st.level, k)
    if n == 0:
        p = np.ones(k)
    elif edge is not None:
        p = edge
    elif st.method == "binomial":
        counts = np.rint(st.r_test[idx] * n)
        p = binomial_pvalues(counts.astype(np.int64), n, st.level)
    elif st.method == "hb":
        p = hoeffding_bentkus_pvalues(np.clip(st.r_test[idx], 0.0, 1.0), n, st.level)
    elif st.method == "sign":
        worse = threshold_counts(bt, grid, kt, dt, 1.0)[idx]
        better = threshold_counts(bt, grid, kt, dt, 0.0)[idx]
        p = sign_test_pvalues(worse, better)
    else:  # "wsr": rows in the split's random order, blocks of thresholds
        order = perm if perm is not None else np.arange(n)
        b_o, k_o, d_o = bt[order], kt[order], dt[order]
        cut = m - idx  # delegated at grid index j iff bin >= m - j
        p = np.empty(k)
        block = max(1, _MATRIX_BLOCK // max(n, 1))
        for lo in range(0, k, block):  # blocks of thresholds, not one at a time
            c = cut[lo : lo + block]
            losses = np.where(b_o[:, None] >= c[None, :], d_o[:, None], k_o[:, None])
            p[lo : lo + block] = betting_pvalues(losses, st.level, delta)
    p = np.asarray(p, dtype=float)
    if st.certain_at_inf and idx.size and idx[0] == 0:
        p = p.copy()
        p[0] = 0.0  # never delegating surely meets this risk: no test needed
    return p


def _estimated_pvalues(st: _RiskStats, idx, n_test, delta, n=None) -> np.ndarray:
    """P-values estimated from the optimisation split as if the test split had
    ``n`` rows (default: its real size). ``n`` may be an array of shape (N, 1):
    the result is then (N, len(idx))."""
    n_all = float(n_test) if n is None else np.asarray(n, dtype=float)
    n_eff = n_all * st.share
    r = st.r_opt[idx]
    level = st.level
    edge = _edge_pvalues(level, np.broadcast(n_eff, r).shape)
    if edge is not None:
        out = edge
    elif np.all(np.isnan(r)):  # no row of this risk on D_opt: no information
        out = np.ones(np.broadcast(n_eff, r).shape)
    elif st.method == "binomial":
        out = binom_cdf_real(r * n_eff, n_eff, level)
    elif st.method == "hb":
        rr = np.broadcast_to(
            np.clip(np.nan_to_num(r, nan=1.0), 0, 1), np.broadcast(n_eff, r).shape
        )
        nn = np.broadcast_to(np.maximum(np.rint(n_eff), 1), rr.shape)
        out = np.empty(rr.shape)
        flat_r, flat_n, flat_o = rr.reshape(-1), nn.reshape(-1), out.reshape(-1)
        for value in np.unique(flat_n):  # one call per distinct size (a few)
            sel = flat_n == value
            flat_o[sel] = hoeffding_bentkus_pvalues(flat_r[sel], int(value), level)
        out = flat_o.reshape(rr.shape)
    elif st.method == "sign":
        a = st.worse_opt[idx] * n_eff
        b = st.better_opt[idx] * n_eff
        out = binom_cdf_real(a, a + b, 0.5)
    else:  # "wsr": log-wealth of a constant bet at its plug-in size, per row
        var = np.maximum(st.var_opt[idx], 1e-12)
        nu = np.minimum(1.0, np.sqrt(2.0 * math.log(1.0 / delta) / (n_eff * var)))
        gap = level - r
        growth = nu * gap - 0.5 * nu**2 * (var + gap**2)
        out = np.exp(-np.maximum(n_eff * growth, 0.0))
    out = np.where(np.isnan(out), 1.0, out)
    if st.certain_at_inf and idx.size and idx[0] == 0:
        out = np.array(out, dtype=float, copy=True)
        out[..., 0] = 0.0
    return out


def _first_below(pfun, delta) -> tuple[float, int]:
    """Smallest size n with ``pfun(n)[c] <= delta`` over the columns c, and that c.

    ``pfun`` maps an (N, 1) array of sizes to (N, c) estimated p-values (or a
    (1, c) array of per-column sizes to (1, c)). A coarse geometric grid finds each
    column's first size; the best column is then refined by bisection.
    """
    ngrid = _N_GRID[:, None]
    ok = pfun(ngrid) <= delta  # (N, c)
    found = ok.any(axis=0)
    if not found.any():
        return math.inf, -1
    first = np.where(found, np.argmax(ok, axis=0), ok.shape[0])
    c = int(np.argmin(first))
    hi = float(_N_GRID[first[c]])
    lo = float(_N_GRID[first[c] - 1]) if first[c] > 0 else 0.0
    width = ok.shape[1]
    while hi - lo > 1:  # bisection on integers, for the best column only
        mid = math.floor((lo + hi) / 2)
        sizes = np.full((1, width), float(max(mid, 1)))
        if pfun(sizes)[0, c] <= delta:
            hi = mid
        else:
            lo = mid
    return hi, c


def run_split(
    grid,
    bins_o,
    bins_t,
    budget_o,
    perf_o,
    prepared: list,
    opt_rows,
    test_rows,
    alphas,
    delta,
    *,
    pareto: bool,
    fwer: str,
    testing_order: str,
    selection: str,
    perf_change=None,
    perm=None,
    estimate_rows: bool = True,
) -> SplitOutcome:
    """Test every (threshold, budget) of one split; see the module docstring.

    ``perf_change``: per threshold, the count of optimisation rows whose
    correctness changes when delegated (for the one-standard-error rule).
    ``perm``: random order of the test rows (betting p-values).
    """
    m = grid.shape[0]
    n_t = test_rows.shape[0]
    b = alphas.shape[0]
    k_test = count_above(bins_t, grid)
    stats, test_data = [], []
    for pr in prepared:
        st, td = _risk_stats(pr, grid, bins_o, bins_t, opt_rows, test_rows, perm, delta)
        stats.append(st)
        test_data.append(td)

    # ---- the tested set: Pareto front of budget, performance and every risk
    if pareto:
        cols = [budget_o, perf_o] + [np.nan_to_num(st.r_opt, nan=0.0) for st in stats]
        tested = pareto_efficient(np.column_stack(cols))
    else:
        tested = np.ones(m, dtype=bool)
    idx = np.flatnonzero(tested)  # ascending grid index = conservative -> aggressive
    k = idx.size

    # ---- p-values on the test split
    pv_budget = binomial_pvalues(k_test[idx, None], n_t, alphas[None, :])  # (k, b)
    combined = pv_budget.copy()
    for st, td in zip(stats, test_data, strict=True):
        st.pvalues = np.full(m, np.nan)
        st.pvalues[idx] = _test_pvalues(st, grid, idx, td, delta)
        combined = np.maximum(combined, st.pvalues[idx][:, None])

    # ---- the testing order (optimisation split only)
    order_kind = testing_order
    if order_kind == "auto":
        order_kind = "pvalue" if stats else "lambda"
    length = np.full(b, k, dtype=np.int64)
    inf_first = idx.size > 0 and idx[0] == 0 and all(st.certain_at_inf for st in stats)
    need_estimates = order_kind in ("pvalue", "single")
    est = None
    if need_estimates:
        est = binom_cdf_real(budget_o[idx, None] * n_t, n_t, alphas[None, :])
        for st in stats:
            est = np.maximum(est, _estimated_pvalues(st, idx, n_t, delta)[:, None])
    if order_kind == "lambda" or k == 0:
        order = np.repeat(np.arange(k)[:, None], b, axis=1)
    elif order_kind == "pvalue":
        key = est.copy()
        if inf_first:
            key[0] = -1.0
        order = np.argsort(key, axis=0, kind="stable")
    else:  # "single": +inf (if it surely holds) then the best-looking candidate
        ok = est <= delta
        ok[idx == 0] = False
        masked = np.where(ok, perf_o[idx][:, None], np.inf)
        cand = np.argmin(masked, axis=0)
        has = ok.any(axis=0)
        order = np.zeros((k, b), dtype=np.int64)
        if inf_first:
            order[1] = np.where(has, cand, 0)
            length = np.where(has, 2, 1)
        else:
            order[0] = np.where(has, cand, 0)
            length = np.ones(b, dtype=np.int64)
        length = np.minimum(length, k)
    position = np.arange(k)[:, None]
    in_seq = position < length[None, :]

    # ---- family-wise error control
    p_sorted = np.take_along_axis(combined, order, axis=0)
    p_sorted = np.where(in_seq, p_sorted, np.inf)
    if fwer == "fixed_sequence":
        n_cert = fixed_sequence_test(p_sorted, delta) if k else np.zeros(b, np.int64)
        cert_sorted = position < np.asarray(n_cert)[None, :]
    else:
        cert_sorted = bonferroni_test(p_sorted, delta) if k else np.zeros((0, b), bool)
        n_cert = None
    cert_t = np.zeros((k, b), dtype=bool)
    if k:
        np.put_along_axis(cert_t, order, cert_sorted, axis=0)
        # a column shorter than k repeats order entries beyond its length: redo
        # the scatter of the in-sequence part so padding cannot overwrite it
        if (length < k).any():
            cert_t[:] = False
            for pos in range(int(length.max())):  # at most 2 positions ("single")
                live = pos < length
                cols = np.flatnonzero(live)
                cert_t[order[pos, cols], cols] |= cert_sorted[pos, cols]

    # ---- the choice among the certified thresholds
    any_cert = cert_t.any(axis=0)
    if pareto:
        masked = np.where(cert_t, perf_o[idx, None], np.inf)
        choice_t = np.argmin(masked, axis=0)  # ties: the larger threshold
        if selection == "one_se" and k:
            choice_t = _one_se(
                choice_t, cert_t, idx, perf_o, perf_change, opt_rows.size
            )
    else:
        choice_t = k - 1 - np.argmax(cert_t[::-1], axis=0) if k else np.zeros(b, int)
    chosen = np.where(any_cert, idx[choice_t] if k else 0, 0)

    pvalues = np.full((m, b), np.nan)
    pvalues[idx] = combined
    certified = np.zeros((m, b), dtype=bool)
    certified[idx] = cert_t
    budget_pvalues = np.full((m, b), np.nan)
    budget_pvalues[idx] = pv_budget
    out = SplitOutcome(
        k_test=k_test,
        pvalues=pvalues,
        certified=certified,
        chosen=chosen,
        tested=tested,
        order=idx[order] if k else np.zeros((0, b), dtype=np.int64),
        order_length=length,
        budget_pvalues=budget_pvalues,
        stats=stats,
    )
    _why_blocked(
        out,
        idx,
        order,
        length,
        n_cert,
        cert_sorted,
        p_sorted,
        pv_budget,
        stats,
        delta,
        fwer,
    )
    if estimate_rows:
        _rows_needed(out, idx, stats, budget_o, alphas, n_t, delta)
    return out


def _one_se(choice_t, cert_t, idx, perf_o, perf_change, n_opt) -> np.ndarray:
    """Most conservative certified threshold within one standard error (of the
    paired difference on the optimisation split) of the best one."""
    best = idx[choice_t]  # (b,)
    perf = perf_o[idx][:, None]  # (k, 1)
    diff = perf - perf_o[best][None, :]  # (k, b)
    # rows delegated by exactly one of the two thresholds change correctness
    # or not; the squared paired differences sum to |C(i) - C(best)|
    sq = np.abs(perf_change[idx][:, None] - perf_change[best][None, :]) / n_opt
    se = np.sqrt(np.maximum(sq - diff**2, 0.0) / n_opt)
    ok = cert_t & (diff <= se + 1e-12)
    return np.where(ok.any(axis=0), np.argmax(ok, axis=0), choice_t)


def _why_blocked(
    out,
    idx,
    order,
    length,
    n_cert,
    cert_sorted,
    p_sorted,
    pv_budget,
    stats,
    delta,
    fwer,
):
    """The first hypothesis of the sequence that was not certified, and which
    risks' p-values exceed the level there."""
    b = length.shape[0]
    blocked_index = np.full(b, -1, dtype=np.int64)
    blocked_by: list = [()] * b
    k = idx.size
    if k == 0:
        out.blocked_index, out.blocked_by = blocked_index, blocked_by
        return
    if fwer == "fixed_sequence":
        stop = np.asarray(n_cert)
        level = delta
    else:  # Bonferroni: the first uncertified hypothesis in the testing order
        fail = ~cert_sorted & (np.arange(k)[:, None] < length[None, :])
        stop = np.where(fail.any(axis=0), np.argmax(fail, axis=0), length)
        level = delta / k
    for j in np.flatnonzero(stop < length):  # one entry per budget (not per row)
        pos = order[stop[j], j]
        names, values = ["budget"], [pv_budget[pos, j]]
        for st in stats:
            names.append(st.name)
            values.append(st.pvalues[idx[pos]])
        values = np.asarray(values)
        rank = np.argsort(-values, kind="stable")
        blocked_by[j] = tuple(names[r] for r in rank if values[r] > level)
        blocked_index[j] = idx[pos]
    out.blocked_index, out.blocked_by = blocked_index, blocked_by


def _rows_needed(out, idx, stats, budget_o, alphas, n_t, delta):
    """Estimated test-split size at which the most promising threshold would be
    certified, for the budgets where nothing that delegates was certified."""
    b = alphas.shape[0]
    need = np.full(b, np.nan)
    need_idx = np.full(b, -1, dtype=np.int64)
    cert = out.certified
    delegating = cert[1:].any(axis=0)
    anything = cert.any(axis=0)
    cols = np.flatnonzero(~delegating)
    if cols.size == 0 or idx.size == 0:
        out.rows_needed, out.rows_needed_index = need, need_idx
        return
    for j in cols:  # a few budgets at most; each is vectorised over thresholds
        cand = idx if not anything[j] else idx[idx > 0]
        if cand.size == 0:
            continue
        pos = np.searchsorted(idx, cand)
        a = alphas[j]

        def pfun(n, pos=pos, a=a):
            p = binom_cdf_real(budget_o[idx[pos]][None, :] * n, n, a)
            for st in stats:
                p = np.maximum(p, _estimated_pvalues(st, idx[pos], n_t, delta, n=n))
            return p

        size, c = _first_below(pfun, delta)
        need[j] = size
        if c >= 0:
            need_idx[j] = cand[c]
    out.rows_needed, out.rows_needed_index = need, need_idx

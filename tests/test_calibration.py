"""Tests of skctd.calibration: p-values, FWER procedures, Pareto filter, grid, LTT."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats
from sklearn.metrics import roc_auc_score

from skctd.calibration import (
    BudgetSweepResult,
    CalibrationResult,
    binomial_pvalues,
    bonferroni_test,
    calibrate_budget_sweep,
    calibrate_threshold,
    candidate_thresholds,
    fixed_sequence_test,
    hoeffding_bentkus_pvalues,
    min_test_size,
    n_opt_rows,
    opt_test_split,
    pareto_efficient,
    reference_calibrate_threshold,
)
from skctd.calibration._grid import threshold_bins
from skctd.calibration._joint import run_split


# ------------------------------------------------------------------ data
def assert_same_field(a, b, name):
    """Equality of two CalibrationResult fields (arrays, dicts of arrays, NaN)."""
    if isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=name)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), name
        for key in a:
            assert_same_field(a[key], b[key], f"{name}[{key}]")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), name
    else:
        assert a == b, name


def make_data(n, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    signal = rng.uniform(size=n)
    if ties:
        signal = np.floor(signal * 10) / 10
    probe = np.clip(0.5 + (2 * y - 1) * rng.normal(0.15, 0.3, n), 0, 1)
    # the expert is good where the signal is high, poor where it is low
    good = rng.uniform(size=n) < 0.4 + 0.6 * signal
    expert = np.clip(np.where(good, y, 1 - y) + rng.normal(0, 0.1, n), 0, 1)
    return signal, y, probe, expert


# ------------------------------------------------------------------ p-values
def test_binomial_pvalues_by_hand():
    # n=5, alpha=0.2: P(Bin<=0)=0.8^5, P(Bin<=1)=0.8^5+5*0.2*0.8^4
    p = binomial_pvalues([0, 1, 2, 5], 5, 0.2)
    assert p[0] == pytest.approx(0.32768, abs=1e-12)
    assert p[1] == pytest.approx(0.32768 + 0.4096, abs=1e-12)
    assert p[2] == pytest.approx(0.73728 + 10 * 0.04 * 0.512, abs=1e-12)
    assert p[3] == 1.0


def test_binomial_pvalues_match_scipy_and_broadcast():
    k = np.arange(0, 301, 7)
    for alpha in (0.01, 0.1, 0.37, 0.9):
        np.testing.assert_allclose(
            binomial_pvalues(k, 300, alpha), stats.binom.cdf(k, 300, alpha), rtol=1e-12
        )
    alphas = np.array([0.1, 0.2, 0.5])
    out = binomial_pvalues(k[:, None], 300, alphas[None, :])
    assert out.shape == (k.size, 3)
    np.testing.assert_allclose(out, stats.binom.cdf(k[:, None], 300, alphas))


@pytest.mark.parametrize(
    "k, n, alpha, match",
    [
        ([-1], 5, 0.2, "k must"),
        ([6], 5, 0.2, "k must"),
        ([1.5], 5, 0.2, "k must"),
        ([1], 5, 0.0, "alpha"),
        ([1], 5, 1.0, "alpha"),
        ([1], 0, 0.2, "n must"),
    ],
)
def test_binomial_pvalues_bad_input(k, n, alpha, match):
    with pytest.raises(ValueError, match=match):
        binomial_pvalues(k, n, alpha)


def test_hoeffding_bentkus_known_values_and_edges():
    n, alpha = 100, 0.2
    p = hoeffding_bentkus_pvalues([0.0, 0.05, 0.2, 0.3, 1.0], n, alpha)
    # r = 0: h1 = -log(1 - alpha), so the Hoeffding term is (1 - alpha)^n
    assert p[0] == pytest.approx(0.8**100, rel=1e-9)
    # r = 0.05: min(exp(-n h1(0.05, 0.2)), e * P(Bin(100, .2) <= 5))
    a = 0.05
    h1 = a * math.log(a / alpha) + (1 - a) * math.log((1 - a) / (1 - alpha))
    expected = min(math.exp(-n * h1), math.e * stats.binom.cdf(5, n, alpha))
    assert p[1] == pytest.approx(expected, rel=1e-9)
    assert np.all(p[2:] == 1.0)  # r >= alpha -> p = 1


def test_hoeffding_bentkus_is_valid_and_monotone():
    n, alpha = 250, 0.15
    k = np.arange(n + 1)
    hb = hoeffding_bentkus_pvalues(k / n, n, alpha)
    # never smaller than the exact binomial p-value of the same count
    assert np.all(hb >= stats.binom.cdf(k, n, alpha) - 1e-15)
    assert np.all(np.diff(hb) >= -1e-15)
    assert np.all((hb > 0) & (hb <= 1))


def test_hoeffding_bentkus_ceil_tolerates_rounding():
    # 0.3 * 10 = 3.0000000000000004 in floating point: must count 3 losses, not 4
    p = hoeffding_bentkus_pvalues([3 / 10], 10, 0.5)
    bentkus = math.e * stats.binom.cdf(3, 10, 0.5)
    a = 0.3
    h1 = a * math.log(a / 0.5) + (1 - a) * math.log((1 - a) / 0.5)
    assert p[0] == pytest.approx(min(1.0, bentkus, math.exp(-10 * h1)))


@pytest.mark.parametrize("r", [[-0.1], [1.1], [np.nan]])
def test_hoeffding_bentkus_bad_risk(r):
    with pytest.raises(ValueError, match="risk_hat"):
        hoeffding_bentkus_pvalues(r, 10, 0.2)


# ------------------------------------------------------------------ FWER
@pytest.mark.parametrize(
    "pvalues, expected",
    [
        ([0.01, 0.05, 0.2, 0.01], 2),
        ([0.2, 0.01], 0),
        ([0.1, 0.1], 2),
        ([], 0),
        ([0.01, np.nan, 0.01], 1),
        ([0.05] * 5, 5),
    ],
)
def test_fixed_sequence_by_hand(pvalues, expected):
    assert fixed_sequence_test(pvalues, 0.1) == expected


def test_bonferroni_mask():
    p = np.array([0.01, 0.05, 0.025, 0.026, np.nan])
    np.testing.assert_array_equal(
        bonferroni_test(p, 0.125), [True, False, True, False, False]
    )
    assert bonferroni_test([], 0.1).shape == (0,)


def test_fwer_two_dimensional_is_one_family_per_column():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.15, size=(30, 6))
    p[rng.uniform(size=p.shape) < 0.05] = np.nan
    n_cert = fixed_sequence_test(p, 0.1)
    assert n_cert.shape == (6,) and n_cert.dtype == np.int64
    assert n_cert.tolist() == [fixed_sequence_test(p[:, j], 0.1) for j in range(6)]
    assert len(set(n_cert.tolist())) > 1  # the columns really differ
    mask = bonferroni_test(p, 0.9)
    assert mask.shape == p.shape
    for j in range(6):
        np.testing.assert_array_equal(mask[:, j], bonferroni_test(p[:, j], 0.9))
    np.testing.assert_array_equal(fixed_sequence_test(np.empty((0, 3)), 0.1), [0] * 3)
    assert bonferroni_test(np.empty((0, 3)), 0.1).shape == (0, 3)
    for bad in (np.zeros((2, 2, 2)), 0.05):
        with pytest.raises(ValueError, match="1-D .* or 2-D"):
            fixed_sequence_test(bad, 0.1)
        with pytest.raises(ValueError, match="1-D .* or 2-D"):
            bonferroni_test(bad, 0.1)


@pytest.mark.parametrize("delta", [0, 1, -0.1, 1.5, np.nan])
def test_fwer_bad_delta(delta):
    with pytest.raises(ValueError, match="delta"):
        fixed_sequence_test([0.1], delta)
    with pytest.raises(ValueError, match="delta"):
        bonferroni_test([0.1], delta)


def test_min_test_size():
    for alpha, delta in [(0.1, 0.1), (0.2, 0.05), (0.05, 0.01), (0.5, 0.5)]:
        n = min_test_size(alpha, delta)
        assert (1 - alpha) ** n <= delta < (1 - alpha) ** (n - 1)
    assert min_test_size(0.1, 0.1) == math.ceil(math.log(0.1) / math.log(0.9))


# ------------------------------------------------------------------ Pareto filter
def brute_force_pareto(x):
    x = np.asarray(x, dtype=float)
    m = x.shape[0]
    out = np.ones(m, dtype=bool)
    for i in range(m):
        for j in range(m):
            if np.all(x[j] <= x[i]) and np.any(x[j] < x[i]):
                out[i] = False
    return out


@settings(max_examples=150, deadline=None)
@given(
    arrays(
        np.int8,
        st.tuples(st.integers(0, 40), st.sampled_from([1, 2, 3])),
        elements=st.integers(0, 4),
    )
)
def test_pareto_matches_brute_force(x):
    # small integer values force ties and exact duplicates
    np.testing.assert_array_equal(pareto_efficient(x), brute_force_pareto(x))


@settings(max_examples=50, deadline=None)
@given(
    arrays(
        np.float64, st.tuples(st.integers(1, 60), st.just(2)), elements=st.floats(0, 1)
    )
)
def test_pareto_matches_brute_force_floats(x):
    np.testing.assert_array_equal(pareto_efficient(x), brute_force_pareto(x))


def test_pareto_keeps_all_duplicates_of_efficient_points():
    x = [[0, 1], [0, 1], [1, 0], [1, 1], [1, 1]]
    np.testing.assert_array_equal(pareto_efficient(x), [True, True, True, False, False])


def test_pareto_large_r2_is_fast_and_correct():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 50, size=(200_000, 2))
    eff = pareto_efficient(x)
    front = x[eff]
    # no kept point dominates another kept point
    assert np.all(brute_force_pareto(front))
    sub = rng.choice(x.shape[0], 300, replace=False)
    np.testing.assert_array_equal(pareto_efficient(x[sub]), brute_force_pareto(x[sub]))


def test_pareto_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        pareto_efficient([1, 2, 3])
    with pytest.raises(ValueError, match="NaN"):
        pareto_efficient([[0, np.nan]])
    assert pareto_efficient(np.empty((0, 2))).shape == (0,)


# ------------------------------------------------------------------ grid
def test_candidate_thresholds_shape_order_uniqueness():
    rng = np.random.default_rng(0)
    s = rng.normal(size=1000)
    grid = candidate_thresholds(s, 100)
    assert grid[0] == np.inf
    assert grid.size == 101
    assert np.all(np.diff(grid) < 0)
    assert np.all(np.isin(grid[1:], s))  # observed values (method="lower")
    assert grid[-1] == s.min() and grid[1] == s.max()


def test_candidate_thresholds_heavy_ties():
    s = np.repeat([0.0, 0.1, 0.5, 2.0], [500, 3, 300, 1])
    grid = candidate_thresholds(s, 100)
    assert grid[0] == np.inf
    assert np.all(np.diff(grid) < 0)  # strictly decreasing: unique
    assert set(grid[1:]) <= {0.0, 0.1, 0.5, 2.0}
    # a constant signal: +inf and the constant
    np.testing.assert_array_equal(candidate_thresholds(np.ones(50), 100), [np.inf, 1.0])
    np.testing.assert_array_equal(
        candidate_thresholds([3.0, 1.0, 2.0], 1), [np.inf, 1.0]
    )


def test_candidate_thresholds_bad_input():
    with pytest.raises(ValueError, match="signal"):
        candidate_thresholds([0.1, np.nan])
    with pytest.raises(ValueError, match="n_thresholds"):
        candidate_thresholds([0.1, 0.2], 0)
    with pytest.raises(ValueError, match="signal"):
        candidate_thresholds([])


# ------------------------------------------------------------------ calibrate_threshold
CASES = [
    dict(),
    dict(pareto=False),
    dict(fwer="bonferroni"),
    dict(fwer="bonferroni", pareto=False),
    dict(combine="average"),
    dict(performance_risk="auroc"),
    dict(performance_risk="auroc", combine="average", n_thresholds=30),
    dict(n_thresholds=7),
]


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("kwargs", CASES, ids=lambda d: repr(d) or "default")
def test_calibrate_threshold_matches_loop_reference(kwargs, ties):
    signal, y, p, e = make_data(600, seed=3, ties=ties)
    alpha, delta = 0.3, 0.1
    res = calibrate_threshold(
        signal, y, p, e, alpha=alpha, delta=delta, random_state=7, **kwargs
    )
    ref = reference_calibrate_threshold(
        signal,
        y,
        p,
        e,
        alpha=alpha,
        delta=delta,
        opt_indices=res.opt_indices,
        test_indices=res.test_indices,
        **kwargs,
    )
    np.testing.assert_array_equal(res.thresholds, ref.thresholds)
    np.testing.assert_allclose(res.budget_risk_opt, ref.budget_risk_opt, atol=1e-12)
    np.testing.assert_allclose(
        res.performance_risk_opt, ref.performance_risk_opt, atol=1e-12
    )
    np.testing.assert_array_equal(res.budget_risk_test, ref.budget_risk_test)
    np.testing.assert_array_equal(res.pareto_mask, ref.pareto_mask)
    np.testing.assert_array_equal(res.certified, ref.certified)
    np.testing.assert_allclose(res.pvalues, ref.pvalues, rtol=1e-10)  # NaN = NaN
    assert np.all(np.isnan(res.pvalues[~res.pareto_mask]))
    assert res.selected_index == ref.selected_index
    assert res.threshold == ref.threshold
    assert res.certified[res.selected_index]
    assert (res.n_opt, res.n_test, res.alpha, res.delta) == (
        ref.n_opt,
        ref.n_test,
        ref.alpha,
        ref.delta,
    )
    assert (res.pareto, res.fwer, res.performance_risk) == (
        ref.pareto,
        ref.fwer,
        ref.performance_risk,
    )


def test_reference_callable_risk_and_single_class_auroc():
    signal, y, p, e = make_data(400, seed=13)

    def brier(y_true, scores):
        return float(np.mean((scores - y_true) ** 2))

    for kwargs, y_used in [
        (dict(performance_risk=brier), y),
        (dict(performance_risk="auroc"), np.ones_like(y)),
    ]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = calibrate_threshold(
                signal, y_used, p, e, alpha=0.3, delta=0.1, random_state=1, **kwargs
            )
        ref = reference_calibrate_threshold(
            signal,
            y_used,
            p,
            e,
            alpha=0.3,
            delta=0.1,
            opt_indices=res.opt_indices,
            test_indices=res.test_indices,
            **kwargs,
        )
        np.testing.assert_allclose(
            res.performance_risk_opt, ref.performance_risk_opt, atol=1e-12
        )
        np.testing.assert_array_equal(res.certified, ref.certified)
        assert res.threshold == ref.threshold
        assert res.performance_risk == ref.performance_risk


def test_split_sizes_and_reproducibility():
    signal, y, p, e = make_data(1000, seed=1)
    r1 = calibrate_threshold(signal, y, p, e, alpha=0.2, delta=0.1, random_state=0)
    r2 = calibrate_threshold(signal, y, p, e, alpha=0.2, delta=0.1, random_state=0)
    assert r1.threshold == r2.threshold
    np.testing.assert_array_equal(r1.opt_indices, r2.opt_indices)
    assert (r1.n_opt, r1.n_test) == (300, 700)
    both = np.concatenate([r1.opt_indices, r1.test_indices])
    np.testing.assert_array_equal(np.sort(both), np.arange(1000))
    # the grid comes from the optimisation split only
    np.testing.assert_array_equal(
        r1.thresholds, candidate_thresholds(signal[r1.opt_indices], 100)
    )
    k = (signal[r1.test_indices][None, :] > r1.thresholds[:, None]).sum(1)
    np.testing.assert_allclose(r1.budget_risk_test, k / 700)


def test_lambda_star_is_best_certified_by_opt_performance():
    for seed in range(5):
        signal, y, p, e = make_data(800, seed=seed)
        res = calibrate_threshold(
            signal, y, p, e, alpha=0.4, delta=0.1, random_state=seed
        )
        cert = np.flatnonzero(res.certified)
        best = res.performance_risk_opt[cert].min()
        ties = cert[res.performance_risk_opt[cert] == best]
        assert res.selected_index == ties.min()  # smallest index = largest threshold
        assert res.threshold == res.thresholds[ties].max()
        # fixed sequence certifies a prefix of the tested (Pareto) thresholds
        tested = np.flatnonzero(res.pareto_mask)
        assert np.all(res.certified[tested[: res.n_certified]])


def test_ties_in_performance_choose_the_larger_threshold():
    # the expert is always wrong: delegating only hurts, so the best risk is shared
    # by +inf and the largest grid value (both delegate nothing on D_opt)
    signal, y, p, _ = make_data(500, seed=0)
    p = np.where(y == 1, 0.8, 0.2)
    e = 1.0 - y
    res = calibrate_threshold(signal, y, p, e, alpha=0.3, delta=0.1, random_state=0)
    assert res.performance_risk_opt[0] == res.performance_risk_opt[1]
    assert res.certified[0] and res.certified[1]
    assert res.threshold == np.inf and res.selected_index == 0
    # the same rule on a hand-made stage: ties among certified -> larger threshold
    grid = np.array([np.inf, 0.9, 0.5, 0.1])
    sig_test = np.sort(np.linspace(0, 1, 1000))
    out = run_split(
        grid,
        np.zeros(4, dtype=np.int64),
        threshold_bins(sig_test, grid),
        np.array([0.0, 0.1, 0.5, 0.9]),
        np.array([0.3, 0.2, 0.2, 0.1]),
        [],
        np.arange(4),
        np.arange(4, 1004),
        np.array([0.6]),
        0.1,
        pareto=False,
        fwer="fixed_sequence",
        testing_order="lambda",
        selection="best",
    )
    assert out.certified[:, 0].tolist() == [True, True, True, False]
    out = run_split(
        grid,
        np.zeros(4, dtype=np.int64),
        threshold_bins(sig_test, grid),
        np.array([0.0, 0.1, 0.5, 0.9]),
        np.array([0.3, 0.2, 0.2, 0.1]),
        [],
        np.arange(4),
        np.arange(4, 1004),
        np.array([0.6]),
        0.1,
        pareto=True,
        fwer="fixed_sequence",
        testing_order="lambda",
        selection="best",
    )
    # (0.5, 0.2) is dominated by (0.1, 0.2); the rest are on the front
    assert out.tested.tolist() == [True, True, False, True]
    assert out.certified[:, 0].tolist() == [True, True, False, False]
    assert out.chosen[0] == 1


def test_budget_only_picks_most_aggressive_certified():
    signal, y, p, e = make_data(1000, seed=4)
    res = calibrate_threshold(
        signal, y, p, e, alpha=0.25, delta=0.1, pareto=False, random_state=2
    )
    assert res.pareto_mask.all()
    n_cert = fixed_sequence_test(res.pvalues, 0.1)
    assert n_cert == res.n_certified > 1
    assert res.selected_index == n_cert - 1
    # known answer: the binomial test certifies exactly the counts k <= k*, so the
    # choice is the last threshold with k <= k* and the next one has k > k*
    k = np.rint(res.budget_risk_test * res.n_test).astype(int)
    cdf = stats.binom.cdf(np.arange(res.n_test + 1), res.n_test, 0.25)
    k_star = int(np.flatnonzero(cdf <= 0.1).max())
    assert k[res.selected_index] <= k_star < k[res.selected_index + 1]


def test_nothing_certified_warns_with_numbers():
    signal, y, p, e = make_data(20, seed=0)
    with pytest.warns(UserWarning) as record:
        res = calibrate_threshold(signal, y, p, e, alpha=0.1, delta=0.1, random_state=0)
    msg = str(record[0].message)
    assert res.threshold == np.inf and not res.certified.any()
    assert "n=14" in msg and "alpha=0.1" in msg and "delta=0.1" in msg
    assert f"n={min_test_size(0.1, 0.1)}" in msg and "22" in msg


def test_enough_rows_certify_never_delegate_without_warning():
    signal, y, p, e = make_data(32, seed=0)  # n_test = 22 = min_test_size(0.1, 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = calibrate_threshold(signal, y, p, e, alpha=0.1, delta=0.1, random_state=0)
    assert res.n_test == 22 and res.certified[0]


def test_auroc_risk_matches_sklearn_and_single_class_falls_back():
    signal, y, p, e = make_data(400, seed=5)
    res = calibrate_threshold(
        signal, y, p, e, alpha=0.3, delta=0.1, performance_risk="auroc", random_state=1
    )
    o = res.opt_indices
    for j in (0, 5, 50, res.thresholds.size - 1):
        s = np.where(signal[o] > res.thresholds[j], e[o], p[o])
        assert res.performance_risk_opt[j] == pytest.approx(1 - roc_auc_score(y[o], s))
    y1 = np.ones_like(y)
    with pytest.warns(UserWarning, match="single class"):
        res1 = calibrate_threshold(
            signal,
            y1,
            p,
            e,
            alpha=0.3,
            delta=0.1,
            performance_risk="auroc",
            random_state=1,
        )
    assert np.all(res1.performance_risk_opt == 0.5)
    assert res1.threshold >= signal[res1.opt_indices].max()


def test_callable_performance_risk():
    signal, y, p, e = make_data(300, seed=6)
    calls = []

    def brier(y_true, scores):
        calls.append(1)
        return float(np.mean((scores - y_true) ** 2))

    res = calibrate_threshold(
        signal, y, p, e, alpha=0.3, delta=0.1, performance_risk=brier, random_state=0
    )
    assert len(calls) == res.thresholds.size
    o = res.opt_indices
    j = res.selected_index
    s = np.where(signal[o] > res.thresholds[j], e[o], p[o])
    assert res.performance_risk_opt[j] == pytest.approx(np.mean((s - y[o]) ** 2))
    assert "brier" in repr(res)
    with pytest.raises(ValueError, match="performance_risk"):
        calibrate_threshold(
            signal, y, p, e, alpha=0.3, delta=0.1, performance_risk=lambda a, b: np.nan
        )


def test_combine_average_changes_performance():
    signal, y, p, e = make_data(500, seed=8)
    rep = calibrate_threshold(signal, y, p, e, alpha=0.3, delta=0.1, random_state=0)
    avg = calibrate_threshold(
        signal, y, p, e, alpha=0.3, delta=0.1, combine="average", random_state=0
    )
    o = avg.opt_indices
    lam = avg.thresholds[-1]
    s = np.where(signal[o] > lam, (e[o] + p[o]) / 2, p[o])
    assert avg.performance_risk_opt[-1] == pytest.approx(
        1 - np.mean((s >= 0.5) == y[o])
    )
    assert not np.array_equal(rep.performance_risk_opt, avg.performance_risk_opt)


def test_labels_as_bool_and_float():
    signal, y, p, e = make_data(300, seed=2)
    a = calibrate_threshold(signal, y, p, e, alpha=0.3, delta=0.1, random_state=0)
    b = calibrate_threshold(
        signal, y.astype(bool), p, e, alpha=0.3, delta=0.1, random_state=0
    )
    c = calibrate_threshold(
        signal, y.astype(float), p, e, alpha=0.3, delta=0.1, random_state=0
    )
    assert a.threshold == b.threshold == c.threshold


def test_result_repr_and_summary():
    signal, y, p, e = make_data(500, seed=0)
    res = calibrate_threshold(signal, y, p, e, alpha=0.3, delta=0.1, random_state=0)
    assert isinstance(res, CalibrationResult)
    text = repr(res)
    assert text.startswith("CalibrationResult(threshold=") and "alpha=0.3" in text
    assert len(text) < 400
    summary = res.summary()
    assert "Pareto-filtered LTT" in summary and "n_test=350" in summary
    assert res.delegates == np.isfinite(res.threshold)


BAD = [
    (dict(signal=[0.1] * 99 + [np.nan]), "signal"),
    (dict(probe_scores=[0.5] * 99 + [np.nan]), "probe_scores"),
    (dict(expert_scores=[0.5] * 99 + [1.5]), "expert_scores"),
    (dict(y=[2] * 100), "y"),
    (dict(y=[0, 1] * 40), "y has 80 rows"),
    (dict(expert_scores=[0.5] * 10), "expert_scores has 10 rows"),
    (dict(alpha=0.0), "alpha"),
    (dict(alpha=1.0), "alpha"),
    (dict(delta=0.0), "delta"),
    (dict(delta=1.2), "delta"),
    (dict(opt_fraction=0.0), "opt_fraction"),
    (dict(opt_fraction=1.0), "opt_fraction"),
    (dict(n_thresholds=0), "n_thresholds"),
    (dict(performance_risk="f1"), "performance_risk"),
    (dict(fwer="holm"), "fwer"),
    (dict(combine="max"), "combine"),
]


@pytest.mark.parametrize("override, match", BAD)
def test_calibrate_threshold_bad_input(override, match):
    rng = np.random.default_rng(0)
    kwargs = dict(
        signal=rng.uniform(size=100),
        y=rng.integers(0, 2, 100),
        probe_scores=rng.uniform(size=100),
        expert_scores=rng.uniform(size=100),
        alpha=0.2,
        delta=0.1,
    )
    kwargs.update(override)
    args = [kwargs.pop(k) for k in ("signal", "y", "probe_scores", "expert_scores")]
    with pytest.raises(ValueError, match=match):
        calibrate_threshold(*args, **kwargs)


def test_too_few_rows():
    with pytest.raises(ValueError, match="Too few calibration rows"):
        calibrate_threshold([0.1], [1], [0.5], [0.5], alpha=0.2, delta=0.1)
    with pytest.raises(ValueError, match="opt_fraction"):
        calibrate_threshold(
            [0.1, 0.2],
            [1, 0],
            [0.5, 0.5],
            [0.5, 0.5],
            alpha=0.2,
            delta=0.1,
            opt_fraction=0.9,
        )


# ------------------------------------------------------------------ budget sweep
@pytest.mark.parametrize("ties", [False, True], ids=["continuous", "ties"])
def test_sweep_equals_calibrate_threshold_per_split_and_alpha(ties):
    # a continuous signal matters: with 10 tied levels, testing on rows of the
    # optimisation split too changes almost no count
    signal, y, p, e = make_data(900, seed=9, ties=ties)
    alphas = np.array([0.05, 0.2, 0.35, 0.6])
    for kwargs in (
        dict(),
        dict(pareto=False),
        dict(fwer="bonferroni"),
        dict(performance_risk="auroc"),
    ):
        results = [
            calibrate_threshold(
                signal, y, p, e, alpha=0.2, delta=0.1, random_state=s, **kwargs
            )
            for s in range(3)
        ]
        splits = [(r.opt_indices, r.test_indices) for r in results]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sweep = calibrate_budget_sweep(
                signal,
                y,
                p,
                e,
                alphas=alphas,
                delta=0.1,
                splits=splits,
                return_details=True,
                **kwargs,
            )
        assert isinstance(sweep, BudgetSweepResult)
        assert sweep.thresholds.shape == (3, 4)
        for i in range(len(splits)):
            for j, a in enumerate(alphas):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    one = calibrate_threshold(
                        signal, y, p, e, alpha=a, delta=0.1, random_state=i, **kwargs
                    )
                assert sweep.thresholds[i, j] == one.threshold
                assert sweep.n_certified[i, j] == one.n_certified
            assert sweep.details[i].threshold == sweep.thresholds[i, 0]


def test_sweep_random_splits_and_delegation_rate():
    signal, y, p, e = make_data(1500, seed=10)
    alphas = np.linspace(0.05, 0.95, 20)
    a = calibrate_budget_sweep(
        signal, y, p, e, alphas=alphas, delta=0.1, n_splits=4, random_state=0
    )
    b = calibrate_budget_sweep(
        signal, y, p, e, alphas=alphas, delta=0.1, n_splits=4, random_state=0
    )
    np.testing.assert_array_equal(a.thresholds, b.thresholds)
    assert a.thresholds.shape == (4, 20) and a.n_test.tolist() == [1050] * 4
    assert len(a.opt_indices) == 4 and a.opt_indices[0].size == 450
    assert not np.array_equal(a.opt_indices[0], a.opt_indices[1])
    rates = a.delegation_rate(signal)
    direct = (signal[None, None, :] > a.thresholds[:, :, None]).mean(-1)
    np.testing.assert_allclose(rates, direct)
    idx = [a.test_indices[i] for i in range(4)]
    rates_t = a.delegation_rate(signal, idx)
    assert rates_t[0, 3] == np.mean(signal[idx[0]] > a.thresholds[0, 3])
    assert "n_splits=4" in repr(a)
    # budget-only thresholds are non-increasing in alpha
    c = calibrate_budget_sweep(
        signal,
        y,
        p,
        e,
        alphas=alphas,
        delta=0.1,
        n_splits=2,
        random_state=0,
        pareto=False,
    )
    assert np.all(np.diff(c.thresholds, axis=1) <= 0)


def test_sweep_warns_once_when_uncertified():
    signal, y, p, e = make_data(30, seed=0)
    with pytest.warns(UserWarning, match="Nothing was certified") as rec:
        res = calibrate_budget_sweep(
            signal, y, p, e, alphas=[0.05, 0.5], delta=0.1, n_splits=3, random_state=0
        )
    assert len([w for w in rec if "Nothing was certified" in str(w.message)]) == 1
    assert np.all(res.thresholds[:, 0] == np.inf)
    assert np.all(res.n_certified[:, 0] == 0) and np.all(res.n_certified[:, 1] > 0)
    assert re.search(r"n=45\b", str(rec[0].message))  # min_test_size(0.05, 0.1)


def test_sweep_bad_splits():
    signal, y, p, e = make_data(100, seed=0)
    kw = dict(alphas=[0.2], delta=0.1)
    with pytest.raises(ValueError, match="overlap"):
        calibrate_budget_sweep(
            signal, y, p, e, splits=[(np.arange(50), np.arange(40, 100))], **kw
        )
    with pytest.raises(ValueError, match=r"lie in \[0, 100\)"):
        calibrate_budget_sweep(
            signal, y, p, e, splits=[(np.arange(50), np.arange(50, 101))], **kw
        )
    with pytest.raises(ValueError, match="pair"):
        calibrate_budget_sweep(signal, y, p, e, splits=[np.arange(5)], **kw)
    with pytest.raises(ValueError, match="n_splits"):
        calibrate_budget_sweep(
            signal,
            y,
            p,
            e,
            n_splits=3,
            splits=[(np.arange(50), np.arange(50, 100))],
            **kw,
        )
    with pytest.raises(ValueError, match="alphas"):
        calibrate_budget_sweep(signal, y, p, e, alphas=[0.2, 1.0], delta=0.1)
    with pytest.raises(ValueError, match="splits is empty"):
        calibrate_budget_sweep(signal, y, p, e, splits=[], **kw)


@pytest.mark.parametrize("combine", ["replace", "average"])
def test_auroc_risk_with_tied_scores_matches_sklearn_for_every_threshold(combine):
    signal, y, p, e = make_data(300, seed=11, ties=True)
    p, e = np.round(p, 1), np.round(e, 1)  # heavy ties, also between p and e
    res = calibrate_threshold(
        signal,
        y,
        p,
        e,
        alpha=0.3,
        delta=0.1,
        performance_risk="auroc",
        combine=combine,
        random_state=0,
    )
    o = res.opt_indices
    d = e[o] if combine == "replace" else (e[o] + p[o]) / 2
    expected = [
        1 - roc_auc_score(y[o], np.where(signal[o] > lam, d, p[o]))
        for lam in res.thresholds
    ]
    np.testing.assert_allclose(res.performance_risk_opt, expected, atol=1e-12)


# ------------------------------------------------------------------ one code path
@pytest.mark.parametrize(
    "kwargs",
    [dict(), dict(pareto=False, fwer="bonferroni"), dict(performance_risk="auroc")],
    ids=repr,
)
def test_calibrate_threshold_is_the_one_split_one_budget_sweep(kwargs):
    signal, y, p, e = make_data(700, seed=12)
    one = calibrate_threshold(
        signal, y, p, e, alpha=0.3, delta=0.1, random_state=4, **kwargs
    )
    sweep = calibrate_budget_sweep(
        signal,
        y,
        p,
        e,
        alphas=[0.3],
        delta=0.1,
        n_splits=1,
        random_state=4,
        return_details=True,
        **kwargs,
    )
    detail = sweep.details[0]
    for name in CalibrationResult.__dataclass_fields__:
        assert_same_field(getattr(one, name), getattr(detail, name), name)
    assert sweep.thresholds[0, 0] == one.threshold
    assert sweep.n_certified[0, 0] == one.n_certified


def test_opt_test_split_is_the_split_of_calibrate_threshold():
    signal, y, p, e = make_data(501, seed=0)
    res = calibrate_threshold(signal, y, p, e, alpha=0.3, delta=0.1, random_state=5)
    opt, test = opt_test_split(501, random_state=5)
    np.testing.assert_array_equal(opt, res.opt_indices)
    np.testing.assert_array_equal(test, res.test_indices)
    assert opt.size == n_opt_rows(501) == res.n_opt == 150  # 150.3 rounds to 150
    assert n_opt_rows(5) == 2 and n_opt_rows(10, opt_fraction=0.25) == 3  # half up
    rng = np.random.RandomState(0)
    first, second = (
        opt_test_split(50, random_state=rng),
        opt_test_split(50, random_state=rng),
    )
    assert not np.array_equal(first[0], second[0])  # an instance is advanced
    with pytest.raises(ValueError, match="Too few calibration rows"):
        n_opt_rows(1)
    with pytest.raises(ValueError, match="opt_fraction"):
        n_opt_rows(100, opt_fraction=1.0)
    with pytest.raises(ValueError, match="n must be an integer"):
        n_opt_rows(10.0)


def test_warnings_point_at_the_caller():
    signal, y, p, e = make_data(30, seed=0)
    y = np.ones_like(y)  # single class: the AUROC warning, and nothing certified
    kw = dict(delta=0.1, performance_risk="auroc", random_state=0)
    with pytest.warns(UserWarning) as rec:
        calibrate_threshold(signal, y, p, e, alpha=0.05, **kw)
    assert len(rec) == 2
    assert "single class" in str(rec[0].message) and "n=21" in str(rec[1].message)
    with pytest.warns(UserWarning) as rec2:
        calibrate_budget_sweep(signal, y, p, e, alphas=[0.05, 0.5], n_splits=3, **kw)
    assert len(rec2) == 2  # each distinct message once
    assert all(w.filename == __file__ for w in [*rec, *rec2])


def test_sweep_message_uses_the_bonferroni_level():
    # Bonferroni tests each of the m hypotheses at delta / m, so certifying even
    # "never delegate" needs min_test_size(alpha, delta / m) rows, as
    # calibrate_threshold says
    signal, y, p, e = make_data(40, seed=0)
    with pytest.warns(UserWarning, match="Nothing was certified") as rec:
        res = calibrate_budget_sweep(
            signal,
            y,
            p,
            e,
            alphas=[0.05],
            delta=0.1,
            fwer="bonferroni",
            n_splits=2,
            random_state=0,
            return_details=True,
        )
    m = max(int(d.pareto_mask.sum()) for d in res.details)
    assert m > 1
    msg = str([w for w in rec if "Nothing" in str(w.message)][0].message)
    assert f"delta/{m}" in msg and f"n={min_test_size(0.05, 0.1 / m)}" in msg

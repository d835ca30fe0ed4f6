"""Edge cases of skctd.calibration that mutation testing showed untested.

Each test pins a behaviour that a mutant of ``skctd/calibration`` changed without
any other test noticing (``python tools/mutation.py`` lists the survivors): exact
boundaries of the split sizes and of ``min_test_size``, the parameter named in
each error message, the dtype of empty results, the AUROC risk in blocks and
with a single positive, the warnings' numbers, and the loop reference when
nothing is certified.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

import skctd.calibration._risks as risks_module
from skctd.calibration import (
    binomial_pvalues,
    bonferroni_test,
    calibrate_budget_sweep,
    calibrate_threshold,
    fixed_sequence_test,
    hoeffding_bentkus_pvalues,
    min_test_size,
    n_opt_rows,
    reference_calibrate_threshold,
)
from skctd.calibration._grid import candidate_thresholds, threshold_bins


def make_data(n, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    signal = rng.uniform(size=n)
    probe = np.clip(0.5 + (2 * y - 1) * rng.normal(0.15, 0.3, n), 0, 1)
    good = rng.uniform(size=n) < 0.4 + 0.6 * signal
    expert = np.clip(np.where(good, y, 1 - y) + rng.normal(0, 0.1, n), 0, 1)
    return signal, y, probe, expert


def brute_min_test_size(alpha, delta):
    n = 1
    while (1.0 - alpha) ** n > delta:
        n += 1
    return n


# ------------------------------------------------------------------ min_test_size
def test_min_test_size_at_exact_powers_and_rounding_edges():
    # delta = (1 - alpha)^k exactly: the ratio of logarithms lands on an integer,
    # where the rounding guards of min_test_size decide the answer
    cases = [(a, (1.0 - a) ** k) for a in (0.5, 0.1, 0.2, 0.3, 0.05) for k in range(1, 40)]
    cases += [(a, 1.0 - a) for a in np.linspace(0.01, 0.99, 99)]
    cases += [(0.5, 0.5), (0.9, 0.1), (0.1, 0.1), (0.2, 0.05)]
    # delta one ulp below (1 - alpha)^k: the answer is k + 1, but the ratio of
    # logarithms often rounds to k exactly
    cases += [
        (a, math.nextafter((1.0 - a) ** k, 0.0))
        for a in (0.5, 0.1, 0.2, 0.3, 0.05, 0.059)
        for k in range(1, 40)
    ]
    overshoots = undershoots = 0
    for alpha, delta in cases:
        assert min_test_size(alpha, delta) == brute_min_test_size(alpha, delta), (
            alpha,
            delta,
        )
        start = max(1, math.ceil(math.log(delta) / math.log1p(-alpha)))
        overshoots += start > brute_min_test_size(alpha, delta)
        undershoots += start < brute_min_test_size(alpha, delta)
    assert overshoots > 0  # the downward guard is exercised
    assert undershoots > 0  # and the upward one
    assert min_test_size(0.059, math.nextafter((1.0 - 0.059) ** 3, 0.0)) == 4


# ------------------------------------------------------------------ n_opt_rows
@pytest.mark.parametrize(
    "n, fraction, expected",
    [(2, 0.1, 1), (2, 0.5, 1), (3, 0.5, 2), (3, 0.1, 1), (1000, 0.3, 300)],
)
def test_n_opt_rows_boundaries(n, fraction, expected):
    assert n_opt_rows(n, opt_fraction=fraction) == expected


@pytest.mark.parametrize("n, fraction", [(1, 0.3), (3, 0.9), (2, 0.8)])
def test_n_opt_rows_leaves_a_test_row(n, fraction):
    with pytest.raises(ValueError, match="Too few calibration rows"):
        n_opt_rows(n, opt_fraction=fraction)


# ------------------------------------------------------------------ error messages
# every check names the parameter at the start of its message
NAMED = [
    (lambda: min_test_size(0.0, 0.1), "alpha must be a number"),
    (lambda: min_test_size(0.1, 1.0), "delta must be a number"),
    (lambda: hoeffding_bentkus_pvalues([0.1], 0, 0.2), "n must be a positive integer"),
    (lambda: hoeffding_bentkus_pvalues([0.1], 10, 1.5), "alpha must be a number"),
    (lambda: binomial_pvalues([1], 0, 0.2), "n must be a positive integer"),
    (lambda: bonferroni_test([0.1], 0.0), "delta must be a number"),
    (lambda: fixed_sequence_test([0.1], 2.0), "delta must be a number"),
    (lambda: n_opt_rows(10, opt_fraction=0.0), "opt_fraction must be a number"),
    (lambda: candidate_thresholds([0.1], 0), "n_thresholds must be a positive"),
]


@pytest.mark.parametrize("call, message", NAMED)
def test_errors_name_the_parameter_first(call, message):
    with pytest.raises(ValueError, match=f"^{message}"):
        call()


@pytest.mark.parametrize(
    "override, message",
    [
        (dict(alpha=0.0), "alpha must be a number"),
        (dict(delta=1.0), "delta must be a number"),
        (dict(n_thresholds=0), "n_thresholds must be a positive"),
    ],
)
def test_entry_points_name_the_parameter_first(override, message):
    signal, y, p, e = make_data(100)
    kw = {"alpha": 0.2, "delta": 0.1, **override}
    with pytest.raises(ValueError, match=f"^{message}"):
        calibrate_threshold(signal, y, p, e, **kw)
    with pytest.raises(ValueError, match=f"^{message}"):
        reference_calibrate_threshold(
            signal, y, p, e, opt_indices=np.arange(30), test_indices=np.arange(30, 100),
            **kw,
        )  # fmt: skip


def test_bad_split_indices():
    signal, y, p, e = make_data(100)
    kw = dict(alphas=[0.2], delta=0.1)
    for bad in ([], [[1, 2]], [0.5, 1.5]):
        with pytest.raises(ValueError, match=r"splits\[0\] opt indices must be a non"):
            calibrate_budget_sweep(
                signal, y, p, e, splits=[(np.asarray(bad), np.arange(50, 100))], **kw
            )
    res = calibrate_budget_sweep(signal, y, p, e, n_splits=2, random_state=0, **kw)
    with pytest.raises(ValueError, match="indices has 1 entries but there are 2"):
        res.delegation_rate(signal, [np.arange(10)])


# ------------------------------------------------------------------ dtypes
def test_empty_families_keep_their_types():
    empty = bonferroni_test(np.empty(0), 0.1)
    assert empty.dtype == bool and empty.shape == (0,)
    empty2 = bonferroni_test(np.empty((0, 3)), 0.1)
    assert empty2.dtype == bool and empty2.shape == (0, 3)
    assert isinstance(fixed_sequence_test([], 0.1), int)


# ------------------------------------------------------------------ AUROC risk
def test_auroc_risk_with_one_positive_is_defined():
    rng = np.random.default_rng(0)
    n = 50
    y = np.zeros(n, dtype=int)
    y[7] = 1  # a single positive: AUROC is defined, no warning
    signal, p, d = rng.uniform(size=(3, n))
    grid = candidate_thresholds(signal, 20)
    bins = threshold_bins(signal, grid)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        risks = risks_module.auroc_risks(bins, grid.size, y, p, d)
    expected = [1 - roc_auc_score(y, np.where(signal > lam, d, p)) for lam in grid]
    np.testing.assert_allclose(risks, expected, atol=1e-12)
    assert len(set(np.round(risks, 12))) > 1


def test_auroc_risk_in_small_blocks(monkeypatch):
    # a tiny block size: the thresholds are computed a few at a time
    signal, y, p, e = make_data(200, seed=3)
    grid = candidate_thresholds(signal, 30)
    bins = threshold_bins(signal, grid)
    whole = risks_module.auroc_risks(bins, grid.size, y, p, e)
    monkeypatch.setattr(risks_module, "_MATRIX_BLOCK", 3 * 2 * 200)  # 3 thresholds
    blocked = risks_module.auroc_risks(bins, grid.size, y, p, e)
    np.testing.assert_array_equal(blocked, whole)
    expected = [1 - roc_auc_score(y, np.where(signal > lam, e, p)) for lam in grid]
    np.testing.assert_allclose(blocked, expected, atol=1e-12)


def test_callable_risk_gets_integer_labels_and_the_cascade_scores():
    signal, y, p, e = make_data(300, seed=6)
    seen = []

    def risk(y_true, scores):
        seen.append((y_true.dtype.kind, scores.copy()))
        return float(np.mean((scores >= 0.5) != y_true))

    res = calibrate_threshold(
        signal, y, p, e, alpha=0.3, delta=0.1, performance_risk=risk, random_state=0
    )
    assert {kind for kind, _ in seen} == {"i"}
    o = res.opt_indices
    for j in (0, 10, res.thresholds.size - 1):
        scores = seen[j][1]
        expected = np.where(signal[o] > res.thresholds[j], e[o], p[o])
        np.testing.assert_array_equal(np.sort(scores), np.sort(expected))
    # the same risk as "accuracy"
    acc = calibrate_threshold(signal, y, p, e, alpha=0.3, delta=0.1, random_state=0)
    np.testing.assert_allclose(res.performance_risk_opt, acc.performance_risk_opt)


# ------------------------------------------------------------------ warnings
def test_fixed_sequence_warning_states_the_rule():
    signal, y, p, e = make_data(20)
    with pytest.warns(UserWarning) as rec:
        calibrate_threshold(signal, y, p, e, alpha=0.1, delta=0.1, random_state=0)
    msg = str(rec[0].message)
    assert "((1 - alpha)^n <= delta)" in msg and "delta/" not in msg
    assert msg.endswith("give more calibration data, or raise alpha or delta.")


def test_bonferroni_warning_with_two_hypotheses():
    # n_thresholds=1: the grid is +inf and the minimum, so Bonferroni tests m = 2
    signal, y, p, e = make_data(40)
    kw = dict(alpha=0.05, delta=0.1, fwer="bonferroni", pareto=False, n_thresholds=1)
    with pytest.warns(UserWarning) as rec:
        res = calibrate_threshold(signal, y, p, e, random_state=0, **kw)
    assert res.pareto_mask.sum() == 2 and res.n_certified == 0
    msg = str(rec[0].message)
    assert "((1 - alpha)^n <= delta/2)" in msg
    assert f"n={min_test_size(0.05, 0.05)} test-split rows" in msg


# ------------------------------------------------------------------ the reference
def test_reference_when_nothing_is_certified():
    signal, y, p, e = make_data(30)
    opt, test = np.arange(10), np.arange(10, 30)
    for kwargs in (dict(), dict(pareto=False), dict(fwer="bonferroni")):
        ref = reference_calibrate_threshold(
            signal, y, p, e, alpha=0.05, delta=0.1, opt_indices=opt, test_indices=test,
            **kwargs,
        )  # fmt: skip
        assert ref.n_certified == 0
        assert ref.selected_index == 0 and ref.threshold == np.inf
        np.testing.assert_array_equal(ref.opt_indices, opt)
        np.testing.assert_array_equal(ref.test_indices, test)


def test_reference_bonferroni_level_and_fixed_sequence_stop():
    signal, y, p, e = make_data(400, seed=2)
    opt, test = np.arange(120), np.arange(120, 400)
    ref = reference_calibrate_threshold(
        signal, y, p, e, alpha=0.3, delta=0.1, opt_indices=opt, test_indices=test,
        fwer="bonferroni", pareto=False,
    )  # fmt: skip
    m = ref.pareto_mask.sum()
    np.testing.assert_array_equal(ref.certified, ref.pvalues <= 0.1 / m)
    k = np.rint(ref.budget_risk_test * 280).astype(int)
    np.testing.assert_allclose(ref.pvalues, stats.binom.cdf(k, 280, 0.3))


# ------------------------------------------------------------------ results
def test_summary_names_the_method_and_repr_counts_uncertified():
    signal, y, p, e = make_data(500)
    res = calibrate_threshold(
        signal, y, p, e, alpha=0.3, delta=0.1, pareto=False, random_state=0
    )
    lines = res.summary().split("\n")
    assert lines[0] == "budget-only LTT (fixed_sequence), alpha=0.3, delta=0.1"
    assert len(lines) == 5 and lines[1] == "  splits: n_opt=150, n_test=350"
    # the fixed sequence stops at the first threshold whose budget p-value fails
    assert res.blocked_by == ("budget",)
    assert lines[4] == (
        f"  stopped at threshold {res.thresholds[res.blocked_index]:.6g}, "
        "blocked by: budget"
    )
    assert res.pvalues[res.blocked_index] > 0.1
    assert np.all(res.pvalues[res.certified] <= 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sweep = calibrate_budget_sweep(
            signal[:40], y[:40], p[:40], e[:40], alphas=[0.05, 0.5], delta=0.1,
            n_splits=3, random_state=0,
        )  # fmt: skip
    assert int((sweep.n_certified == 0).sum()) == 3
    assert repr(sweep) == (
        "BudgetSweepResult(n_splits=3, n_alphas=2, delta=0.1, uncertified=3)"
    )


# ------------------------------------------------------------------ counting
def test_rows_above_the_largest_candidate_are_counted():
    # the largest finite threshold is the maximum of the optimisation split; test
    # rows above it must count as delegated there
    signal = np.concatenate([np.linspace(0.0, 0.5, 30), np.linspace(0.1, 0.9, 70)])
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100)
    p, e = rng.uniform(size=(2, 100))
    opt, test = np.arange(30), np.arange(30, 100)
    sweep = calibrate_budget_sweep(
        signal, y, p, e, alphas=[0.5], delta=0.1, splits=[(opt, test)],
        return_details=True,
    )  # fmt: skip
    res = sweep.details[0]
    assert res.thresholds[1] == 0.5
    k = (signal[test][None, :] > res.thresholds[:, None]).sum(1)
    assert k[1] == np.sum(signal[test] > 0.5) > 0
    np.testing.assert_array_equal(res.budget_risk_test, k / 70)
    ref = reference_calibrate_threshold(
        signal, y, p, e, alpha=0.5, delta=0.1, opt_indices=opt, test_indices=test
    )
    np.testing.assert_array_equal(res.budget_risk_test, ref.budget_risk_test)


def test_split_checks_name_the_part_and_accept_one_row():
    signal, y, p, e = make_data(100)
    kw = dict(alphas=[0.2], delta=0.1)
    good = np.arange(50, 100)
    for bad in (np.array([], dtype=int), np.array([[1, 2]]), np.array([0.5, 1.5])):
        with pytest.raises(ValueError, match=r"^splits\[0\] opt indices must be a non"):
            calibrate_budget_sweep(signal, y, p, e, splits=[(bad, good)], **kw)
        with pytest.raises(ValueError, match=r"^splits\[0\] test indices must be a non"):
            calibrate_budget_sweep(signal, y, p, e, splits=[(np.arange(5), bad)], **kw)
    with pytest.raises(ValueError, match=r"^splits is empty\.$"):
        calibrate_budget_sweep(signal, y, p, e, splits=[], **kw)
    one = calibrate_budget_sweep(
        signal, y, p, e, splits=[(np.array([0]), np.arange(1, 100))], **kw
    )
    assert one.thresholds.shape == (1, 1) and one.n_test.tolist() == [99]


# ------------------------------------------------------------------ sweep results
def test_budget_only_never_delegates_at_an_uncertified_budget():
    # with pareto=False the choice is "the last certified"; a budget where nothing
    # is certified must not borrow the choice of another budget
    signal, y, p, e = make_data(40)
    with pytest.warns(UserWarning, match="Nothing was certified") as rec:
        res = calibrate_budget_sweep(
            signal, y, p, e, alphas=[0.05, 0.5], delta=0.1, n_splits=3,
            random_state=0, pareto=False,
        )  # fmt: skip
    assert np.all(res.n_certified[:, 0] == 0) and np.all(res.n_certified[:, 1] > 1)
    assert np.all(res.thresholds[:, 0] == np.inf)
    assert np.all(np.isfinite(res.thresholds[:, 1]))
    assert res.details is None  # only with return_details=True
    msg = str(rec[0].message)
    assert "Affected budgets: [0.05];" in msg and "smallest test split n=28." in msg


def test_result_arrays_keep_their_dtypes():
    signal, y, p, e = make_data(300)
    res = calibrate_threshold(signal, y, p, e, alpha=0.3, delta=0.1, random_state=0)
    assert res.certified.dtype == bool and res.pareto_mask.dtype == bool
    out = fixed_sequence_test(np.empty((0, 3)), 0.1)
    assert out.shape == (3,) and out.dtype == np.int64


def test_delegation_rate_on_single_rows_and_bad_signal():
    signal, y, p, e = make_data(200)
    res = calibrate_budget_sweep(
        signal, y, p, e, alphas=[0.3], delta=0.1, n_splits=2, random_state=0
    )
    rows = [np.array([int(np.argmax(signal))]), np.array([int(np.argmin(signal))])]
    rates = res.delegation_rate(signal, rows)
    expected = [[float(signal[r[0]] > res.thresholds[i, 0])] for i, r in enumerate(rows)]
    np.testing.assert_array_equal(rates, expected)
    assert rates[0, 0] == 1.0  # the largest signal is delegated
    with pytest.raises(ValueError, match="^signal contains NaN"):
        res.delegation_rate(np.array([0.1, np.nan]))


# ------------------------------------------------------------------ risks
def test_accuracy_risk_counts_a_score_of_one_half_as_positive():
    # "predict 1 when s >= 0.5": a probe score of exactly 0.5 is a positive call
    signal, y, _, e = make_data(300, seed=4)
    p = np.where(np.arange(300) % 3 == 0, 0.5, np.where(y == 1, 0.8, 0.2))
    res = calibrate_threshold(signal, y, p, e, alpha=0.3, delta=0.1, random_state=0)
    o = res.opt_indices
    for j in (0, 5, res.thresholds.size - 1):
        s = np.where(signal[o] > res.thresholds[j], e[o], p[o])
        assert res.performance_risk_opt[j] == pytest.approx(np.mean((s >= 0.5) != y[o]))


class _Brier:  # a callable without __name__
    def __call__(self, y_true, scores):
        return float(np.mean((scores - y_true) ** 2))


def test_risk_names_in_results():
    signal, y, p, e = make_data(300)
    kw = dict(alpha=0.3, delta=0.1, random_state=0)
    assert calibrate_threshold(signal, y, p, e, **kw).performance_risk == "accuracy"
    assert (
        calibrate_threshold(signal, y, p, e, performance_risk="auroc", **kw)
        .performance_risk == "auroc"
    )  # fmt: skip

    def brier(y_true, scores):
        return float(np.mean((scores - y_true) ** 2))

    assert calibrate_threshold(
        signal, y, p, e, performance_risk=brier, **kw
    ).performance_risk == "brier"  # fmt: skip
    assert calibrate_threshold(
        signal, y, p, e, performance_risk=_Brier(), **kw
    ).performance_risk == "_Brier"  # fmt: skip


def test_reference_callable_gets_integer_labels():
    signal, y, p, e = make_data(200)
    kinds = set()

    def risk(y_true, scores):
        kinds.add(y_true.dtype.kind)
        return float(np.mean((scores >= 0.5) != y_true))

    reference_calibrate_threshold(
        signal, y.astype(float), p, e, alpha=0.3, delta=0.1, opt_indices=np.arange(60),
        test_indices=np.arange(60, 200), performance_risk=risk,
    )  # fmt: skip
    assert kinds == {"i"}


# ------------------------------------------------------------------ p = delta exactly
def test_a_pvalue_equal_to_delta_is_certified():
    # P(Bin(2, 0.5) <= 0) = 0.25 exactly: at delta = 0.25 "never delegate" is
    # certified (p <= delta), by the fast path and by the reference alike
    signal = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    y = np.array([0, 1, 0, 1, 0])
    p = np.full(5, 0.4)
    e = np.full(5, 0.6)
    opt, test = np.array([3, 4, 2]), np.array([0, 1])  # test rows below every candidate
    for fwer, delta in (("fixed_sequence", 0.25), ("bonferroni", 0.5)):
        kw = dict(alpha=0.5, delta=delta, fwer=fwer, pareto=False, n_thresholds=1)
        ref = reference_calibrate_threshold(
            signal, y, p, e, opt_indices=opt, test_indices=test, **kw
        )
        fast = calibrate_budget_sweep(
            signal, y, p, e, alphas=[0.5], delta=delta, fwer=fwer, pareto=False,
            n_thresholds=1, splits=[(opt, test)], return_details=True,
        ).details[0]  # fmt: skip
        assert ref.pvalues[0] == 0.25 and ref.pareto_mask.sum() == 2
        for res in (ref, fast):
            assert res.certified.tolist() == [True, True], fwer

"""Several risks in one Learn-then-Test: p-values, risks, procedure, result, warnings.

Fast tests. The statistical validity over many calibration draws is in
``tests/test_guarantee_risks.py``.
"""

from __future__ import annotations

import hashlib
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from skctd.calibration import (
    BUILTIN_RISKS,
    Risk,
    betting_pvalues,
    binomial_pvalues,
    calibrate_budget_sweep,
    calibrate_threshold,
    hoeffding_bentkus_pvalues,
    opt_test_split,
    sign_test_pvalues,
)
from skctd.calibration._constraints import (
    check_constraints,
    prepare_risks,
    threshold_sums,
)
from skctd.calibration._grid import candidate_thresholds, threshold_bins
from skctd.calibration._joint import binom_cdf_real


# ------------------------------------------------------------------ data
def make_data(n, seed=0, ties=False, expert="useful"):
    """Signal U(0, 1); the expert is right with probability rising in the signal
    (``useful``), always (``perfect``) or at chance (``useless``)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    signal = rng.uniform(size=n)
    if ties:
        signal = np.floor(signal * 10) / 10
    right_p = rng.uniform(size=n) < 0.8
    probe = np.where(np.where(right_p, y, 1 - y) == 1, 0.7, 0.3)
    prob_e = {"useful": 0.3 + 0.7 * signal, "perfect": np.ones(n), "useless": 0.5}
    right_e = rng.uniform(size=n) < prob_e[expert]
    e = np.where(np.where(right_e, y, 1 - y) == 1, 0.9, 0.1)
    cost = np.minimum((1 - rng.uniform(size=n)) ** (-1 / 1.5), 40.0)
    return signal, y, probe, e, cost


def quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


# ------------------------------------------------------------------ p-values
def betting_by_hand(x, alpha, delta):
    """The WSR p-value written one row at a time."""
    n = len(x)
    s, sq, sigma2_prev, logk, best = 0.0, 0.0, 0.25, 0.0, 0.0
    for t, v in enumerate(x, start=1):
        nu = min(1.0, math.sqrt(2 * math.log(1 / delta) / (n * sigma2_prev)))
        logk += math.log(1 - nu * (v - alpha))
        best = max(best, logk)
        s += v
        mu = (0.5 + s) / (t + 1)
        sq += (v - mu) ** 2
        sigma2_prev = (0.25 + sq) / (t + 1)
    return math.exp(-best)


def test_betting_pvalues_known_values():
    # four zeros at level 1/2: every bet is nu = 1, K = 1.5 ** 4
    assert betting_pvalues([0.0] * 4, alpha=0.5, delta=0.1) == pytest.approx(1 / 1.5**4)
    rng = np.random.default_rng(0)
    for alpha in (0.1, 0.3, 0.5):
        x = rng.uniform(size=60) * rng.integers(0, 2, 60)
        assert betting_pvalues(x, alpha, 0.1) == pytest.approx(
            betting_by_hand(x, alpha, 0.1), rel=1e-12
        )
    # losses above the level: the wealth never grows, p = 1
    assert betting_pvalues(np.full(50, 0.9), 0.5, 0.1) == 1.0
    # columns are independent sequences (blocks give the same numbers)
    X = rng.uniform(size=(40, 7))
    cols = [betting_pvalues(X[:, j], 0.6, 0.05) for j in range(7)]
    np.testing.assert_allclose(betting_pvalues(X, 0.6, 0.05), cols, rtol=1e-12)


def test_betting_adapts_to_variance_where_hb_cannot():
    # the no-harm loss: 1/2 on most rows, a few 0s and fewer 1s (mean 0.49)
    rng = np.random.default_rng(1)
    x = np.full(600, 0.5)
    x[rng.choice(600, 30, replace=False)] = 0.0
    x[rng.choice(np.flatnonzero(x == 0.5), 18, replace=False)] = 1.0
    level = 0.5 + 0.01  # harm <= 0.02
    assert betting_pvalues(x, level, 0.1) < 0.01
    assert hoeffding_bentkus_pvalues([x.mean()], 600, level)[0] > 0.4


@pytest.mark.parametrize(
    "losses, match",
    [
        ([[[0.1]]], "1-D"),
        ([], "empty"),
        ([0.2, 1.2], r"\[0, 1\]"),
        ([np.nan], "finite"),
    ],
)
def test_betting_bad_input(losses, match):
    with pytest.raises(ValueError, match=match):
        betting_pvalues(losses, 0.5, 0.1)


def test_sign_test_known_values_and_edges():
    np.testing.assert_allclose(
        sign_test_pvalues([0, 1, 3, 0], [5, 9, 3, 0]),
        [1 / 32, 11 / 1024, stats.binom.cdf(3, 6, 0.5), 1.0],
    )
    with pytest.raises(ValueError, match="n_worse"):
        sign_test_pvalues([1.5], [2])
    with pytest.raises(ValueError, match="n_better"):
        sign_test_pvalues([1], [-1])


def mc_rejection_rate(pvalue_of_draw, n_mc, seed, t=(0.05, 0.1, 0.2)):
    rng = np.random.default_rng(seed)
    p = np.array([pvalue_of_draw(rng) for _ in range(n_mc)])
    return {level: float(np.mean(p <= level)) for level in t}


def se_bound(t, n_mc):
    return t + 3 * math.sqrt(t * (1 - t) / n_mc)


def test_pvalues_are_valid_at_the_boundary_of_the_null():
    """Uniform or conservative at the least favourable null (mean = level), by
    Monte Carlo: P(p <= t) <= t + 3 SE; the sign and binomial tests are nearly
    exact there (>= t / 2), the betting test is conservative (Ville)."""
    n_mc = 4000
    # binomial, 0/1 losses with mean 0.2 on 300 rows
    rates = mc_rejection_rate(
        lambda r: binomial_pvalues(r.binomial(300, 0.2), 300, 0.2), n_mc, 1
    )
    for t, rate in rates.items():
        assert t / 2 <= rate <= se_bound(t, n_mc), (t, rate)

    # sign test: losses in {0, 1/2, 1} with P(1) = P(0) = 0.1 (mean 1/2 exactly)
    def sign_draw(r):
        x = r.choice([0.0, 0.5, 1.0], size=400, p=[0.1, 0.8, 0.1])
        return sign_test_pvalues(np.sum(x == 1), np.sum(x == 0))

    rates = mc_rejection_rate(sign_draw, n_mc, 2)
    for t, rate in rates.items():
        assert t / 2 <= rate <= se_bound(t, n_mc), (t, rate)

    # betting: a skewed bounded loss with mean exactly 0.3
    def wsr_draw(r):
        x = np.where(r.uniform(size=200) < 0.3 / 0.6, r.uniform(0.2, 1.0, 200), 0.0)
        return betting_pvalues(x, 0.3, 0.1)

    rates = mc_rejection_rate(wsr_draw, 2000, 3)
    for t, rate in rates.items():
        assert rate <= se_bound(t, 2000), (t, rate)
    # and it has power a little below the level (mean 0.2, n = 200)
    power = mc_rejection_rate(
        lambda r: betting_pvalues(r.uniform(0, 0.4, 200), 0.3, 0.1), 200, 4
    )
    assert power[0.1] > 0.9


def test_binom_cdf_real_matches_the_binomial_at_integers():
    k = np.arange(0, 31)
    np.testing.assert_allclose(binom_cdf_real(k, 30, 0.3), stats.binom.cdf(k, 30, 0.3))
    assert binom_cdf_real(31.0, 30, 0.3) == 1.0 and binom_cdf_real(-1.0, 30, 0.3) == 0
    mid = binom_cdf_real(4.5, 30, 0.3)
    assert stats.binom.cdf(4, 30, 0.3) < mid < stats.binom.cdf(5, 30, 0.3)


# ------------------------------------------------------------------ Risk
def test_risk_builtins_and_repr():
    assert set(BUILTIN_RISKS) == {
        "harm",
        "error",
        "miss",
        "miss_marginal",
        "cost",
        "cost_share",
    }
    assert repr(Risk("harm", 0.0)) == "Risk('harm', level=0, pvalue='sign')"
    assert Risk("harm", 0.02).pvalue == "wsr" and Risk("harm", 0.02).loss_level == 0.51
    assert Risk("error", 0.1).pvalue == "binomial"
    assert Risk("miss", 0.05).pvalue == "binomial"
    assert Risk("cost", 3.0, cost=[1.0, 2.0]).pvalue == "wsr"
    assert Risk("harm", 0.0).holds_at_inf and not Risk("error", 0.2).holds_at_inf
    assert "at most 0.05 of unsafe" in Risk("miss", 0.05).describe()


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (("budget", 0.2), {}, "alpha"),
        (("latency", 0.2), {}, "Unknown risk"),
        (("harm", 1.0), {}, "epsilon"),
        (("harm", -0.1), {}, "epsilon"),
        (("error", 0.0), {}, "error"),
        (("cost", 0.0), {"cost": [1.0]}, "mean cost"),
        (("harm", 0.0), {"pvalue": "binomial"}, "0/1 loss"),
        (("error", 0.1), {"pvalue": "sign"}, "sign"),
        (("harm", 0.0), {"pvalue": "exact"}, "pvalue"),
        (("cost", 1.0), {"cost": [1.0, 5.0], "cost_max": 2.0}, "cost_max"),
        (("cost", 1.0), {"cost": [-1.0]}, "non-negative"),
        (("mine", 1.5), {"loss": lambda y: y}, r"\[0, 1\]"),
        (("mine", 0.5), {"loss": "not callable"}, "callable"),
        (("mine", True), {"loss": lambda y: y}, "number"),
    ],
)
def test_risk_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        Risk(*args, **kwargs)


def test_check_constraints_forms():
    assert check_constraints(None) == []
    a = check_constraints({"harm": 0.0, "miss": 0.05})
    assert [r.name for r in a] == ["harm", "miss"]
    b = check_constraints([Risk("harm", 0.0)])
    assert b[0].name == "harm"
    with pytest.raises(ValueError, match="key must be"):
        check_constraints({"harm": Risk("error", 0.1)})
    with pytest.raises(ValueError, match="twice"):
        check_constraints([Risk("harm", 0.0), Risk("harm", 0.01)])
    with pytest.raises(ValueError, match="cost="):
        check_constraints({"cost": 1.0})
    with pytest.raises(ValueError, match="string"):
        check_constraints("harm")
    with pytest.raises(ValueError, match="Risk objects"):
        check_constraints([("harm", 0.0)])


def test_user_loss_is_called_twice_with_the_arguments_it_names():
    signal, y, p, e, _ = make_data(300, seed=1)
    calls = []

    def false_alarm(y, scores, delegated, rows):
        calls.append((bool(delegated.all()), bool((~delegated).all()), rows.size))
        return ((scores >= 0.5) & (y == 0)).astype(float)

    res = quiet(
        calibrate_threshold,
        signal,
        y,
        p,
        e,
        alpha=0.3,
        delta=0.1,
        random_state=0,
        constraints=[Risk("false_alarm", 0.5, loss=false_alarm, pvalue="binomial")],
    )
    assert calls == [(False, True, 300), (True, False, 300)]
    fa = res.risks_test["false_alarm"]
    lam = res.thresholds
    t = res.test_indices
    deleg = signal[t][None, :] > lam[:, None]
    want = np.mean((np.where(deleg, e[t], p[t]) >= 0.5) & (y[t] == 0), axis=1)
    np.testing.assert_allclose(fa, want)

    def bad(y, scores):
        return scores * 2

    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        calibrate_threshold(
            signal,
            y,
            p,
            e,
            alpha=0.3,
            delta=0.1,
            constraints=[Risk("b", 0.5, loss=bad)],
        )

    def not_binary(y, scores):
        return scores

    with pytest.raises(ValueError, match="0/1 losses"):
        calibrate_threshold(
            signal,
            y,
            p,
            e,
            alpha=0.3,
            delta=0.1,
            constraints=[Risk("b", 0.5, loss=not_binary, pvalue="binomial")],
        )


# ------------------------------------------------------------------ sums per threshold
@pytest.mark.parametrize("ties", [False, True])
def test_threshold_sums_match_a_loop_over_thresholds(ties):
    signal, y, p, e, cost = make_data(400, seed=2, ties=ties)
    grid = candidate_thresholds(signal[:120], 30)
    bins = threshold_bins(signal, grid)
    risks = check_constraints({"harm": 0.0, "error": 0.2, "miss_marginal": 0.1})
    for pr in prepare_risks(risks, y, p, e, e):
        for power in (1, 2):
            got = threshold_sums(bins, grid, pr.keep, pr.delegate, power=power)
            want = [
                np.sum(np.where(signal > lam, pr.delegate, pr.keep) ** power)
                for lam in grid
            ]
            np.testing.assert_allclose(got, want, atol=1e-9)


# ------------------------------------------------------------------ the procedure
def brute_force_pvalues(res, signal, y, p, e, cost, risk, perm=None, delta=0.1):
    """Each tested threshold's p-value for one risk, one threshold at a time."""
    t = res.test_indices
    yt, pt, et, st = y[t], p[t], e[t], signal[t]
    wrong_p = (pt >= 0.5) != yt
    wrong_e = (et >= 0.5) != yt
    out = np.full(res.thresholds.size, np.nan)
    for j in np.flatnonzero(res.pareto_mask):
        deleg = st > res.thresholds[j]
        wrong = np.where(deleg, wrong_e, wrong_p)
        if risk.name == "harm" and risk.pvalue == "sign":
            worse = np.sum(deleg & wrong_e & ~wrong_p)
            better = np.sum(deleg & ~wrong_e & wrong_p)
            out[j] = (
                stats.binom.cdf(worse, worse + better, 0.5) if worse + better else 1
            )
        elif risk.name == "harm":
            losses = (wrong.astype(float) - wrong_p + 1) / 2
            out[j] = betting_pvalues(losses[perm], (1 + risk.level) / 2, delta)
        elif risk.name == "error":
            out[j] = stats.binom.cdf(wrong.sum(), t.size, risk.level)
        elif risk.name == "miss":
            miss = wrong[yt == 1]
            out[j] = stats.binom.cdf(miss.sum(), miss.size, risk.level)
        elif risk.name == "cost":
            c_max = cost[res.opt_indices].max()
            losses = np.where(deleg, np.minimum(cost[t], c_max) / c_max, 0.0)
            out[j] = betting_pvalues(losses[perm], risk.level / c_max, delta)
    if risk.holds_at_inf and res.pareto_mask[0]:
        out[0] = 0.0
    return out


@pytest.mark.parametrize("ties", [False, True])
def test_per_risk_pvalues_match_brute_force(ties):
    signal, y, p, e, cost = make_data(900, seed=3, ties=ties)
    risks = [
        Risk("harm", 0.0),
        Risk("error", 0.25),
        Risk("miss", 0.3),
        Risk("cost", 1.0, cost=cost),
    ]
    res = quiet(
        calibrate_threshold,
        signal,
        y,
        p,
        e,
        alpha=0.4,
        delta=0.1,
        random_state=7,
        constraints=risks,
    )
    rng = np.random.RandomState(7)
    opt_test_split(signal.size, random_state=rng)  # the split, then the row order
    perm = rng.permutation(res.n_test)
    for r in risks:
        np.testing.assert_allclose(
            res.risk_pvalues[r.name],
            brute_force_pvalues(res, signal, y, p, e, cost, r, perm),
            rtol=1e-9,
            err_msg=r.name,
        )
    harm_eps = Risk("harm", 0.02)
    res2 = quiet(
        calibrate_threshold,
        signal,
        y,
        p,
        e,
        alpha=0.4,
        delta=0.1,
        random_state=7,
        constraints=[harm_eps],
    )
    np.testing.assert_allclose(
        res2.risk_pvalues["harm"],
        brute_force_pvalues(res2, signal, y, p, e, cost, harm_eps, perm),
        rtol=1e-9,
    )
    # the combined p-value is the largest of the risks'
    tested = res.pareto_mask
    stack = np.vstack([res.risk_pvalues[k][tested] for k in res.constraints])
    np.testing.assert_array_equal(res.pvalues[tested], stack.max(axis=0))
    # empirical risks in the units of the levels
    t = res.test_indices
    deleg = signal[t][None, :] > res.thresholds[:, None]
    wrong = np.where(deleg, (e[t] >= 0.5) != y[t], (p[t] >= 0.5) != y[t])
    probe_err = np.mean((p[t] >= 0.5) != y[t])
    np.testing.assert_allclose(res.risks_test["harm"], wrong.mean(1) - probe_err)
    np.testing.assert_allclose(res.risks_test["error"], wrong.mean(1))
    np.testing.assert_allclose(res.risks_test["miss"], wrong[:, y[t] == 1].mean(1))


def test_fixed_sequence_walks_the_order_and_reports_the_blocking_risk():
    signal, y, p, e, _ = make_data(600, seed=4)
    res = quiet(
        calibrate_threshold,
        signal,
        y,
        p,
        e,
        alpha=0.3,
        delta=0.1,
        random_state=0,
        constraints={"harm": 0.0},
    )
    order = res.testing_order
    assert order[0] == 0  # harm and budget surely hold at +inf: tested first
    assert set(order) == set(np.flatnonzero(res.pareto_mask))
    p_in_order = res.pvalues[order]
    n_cert = (
        int(np.argmax(p_in_order > 0.1)) if (p_in_order > 0.1).any() else order.size
    )
    assert res.n_certified == n_cert > 1
    np.testing.assert_array_equal(
        np.flatnonzero(res.certified), np.sort(order[:n_cert])
    )
    assert res.blocked_index == order[n_cert]
    b = res.blocked_index
    over = [k for k in res.constraints if res.risk_pvalues[k][b] > 0.1]
    assert set(res.blocked_by) == set(over) and res.blocked_by
    # the choice: best optimisation-split accuracy among the certified
    cert = np.flatnonzero(res.certified)
    assert res.selected_index == cert[np.argmin(res.performance_risk_opt[cert])]
    assert res.certified[res.selected_index]
    text = res.summary()
    assert "harm <= 0" in text and "blocked by" in text
    assert res.guarantee().startswith("With probability >= 0.9")


def test_threshold_order_has_no_power_for_harm_and_the_pvalue_order_has():
    signal, y, p, e, _ = make_data(2000, seed=5, expert="perfect")
    kw = dict(alpha=0.3, delta=0.1, random_state=0, constraints={"harm": 0.0})
    lam_order = quiet(
        calibrate_threshold, signal, y, p, e, testing_order="lambda", **kw
    )
    pv_order = quiet(calibrate_threshold, signal, y, p, e, **kw)
    # the conservative end delegates ~nothing on the test split: the sign test has
    # no discordant rows there and the walk stops at once
    assert not lam_order.certified[1:].any()
    assert pv_order.certified[1:].any() and np.isfinite(pv_order.threshold)
    single = quiet(calibrate_threshold, signal, y, p, e, testing_order="single", **kw)
    assert single.testing_order.size == 2 and single.testing_order[0] == 0
    # only the two hypotheses of the sequence can be certified, in order
    cand = single.testing_order[1]
    assert set(np.flatnonzero(single.certified)) <= {0, cand}
    assert single.certified[cand] == (single.pvalues[0] <= 0.1 and single.pvalues[cand] <= 0.1)
    # the candidate: best optimisation-split accuracy among the front thresholds
    # that look certifiable there; it is certified here and chosen
    assert single.certified[cand] and single.selected_index == cand


def test_useless_expert_is_refused_with_an_explanation():
    signal, y, p, e, _ = make_data(600, seed=6, expert="useless")
    plain = quiet(
        calibrate_threshold, signal, y, p, e, alpha=0.5, delta=0.1, random_state=0
    )
    # plain CTD sends 18 % of the test split to an expert at chance
    assert np.isfinite(plain.threshold)
    assert plain.budget_risk_test[plain.selected_index] > 0.15
    with pytest.warns(UserWarning, match="No threshold that delegates") as rec:
        res = calibrate_threshold(
            signal,
            y,
            p,
            e,
            alpha=0.5,
            delta=0.1,
            random_state=0,
            constraints={"harm": 0.0},
        )
    assert res.threshold == np.inf and res.certified[0] and res.n_certified == 1
    assert "harm" in res.blocked_by
    # noise on the optimisation split makes a few thresholds look slightly useful:
    # the estimate asks for several times the test split
    assert res.rows_needed > 4 * res.n_test
    assert "blocked by harm" in str(rec[0].message)


def test_rows_needed_estimate_when_the_test_split_is_small():
    signal, y, p, e, _ = make_data(60, seed=7, expert="perfect")
    with pytest.warns(UserWarning, match="test-split rows") as rec:
        res = calibrate_threshold(
            signal,
            y,
            p,
            e,
            alpha=0.3,
            delta=0.1,
            random_state=0,
            constraints={"harm": 0.0},
        )
    assert not res.certified[1:].any()
    assert res.n_test < res.rows_needed < 10_000
    assert res.rows_needed_index > 0
    assert f"{int(res.rows_needed):,} test-split rows" in str(rec[0].message)
    assert "estimate" in str(rec[0].message)


def test_error_constraint_is_tested_at_inf_and_warns_when_the_probe_fails_it():
    signal, y, p, e, _ = make_data(600, seed=8, expert="useless")
    with pytest.warns(UserWarning, match="NO guarantee"):
        res = calibrate_threshold(
            signal,
            y,
            p,
            e,
            alpha=0.5,
            delta=0.1,
            random_state=0,
            constraints={"error": 0.1},  # the probe errs on ~20 %
        )
    assert res.n_certified == 0 and res.threshold == np.inf
    assert res.risk_pvalues["error"][0] > 0.1  # +inf is tested, not assumed
    assert res.guarantee() == ""
    # a reachable level certifies +inf by test
    res = quiet(
        calibrate_threshold,
        signal,
        y,
        p,
        e,
        alpha=0.5,
        delta=0.1,
        random_state=0,
        constraints={"error": 0.3},
    )
    assert res.certified[0] and 0 < res.risk_pvalues["error"][0] <= 0.1


def test_cost_uses_the_optimisation_split_maximum_and_warns_about_capped_rows():
    signal, y, p, e, cost = make_data(800, seed=9)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = calibrate_threshold(
            signal,
            y,
            p,
            e,
            alpha=0.5,
            delta=0.1,
            random_state=0,
            constraints={"cost": 0.8},
            cost=cost,
        )
    c_max, n_capped = res.cost_scale["cost"]
    assert c_max == cost[res.opt_indices].max()
    assert n_capped == int(np.sum(cost[res.test_indices] > c_max))
    assert any("cost_max" in str(w.message) for w in rec) == (n_capped > 0)
    t = res.test_indices
    deleg = signal[t][None, :] > res.thresholds[:, None]
    want = np.mean(np.where(deleg, np.minimum(cost[t], c_max), 0.0), axis=1)
    np.testing.assert_allclose(res.risks_test["cost"], want)
    # with a hard bound there is nothing to cap
    res = quiet(
        calibrate_threshold,
        signal,
        y,
        p,
        e,
        alpha=0.5,
        delta=0.1,
        random_state=0,
        constraints={"cost": 0.8},
        cost=cost,
        cost_max=40.0,
    )
    assert res.cost_scale["cost"] == (40.0, 0)
    # cost_share: delegated cost over total cost
    res = quiet(
        calibrate_threshold,
        signal,
        y,
        p,
        e,
        alpha=0.5,
        delta=0.1,
        random_state=0,
        constraints={"cost_share": 0.3},
        cost=cost,
        cost_max=40.0,
    )
    share = np.sum(np.where(deleg, cost[t], 0.0), axis=1) / cost[t].sum()
    np.testing.assert_allclose(res.risks_test["cost_share"], share, atol=1e-12)
    assert res.risks_test["cost_share"][res.selected_index] <= 0.45


def test_one_standard_error_rule_is_more_conservative():
    signal, y, p, e, _ = make_data(400, seed=10)
    kw = dict(alpha=0.5, delta=0.1, random_state=3)
    best = quiet(calibrate_threshold, signal, y, p, e, **kw)
    one_se = quiet(calibrate_threshold, signal, y, p, e, selection="one_se", **kw)
    assert one_se.certified[one_se.selected_index]
    assert one_se.threshold >= best.threshold
    # within one SE of the best, and the most conservative such threshold
    n = one_se.n_opt
    o = one_se.opt_indices

    def losses(lam):
        d = signal[o] > lam
        return np.where(d, (e[o] >= 0.5) != y[o], (p[o] >= 0.5) != y[o]).astype(float)

    ref = losses(best.threshold)
    ok = []
    for j in np.flatnonzero(one_se.certified):
        diff = losses(one_se.thresholds[j]) - ref
        se = diff.std() / math.sqrt(n)
        ok.append((j, diff.mean() <= se + 1e-12))
    first_ok = min(j for j, good in ok if good)
    assert one_se.selected_index == first_ok
    with pytest.raises(ValueError, match="one_se"):
        calibrate_threshold(
            signal, y, p, e, selection="one_se", performance_risk="auroc", **kw
        )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"testing_order": "random"}, "testing_order"),
        ({"selection": "worst"}, "selection"),
        ({"constraints": {"harm": 2.0}}, "epsilon"),
        ({"constraints": {"cost": 1.0}, "cost": [1.0, 2.0]}, "rows"),
    ],
)
def test_bad_options(kwargs, match):
    signal, y, p, e, _ = make_data(100)
    with pytest.raises(ValueError, match=match):
        calibrate_threshold(signal, y, p, e, alpha=0.3, delta=0.1, **kwargs)


# ------------------------------------------------------------------ reduction
def golden_data(n, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    signal = rng.uniform(size=n)
    if ties:
        signal = np.floor(signal * 10) / 10
    probe = np.clip(0.5 + (2 * y - 1) * rng.normal(0.15, 0.3, n), 0, 1)
    good = rng.uniform(size=n) < 0.4 + 0.6 * signal
    expert = np.clip(np.where(good, y, 1 - y) + rng.normal(0, 0.1, n), 0, 1)
    return signal, y, probe, expert


#: sha256 of the thresholds, certified counts and p-values below, computed with the
#: code before several risks existed (commit 55dec11): without constraints the
#: selections must stay byte-identical.
GOLDEN = "bc2037b0c66710dd2138682ab4c22899e293139a60811447cf63a123f0cf987e"


@pytest.mark.parametrize("constraints", [None, {}, []])
def test_no_constraint_is_byte_identical_to_the_budget_only_procedure(constraints):
    out = []
    extra = {} if constraints is None else {"constraints": constraints}
    for ties in (False, True):
        for kw in (
            {},
            {"pareto": False},
            {"fwer": "bonferroni"},
            {"performance_risk": "auroc"},
            {"combine": "average"},
        ):
            s, y, p, e = golden_data(700, seed=3, ties=ties)
            res = quiet(
                calibrate_budget_sweep,
                s,
                y,
                p,
                e,
                alphas=np.linspace(0.05, 0.95, 20),
                delta=0.1,
                n_splits=30,
                random_state=1,
                **kw,
                **extra,
            )
            out.append(res.thresholds)
            out.append(res.n_certified.astype(float))
            r = quiet(
                calibrate_threshold,
                s,
                y,
                p,
                e,
                alpha=0.3,
                delta=0.1,
                random_state=5,
                **kw,
                **extra,
            )
            out.append(np.array([r.threshold, r.n_certified]))
            out.append(np.nan_to_num(r.pvalues, nan=-1.0))
    digest = hashlib.sha256(np.concatenate([a.ravel() for a in out]).tobytes())
    assert digest.hexdigest() == GOLDEN


def test_sweep_with_constraints_equals_calibrate_threshold_per_split():
    signal, y, p, e, cost = make_data(700, seed=11)
    kw = dict(delta=0.1, constraints={"harm": 0.0, "miss": 0.4})
    sweep = quiet(
        calibrate_budget_sweep,
        signal,
        y,
        p,
        e,
        alphas=[0.2, 0.5],
        n_splits=4,
        random_state=2,
        **kw,
    )
    for i, (o, t) in enumerate(zip(sweep.opt_indices, sweep.test_indices, strict=True)):
        for j, a in enumerate((0.2, 0.5)):
            one = quiet(
                calibrate_budget_sweep,
                signal,
                y,
                p,
                e,
                alphas=[a],
                splits=[(o, t)],
                return_details=True,
                **kw,
            )
            assert one.thresholds[0, 0] == sweep.thresholds[i, j]
            assert one.blocked_by[0, 0] == sweep.blocked_by[i, j]
            assert one.delegating_certified[0, 0] == sweep.delegating_certified[i, j]
    assert sweep.constraints == ("harm", "miss")
    one = quiet(calibrate_threshold, signal, y, p, e, alpha=0.2, random_state=2, **kw)
    assert one.threshold == sweep.thresholds[0, 0]


def test_sweep_warns_once_with_the_blocking_risks():
    signal, y, p, e, _ = make_data(400, seed=12, expert="useless")
    with pytest.warns(UserWarning, match="never delegate under the constraints") as rec:
        res = calibrate_budget_sweep(
            signal,
            y,
            p,
            e,
            alphas=[0.3, 0.6],
            delta=0.1,
            n_splits=5,
            random_state=0,
            constraints={"harm": 0.0},
        )
    assert len(rec) == 1 and "'harm'" in str(rec[0].message)
    assert np.isinf(res.thresholds).all() and not res.delegating_certified.any()
    assert np.isnan(res.rows_needed).all()  # estimated with return_details only


def test_evaluation_protocol_accepts_constraints():
    from skctd.evaluation import budget_sweep, validate_guarantee

    signal, y, p, e, _ = make_data(600, seed=13, expert="useless")
    kw = dict(methods=["ctd"], alphas=[0.5], n_repeats=3, batch_sizes=[32])
    plain = quiet(budget_sweep, y, p, e, signal, **kw)
    safe = quiet(budget_sweep, y, p, e, signal, constraints={"harm": 0.0}, **kw)
    assert np.isfinite(plain.thresholds["ctd"]).any()
    assert np.isinf(safe.thresholds["ctd"]).all()
    g = quiet(
        validate_guarantee, y, p, e, signal, n_splits=5, constraints={"harm": 0.0}
    )
    assert np.isinf(g.thresholds["pareto"]).all()

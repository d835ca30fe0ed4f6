"""Behaviour of the multi-risk calibration that mutation testing showed untested.

Each test pins what a surviving mutant of ``skctd/calibration`` changed without any
other test noticing (``python tools/mutation.py``): user losses (argument passing,
validation, sign tests with kept losses of 0 or 1), the one-standard-error rule
at several budgets, the summary and repr of results.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from skctd.calibration import Risk, calibrate_budget_sweep, calibrate_threshold


def quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def make_data(n, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    signal = rng.uniform(size=n)
    right_p = rng.uniform(size=n) < 0.75
    probe = np.where(np.where(right_p, y, 1 - y) == 1, 0.7, 0.3)
    right_e = rng.uniform(size=n) < 0.5 + 0.5 * signal
    expert = np.where(np.where(right_e, y, 1 - y) == 1, 0.9, 0.1)
    return signal, y, probe, expert


# ------------------------------------------------------------------ user losses
def three_level_loss(**kw):
    """{0, 1/2, 1}: kept rows too take all three values (unlike the built-in
    no-harm loss, whose kept rows are all 1/2)."""
    wrong = (kw["scores"] >= 0.5) != kw["y"]
    kept_level = (kw["rows"] % 3) / 2.0  # 0, 0.5, 1 by row
    return np.where(kw["delegated"], wrong.astype(float), kept_level)


def test_user_sign_risk_counts_kept_and_delegated_rows():
    signal, y, p, e = make_data(300, seed=1)
    risk = Risk("mine", 0.5, loss=three_level_loss, pvalue="sign")
    res = quiet(
        calibrate_threshold, signal, y, p, e, alpha=0.5, delta=0.1,
        random_state=0, constraints=[risk],
    )  # fmt: skip
    t = res.test_indices
    rows = np.arange(signal.size)[t]
    kept = (rows % 3) / 2.0
    wrong_e = ((e[t] >= 0.5) != y[t]).astype(float)
    for j in np.flatnonzero(res.pareto_mask):
        loss = np.where(signal[t] > res.thresholds[j], wrong_e, kept)
        worse, better = np.sum(loss == 1), np.sum(loss == 0)
        want = stats.binom.cdf(worse, worse + better, 0.5) if worse + better else 1.0
        assert res.risk_pvalues["mine"][j] == pytest.approx(want, rel=1e-9), j
        assert res.risks_test["mine"][j] == pytest.approx(loss.mean(), abs=1e-12)


def test_user_loss_gets_only_the_arguments_it_names():
    signal, y, p, e = make_data(200, seed=2)
    seen = []

    def named(y, delegated):
        seen.append((y.dtype.kind, delegated.dtype.kind))
        return np.zeros(y.shape[0])

    quiet(
        calibrate_threshold, signal, y, p, e, alpha=0.4, delta=0.1, random_state=0,
        constraints=[Risk("named", 0.1, loss=named, holds_at_inf=True)],
    )  # fmt: skip
    assert seen == [("i", "b"), ("i", "b")]  # called twice: all kept, all delegated


@pytest.mark.parametrize(
    "values, pvalue, match",
    [
        (1.5, "wsr", r"values in \[0, 1\]; got values in \[0\.5, 1\.5\]"),
        (-0.5, "wsr", r"values in \[0, 1\]; got values in \[-0\.5, 0\.5\]"),
        (np.nan, "wsr", r"must return values in \[0, 1\]"),
        (0.25, "sign", r"pvalue='sign', which needs losses in \{0, 0\.5, 1\}"),
        (0.75, "sign", r"pvalue='sign', which needs losses in \{0, 0\.5, 1\}"),
    ],
)
def test_user_loss_values_are_checked(values, pvalue, match):
    signal, y, p, e = make_data(60, seed=3)

    def bad(rows):
        out = np.full(rows.size, 0.5)
        out[rows == 7] = values
        return out

    with pytest.raises(ValueError, match=match):
        calibrate_threshold(
            signal, y, p, e, alpha=0.4, delta=0.1, random_state=0,
            constraints=[Risk("bad", 0.5, loss=bad, pvalue=pvalue)],
        )  # fmt: skip


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_sign_losses_at_each_allowed_value_pass(value):
    signal, y, p, e = make_data(60, seed=3)
    res = quiet(
        calibrate_threshold, signal, y, p, e, alpha=0.4, delta=0.1, random_state=0,
        constraints=[Risk("ok", 0.5, loss=lambda rows: np.full(rows.size, value),
                          pvalue="sign")],
    )  # fmt: skip
    assert np.all(res.risks_test["ok"] == value)


def test_risk_repr_names_a_loss_without_a_name_and_the_cost_cap():
    loss = functools.partial(np.minimum, 1.0)
    assert repr(Risk("p", 0.2, loss=loss)) == (
        "Risk('p', level=0.2, pvalue='wsr', loss=partial)"
    )
    assert repr(Risk("cost", 3.0, cost_max=40.0)) == (
        "Risk('cost', level=3, pvalue='wsr', cost_max=40)"
    )


# ------------------------------------------------------------------ one-SE rule
def one_se_by_hand(res, signal, y, p, e, best_index):
    o = res.opt_indices
    n = o.size

    def losses(lam):
        d = signal[o] > lam
        return np.where(d, (e[o] >= 0.5) != y[o], (p[o] >= 0.5) != y[o]).astype(float)

    ref = losses(res.thresholds[best_index])
    for j in np.flatnonzero(res.certified):  # from the most conservative
        diff = losses(res.thresholds[j]) - ref
        if diff.mean() <= diff.std() / math.sqrt(n) + 1e-12:
            return j
    raise AssertionError("the best threshold is within one SE of itself")


def test_one_se_picks_an_intermediate_threshold_at_every_budget():
    # the expert is right more often than the probe: delegating more helps, so
    # +inf is many SEs worse than the best and the rule stops in between
    rng = np.random.default_rng(6)
    n = 2000
    y = rng.integers(0, 2, n)
    signal = rng.uniform(size=n)
    p = np.where(np.where(rng.uniform(size=n) < 0.7, y, 1 - y) == 1, 0.7, 0.3)
    e = np.where(np.where(rng.uniform(size=n) < 0.85, y, 1 - y) == 1, 0.9, 0.1)
    opt, test = np.arange(600), np.arange(600, n)
    alphas = [0.2, 0.35, 0.5]
    chosen, between = [], 0
    for alpha in alphas:
        kw = dict(alphas=[alpha], delta=0.1, splits=[(opt, test)], return_details=True)
        best = quiet(calibrate_budget_sweep, signal, y, p, e, **kw).details[0]
        one = quiet(
            calibrate_budget_sweep, signal, y, p, e, selection="one_se", **kw
        ).details[0]
        want = one_se_by_hand(one, signal, y, p, e, best.selected_index)
        assert one.selected_index == want
        assert want <= best.selected_index
        between += 0 < want < best.selected_index
        chosen.append(one.thresholds[want])
    # all budgets at once give each budget's own choice
    sweep = quiet(
        calibrate_budget_sweep, signal, y, p, e, alphas=alphas, delta=0.1,
        splits=[(opt, test)], selection="one_se",
    )  # fmt: skip
    np.testing.assert_array_equal(sweep.thresholds[0], chosen)
    assert len(set(chosen)) == 3 and between == 2


# ------------------------------------------------------------------ results
def test_sweep_repr_counts_the_uncertified_pairs():
    signal, y, p, e = make_data(40, seed=4)
    sweep = quiet(
        calibrate_budget_sweep, signal, y, p, e, alphas=[0.02, 0.03, 0.6],
        delta=0.1, n_splits=2, random_state=0,
    )  # fmt: skip
    none = int((sweep.n_certified == 0).sum())
    assert none == 4 and sweep.n_certified.size == 6
    assert repr(sweep).endswith("uncertified=4)")


def test_summary_of_a_risk_that_holds_surely_at_inf():
    signal, y, p, e = make_data(300, seed=6)
    never = Risk("never", 0.0, loss=lambda delegated: delegated.astype(float),
                 pvalue="binomial", holds_at_inf=True)  # fmt: skip
    res = quiet(
        calibrate_threshold, signal, y, p, e, alpha=0.4, delta=0.1,
        random_state=0, constraints=[never],
    )  # fmt: skip
    assert res.selected_index == 0 and res.n_certified == 1
    lines = res.summary().split("\n")
    assert lines[0].startswith("Pareto-filtered LTT (fixed_sequence), alpha=0.4")
    assert lines[4] == (
        "  never <= 0: opt=0.0000, test=0.0000, holds surely (never delegating)"
    )
    # the sequence stops at the first delegating threshold (index 1)
    assert res.blocked_index == 1 and res.blocked_by == ("never",)
    assert lines[5].startswith(f"  stopped at threshold {res.thresholds[1]:.6g}")
    assert "never" in res.guarantee()


@pytest.mark.parametrize("level, want", [(1.0, 0.0), (0.0, 1.0)])
def test_user_risk_at_a_trivial_level(level, want):
    # a level of 1 always holds (p = 0, no test); a level of 0 is never shown
    signal, y, p, e = make_data(200, seed=7)
    risk = Risk("any", level, loss=lambda delegated: 0.5 * delegated, pvalue="wsr")
    res = quiet(
        calibrate_threshold, signal, y, p, e, alpha=0.4, delta=0.1,
        random_state=0, constraints=[risk],
    )  # fmt: skip
    tested = res.pareto_mask
    assert tested.sum() >= 5
    np.testing.assert_array_equal(res.risk_pvalues["any"][tested], want)
    assert res.selected_index > 0 if level == 1.0 else res.n_certified == 0


# ------------------------------------------------------------------ risks on D_opt
def test_risks_on_the_optimisation_split_and_miss_with_betting():
    signal, y, p, e = make_data(500, seed=8)
    risks = [Risk("error", 0.3), Risk("miss", 0.4, pvalue="wsr")]
    res = quiet(
        calibrate_threshold, signal, y, p, e, alpha=0.4, delta=0.1,
        random_state=7, constraints=risks,
    )  # fmt: skip
    o, t = res.opt_indices, res.test_indices
    for rows, got in ((o, res.risks_opt), (t, res.risks_test)):
        deleg = signal[rows][None, :] > res.thresholds[:, None]
        wrong = np.where(deleg, (e[rows] >= 0.5) != y[rows], (p[rows] >= 0.5) != y[rows])
        np.testing.assert_allclose(got["error"], wrong.mean(1), atol=1e-12)
        np.testing.assert_allclose(
            got["miss"], wrong[:, y[rows] == 1].mean(1), atol=1e-12
        )
    # "miss" is a risk of the unsafe rows only: betting takes them in the split's
    # random order, restricted to them
    from skctd.calibration import betting_pvalues, opt_test_split

    rng = np.random.RandomState(7)
    opt_test_split(signal.size, random_state=rng)
    perm = rng.permutation(res.n_test)
    active = y[t] == 1
    order = perm[active[perm]]
    for j in np.flatnonzero(res.pareto_mask)[1:]:
        deleg = signal[t] > res.thresholds[j]
        wrong = np.where(deleg, (e[t] >= 0.5) != y[t], (p[t] >= 0.5) != y[t])
        want = betting_pvalues(wrong[order].astype(float), 0.4, 0.1)
        assert res.risk_pvalues["miss"][j] == pytest.approx(want, rel=1e-9), j


def test_miss_risk_without_unsafe_rows_in_the_optimisation_split():
    signal, y, p, e = make_data(300, seed=9)
    y = y.copy()
    opt = np.flatnonzero(y == 0)[:80]
    test = np.setdiff1d(np.arange(300), opt)
    res = quiet(
        calibrate_budget_sweep, signal, y, p, e, alphas=[0.4], delta=0.1,
        splits=[(opt, test)], constraints={"miss": 0.4}, return_details=True,
    )  # fmt: skip
    d = res.details[0]
    assert np.all(np.isnan(d.risks_opt["miss"]))  # no unsafe row: no estimate
    deleg = signal[test][None, :] > d.thresholds[:, None]
    wrong = np.where(deleg, (e[test] >= 0.5) != y[test], (p[test] >= 0.5) != y[test])
    np.testing.assert_allclose(
        d.risks_test["miss"], wrong[:, y[test] == 1].mean(1), atol=1e-12
    )


# ------------------------------------------------------------------ warnings
def warned(func, *args, **kwargs):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = func(*args, **kwargs)
    return res, [str(w.message) for w in rec]


def test_warning_when_not_even_the_probe_meets_the_error_level():
    signal, y, p, e = make_data(300, seed=10)
    res, msgs = warned(
        calibrate_threshold, signal, y, p, e, alpha=0.4, delta=0.1,
        random_state=0, constraints={"error": 0.05},
    )  # fmt: skip
    # the testing sequence stops at a delegating threshold, where both risks fail
    assert res.n_certified == 0 and res.blocked_by == ("error", "budget")
    assert res.blocked_index > 0
    assert len(msgs) == 1
    assert msgs[0].startswith(
        "No threshold could be certified for the constraints ['error'] "
        f"(alpha=0.4, delta=0.1, n_test={res.n_test}); blocked by error, budget. Not "
        "even the probe alone (threshold=+inf) is certified to meet: the cascade's error "
        "rate is at most 0.05. The cascade falls back to never delegating, but NO "
        "guarantee holds for these constraints: "
    )


def test_warnings_when_the_test_split_is_too_small_for_the_budget():
    signal, y, p, e = make_data(20, seed=11)
    res, msgs = warned(
        calibrate_threshold, signal, y, p, e, alpha=0.1, delta=0.1,
        random_state=0, constraints={"error": 0.05},
    )  # fmt: skip
    assert res.n_certified == 0 and res.blocked_by == ("error", "budget")
    assert len(msgs) == 2
    assert msgs[0].startswith(
        f"No threshold could be certified with n={res.n_test} test-split rows at "
        "alpha=0.1 and delta=0.1"
    )
    assert "needs at least n=22 test-split rows" in msgs[0]
    assert "blocked by error, budget" in msgs[1]
    assert "is certified to meet: the cascade's error rate is at most 0.05." in msgs[1]
    assert res.rows_needed == math.inf
    assert msgs[1].endswith(
        "these constraints: on the optimisation split no threshold looks within the "
        "constraints at any sample size, so more calibration data is unlikely to "
        "change this."
    )


def test_rows_phrase_converts_test_rows_to_calibration_rows():
    from test_calibration_risks import make_data as make_risk_data

    signal, y, p, e, _ = make_risk_data(60, seed=7, expert="perfect")
    res, msgs = warned(
        calibrate_threshold, signal, y, p, e, alpha=0.3, delta=0.1,
        random_state=0, constraints={"harm": 0.0},
    )  # fmt: skip
    need = res.rows_needed
    cal = math.ceil(need * (res.n_opt + res.n_test) / res.n_test)
    assert res.n_test < need < math.inf and cal > need
    assert msgs[-1].endswith(
        "an estimate from the optimisation split's effect sizes says about "
        f"{int(need):,} test-split rows (~{cal:,} calibration rows at this opt/test "
        "ratio) would certify the most promising threshold."
    )


def test_warning_when_only_never_delegating_is_certified():
    signal, y, p, e = make_data(300, seed=12)
    e = 1.0 - e  # an expert that is mostly wrong: delegating harms
    res, msgs = warned(
        calibrate_threshold, signal, y, p, e, alpha=0.4, delta=0.1,
        random_state=0, constraints={"harm": 0.0},
    )  # fmt: skip
    assert res.n_certified == 1 and res.certified[0] and res.blocked_index > 0
    assert len(msgs) == 1
    assert msgs[0].startswith(
        "No threshold that delegates could be certified under the constraints "
        f"['harm'] (alpha=0.4, delta=0.1, n_test={res.n_test}): the testing "
        f"sequence stopped at threshold {res.thresholds[res.blocked_index]:.6g}, "
        "blocked by harm. The cascade never delegates (threshold=+inf, probe only); "
    )


def test_sweep_warning_counts_pairs_and_blocking_risks():
    signal, y, p, e = make_data(120, seed=13)
    e = 1.0 - e
    res, msgs = warned(
        calibrate_budget_sweep, signal, y, p, e, alphas=[0.02, 0.4, 0.5], delta=0.1,
        n_splits=3, random_state=0, constraints={"harm": 0.0}, return_details=True,
    )  # fmt: skip
    stuck = ~res.delegating_certified
    none = res.n_certified == 0
    assert stuck.all() and none[:, 0].all() and not none[:, 1:].any()
    assert np.all(res.n_certified[:, 1:] == 1)  # +inf only
    counts = {}
    for name in res.blocked_by[stuck]:
        counts[name or "nothing left"] = counts.get(name or "nothing left", 0) + 1
    assert counts == {"budget": 3, "harm": 6}
    text = [m for m in msgs if "(split, budget) pairs" in m]
    assert len(text) == 1
    need = res.rows_needed[stuck]
    finite = need[np.isfinite(need)]
    n_inf = int(np.isinf(need).sum())
    assert np.isnan(need).sum() == 0 and finite.size == 3 and n_inf == 6
    assert text[0] == (
        "9 of 9 (split, budget) pairs never delegate under the constraints "
        "['harm'] (delta=0.1); 3 of them certified nothing at all (not "
        "even threshold=+inf; then no guarantee holds). First risk blocking the "
        "testing sequence: {'budget': 3, 'harm': 6}."
        " Estimated test-split rows that would certify the most promising threshold "
        "(from the optimisation split's effect sizes; an estimate): median "
        f"{int(np.median(finite)):,} over the 3 pairs where one looks feasible. In 6 "
        "pairs no delegating threshold looks within the constraints on the "
        "optimisation split at any size."
    )


def test_summary_prints_p_values_of_zero_and_a_block_at_plus_inf():
    signal, y, p, e = make_data(200, seed=7)
    risk = Risk("any", 1.0, loss=lambda delegated: 0.5 * delegated, pvalue="wsr")
    res = quiet(
        calibrate_threshold, signal, y, p, e, alpha=0.4, delta=0.1,
        random_state=0, constraints=[risk],
    )  # fmt: skip
    assert res.selected_index > 0 and res.risk_pvalues["any"][res.selected_index] == 0
    assert res.summary().split("\n")[4].endswith(", p=0")  # not "holds surely"
    # nothing certified, the sequence blocked at its first threshold, +inf
    small = quiet(
        calibrate_threshold, signal[:20], y[:20], p[:20], e[:20], alpha=0.1,
        delta=0.1, random_state=0,
    )  # fmt: skip
    assert small.n_certified == 0 and small.blocked_index == 0
    assert small.summary().split("\n")[-2:] == [
        "  stopped at threshold inf, blocked by: budget",
        "  estimated test rows to certify a delegating threshold: 22 (from the "
        "optimisation split)",
    ]


class _NoSignature:
    """A callable whose signature cannot be read: it gets every argument."""

    @property
    def __signature__(self):
        raise ValueError("no signature")

    def __call__(self, **kw):
        assert set(kw) == {"y", "scores", "delegated", "probe_scores",
                           "expert_scores", "rows"}  # fmt: skip
        return np.zeros(kw["y"].shape[0])


def test_user_loss_without_a_signature_gets_every_argument():
    signal, y, p, e = make_data(100, seed=2)
    res = quiet(
        calibrate_threshold, signal, y, p, e, alpha=0.4, delta=0.1, random_state=0,
        constraints=[Risk("nosig", 0.1, loss=_NoSignature())],
    )  # fmt: skip
    assert np.all(res.risks_test["nosig"] == 0)


@pytest.mark.parametrize(
    "alpha, delta, n",
    [(0.1, 0.1, 8), (0.3, 0.1, 8), (0.25, 0.1, 8), (0.05, 0.05, 8), (0.2, 0.01, 8),
     (0.5, 0.125, 3)],  # the last: p = delta exactly at 3 rows, 0.5 ** 3
)  # fmt: skip
def test_rows_needed_for_the_budget_alone_is_min_test_size(alpha, delta, n):
    # too few test rows to certify even +inf: the estimate is the exact size at
    # which +inf (no row delegated) would be certified, min_test_size
    from skctd.calibration import min_test_size

    signal, y, p, e = make_data(n, seed=1)
    res = quiet(
        calibrate_threshold, signal, y, p, e, alpha=alpha, delta=delta,
        random_state=0,
    )  # fmt: skip
    assert res.n_certified == 0
    assert res.rows_needed == min_test_size(alpha, delta)
    assert res.rows_needed_index == 0


def test_rows_needed_is_infinite_with_index_minus_one_when_hopeless():
    signal, y, p, e = make_data(120, seed=13)
    res = quiet(
        calibrate_threshold, signal, y, p, 1.0 - e, alpha=0.4, delta=0.1,
        random_state=0, constraints={"harm": 0.0},
    )  # fmt: skip
    assert res.rows_needed == math.inf and res.rows_needed_index == -1


def test_user_risk_with_hoeffding_bentkus_pvalues():
    from skctd.calibration import hoeffding_bentkus_pvalues

    signal, y, p, e = make_data(400, seed=14)

    def soft_error(y, scores):
        return np.abs(y - scores)  # in [0, 1], not 0/1

    res, msgs = warned(
        calibrate_threshold, signal, y, p, e, alpha=0.4, delta=0.1, random_state=0,
        constraints=[Risk("soft", 0.2, loss=soft_error, pvalue="hb")],
    )  # fmt: skip
    t = res.test_indices
    for j in np.flatnonzero(res.pareto_mask):
        scores = np.where(signal[t] > res.thresholds[j], e[t], p[t])
        r = np.mean(np.abs(y[t] - scores))
        assert res.risks_test["soft"][j] == pytest.approx(r, abs=1e-12)
        want = hoeffding_bentkus_pvalues(r, t.size, 0.2)
        assert res.risk_pvalues["soft"][j] == pytest.approx(want, rel=1e-9), j
    # the soft error is above 0.2 at every threshold on D_opt too: nothing is
    # certified, and no test-split size would certify anything (estimate: inf)
    assert res.n_certified == 0 and res.blocked_by == ("soft",)
    assert np.all(res.risks_opt["soft"] > 0.25)
    assert res.rows_needed == math.inf and res.rows_needed_index == -1


# ------------------------------------------------------------------ risk checks
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Risk("", 0.1), r"^Risk name must be a non-empty string, got ''\.$"),
        (lambda: Risk("cost", 1.0, cost_max=0.0),
         r"^cost_max must be a positive finite number, got 0\.0\.$"),
        (lambda: Risk("cost", 1.0, cost_max=True),
         r"^cost_max must be a positive finite number, got True\.$"),
        (lambda: Risk("u", 0.3, loss=np.abs, pvalue="sign"),
         r"^pvalue='sign' needs level 0\.5 for a user loss\.$"),
        (lambda: Risk("u", float("nan"), loss=np.abs),
         r"^The level of risk 'u' must be finite, got nan\.$"),
    ],
)  # fmt: skip
def test_risk_parameters_are_checked(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_constraints_in_every_accepted_form():
    signal, y, p, e = make_data(300, seed=15)
    kw = dict(alpha=0.4, delta=0.1, random_state=0)
    as_dict = quiet(calibrate_threshold, signal, y, p, e, constraints={"error": 0.3}, **kw)
    for form in (Risk("error", 0.3), [Risk("error", 0.3)],
                 {"error": Risk("error", 0.3)}):  # fmt: skip
        res = quiet(calibrate_threshold, signal, y, p, e, constraints=form, **kw)
        assert res.constraints == ("budget", "error")
        np.testing.assert_array_equal(res.pvalues, as_dict.pvalues)
        assert res.threshold == as_dict.threshold
    with pytest.raises(ValueError, match=r"^constraints must be None, a mapping"):
        calibrate_threshold(signal, y, p, e, constraints=3, **kw)
    with pytest.raises(ValueError, match=r"constraints\['miss'\] is a Risk named 'error'"):
        calibrate_threshold(
            signal, y, p, e, constraints={"miss": Risk("error", 0.3)}, **kw
        )


def test_user_loss_of_the_wrong_shape():
    signal, y, p, e = make_data(50, seed=16)
    with pytest.raises(ValueError, match=r"returned shape \(2,\); it must return one"):
        calibrate_threshold(
            signal, y, p, e, alpha=0.4, delta=0.1, random_state=0,
            constraints=[Risk("w", 0.5, loss=lambda y: np.zeros(2))],
        )  # fmt: skip


def test_cost_above_the_optimisation_maximum_is_capped_and_said():
    from skctd.calibration import opt_test_split

    signal, y, p, e = make_data(400, seed=17)
    cost = np.ones(400)
    opt, test = opt_test_split(400, random_state=np.random.RandomState(0))
    cost[test[:5]] = 10.0  # five test rows cost more than any optimisation row
    res, msgs = warned(
        calibrate_threshold, signal, y, p, e, alpha=0.4, delta=0.1, random_state=0,
        constraints={"cost": 0.5}, cost=cost,
    )  # fmt: skip
    np.testing.assert_array_equal(res.test_indices, np.sort(test))
    assert res.cost_scale["cost"] == (1.0, 5)
    assert any(
        m.startswith("5 test-split row(s) cost more than c_max=1 (the largest cost")
        for m in msgs
    )

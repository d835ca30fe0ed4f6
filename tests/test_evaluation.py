"""The evaluation protocol on arrays: known answers on synthetic data."""

import json
import sys
import warnings

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from skctd import delegation_value, topk_delegation_mask, uncertainty_signal
from skctd.calibration import opt_test_split, reference_calibrate_threshold
from skctd.evaluation import (
    DEFAULT_ALPHAS,
    METHODS,
    binary_vs_continuous,
    budget_sweep,
    calibration_masks,
    cascade_metrics,
    dv_ranking_curve,
    group_analysis,
    group_table,
    validate_guarantee,
)


def make_pool(n=1200, seed=0, expert="perfect"):
    """Probe right ~75% of the time; an expert that is perfect, or always wrong."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    probe = np.clip(0.5 + (2 * y - 1) * rng.normal(0.12, 0.25, n), 0, 1)
    if expert == "perfect":
        e = np.where(y == 1, 0.95, 0.05)
    else:  # confidently wrong everywhere
        e = np.where(y == 1, 0.1, 0.9)
    return y, probe, e


def oracle_dv(y, p, e):
    return delegation_value(y, p, e)


# ------------------------------------------------------------------ budget sweep
def test_perfect_expert_and_oracle_dv_accuracy_grows_with_budget():
    y, p, e = make_pool()
    res = budget_sweep(y, p, e, oracle_dv(y, p, e), batch_sizes=[128], n_repeats=3)
    _, acc, _ = res.curve("ctd", "accuracy")
    _, probe_acc, _ = res.curve("probe_only", "accuracy")
    _, expert_acc, _ = res.curve("expert_only", "accuracy")
    _, rate, _ = res.curve("ctd", "delegation_rate")
    # more budget never hurts much, and the cascade ends far above the probe
    assert np.all(np.diff(acc) >= -0.01)
    assert acc[-1] > acc[0] + 0.1
    assert acc[0] > probe_acc[0]
    assert expert_acc[0] == 1.0
    # delegation rate grows with the budget
    assert rate[-1] > rate[0]
    # the oracle top-k is at least as good as DV top-k with an oracle DV (same signal)
    _, dv_topk, _ = res.curve("dv_topk", "accuracy")
    _, oracle, _ = res.curve("oracle_topk", "accuracy")
    np.testing.assert_allclose(dv_topk, oracle)


def test_useless_expert_ctd_stays_at_probe_only():
    y, p, e = make_pool(expert="wrong")
    dv = np.random.default_rng(1).normal(size=y.size)  # an uninformative DV probe
    res = budget_sweep(y, p, e, dv, batch_sizes=[64], n_repeats=3)
    _, acc, _ = res.curve("ctd", "accuracy")
    _, auc, _ = res.curve("ctd", "auroc")
    _, rate, _ = res.curve("ctd", "delegation_rate")
    _, probe_acc, _ = res.curve("probe_only", "accuracy")
    _, probe_auc, _ = res.curve("probe_only", "auroc")
    # every delegation hurts on the optimisation split, so the Pareto front is
    # "never delegate" only: CTD is exactly the probe
    np.testing.assert_array_equal(rate, 0.0)
    np.testing.assert_allclose(acc, probe_acc)
    np.testing.assert_allclose(auc, probe_auc)
    assert np.all(np.isinf(res.thresholds["ctd"]))
    # top-k methods over-delegate and degrade
    _, topk_acc, _ = res.curve("dv_topk", "accuracy", batch_size=64)
    assert topk_acc[-1] < probe_acc[-1] - 0.3


def test_topk_rate_is_floor_alpha_b_over_b_on_full_batches():
    y, p, e = make_pool(n=1024)
    cal = np.zeros(y.size, dtype=bool)
    cal[::2] = True  # 512 evaluation rows: full batches for 32, 64, 128
    dv = np.random.default_rng(2).normal(size=y.size)
    res = budget_sweep(y, p, e, dv, calibration_mask=cal, n_repeats=2)
    assert res.n_evaluation == 512
    for m in ("dv_topk", "unc_topk", "oracle_topk"):
        for b in (32, 64, 128):
            alphas, rate, _ = res.curve(m, "delegation_rate", batch_size=b)
            np.testing.assert_allclose(rate, np.floor(alphas * b + 1e-9) / b)


def test_table_layout_and_reference_lines():
    y, p, e = make_pool(n=600)
    dv = oracle_dv(y, p, e)
    res = budget_sweep(y, p, e, dv, n_repeats=2)
    t = res.table
    n_rows = DEFAULT_ALPHAS.size * (2 + 3 * 3 + 2)
    assert all(len(col) == n_rows for col in t.values())
    assert set(t["method"]) == set(METHODS)
    ref = t["method"] == "probe_only"
    assert np.all(t["delegation_rate"][ref] == 0)
    assert np.all(np.isnan(t["mean_v_delegated"][ref]))
    exp = t["method"] == "expert_only"
    assert np.all(t["delegation_rate"][exp] == 1)
    # thresholds only for calibrated methods
    cal = np.isin(t["method"], ["ctd", "unc_calibrated"])
    assert np.all(np.isnan(t["threshold"][~cal]))
    assert not np.any(np.isnan(t["threshold"][cal]))
    assert np.all(
        t["batch_size"][~np.isin(t["method"], ["dv_topk", "unc_topk", "oracle_topk"])]
        == 0
    )


def test_budget_sweep_matches_manual_protocol():
    """CTD and Unc. top-k numbers recomputed by hand from the same split."""
    y, p, e = make_pool(n=800, seed=3)
    rng = np.random.default_rng(3)
    dv = oracle_dv(y, p, e) + rng.normal(0, 0.3, y.size)
    cal = rng.uniform(size=y.size) < 0.5
    res = budget_sweep(
        y, p, e, dv, calibration_mask=cal, alphas=[0.2, 0.4], batch_sizes=[32],
        n_repeats=1, shuffle=False,
    )
    ev = ~cal
    thr = res.thresholds["ctd"][0]
    for j, a in enumerate([0.2, 0.4]):
        d = dv[ev] > thr[j]
        s = np.where(d, e[ev], p[ev])
        _, acc, _ = res.curve("ctd", "accuracy")
        _, auc, _ = res.curve("ctd", "auroc")
        assert acc[j] == pytest.approx(np.mean((s >= 0.5) == y[ev]))
        assert auc[j] == pytest.approx(roc_auc_score(y[ev], s))
        u = uncertainty_signal(p[ev], p[cal])
        m = topk_delegation_mask(u, a, 32)
        _, mv, _ = res.curve("unc_topk", "mean_v_delegated", batch_size=32)
        assert mv[j] == pytest.approx(delegation_value(y[ev], p[ev], e[ev])[m].mean())


def test_deterministic_and_repeats():
    y, p, e = make_pool(n=600)
    dv = oracle_dv(y, p, e)
    a = budget_sweep(y, p, e, dv, alphas=[0.3], random_state=5, n_repeats=1)
    b = budget_sweep(y, p, e, dv, alphas=[0.3], random_state=5, n_repeats=1)
    for k in a.table:
        np.testing.assert_array_equal(a.table[k], b.table[k])
    assert np.all(a.table["auroc_std"] == 0)
    assert np.all(np.isnan(a.table["auroc_se"]))  # one split: no spread to estimate
    r = budget_sweep(y, p, e, dv, alphas=[0.3], n_repeats=4, random_state=5)
    assert r.n_repeats == 4 and r.thresholds["ctd"].shape == (4, 1)
    topk = r.table["method"] == "dv_topk"
    assert np.all(r.table["accuracy_std"][topk] > 0)


def test_to_dict_is_json_and_to_frame(monkeypatch):
    y, p, e = make_pool(n=400)
    res = budget_sweep(y, p, e, oracle_dv(y, p, e), alphas=[0.1, 0.5], n_repeats=2)
    text = json.dumps(res.to_dict())
    assert "mean_v_delegated" in text and "NaN" not in text
    pd = pytest.importorskip("pandas")
    df = res.to_frame()
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns[:3]) == ["method", "batch_size", "alpha"]
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="report"):
        res.to_frame()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"alphas": [0.0, 0.5]}, "alphas"),
        ({"batch_sizes": [0]}, "batch_sizes"),
        ({"methods": ["ctd", "nope"]}, "methods"),
        ({"calibration_size": 1.5}, "calibration_size"),
        ({"n_repeats": 0}, "n_repeats"),
        ({"calibration_mask": np.ones(10, dtype=bool)}, "calibration_mask"),
    ],
)
def test_bad_parameters(kwargs, match):
    y, p, e = make_pool(n=200)
    with pytest.raises(ValueError, match=match):
        budget_sweep(y, p, e, oracle_dv(y, p, e), **kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        # the shared checks of skctd.utils are stricter than the protocol's old
        # float()/int() conversions, which accepted strings and truncated floats
        ({"opt_fraction": "0.3"}, "opt_fraction must be a number strictly"),
        ({"calibration_size": True}, "calibration_size must be a number strictly"),
        ({"batch_sizes": [32, 64.5]}, r"batch_sizes\[1\] must be a positive integer"),
        ({"batch_sizes": [32.0]}, r"batch_sizes\[0\] must be a positive integer"),
        ({"batch_sizes": []}, "batch_sizes is empty"),
        ({"n_repeats": 1.5}, "n_repeats must be a positive integer"),
        ({"alphas": [0.2, np.nan]}, "alphas"),
    ],
)
def test_bad_parameters_follow_the_shared_rules(kwargs, match):
    y, p, e = make_pool(n=200)
    with pytest.raises(ValueError, match=match):
        budget_sweep(y, p, e, oracle_dv(y, p, e), **kwargs)


def test_other_protocols_follow_the_shared_rules():
    y, p, e = make_pool(n=200)
    v = oracle_dv(y, p, e)
    with pytest.raises(ValueError, match="n_splits must be a positive integer"):
        validate_guarantee(y, p, e, v, n_splits=2.0)
    with pytest.raises(ValueError, match="delta must be a number strictly"):
        validate_guarantee(y, p, e, v, delta="0.1")
    with pytest.raises(ValueError, match="alpha must be a number strictly"):
        group_analysis(y, p, e, v, np.zeros(200), alpha=np.float64(1.0))
    with pytest.raises(ValueError, match="v has 3 rows but y has 200"):
        cascade_metrics(y, p, e, np.ones(200, dtype=bool), v=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="Need at least 4 rows"):
        cascade_metrics([0, 1, 1], [0.2, 0.3, 0.4], [0.1, 0.9, 0.8], [True] * 3)
    # labels as bool, int or float give the same numbers
    kw = dict(alphas=[0.3], batch_sizes=[32], n_repeats=2)
    a = budget_sweep(y, p, e, v, **kw)
    b = budget_sweep(y.astype(bool), p, e, v, **kw)
    c = budget_sweep(y.astype(float), p, e, v, **kw)
    for key in ("auroc", "accuracy", "delegation_rate", "mean_v_delegated"):
        np.testing.assert_array_equal(a.table[key], b.table[key])
        np.testing.assert_array_equal(a.table[key], c.table[key])


def test_calibration_masks_are_the_splits_of_the_protocol():
    y, p, e = make_pool(n=400)
    v = oracle_dv(y, p, e)
    masks = calibration_masks(400, n_splits=3, calibration_size=0.4, random_state=1)
    assert len(masks) == 3 and all(m.dtype == bool and m.sum() == 160 for m in masks)
    assert not np.array_equal(masks[0], masks[1])
    # the mask budget_sweep draws, and the stream it continues for the opt/test split
    rs = np.random.RandomState(7)
    mask = calibration_masks(400, random_state=rs)[0]
    a = budget_sweep(
        y, p, e, v, alphas=[0.2, 0.5], batch_sizes=[32], random_state=7, n_repeats=1
    )
    b = budget_sweep(
        y, p, e, v, alphas=[0.2, 0.5], batch_sizes=[32], calibration_mask=mask,
        random_state=rs, n_repeats=1,
    )
    np.testing.assert_array_equal(a.thresholds["ctd"], b.thresholds["ctd"])
    for key in ("auroc", "accuracy", "delegation_rate"):
        np.testing.assert_array_equal(a.table[key], b.table[key])
    fixed = np.arange(400) < 100
    np.testing.assert_array_equal(calibration_masks(400, calibration_mask=fixed)[0], fixed)
    with pytest.raises(ValueError, match="n_splits > 1"):
        calibration_masks(400, calibration_mask=fixed, n_splits=2)
    with pytest.raises(ValueError, match="boolean array of shape"):
        calibration_masks(400, calibration_mask=fixed.astype(int))
    with pytest.raises(ValueError, match="both halves need rows"):
        calibration_masks(3, calibration_size=0.1)
    with pytest.raises(ValueError, match="calibration_size must be a number"):
        calibration_masks(400, calibration_size=1.0)


def test_bad_arrays():
    y, p, e = make_pool(n=200)
    with pytest.raises(ValueError, match="same length"):
        budget_sweep(y, p, e, np.zeros(10))
    with pytest.raises(ValueError, match="probe_scores"):
        budget_sweep(y, p + 2, e, p)
    with pytest.raises(ValueError, match="0/1"):
        budget_sweep(y + 3, p, e, p)
    with pytest.raises(ValueError, match=r"dv_scores contains NaN .* \(rows \[3\]\)"):
        dv = np.zeros(y.size)
        dv[3] = np.nan
        budget_sweep(y, p, e, dv)


def test_cascade_metrics_auroc_with_ties_and_single_class():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.round(rng.uniform(size=300), 1)  # many ties
    e = np.round(rng.uniform(size=300), 1)
    d = rng.uniform(size=(300, 3)) < [0.0, 0.3, 1.0]
    m = cascade_metrics(y, p, e, d)
    for j in range(3):
        assert m["auroc"][j] == pytest.approx(roc_auc_score(y, np.where(d[:, j], e, p)))
    assert np.isnan(m["mean_v_delegated"][0])
    with pytest.warns(UserWarning, match="single class"):
        m = cascade_metrics(np.ones(5, int), p[:5], e[:5], np.ones(5, bool))
    assert np.isnan(m["auroc"][0])


# ------------------------------------------------------------------ guarantee
def test_guarantee_violation_rate_within_delta():
    rng = np.random.default_rng(0)
    n = 1000
    y = rng.integers(0, 2, n)
    p = rng.uniform(size=n)
    e = np.where(y == 1, 0.9, 0.1)
    signal = np.where(y == 1, e - p, p - e) + rng.normal(0, 0.3, n)
    res = validate_guarantee(y, p, e, signal, alpha=0.3, delta=0.1, n_splits=200)
    # every split recomputed from its parts: the calibration/evaluation masks and
    # the optimisation/testing split drawn from the same stream, the threshold by
    # the loop reference, the realised rate on the evaluation half. (Whether the
    # violation rate is <= delta is tested on independent draws with an exact
    # answer in test_guarantee.py; 200 overlapping splits of one pool cannot.)
    rng = np.random.RandomState(0)
    masks = calibration_masks(n, calibration_size=0.5, n_splits=200, random_state=rng)
    for i, cal in enumerate(masks):
        cal_idx, eval_idx = np.flatnonzero(cal), np.flatnonzero(~cal)
        opt, test = opt_test_split(cal_idx.size, opt_fraction=0.3, random_state=rng)
        if i % 40:
            continue
        for m in ("budget_only", "pareto"):
            ref = reference_calibrate_threshold(
                signal, y, p, e, alpha=0.3, delta=0.1, opt_indices=cal_idx[opt],
                test_indices=cal_idx[test], pareto=m == "pareto",
            )
            assert res.thresholds[m][i] == ref.threshold
            assert res.rates[m][i] == np.mean(signal[eval_idx] > ref.threshold)
    for m in ("budget_only", "pareto"):
        r = res.violation_rate[m]
        assert r == np.mean(res.rates[m] > 0.3)
        assert res.rates[m].shape == (200,)
        assert res.violation_se[m] == pytest.approx(np.sqrt(r * (1 - r) / 200))
        assert res.n_never_delegate[m] == np.sum(np.isinf(res.thresholds[m]))
    assert np.all(res.thresholds["pareto"] >= res.thresholds["budget_only"])
    # budget-only is near tight: realised rates sit just below alpha on average
    assert 0.2 < res.rates["budget_only"].mean() < 0.3
    assert res.table["rate"].shape == (400,)
    assert "violation rate" in res.summary()
    json.dumps(res.to_dict())
    # deterministic
    again = validate_guarantee(y, p, e, signal, alpha=0.3, delta=0.1, n_splits=200)
    np.testing.assert_array_equal(again.rates["pareto"], res.rates["pareto"])


# ------------------------------------------------------------------ groups
def test_group_table_by_hand():
    v = np.array([0.5, -0.5, 0.2, 1.0, 0.0, -1.0])
    g = np.array(["b", "a", "a", "b", "b", "a"])
    masks = {
        "ctd": np.array([True, False, True, True, False, False]),
        "unc_topk": np.array([False, True, False, False, False, False]),
    }
    t = group_table(v, g, masks).table
    assert list(t["group"]) == ["a", "b"]
    np.testing.assert_array_equal(t["n"], [3, 3])
    np.testing.assert_allclose(t["mean_v_all"], [(-0.5 + 0.2 - 1.0) / 3, 1.5 / 3])
    np.testing.assert_allclose(t["mean_v_ctd"], [0.2, 0.75])
    np.testing.assert_allclose(t["rate_ctd"], [1 / 3, 2 / 3])
    np.testing.assert_allclose(t["share_ctd"], [1 / 3, 2 / 3])
    np.testing.assert_allclose(t["mean_v_unc_topk"], [-0.5, np.nan])
    np.testing.assert_allclose(t["rate_unc_topk"], [1 / 3, 0.0])
    with pytest.raises(ValueError, match="masks\\['ctd'\\]"):
        group_table(v, g, {"ctd": [True]})


def test_group_analysis_consistent_with_sweep():
    y, p, e = make_pool(n=1000, seed=4)
    rng = np.random.default_rng(4)
    dv = oracle_dv(y, p, e) + rng.normal(0, 0.2, y.size)
    groups = rng.choice(["x", "y", "z"], y.size)
    res = group_analysis(y, p, e, dv, groups, alpha=0.2, batch_size=64, random_state=7)
    sweep = budget_sweep(
        y, p, e, dv, alphas=[0.2], batch_sizes=[64], random_state=7, n_repeats=1
    )
    t = res.table
    assert res.threshold == sweep.thresholds["ctd"][0, 0]
    overall_ctd = np.sum(t["rate_ctd"] * t["n"]) / t["n"].sum()
    assert overall_ctd == pytest.approx(sweep.curve("ctd", "delegation_rate")[1][0])
    overall_unc = np.sum(t["rate_unc_topk"] * t["n"]) / t["n"].sum()
    assert overall_unc == pytest.approx(
        sweep.curve("unc_topk", "delegation_rate", batch_size=64)[1][0]
    )
    assert np.all(t["mean_v_ctd"] > t["mean_v_all"])
    with pytest.raises(ValueError, match="groups"):
        group_analysis(y, p, e, dv, groups[:5])


# ------------------------------------------------------------------ ranking curve
def test_dv_ranking_curve_oracle_dominates_and_random_is_mean():
    rng = np.random.default_rng(0)
    v = rng.normal(size=500)
    signals = {"dv": v + rng.normal(0, 1, 500), "unc": rng.normal(size=500)}
    res = dv_ranking_curve(v, signals)
    for name in ("dv", "unc", "random"):
        assert np.all(res.curves["oracle"] >= res.curves[name] - 1e-12)
    np.testing.assert_allclose(res.curves["random"], v.mean())
    # at k = N every ranking has the overall mean
    for c in res.curves.values():
        assert c[-1] == pytest.approx(v.mean())
    assert res.curves["dv"][:20].mean() > res.curves["unc"][:20].mean()
    perm = dv_ranking_curve(v, signals, n_permutations=200, random_state=0)
    assert np.abs(perm.curves["random"][10:] - v.mean()).max() < 0.1
    assert res.table["mean_v"].shape == (4 * 100,)
    with pytest.raises(ValueError, match="fractions"):
        dv_ranking_curve(v, signals, fractions=[0.0, 0.5])
    with pytest.raises(ValueError, match="signals\\['dv'\\]"):
        dv_ranking_curve(v, {"dv": v[:3]})


# ------------------------------------------------------------------ binary vs continuous
def test_binary_vs_continuous():
    y, p, e = make_pool(n=800, seed=5)
    v = oracle_dv(y, p, e)
    rng = np.random.default_rng(5)
    cont = v + rng.normal(0, 0.1, v.size)
    binary = delegation_value(y, p, e, kind="binary") + rng.normal(0, 0.1, v.size)
    res = binary_vs_continuous(
        y, p, e, binary, cont, alphas=[0.1, 0.3, 0.5], n_repeats=3
    )
    t = res.table
    np.testing.assert_allclose(
        t["diff_accuracy"], t["accuracy_continuous"] - t["accuracy_binary"]
    )
    same = binary_vs_continuous(y, p, e, cont, cont, alphas=[0.1, 0.3], n_repeats=2)
    np.testing.assert_array_equal(same.table["diff_auroc"], 0.0)
    json.dumps(res.to_dict())
    with pytest.raises(ValueError, match="DV signal"):
        binary_vs_continuous(y, p, e, cont, cont, methods=["unc_topk"])


def test_full_protocol_is_fast():
    """20 budgets x 7 methods x 3 batch sizes x 20 splits at n=1,500, and 500
    guarantee splits."""
    import time

    y, p, e = make_pool(n=1500)
    dv = oracle_dv(y, p, e) + np.random.default_rng(0).normal(0, 0.3, 1500)
    t0 = time.perf_counter()
    budget_sweep(y, p, e, dv, n_repeats=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        validate_guarantee(y, p, e, dv, n_splits=500)
    assert time.perf_counter() - t0 < 20


def test_binary_dv_kind_changes_oracle_and_mean_v():
    y, p, e = make_pool(n=600, seed=6)
    dv = oracle_dv(y, p, e)
    res = budget_sweep(
        y, p, e, dv, alphas=[0.2], batch_sizes=[32], dv_kind="binary", n_repeats=2
    )
    mv = res.table["mean_v_delegated"]
    finite = mv[np.isfinite(mv)]
    assert np.all((finite >= 0) & (finite <= 1))  # binary values are 0/1
    with pytest.raises(ValueError, match="kind"):
        budget_sweep(y, p, e, dv, alphas=[0.2], dv_kind="ordinal")


def test_guarantee_separates_uncertified_from_never_delegate():
    """Too little calibration data -> uncertified; a useless expert -> +inf chosen."""
    from skctd.evaluation import validate_guarantee

    rng = np.random.default_rng(0)
    n = 40  # calibration halves of 20 rows: 14 test rows < 22 needed at 0.1 / 0.1
    y = rng.integers(0, 2, n)
    p = rng.uniform(size=n)
    res = validate_guarantee(y, p, p, rng.normal(size=n), alpha=0.1, delta=0.1,
                             n_splits=10)
    assert res.n_uncertified == {"budget_only": 10, "pareto": 10}
    assert res.n_never_delegate == {"budget_only": 10, "pareto": 10}

    n = 2000  # plenty of data; the expert is always wrong -> Pareto never delegates
    y = rng.integers(0, 2, n)
    p = np.where(y == 1, 0.8, 0.2)
    e = 1.0 - p
    res = validate_guarantee(y, p, e, rng.normal(size=n), alpha=0.3, delta=0.1,
                             n_splits=10)
    assert res.n_uncertified["pareto"] == 0
    assert res.n_never_delegate["pareto"] == 10
    assert res.n_never_delegate["budget_only"] == 0  # budget-only delegates anyway


# ------------------------------------------------------------------ many splits
def test_mean_and_se_by_hand():
    from skctd.evaluation import mean_and_se

    x = np.array([[0.70, 0.74, 0.72, 0.80], [0.5, np.nan, 0.7, np.nan]])
    mean, se = mean_and_se(x, axis=1)
    # row 0: mean 0.74, sample variance ((.04^2 + 0 + .02^2 + .06^2) / 3)
    assert mean[0] == pytest.approx(0.74)
    assert se[0] == pytest.approx(np.sqrt((0.0016 + 0.0 + 0.0004 + 0.0036) / 3 / 4))
    # row 1: the NaN are ignored: two values 0.5 and 0.7
    assert mean[1] == pytest.approx(0.6)
    assert se[1] == pytest.approx(np.sqrt(0.02 / 2))
    m1, s1 = mean_and_se([0.3])
    assert m1 == pytest.approx(0.3) and np.isnan(s1)


def test_sweep_reports_mean_and_se_over_splits():
    y, p, e = make_pool(n=600, seed=8)
    dv = oracle_dv(y, p, e) + np.random.default_rng(8).normal(0, 0.3, 600)
    res = budget_sweep(y, p, e, dv, alphas=[0.2, 0.6], batch_sizes=[32], n_repeats=5)
    t = res.table
    for metric in ("auroc", "accuracy", "delegation_rate"):
        runs = res.per_split[metric]  # (rows, splits)
        assert runs.shape == (t["method"].size, 5)
        np.testing.assert_allclose(t[metric], runs.mean(axis=1))
        np.testing.assert_allclose(
            t[metric + "_se"], runs.std(axis=1, ddof=1) / np.sqrt(5)
        )
        np.testing.assert_allclose(t[metric + "_std"], runs.std(axis=1))
    # the splits differ: the probe's accuracy moves from one evaluation half to another
    assert np.ptp(res.split_values("probe_only", "accuracy")[0]) > 0
    # the paired difference, by hand
    a, gap, se = res.difference("ctd", "probe_only", "auroc")
    diff = res.split_values("ctd", "auroc") - res.split_values("probe_only", "auroc")
    np.testing.assert_allclose(gap, diff.mean(axis=1))
    np.testing.assert_allclose(se, diff.std(axis=1, ddof=1) / np.sqrt(5))
    np.testing.assert_array_equal(a, [0.2, 0.6])
    # the curve's third output is the SE column
    np.testing.assert_array_equal(
        res.curve("ctd", "auroc")[2], t["auroc_se"][t["method"] == "ctd"]
    )


def test_each_split_is_the_single_split_protocol():
    """Split r of a many-split sweep gives what a one-split sweep on it gives."""
    from skctd.evaluation._splits import protocol_splits

    y, p, e = make_pool(n=500, seed=9)
    dv = oracle_dv(y, p, e) + np.random.default_rng(9).normal(0, 0.3, 500)
    res = budget_sweep(y, p, e, dv, alphas=[0.3], batch_sizes=[32], n_repeats=4,
                       random_state=3)
    splits = protocol_splits(500, n_repeats=4, random_state=3)
    for r, sp in enumerate(splits):
        ev = sp.evaluation
        thr = res.thresholds["ctd"][r, 0]
        s = np.where(dv[ev] > thr, e[ev], p[ev])
        assert res.split_values("ctd", "accuracy")[0, r] == pytest.approx(
            np.mean((s >= 0.5) == y[ev])
        )
        u = uncertainty_signal(p[ev], p[sp.calibration])
        m = topk_delegation_mask(u, 0.3, 32)  # the stream in its shuffled order
        s = np.where(m, e[ev], p[ev])
        assert res.split_values("unc_topk", "auroc", 32)[0, r] == pytest.approx(
            roc_auc_score(y[ev], s)
        )


def test_protocol_splits_mask_first_and_redrawn_inner_splits():
    from skctd.evaluation._splits import protocol_splits

    fixed = np.arange(300) % 3 == 0
    splits = protocol_splits(300, calibration_mask=fixed, n_repeats=3, random_state=0)
    np.testing.assert_array_equal(splits[0].calibration, fixed)
    for sp in splits:
        assert sp.calibration.sum() == 100
        cal = np.flatnonzero(sp.calibration)
        np.testing.assert_array_equal(np.sort(np.concatenate([sp.opt, sp.test])), cal)
        np.testing.assert_array_equal(np.sort(sp.evaluation), np.flatnonzero(~sp.calibration))
    assert not np.array_equal(splits[1].calibration, splits[2].calibration)
    # the first split does not depend on how many follow
    one = protocol_splits(300, calibration_mask=fixed, n_repeats=1, random_state=0)[0]
    np.testing.assert_array_equal(one.opt, splits[0].opt)
    np.testing.assert_array_equal(one.evaluation, splits[0].evaluation)
    # without shuffle the stream keeps the pool's order
    plain = protocol_splits(300, calibration_mask=fixed, shuffle=False, random_state=0)
    np.testing.assert_array_equal(plain[0].evaluation, np.flatnonzero(~fixed))
    assert not np.array_equal(splits[0].evaluation, plain[0].evaluation)


def test_shuffle_matters_for_a_group_sorted_pool():
    """Known answer on a pool sorted by group: the expert helps on the first half
    of the file (v = +0.6) and hurts on the second (v = -0.1), and the DV signal
    ranks the good half first. In file order each batch of 32 is all-good or
    all-bad, and top-k at 25% must take 8 rows of every batch: half of the picks
    are bad rows (mean v 0.25). Shuffled, each batch holds about 16 good rows, more
    than the 8 picks: every pick is good (mean v 0.6)."""
    n = 4096
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    good = np.arange(n) < n // 2
    p = np.where(y == 1, 0.3, 0.7)  # the probe is wrong everywhere
    e = np.where(good, np.where(y == 1, 0.9, 0.1), np.where(y == 1, 0.2, 0.8))
    dv = good.astype(float)  # delegate the good half first
    fixed = np.zeros(n, dtype=bool)
    fixed[1::2] = True
    kw = dict(alphas=[0.25], batch_sizes=[32], methods=["dv_topk"],
              calibration_mask=fixed, n_repeats=3)
    plain = budget_sweep(y, p, e, dv, shuffle=False, **kw)
    mixed = budget_sweep(y, p, e, dv, shuffle=True, **kw)
    v_plain = plain.curve("dv_topk", "mean_v_delegated", 32)[1][0]
    v_mixed = mixed.curve("dv_topk", "mean_v_delegated", 32)[1][0]
    v = delegation_value(y, p, e)
    # file order: batches are all-good or all-bad, so half the picks are bad rows
    assert v_plain == pytest.approx(0.5 * v[good].mean() + 0.5 * v[~good].mean(), abs=0.02)
    # shuffled: each batch holds ~16 good rows, more than the 8 picks: all good
    assert v_mixed == pytest.approx(v[good].mean(), abs=0.02)
    # the table is the mean over the shuffles
    runs = mixed.split_values("dv_topk", "mean_v_delegated", 32)
    assert runs.shape == (1, 3) and v_mixed == pytest.approx(runs.mean())


# ------------------------------------------------------------------ combine
def test_combine_average_scores_delegated_rows_with_the_mean():
    y, p, e = make_pool(n=600, seed=10)
    e = (e > 0.5).astype(float)  # a hard 0/1 expert
    dv = oracle_dv(y, p, e) + np.random.default_rng(10).normal(0, 0.2, 600)
    cal = np.arange(600) < 300
    res = budget_sweep(y, p, e, dv, calibration_mask=cal, alphas=[0.3], n_repeats=1,
                       batch_sizes=[32], combine="average", shuffle=False)
    ev = ~cal
    d = dv[ev] > res.thresholds["ctd"][0, 0]
    s = np.where(d, 0.5 * (e[ev] + p[ev]), p[ev])
    assert res.curve("ctd", "auroc")[1][0] == pytest.approx(roc_auc_score(y[ev], s))
    m = topk_delegation_mask(dv[ev], 0.3, 32)
    s = np.where(m, 0.5 * (e[ev] + p[ev]), p[ev])
    assert res.curve("dv_topk", "auroc", 32)[1][0] == pytest.approx(roc_auc_score(y[ev], s))
    # expert only stays the expert alone
    assert res.curve("expert_only", "auroc")[1][0] == pytest.approx(roc_auc_score(y[ev], e[ev]))


def test_combine_auto_follows_the_choice_on_the_optimisation_rows():
    from skctd import choose_combine
    from skctd.evaluation._splits import protocol_splits

    y, p, e = make_pool(n=800, seed=11)
    rng = np.random.default_rng(11)
    right = rng.uniform(size=800) < 0.7
    e = np.where(right, y, 1 - y).astype(float)
    # a noisy signal: the choice differs between splits and budgets
    dv = oracle_dv(y, p, e) + rng.normal(0, 2.0, 800)
    kw = dict(alphas=[0.2, 0.5], batch_sizes=[32], n_repeats=3, random_state=4)
    auto = budget_sweep(y, p, e, dv, combine="auto", **kw)
    rep = budget_sweep(y, p, e, dv, combine="replace", **kw)
    avg = budget_sweep(y, p, e, dv, combine="average", **kw)
    splits = protocol_splits(800, n_repeats=3, random_state=4)
    for r, sp in enumerate(splits):
        want = choose_combine(dv[sp.opt], y[sp.opt], p[sp.opt], e[sp.opt],
                              alpha=[0.2, 0.5]) == "average"
        np.testing.assert_array_equal(auto.averaged["ctd"][r], want)
        for j in range(2):
            src = avg if want[j] else rep
            assert auto.split_values("ctd", "auroc")[j, r] == pytest.approx(
                src.split_values("ctd", "auroc")[j, r])
            assert auto.split_values("dv_topk", "auroc", 32)[j, r] == pytest.approx(
                src.split_values("dv_topk", "auroc", 32)[j, r])
    # both rules are chosen somewhere, so both branches are checked above
    assert auto.averaged["ctd"].any() and not auto.averaged["ctd"].all()
    with pytest.raises(ValueError, match="combine"):
        budget_sweep(y, p, e, dv, combine="mean")

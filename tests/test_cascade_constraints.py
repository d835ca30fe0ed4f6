"""CalibratedDelegationCascade with constraints: API, costs, warnings, guarantees.

The guarantee test at the end runs ``CalibratedDelegationCascade.fit`` itself (its
own training/calibration split) over 1,000 seeded draws per population. The
probe and the DV probe are frozen, fixed functions of the row, so a fit is a few
milliseconds and the true risk of every threshold is known in closed form:

* ``X[:, 0] = s ~ U(0, 1)`` (or ten tied levels) is the delegation signal (the
  frozen DV probe returns it);
* ``X[:, 1]`` is the probe's answer, right with probability ``PP = 0.8``;
* ``X[:, 2]`` is the expert's answer, right with probability ``a + b s``;

labels are fair coins. Then the budget risk of a threshold ``lam`` is
``P(s > lam)`` and its harm (cascade error minus probe error) is
``E[1(s > lam) (PP - a - b s)]``.
"""

from __future__ import annotations

import math
import pickle
import warnings

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.utils._param_validation import InvalidParameterError

from skctd import (
    CalibratedDelegationCascade,
    FunctionExpert,
    PrecomputedExpert,
    Risk,
    calibrate_threshold,
)
from skctd.evaluation import evaluate_cascade

PP = 0.8  # the probe's accuracy everywhere


# --------------------------------------------------------------------------------------
# the population of the guarantee tests
# --------------------------------------------------------------------------------------
def answer_expert(rows):
    """The expert: its answer is column 2 of the raw row."""
    return np.where(np.asarray(rows, dtype=float)[:, 2] > 0.5, 0.9, 0.1)


def row_length(rows):
    """A per-row cost: 1 + the signal column (a module-level function: pickles)."""
    return 1.0 + np.asarray(rows, dtype=float)[:, 0]


def frozen_probes():
    """(probe, DV probe): frozen, the probe reads column 1, the DV probe column 0."""
    Z = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    probe = LogisticRegression().fit(Z, [0, 1])
    probe.coef_, probe.intercept_ = np.array([[0.0, 20.0, 0.0]]), np.array([-10.0])
    dv = LinearRegression().fit(Z, [0.0, 1.0])
    dv.coef_, dv.intercept_ = np.array([1.0, 0.0, 0.0]), 0.0
    return FrozenEstimator(probe), FrozenEstimator(dv)


def draw(n, a, b, rng, levels=None):
    s = rng.uniform(size=n) if levels is None else rng.choice(levels, size=n)
    y = rng.integers(0, 2, n)
    probe_right = rng.uniform(size=n) < PP
    expert_right = rng.uniform(size=n) < a + b * s
    X = np.column_stack([s, np.where(probe_right, y, 1 - y), np.where(expert_right, y, 1 - y)])
    return X.astype(float), y


def true_risks(lam, a, b, levels=None):
    """(budget, harm) of threshold ``lam`` in closed form."""
    if not np.isfinite(lam):
        return 0.0, 0.0
    if levels is None:
        lo = min(max(lam, 0.0), 1.0)
        return 1.0 - lo, (PP - a) * (1.0 - lo) - b * (1.0 - lo**2) / 2.0
    above = np.asarray(levels)[np.asarray(levels) > lam]
    return above.size / len(levels), float(np.sum(PP - a - b * above)) / len(levels)


def cascade(**params):
    # the frozen DV probe reads the features alone; one combine rule, as
    # calibrate_threshold's default, so the thresholds compare one to one
    probe, dv = frozen_probes()
    params = {"dv_features": "activations", "combine": "replace", **params}
    return CalibratedDelegationCascade(
        FunctionExpert(answer_expert), probe=probe, dv_estimator=dv, **params
    )


# --------------------------------------------------------------------------------------
# API
# --------------------------------------------------------------------------------------
def test_defaults_are_the_papers_procedure():
    est = CalibratedDelegationCascade(answer_expert)
    params = est.get_params()
    assert params["constraints"] is None and params["cost"] is None
    assert params["cost_max"] is None
    assert params["testing_order"] == "auto" and params["selection"] == "best"
    rng = np.random.default_rng(0)
    X, y = draw(800, 0.95, 0.0, rng)
    plain = cascade(random_state=0).fit(X, y)
    empty = cascade(random_state=0, constraints={}).fit(X, y)
    assert plain.calibration_.constraints == ("budget",)
    assert empty.threshold_ == plain.threshold_
    np.testing.assert_array_equal(
        empty.calibration_.certified, plain.calibration_.certified
    )


def test_calibration_is_calibrate_threshold_with_the_constraints():
    rng = np.random.default_rng(1)
    X, y = draw(1000, 0.4, 0.6, rng)
    params = dict(alpha=0.4, delta=0.2, constraints={"harm": 0.0, "miss": 0.5},
                  selection="one_se", testing_order="pvalue", random_state=3,
                  calibration_size=None)
    est = cascade(**params).fit(X[:400], y[:400])
    est.calibrate(X[400:], y[400:])
    seed = np.random.RandomState(3).randint(np.iinfo(np.int32).max)
    routed = est.route(X[400:], call_expert=False)
    e = answer_expert(X[400:])
    ref = calibrate_threshold(
        routed.signal, y[400:], routed.probe_scores, e, alpha=0.4, delta=0.2,
        constraints={"harm": 0.0, "miss": 0.5}, selection="one_se",
        testing_order="pvalue", random_state=seed,
    )
    assert est.threshold_ == ref.threshold
    assert est.calibration_.constraints == ("budget", "harm", "miss")
    assert est.calibration_.levels == {"budget": 0.4, "harm": 0.0, "miss": 0.5}
    for name in ("budget", "harm", "miss"):
        np.testing.assert_array_equal(
            est.calibration_.risk_pvalues[name], ref.risk_pvalues[name]
        )
    np.testing.assert_array_equal(est.calibration_.testing_order, ref.testing_order)


def test_clone_pickle_and_params_stay_plain():
    est = cascade(constraints={"harm": 0.0, "cost_share": 0.5}, cost=row_length,
                  cost_max=2.0, selection="one_se", random_state=0)
    twin = clone(est)
    assert twin.get_params()["constraints"] == {"harm": 0.0, "cost_share": 0.5}
    assert twin.constraints is not est.constraints  # a copy, like any plain value
    assert twin.cost is row_length
    rng = np.random.default_rng(2)
    X, y = draw(600, 0.95, 0.0, rng)
    est.fit(X, y)
    assert est.constraints == {"harm": 0.0, "cost_share": 0.5}  # not modified
    back = pickle.loads(pickle.dumps(est))
    assert back.threshold_ == est.threshold_ and back.cost is row_length
    np.testing.assert_array_equal(back.predict_proba(X[:20]), est.predict_proba(X[:20]))
    assert "constraints={'cost_share': 0.5, 'harm': 0.0}" in repr(est)


@pytest.mark.parametrize(
    "params, fit_kw, error, match",
    [
        ({"constraints": {"bogus": 0.1}}, {}, ValueError, "Unknown risk 'bogus'"),
        ({"constraints": {"harm": -0.1}}, {}, ValueError, "epsilon"),
        ({"constraints": {"miss": 1.5}}, {}, ValueError, "miss"),
        ({"constraints": "harm"}, {}, InvalidParameterError, "constraints"),
        ({"constraints": [("harm", 0.0)]}, {}, ValueError, "Risk objects"),
        ({"constraints": {"cost": 1.0}}, {}, ValueError, "cost=<array"),
        ({"constraints": [Risk("cost_share", 0.3, cost=np.ones(600))]}, {},
         ValueError, "constraints=\\{'cost_share': level\\}"),
        ({"constraints": {"cost": 1.0}, "cost": row_length},
         {"cost": np.ones(600)}, ValueError, "cost is given twice"),
        ({"constraints": {"cost": 1.0}}, {"cost": np.ones(5)}, ValueError,
         "one number per row"),
        ({"constraints": {"cost": 1.0}}, {"cost": -np.ones(600)}, ValueError,
         "non-negative"),
        ({"cost_max": 0.0}, {}, InvalidParameterError, "cost_max"),
        ({"selection": "median"}, {}, InvalidParameterError, "selection"),
        ({"testing_order": "random"}, {}, InvalidParameterError, "testing_order"),
        ({"selection": "one_se", "performance_risk": "auroc"}, {}, ValueError,
         "one_se"),
    ],
)
def test_bad_constraints_fail_in_fit(params, fit_kw, error, match):
    rng = np.random.default_rng(3)
    X, y = draw(600, 0.95, 0.0, rng)
    est = cascade(**params)  # __init__ stores, never validates
    with pytest.raises(error, match=match):
        est.fit(X, y, **fit_kw)


def test_cost_function_and_cost_array_give_the_same_calibration():
    rng = np.random.default_rng(4)
    X, y = draw(1200, 0.95, 0.0, rng)
    by_fn = cascade(constraints={"cost": 0.5}, cost=row_length, alpha=0.6,
                    random_state=0).fit(X, y)
    by_arr = cascade(constraints={"cost": 0.5}, alpha=0.6, random_state=0).fit(
        X, y, cost=row_length(X)
    )
    assert by_fn.threshold_ == by_arr.threshold_
    np.testing.assert_array_equal(
        by_fn.calibration_.risk_pvalues["cost"], by_arr.calibration_.risk_pvalues["cost"]
    )
    # the cost budget binds: mean cost of the delegated rows per input <= 0.5, below
    # what the budget alone allows (alpha=0.6 -> mean cost ~0.6 * 1.7)
    budget_only = cascade(alpha=0.6, random_state=0).fit(X, y)
    assert by_fn.threshold_ > budget_only.threshold_
    c = row_length(X)
    assert np.mean(c * by_fn.delegate(X)) <= 0.55
    assert by_fn.calibration_.cost_scale["cost"][0] <= 2.0
    # calibrate() takes the cost keyword as well; without it the function is used
    by_arr.calibrate(X[:500], y[:500], cost=row_length(X[:500]))
    by_fn.calibrate(X[:500], y[:500])
    assert by_arr.threshold_ == by_fn.threshold_
    with pytest.raises(ValueError, match="cost=<array"):
        by_arr.calibrate(X[:500], y[:500])


def test_cost_without_a_cost_constraint_warns():
    rng = np.random.default_rng(5)
    X, y = draw(600, 0.95, 0.0, rng)
    with pytest.warns(UserWarning, match="no constraint uses it"):
        cascade(random_state=0).fit(X, y, cost=np.ones(600))


def test_no_harm_certificate_refuses_a_useless_expert():
    """Plain CTD delegates to a useless expert on some draws; harm <= 0 never."""
    rng = np.random.default_rng(6)
    delegated = {None: 0, "harm": 0}
    for seed in range(60):
        X, y = draw(400, 0.5, 0.0, rng)
        for key, constraints in ((None, None), ("harm", {"harm": 0.0})):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                est = cascade(alpha=0.5, constraints=constraints,
                              random_state=seed).fit(X, y)
            delegated[key] += bool(np.isfinite(est.threshold_))
    assert delegated[None] >= 5  # the paper's procedure is fooled by noise
    assert delegated["harm"] == 0


def test_blocked_warning_and_result_say_why():
    rng = np.random.default_rng(7)
    X, y = draw(1000, 0.5, 0.0, rng)
    est = cascade(alpha=0.5, constraints={"harm": 0.0}, random_state=0)
    with pytest.warns(UserWarning, match="blocked by harm") as record:
        est.fit(X, y)
    assert "never delegates" in str(record[0].message)
    cr = est.calibration_
    assert est.threshold_ == np.inf and cr.certified[0]
    assert cr.blocked_by[0] == "harm" and np.isinf(cr.rows_needed)
    assert cr.guarantee().startswith("With probability >= 0.9")


def test_uncertifiable_miss_says_no_guarantee_holds():
    """+inf is the safe fallback for budget, cost and harm only: a miss rate the
    probe itself exceeds certifies nothing, and the warning says so."""
    rng = np.random.default_rng(8)
    X, y = draw(1000, 0.5, 0.0, rng)
    est = cascade(alpha=0.5, constraints={"harm": 0.0, "miss": 0.05},
                  random_state=0)
    with pytest.warns(UserWarning) as record:
        est.fit(X, y)
    text = " ".join(str(w.message) for w in record)
    assert "NO guarantee holds" in text and "threshold=+inf" in text
    assert est.threshold_ == np.inf
    assert est.calibration_.n_certified == 0
    assert est.calibration_.guarantee() == ""
    assert "miss" in est.calibration_.blocked_by


def test_rows_needed_when_the_calibration_set_is_too_small():
    rng = np.random.default_rng(9)
    X, y = draw(300, 0.95, 0.0, rng)
    est = cascade(alpha=0.5, constraints={"harm": 0.0}, calibration_size=0.5,
                  random_state=0)
    with pytest.warns(UserWarning, match="calibration rows"):
        est.fit(X, y)
    cr = est.calibration_
    assert not cr.certified[1:].any()
    assert np.isfinite(cr.rows_needed) and cr.rows_needed > cr.n_test


def test_evaluate_cascade_uses_the_cascades_procedure():
    rng = np.random.default_rng(10)
    X, y = draw(2000, 0.4, 0.6, rng)
    est = cascade(alpha=0.5, constraints={"harm": 0.0, "cost_share": 0.6},
                  cost=row_length, calibration_size=None, random_state=0)
    est.fit(X[:400], y[:400])
    mask = np.arange(1600) < 800
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est.calibrate(X[400:][mask], y[400:][mask])
        ev = evaluate_cascade(est, X[400:], y[400:], calibration_mask=mask,
                              alphas=[0.3, 0.6], n_splits=60)
    assert ev.settings["constraints"] == {"harm": 0.0, "cost_share": 0.6}
    assert ev.guarantee.levels == {"harm": 0.0, "cost_share": 0.6}
    assert ev.calibration is est.calibration_
    harm = ev.guarantee.risk_values["pareto"]["harm"]
    assert harm.shape == (60,)
    # the sweep's CTD thresholds are those of the constrained procedure: never below
    # the crossing point where the expert starts to help by much
    thr = ev.sweep.thresholds["ctd"]
    assert np.all(thr[np.isfinite(thr)] > 0.1)
    d = ev.to_dict()
    assert d["calibration"]["constraints"] == ["budget", "harm", "cost_share"]
    assert set(d["guarantee"]["risk_violation_rate"]["pareto"]) == {
        "harm", "cost_share"}


def test_saved_cascade_with_constraints_loads(tmp_path):
    rng = np.random.default_rng(11)
    X, y = draw(800, 0.95, 0.0, rng)
    est = cascade(constraints={"harm": 0.0, "cost": 0.9}, cost=row_length,
                  random_state=0).fit(X, y)
    joblib.dump(est, tmp_path / "c.joblib")
    back = joblib.load(tmp_path / "c.joblib")
    assert back.calibration_.guarantee() == est.calibration_.guarantee()
    back.calibrate(X[:300], y[:300])  # the cost function travels with it


def test_precomputed_expert_and_harm_through_fit():
    """A strong expert: the certificate lets the cascade delegate."""
    rng = np.random.default_rng(12)
    X, y = draw(4000, 0.95, 0.0, rng)
    est = CalibratedDelegationCascade(
        PrecomputedExpert(answer_expert(X), keys=X), probe=frozen_probes()[0],
        dv_estimator=frozen_probes()[1], dv_features="activations",
        alpha=0.3, constraints={"harm": 0.0},
        random_state=0,
    ).fit(X, y)
    assert np.isfinite(est.threshold_)
    assert 0.1 < est.delegate(X).mean() <= 0.32
    assert est.calibration_.guarantee().endswith(
        "; the cascade is not less accurate than the probe alone."
    )


def test_harm_sentence_reads_as_the_no_harm_promise():
    assert Risk("harm", 0.0).describe() == (
        "the cascade is not less accurate than the probe alone"
    )
    assert Risk("harm", 0.01).describe() == (
        "the cascade's error exceeds the probe-only error by at most 0.01"
    )


# --------------------------------------------------------------------------------------
# the guarantee through fit
# --------------------------------------------------------------------------------------
POPULATIONS = {
    # name: (a, b, levels, n, alpha, delta)
    "useless expert": (0.5, 0.0, None, 1000, 0.3, 0.1),
    "strong expert, budget binds": (0.95, 0.0, None, 1000, 0.3, 0.1),
    "crossing expert (helps for s > 0.6)": (0.5, 0.5, None, 600, 0.9, 0.2),
    "ties: ten signal levels": (0.5, 0.5, np.arange(10) / 10, 1000, 0.5, 0.1),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(POPULATIONS))
def test_budget_and_harm_guarantee_through_fit(name):
    """P(budget or harm of the chosen threshold above its level) <= delta + 3 SE,
    over 1,000 seeded draws of the data given to fit (its own split)."""
    a, b, levels, n, alpha, delta = POPULATIONS[name]
    rng = np.random.default_rng(list(POPULATIONS).index(name))
    n_draws = 1000
    violated = delegating = 0
    for seed in range(n_draws):
        X, y = draw(n, a, b, rng, levels)
        est = cascade(alpha=alpha, delta=delta, constraints={"harm": 0.0},
                      calibration_size=0.5, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            est.fit(X, y)
        cr = est.calibration_
        if not cr.certified[cr.selected_index]:
            continue  # nothing certified: no guarantee claimed
        budget, harm = true_risks(est.threshold_, a, b, levels)
        violated += budget > alpha or harm > 1e-12
        delegating += bool(np.isfinite(est.threshold_))
    rate = violated / n_draws
    se = math.sqrt(delta * (1 - delta) / n_draws)
    print(f"{name}: violation rate {rate:.3f} (bound {delta + 3 * se:.3f}), "
          f"delegating {delegating / n_draws:.2f}")
    assert rate <= delta + 3 * se
    if b > 0 or a > PP:  # the expert helps somewhere: the certificate has power
        assert delegating / n_draws >= 0.3

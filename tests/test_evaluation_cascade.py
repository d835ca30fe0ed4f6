"""skctd.evaluation.evaluate_cascade / evaluate_scores and the claim checks."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression, Ridge

from skctd import CalibratedDelegationCascade, FunctionExpert
from skctd.evaluation import (
    CLAIMS,
    budget_sweep,
    check_claims,
    evaluate_cascade,
    evaluate_scores,
)
from skctd.report import write_report


def _pool(n=1200, seed=0, *, dv_noise=0.3, expert_strength=0.3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    sign = 2 * y - 1
    probe = np.clip(0.5 + sign * rng.normal(0.1, 0.3, n), 0, 1)
    expert = np.clip(0.5 + sign * rng.normal(expert_strength, 0.2, n), 0, 1)
    v = np.where(y == 1, expert - probe, probe - expert)
    dv = v + rng.normal(0, dv_noise, n)
    groups = rng.choice(["med", "law", "fin"], n)
    return y, probe, expert, dv, groups, v


@pytest.fixture(scope="module")
def evaluation():
    y, p, e, d, g, v = _pool()
    return evaluate_scores(
        y, p, e, d, groups=g, dv_binary_scores=(v > 0) + 0.0, alphas=[0.1, 0.3, 0.5, 0.9],
        n_splits=60, alpha=0.3, random_state=0,
    )


# --------------------------------------------------------------------------------------
# evaluate_scores
# --------------------------------------------------------------------------------------
def test_parts_are_consistent(evaluation):
    ev = evaluation
    assert ev.reference["n_calibration"] == 600 and ev.reference["n_evaluation"] == 600
    probe_only = ev.sweep.curve("probe_only", "accuracy")[1]
    expert_only = ev.sweep.curve("expert_only", "accuracy")[1]
    assert probe_only[0] == pytest.approx(ev.reference["probe_accuracy"])
    assert expert_only[0] == pytest.approx(ev.reference["expert_accuracy"])
    assert ev.guarantee.n_splits == 60 and ev.guarantee.alpha == 0.3
    assert ev.groups.table["n"].sum() == 600  # groups are read on the evaluation half
    assert ev.binary is not None and ev.calibration.alpha == 0.3
    # alpha=0.3, delta=0.1: 7 test rows; opt_fraction 0.3 -> 10 calibration rows
    assert ev.reference["min_calibration_size"] == 10


def test_explicit_calibration_mask_is_used():
    y, p, e, d, g, v = _pool(n=400)
    cal = np.arange(400) < 150
    ev = evaluate_scores(y, p, e, d, calibration_mask=cal, alphas=[0.2, 0.6],
                         n_splits=20)
    direct = budget_sweep(y, p, e, d, calibration_mask=cal, alphas=[0.2, 0.6],
                          methods=["probe_only"], n_repeats=1)
    assert ev.reference["n_calibration"] == 150
    # the mask is the first of the 20 splits; the others are random halves
    assert ev.sweep.n_repeats == 20
    assert ev.sweep.split_values("probe_only", "auroc")[:, 0] == pytest.approx(
        direct.curve("probe_only", "auroc")[1])
    assert np.ptp(ev.sweep.split_values("probe_only", "auroc")[0]) > 0
    single = evaluate_scores(y, p, e, d, calibration_mask=cal, alphas=[0.2, 0.6],
                             n_splits=20, n_repeats=1)
    assert single.sweep.curve("probe_only", "auroc")[1] == pytest.approx(
        direct.curve("probe_only", "auroc")[1])
    assert ev.groups is None and ev.binary is None


def test_claims_on_a_good_dv_probe(evaluation):
    c = evaluation.claims
    assert set(c) == set(CLAIMS)
    assert c["ctd_ge_probe_only"]["holds"]
    assert c["dv_ranking_above_uncertainty"]["holds"]
    assert c["pareto_violation_le_delta"]["holds"]
    for v in c.values():
        assert v["claim"] in CLAIMS.values() and v["detail"]


def test_claims_fail_when_the_dv_signal_is_backwards():
    """A DV probe that ranks rows backwards must fail the ranking and CTD claims."""
    y, p, e, d, g, v = _pool(n=1500, seed=1)
    ev = evaluate_scores(y, p, e, -v, alphas=[0.1, 0.2, 0.3], n_splits=20)
    assert not ev.claims["dv_ranking_above_uncertainty"]["holds"]
    assert not ev.claims["ctd_ge_unc_calibrated"]["holds"]
    assert "below at" in ev.claims["ctd_ge_unc_calibrated"]["detail"]


def test_topk_degradation_claim_reads_the_curve():
    """Expert worse than the probe on most rows: top-k past capacity must hurt."""
    rng = np.random.default_rng(3)
    n = 2000
    y = rng.integers(0, 2, n)
    sign = 2 * y - 1
    probe = np.clip(0.5 + sign * rng.normal(0.3, 0.15, n), 0, 1)
    expert = np.clip(0.5 + sign * rng.normal(0.0, 0.3, n), 0, 1)  # a coin flip
    v = np.where(y == 1, expert - probe, probe - expert)
    ev = evaluate_scores(y, probe, expert, v, alphas=np.linspace(0.05, 0.95, 10),
                         n_splits=20)
    c = ev.claims["topk_degrades_past_capacity"]
    assert ev.reference["effective_capacity"] < 0.2
    assert c["holds"], c["detail"]


def test_to_dict_is_json(evaluation):
    d = evaluation.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert back["guarantee"]["n_splits"] == 60
    assert len(back["guarantee"]["rates"]["pareto"]) == 60
    assert set(back["groups"]["group"]) == {"fin", "law", "med"}
    assert back["calibration"]["alpha"] == 0.3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(dv_scores=np.full(10, np.nan)), "dv_scores contains NaN"),
        (dict(probe_scores=np.zeros(9)), "probe_scores has 9 rows"),
        (dict(expert_scores=np.full(10, 1.5)), "expert_scores must be probabilities"),
        (dict(y=np.arange(10) % 3), "0/1 labels"),
        (dict(calibration_mask=np.ones(10, bool)), "calibration_mask"),
        (dict(calibration_size=1.5), "calibration_size"),
    ],
)
def test_bad_input(kwargs, match):
    base = dict(y=np.arange(10) % 2, probe_scores=np.full(10, 0.5),
                expert_scores=np.full(10, 0.5), dv_scores=np.zeros(10))
    base.update(kwargs)
    y = base.pop("y")
    with pytest.raises(ValueError, match=match):
        evaluate_scores(y, **base, n_splits=5)


def test_budget_only_claim_flags_only_an_excess(evaluation):
    """'~ delta' fails for a clear excess over delta, never for a low rate: correct
    code lands anywhere below delta (0.045 at delta = 0.1 in the gallery, 0 with a
    coarse tied signal)."""
    ev = copy.deepcopy(evaluation)
    g = ev.guarantee
    for rate, holds in ((0.0, True), (0.045, True), (0.09, True), (0.30, False)):
        g.violation_rate["budget_only"] = rate
        g.violation_se["budget_only"] = np.sqrt(rate * (1 - rate) / g.n_splits)
        assert check_claims(ev)["budget_only_violation_near_delta"]["holds"] is holds


# --------------------------------------------------------------------------------------
# evaluate_cascade
# --------------------------------------------------------------------------------------
def _interaction(X):
    X = np.asarray(X, dtype=float)
    return X[:, 0] + X[:, 1] * X[:, 2]


def strong_expert(X):
    return 1.0 / (1.0 + np.exp(-5.0 * _interaction(X)))


class CountingExpert(FunctionExpert):
    """Counts the rows it scores."""

    def __init__(self, func):
        super().__init__(func)
        self.n_scored = 0

    def _score(self, X, report):
        self.n_scored += len(X)
        return super()._score(X, report)


@pytest.fixture(scope="module")
def calibrated():
    """A cascade fitted on 1000 rows, calibrated on the first half of a 1000-row pool."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3))
    y = (_interaction(X) + 0.3 * rng.normal(size=2000) > 0).astype(int)
    expert = CountingExpert(strong_expert)
    cascade = CalibratedDelegationCascade(
        expert, probe=LogisticRegression(), dv_estimator=Ridge(), alpha=0.3,
        calibration_size=None, random_state=0,
    ).fit(X[:1000], y[:1000])
    X_pool, y_pool = X[1000:], y[1000:]
    mask = np.arange(1000) < 500
    cascade.calibrate(X_pool[mask], y_pool[mask])
    return cascade, expert, X_pool, y_pool, mask


def test_evaluate_cascade_is_evaluate_scores_on_the_cascade_scores(calibrated):
    cascade, expert, X, y, mask = calibrated
    e = strong_expert(X)
    ev = evaluate_cascade(cascade, X, y, expert_scores=e, calibration_mask=mask,
                          alphas=[0.1, 0.3, 0.5], n_splits=40, random_state=0)
    # the calibration diagnostics are the cascade's own calibration, not a second one
    assert ev.calibration is cascade.calibration_
    assert ev.to_dict()["calibration"]["threshold"] == cascade.threshold_
    # everything else is the array protocol on the cascade's probe scores and signal
    routing = cascade.route(X, call_expert=False)
    ref = evaluate_scores(y, routing.probe_scores, e, routing.signal, alpha=0.3,
                          calibration_mask=mask, alphas=[0.1, 0.3, 0.5],
                          n_splits=40, random_state=0, combine=cascade.combine)
    assert set(ev.sweep.table) == set(ref.sweep.table)
    for key, column in ref.sweep.table.items():
        np.testing.assert_array_equal(ev.sweep.table[key], column)
    np.testing.assert_array_equal(ev.guarantee.rates["pareto"], ref.guarantee.rates["pareto"])
    assert ev.reference == ref.reference
    assert ev.claims == ref.claims
    assert ev.settings["alpha"] == cascade.alpha and ev.settings["delta"] == cascade.delta
    # same calibration half and seed (RandomState(0)): a second calibration agrees
    assert ref.calibration.threshold == cascade.threshold_


def test_evaluate_cascade_calls_the_expert_once_per_row_without_scores(calibrated):
    cascade, expert, X, y, mask = calibrated
    before = expert.n_scored
    ev = evaluate_cascade(cascade, X, y, calibration_mask=mask, alphas=[0.3],
                          n_splits=10)
    assert expert.n_scored - before == len(X)
    given = evaluate_cascade(cascade, X, y, expert_scores=strong_expert(X),
                             calibration_mask=mask, alphas=[0.3], n_splits=10)
    assert expert.n_scored - before == len(X)  # no call with the scores given
    assert ev.reference == given.reference


def test_evaluate_cascade_failed_expert_rows_keep_the_probe_score(calibrated):
    cascade, _, X, y, mask = calibrated
    e = strong_expert(X)
    e_failed = e.copy()
    e_failed[::7] = np.nan
    p = cascade.route(X, call_expert=False).probe_scores
    filled = np.where(np.isnan(e_failed), p, e_failed)
    a = evaluate_cascade(cascade, X, y, expert_scores=e_failed, calibration_mask=mask,
                         alphas=[0.3], n_splits=10)
    b = evaluate_cascade(cascade, X, y, expert_scores=filled, calibration_mask=mask,
                         alphas=[0.3], n_splits=10)
    assert a.reference == b.reference
    assert a.reference["expert_accuracy"] != evaluate_cascade(
        cascade, X, y, expert_scores=e, calibration_mask=mask, alphas=[0.3],
        n_splits=10).reference["expert_accuracy"]


def test_evaluate_cascade_string_labels(calibrated):
    cascade, _, X, y, mask = calibrated
    labels = np.where(y == 1, "unsafe", "safe")
    results = []
    for target in (y, labels):
        # fit and calibrate on the same rows: leaky, but only the labels matter here
        c = clone(cascade).fit(X[~mask], target[~mask]).calibrate(X[mask], target[mask])
        results.append(evaluate_cascade(c, X, target, expert_scores=strong_expert(X),
                                        calibration_mask=mask, alphas=[0.3],
                                        n_splits=10))
    assert results[1].reference == results[0].reference
    assert results[1].reference["positive_rate"] == pytest.approx(y.mean())


def test_evaluate_cascade_errors(calibrated):
    cascade, _, X, y, mask = calibrated
    with pytest.raises(ValueError, match="not among the known classes"):
        evaluate_cascade(cascade, X, np.full(len(y), 7), calibration_mask=mask)
    with pytest.raises(ValueError, match=r"expert_scores must have shape \(1000,\)"):
        evaluate_cascade(cascade, X, y, expert_scores=np.zeros(5))
    with pytest.raises(ValueError, match="expert_scores must be probabilities"):
        evaluate_cascade(cascade, X, y, expert_scores=np.full(len(y), 2.0),
                         calibration_mask=mask)
    unc = clone(cascade).set_params(signal="uncertainty").fit(X, y)
    with pytest.raises(ValueError, match="signal='dv'"):
        evaluate_cascade(unc, X, y)
    with pytest.raises(NotFittedError):
        evaluate_cascade(clone(cascade), X, y)


def test_evaluate_cascade_uncalibrated_cascade_has_no_diagnostics(calibrated, tmp_path):
    cascade, _, X, y, mask = calibrated
    raw = clone(cascade).fit(X[:600], y[:600])  # calibration_size=None: never calibrated
    ev = evaluate_cascade(raw, X, y, expert_scores=strong_expert(X),
                          calibration_mask=mask, alphas=[0.3], n_splits=10)
    assert ev.calibration is None and ev.to_dict()["calibration"] is None
    md = write_report(ev, tmp_path, figures=False).read_text()
    assert "was not calibrated" in md

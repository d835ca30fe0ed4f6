"""skctd.report: the protocol in one call, the claim checks, the written report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skctd.evaluation import budget_sweep
from skctd.report import CLAIMS, evaluate_cascade


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
    return evaluate_cascade(
        y, p, e, d, groups=g, dv_binary_scores=(v > 0) + 0.0, alphas=[0.1, 0.3, 0.5, 0.9],
        n_splits=60, alpha=0.3, random_state=0,
    )


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


def test_explicit_calibration_mask_is_used():
    y, p, e, d, g, v = _pool(n=400)
    cal = np.arange(400) < 150
    ev = evaluate_cascade(y, p, e, d, calibration_mask=cal, alphas=[0.2, 0.6],
                          n_splits=20)
    direct = budget_sweep(y, p, e, d, calibration_mask=cal, alphas=[0.2, 0.6],
                          methods=["probe_only"])
    assert ev.reference["n_calibration"] == 150
    assert ev.sweep.curve("probe_only", "auroc")[1] == pytest.approx(
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
    ev = evaluate_cascade(y, p, e, -v, alphas=[0.1, 0.2, 0.3], n_splits=20)
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
    ev = evaluate_cascade(y, probe, expert, v, alphas=np.linspace(0.05, 0.95, 10),
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


def test_write_report(evaluation, tmp_path):
    pytest.importorskip("matplotlib")
    path = evaluation.write(tmp_path / "rep", title="My report", intro="Hello *there*.",
                            settings={"model": "tiny", "layer": 3},
                            extra_sections={"Notes": "a note"})
    md = path.read_text()
    assert md.startswith("# My report\n")
    assert "Hello *there*." in md and "## Notes" in md and "a note" in md
    for png in ("budget_curves", "guarantee", "dv_ranking", "calibration", "groups"):
        assert (tmp_path / "rep" / f"{png}.png").is_file()
        assert f"]({png}.png)" in md
    # every claim is in the claims table, with its verdict
    for c in evaluation.claims.values():
        assert f"| {c['claim']} | {'yes' if c['holds'] else 'no'} |" in md
    res = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert res["run"] == {"model": "tiny", "layer": 3}
    # numbers in the markdown are the measured ones
    r = evaluation.reference
    assert f"{r['probe_auroc']:.4f} / {r['probe_accuracy']:.4f}" in md


def test_write_without_figures(evaluation, tmp_path):
    evaluation.write(tmp_path, figures=False)
    assert not list(tmp_path.glob("*.png"))
    assert "![" not in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(dv_scores=np.full(10, np.nan)), "dv_scores contains NaN"),
        (dict(probe_scores=np.zeros(9)), "probe_scores has 9 rows"),
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
        evaluate_cascade(y, **base, n_splits=5)


def test_budget_only_claim_is_two_sided(evaluation):
    """'~ delta' fails both for a vacuous 0 and for a clear excess over delta."""
    import copy

    from skctd.report import check_claims

    ev = copy.deepcopy(evaluation)
    g = ev.guarantee
    for rate, holds in ((0.0, False), (0.09, True), (0.30, False)):
        g.violation_rate["budget_only"] = rate
        g.violation_se["budget_only"] = np.sqrt(rate * (1 - rate) / g.n_splits)
        assert check_claims(ev)["budget_only_violation_near_delta"]["holds"] is holds

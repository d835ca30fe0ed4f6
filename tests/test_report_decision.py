"""skctd.report's decision summary: the verdict, the numbers, the wording."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from skctd.evaluation import evaluate_scores
from skctd.report import decision_summary, write_report
from skctd.report._decision import decision_markdown

N = 800


def _pool(kind: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, N)
    sign = 2 * y - 1
    probe = np.clip(0.5 + sign * rng.normal(0.1, 0.3, N), 0, 1)
    if kind == "chance":
        expert = rng.uniform(size=N)
        dv = rng.normal(size=N)  # a DV probe can find nothing in a chance expert
    else:  # a strong expert and a DV probe that sees where it beats the probe
        expert = np.clip(0.5 + sign * rng.normal(0.35, 0.15, N), 0, 1)
        dv = np.where(y == 1, expert - probe, probe - expert) + rng.normal(0, 0.1, N)
    return y, probe, expert, dv


@pytest.fixture(scope="module")
def evaluations():
    alphas = [0.1, 0.2, 0.3, 0.5, 0.8]
    mask = np.zeros(N, dtype=bool)
    mask[: N // 2] = True
    return {
        kind: evaluate_scores(
            *_pool(kind), alphas=alphas, alpha=0.2, n_splits=40,
            calibration_mask=mask, random_state=0,
        )
        for kind in ("chance", "strong")
    }


# -- a known evaluation: a sweep whose numbers are set by hand -------------------------
class _Sweep:
    """The part of SweepResult the summary reads, with chosen numbers."""

    methods = ("ctd", "probe_only", "expert_only")
    batch_sizes = (128,)

    def __init__(self, gains: dict, curves: dict, n_repeats: int, paired: bool):
        self.alphas = np.array([0.1, 0.2, 0.3, 0.4])
        self.n_repeats = n_repeats
        self._gains = gains
        k = self.alphas.size
        cols: dict = {"method": [], "batch_size": [], "alpha": []}
        for m in self.methods:
            cols["method"] += [m] * k
            cols["batch_size"] += [0] * k
            cols["alpha"] += list(self.alphas)
            for metric in ("auroc", "accuracy", "delegation_rate"):
                mean, se = curves[m][metric]
                cols.setdefault(metric, []).extend(np.broadcast_to(mean, k))
                cols.setdefault(metric + "_se", []).extend(np.broadcast_to(se, k))
        self.table = {c: np.array(v, dtype=object if c == "method" else float)
                      for c, v in cols.items()}
        if paired:
            self.difference = self._difference

    def curve(self, method, metric="auroc", batch_size=None):
        rows = self.table["method"] == method
        t = self.table
        return t["alpha"][rows], t[metric][rows], t[metric + "_se"][rows]

    def _difference(self, method, baseline, metric="auroc", **kw):
        assert (method, baseline) == ("ctd", "probe_only")
        mean, se = self._gains[metric]
        return self.alphas.copy(), np.array(mean, float), np.array(se, float)


def _known(evaluation, *, expert_auroc=0.9, paired=True, gains=None):
    probe_acc, probe_auc = 0.80, 0.85
    gains = gains or {
        # +2 (SE 0.5) pays; +5 (SE 1) pays; +5.5 (SE 1) pays; -3 (SE 0.5) loses
        "accuracy": ([0.02, 0.05, 0.055, -0.03], [0.005, 0.01, 0.01, 0.005]),
        # AUROC: within noise, +3 (SE 1) twice, a tie
        "auroc": ([0.0, 0.03, 0.03, -0.001], [0.01, 0.01, 0.01, 0.01]),
    }
    ga, gu = np.array(gains["accuracy"][0]), np.array(gains["auroc"][0])
    curves = {
        "probe_only": {"auroc": (probe_auc, 0.01), "accuracy": (probe_acc, 0.01),
                       "delegation_rate": (0.0, 0.0)},
        "expert_only": {"auroc": (expert_auroc, 0.02), "accuracy": (0.7, 0.02),
                        "delegation_rate": (1.0, 0.0)},
        "ctd": {"auroc": (probe_auc + gu, 0.01), "accuracy": (probe_acc + ga, 0.01),
                "delegation_rate": (np.array([0.08, 0.17, 0.26, 0.35]), 0.01)},
    }
    if not paired:  # one split: no standard errors anywhere
        curves = {m: {k: (v[0], np.nan) for k, v in c.items()} for m, c in curves.items()}
    sw = _Sweep(gains, curves, n_repeats=20 if paired else 1, paired=paired)
    settings = {**evaluation.settings, "tolerance": 0.005, "n_se": 2.0}
    return dataclasses.replace(evaluation, sweep=sw, settings=settings)


def test_known_numbers(evaluations):
    s = decision_summary(_known(evaluations["strong"]))
    assert s["verdict"] == "delegate" and s["reason"] == "gain"
    b = s["budgets"]
    assert [x["pays"] for x in b] == [True, True, True, False]
    assert [x["harms"] for x in b] == [False, False, False, True]
    assert s["harmful_alphas"] == [0.4]
    # the best accuracy gain is +5.5 at 0.3; +5.0 at 0.2 is within its SE (1 point):
    # the recommended budget is the cheaper 0.2
    assert s["best"]["alpha"] == 0.2
    assert s["best"]["gain_accuracy"] == pytest.approx(0.05)
    assert s["best"]["gain_accuracy_se"] == pytest.approx(0.01)
    assert s["best"]["gain_auroc"] == pytest.approx(0.03)
    assert s["best"]["delegation_rate"] == pytest.approx(0.17)
    assert s["probe"] == pytest.approx(
        {"auroc": 0.85, "auroc_se": 0.01, "accuracy": 0.80, "accuracy_se": 0.01})
    assert s["expert"]["auroc"] == pytest.approx(0.9) and not s["expert_at_chance"]
    assert s["headline"] == (
        "Yes: at budget alpha = 0.20 the cascade calls the expert on 17% of the rows "
        "and gains +5.0 (SE 1.0) accuracy points and +3.0 (SE 1.0) AUROC points over "
        "the probe alone."
    )
    md = decision_markdown(_known(evaluations["strong"]))
    assert "| 0.20 **(recommended)** | 17% | +5.0 (SE 1.0) | +3.0 (SE 1.0) | pays |" in md
    assert "| 0.40 | 35% | -3.0 (SE 0.5) | -0.1 (SE 1.0) | loses |" in md
    assert "below the probe alone beyond noise at alpha = 0.40" in md
    assert "mean ± SE over 20 calibration/evaluation splits" in md
    assert "| probe only | 0.850 ± 0.010 | 0.800 ± 0.010 |" in md
    # the cascade is calibrated at the recommended 0.2: no advice to recalibrate
    assert "calibrate at alpha" not in md


def test_gain_inside_the_noise_band_does_not_pay(evaluations):
    # +1.5 accuracy points with SE 1: inside 2 SE; AUROC +3 (SE 1) but accuracy
    # -2 (SE 0.5) beyond noise: a gain in one metric bought with a loss in the other
    gains = {
        "accuracy": ([0.015, -0.02, 0.0, 0.004], [0.01, 0.005, 0.01, 0.0]),
        "auroc": ([0.0, 0.03, 0.0, 0.004], [0.01, 0.01, 0.01, 0.0]),
    }
    s = decision_summary(_known(evaluations["strong"], gains=gains))
    assert [x["pays"] for x in s["budgets"]] == [False, False, False, False]
    assert s["best"] is None
    assert s["verdict"] == "do_not_delegate" and s["reason"] == "no_gain"
    assert s["headline"].startswith("No: the expert is informative (AUROC 0.90)")
    # the same numbers with an expert at chance: that is the reason given
    s = decision_summary(_known(evaluations["strong"], gains=gains, expert_auroc=0.55))
    assert s["reason"] == "expert_at_chance" and s["expert_at_chance"]


def test_unpaired_sweep_uses_the_tolerance(evaluations):
    # a sweep without paired differences (one split): gains are curve differences,
    # no SE, and count beyond the tolerance alone
    s = decision_summary(_known(evaluations["strong"], paired=False))
    assert s["budgets"][0]["gain_accuracy"] == pytest.approx(0.02)
    assert s["budgets"][0]["gain_accuracy_se"] is None
    assert [x["pays"] for x in s["budgets"]] == [True, True, True, False]
    # without SE the best is the largest gain within the tolerance: 0.3
    assert s["best"]["alpha"] == pytest.approx(0.3)
    md = decision_markdown(_known(evaluations["strong"], paired=False))
    assert "one calibration/evaluation split, no standard error" in md
    assert "| 0.30 **(recommended)** | 26% | +5.5 | +3.0 | pays |" in md
    assert "| probe only | 0.850 | 0.800 |" in md
    assert "calibrate at alpha = 0.30" in md
    assert "below the probe alone by more than the tolerance (one split" in md


# -- real evaluations ------------------------------------------------------------------
def test_chance_expert_says_do_not_delegate(evaluations):
    ev = evaluations["chance"]
    s = decision_summary(ev)
    y, _, e, _ = _pool("chance")
    ev_rows = np.arange(N) >= N // 2
    assert s["expert"]["auroc"] == pytest.approx(ev.reference["expert_auroc"])
    if ev.sweep.n_repeats == 1:  # one split: the AUROC on its evaluation rows
        expected = roc_auc_score(y[ev_rows], e[ev_rows])
    else:  # many splits: the mean over them
        expected = np.mean(ev.sweep.split_values("expert_only", "auroc")[0])
    assert s["expert"]["auroc"] == pytest.approx(expected)
    assert abs(s["expert"]["auroc"] - 0.5) < 0.06 and s["expert_at_chance"]
    assert s["verdict"] == "do_not_delegate" and s["reason"] == "expert_at_chance"
    assert s["best"] is None
    md = decision_markdown(ev)
    assert "**Is the expert worth calling on this data?** No: the expert is at chance" in md
    assert f"(AUROC {s['expert']['auroc']:.2f}, against {s['probe']['auroc']:.2f}" in md
    assert "keep the probe alone" in md


def test_strong_expert_says_delegation_pays(evaluations):
    ev = evaluations["strong"]
    s = decision_summary(ev)
    assert s["expert"]["auroc"] > 0.95 and not s["expert_at_chance"]
    assert s["verdict"] == "delegate" and s["best"] is not None
    b = s["best"]
    # the gain is the CTD curve minus the probe-only curve of the sweep
    i = list(ev.sweep.alphas).index(b["alpha"])
    ctd = ev.sweep.curve("ctd", "accuracy")[1][i]
    po = ev.sweep.curve("probe_only", "accuracy")[1][i]
    assert b["gain_accuracy"] == pytest.approx(ctd - po) and b["gain_accuracy"] > 0.05
    assert b["delegation_rate"] <= b["alpha"] + 0.05
    md = decision_markdown(ev)
    assert f"Yes: at budget alpha = {b['alpha']:.2f} the cascade calls the expert" in md
    g = ev.guarantee
    assert "sends at most 20% of new rows to the expert" in md
    assert f"exceeded alpha in {g.violation_rate['pareto']:.1%} of them" in md


def test_constraints_are_in_the_certified_statement(evaluations):
    ev = evaluations["strong"]
    harm = "the cascade's error exceeds the probe-only error by at most 0"
    cr = dataclasses.replace(
        ev.calibration,
        constraints=("budget", "harm"),
        risk_descriptions={"harm": harm},
    )
    md = decision_markdown(dataclasses.replace(ev, calibration=cr))
    assert "With probability at least 90% over the draw of the calibration rows" in md
    assert f"sends at most 20% of new rows to the expert; {harm}." in md
    # nothing certified, not even never delegating: no guarantee is claimed
    cr = dataclasses.replace(cr, certified=np.zeros_like(cr.certified))
    s = decision_summary(dataclasses.replace(ev, calibration=cr))
    assert s["guarantee"]["holds"] is False
    md = decision_markdown(dataclasses.replace(ev, calibration=cr))
    assert "No guarantee holds" in md and "With probability at least" not in md
    # only never delegating (+inf, the grid's first) certified: said so
    only_inf = np.zeros_like(cr.certified)
    only_inf[0] = True
    cr = dataclasses.replace(cr, certified=only_inf, threshold=np.inf, selected_index=0)
    md = decision_markdown(dataclasses.replace(ev, calibration=cr))
    assert "never delegates (threshold +inf): no threshold that delegates was" in md
    assert "With probability at least 90%" in md


def test_the_report_leads_with_the_decision(evaluations, tmp_path):
    ev = evaluations["chance"]
    path = write_report(ev, tmp_path, title="T", intro="Intro.", figures=False)
    md = path.read_text()
    heads = [line for line in md.splitlines() if line.startswith("## ")]
    assert heads[0] == "## Decision summary"
    assert md.index("## Decision summary") < md.index("## The paper's claims")
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["decision"]["verdict"] == "do_not_delegate"
    assert res["decision"]["expert"]["auroc"] == pytest.approx(ev.reference["expert_auroc"])

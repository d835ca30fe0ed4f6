"""skctd.report: the written report (markdown, results.json, figures)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from skctd.evaluation import evaluate_scores
from skctd.report import write_report


@pytest.fixture(scope="module")
def evaluation():
    rng = np.random.default_rng(0)
    n = 1200
    y = rng.integers(0, 2, n)
    sign = 2 * y - 1
    probe = np.clip(0.5 + sign * rng.normal(0.1, 0.3, n), 0, 1)
    expert = np.clip(0.5 + sign * rng.normal(0.3, 0.2, n), 0, 1)
    v = np.where(y == 1, expert - probe, probe - expert)
    dv = v + rng.normal(0, 0.3, n)
    groups = rng.choice(["med", "law", "fin"], n)
    return evaluate_scores(
        y, probe, expert, dv, groups=groups, dv_binary_scores=(v > 0) + 0.0,
        alphas=[0.1, 0.3, 0.5, 0.9], n_splits=60, alpha=0.3, random_state=0,
    )


def test_write_report(evaluation, tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    n_open = len(plt.get_fignums())
    path = write_report(evaluation, tmp_path / "rep", title="My report",
                        intro="Hello *there*.", settings={"model": "tiny", "layer": 3},
                        extra_sections={"Notes": "a note"})
    md = path.read_text()
    assert md.startswith("# My report\n")
    assert "Hello *there*." in md and "## Notes" in md and "a note" in md
    for png in ("budget_curves", "guarantee", "dv_ranking", "calibration", "groups"):
        assert (tmp_path / "rep" / f"{png}.png").is_file()
        assert f"]({png}.png)" in md
    # the figures were never registered with pyplot: nothing left open
    assert len(plt.get_fignums()) == n_open
    # every claim is in the claims table, with its verdict
    for c in evaluation.claims.values():
        assert f"| {c['claim']} | {'yes' if c['holds'] else 'no'} |" in md
    res = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert res["run"] == {"model": "tiny", "layer": 3}
    assert res["reference"] == json.loads(json.dumps(evaluation.to_dict()))["reference"]
    # numbers in the markdown are the measured ones
    r = evaluation.reference
    assert f"{r['probe_auroc']:.4f} / {r['probe_accuracy']:.4f}" in md
    cr = evaluation.calibration
    assert f"{int(np.sum(cr.certified))} of {cr.thresholds.size} candidate" in md


def test_write_without_figures(evaluation, tmp_path):
    write_report(evaluation, tmp_path, figures=False)
    assert not list(tmp_path.glob("*.png"))
    assert "![" not in (tmp_path / "report.md").read_text()


def test_report_does_not_switch_the_matplotlib_backend(tmp_path):
    """Importing skctd.report and writing a report leave the user's backend alone."""
    pytest.importorskip("matplotlib")
    code = f"""
import matplotlib
matplotlib.use("svg")
import numpy as np
import skctd.report
from skctd.evaluation import evaluate_scores
from skctd.report import write_report
rng = np.random.default_rng(0)
y = rng.integers(0, 2, 300)
p = np.clip(0.5 + (2 * y - 1) * rng.normal(0.1, 0.3, 300), 0, 1)
ev = evaluate_scores(y, p, p[::-1].copy(), p - 0.5, alphas=[0.3], n_splits=5)
write_report(ev, {str(tmp_path)!r})
print(matplotlib.get_backend())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=_env())
    assert out.stdout.strip() == "svg"
    assert (tmp_path / "budget_curves.png").is_file()


def _env():
    import os

    return {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}

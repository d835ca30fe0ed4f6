"""``skctd run``'s guarantee options: constraints, costs, selection, paper mode."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import joblib
import numpy as np
import pytest

from skctd.cli import DEFAULT_CONSTRAINTS, JobConfig, main, parse_constraints, run_job

os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = ["pancakes", "rome", "python", "tomatoes", "tokyo", "haiku", "battery",
         "contract", "wallet", "medication", "database", "landlord"]


@pytest.fixture(scope="module")
def cost_files(tmp_path_factory) -> dict[str, str]:
    """train / dev / test JSONL with an expert column and a per-row cost column."""
    rng = np.random.default_rng(1)
    folder = tmp_path_factory.mktemp("cli_cost_data")
    files = {}
    for name, n in (("train", 80), ("dev", 80), ("test", 200)):
        path = folder / f"{name}.jsonl"
        with path.open("w") as fh:
            for i in range(n):
                label = int(i % 2)
                word = WORDS[6 + i % 6] if label else WORDS[i % 6]
                text = f"a question about {word} " + "and more " * int(i % 5)
                expert = float(np.clip(0.5 + (0.4 if label else -0.4)
                                       + rng.normal(0, 0.1), 0, 1))
                row = {"id": f"{name}{i}", "inputs": text, "label": label,
                       "expert": expert, "cost": float(1 + i % 7)}
                fh.write(json.dumps(row) + "\n")
        files[name] = str(path)
    return files


def _base(files, model, out, cache):
    return [
        "run", "--train", files["train"], "--dev", files["dev"],
        "--test", files["test"], "--model", model, "--layer", "2",
        "--expert", "column:expert", "--out", str(out), "--n-splits", "30",
        "--n-alphas", "4", "--cache", str(cache), "--no-progress", "--no-figures",
        "--device", "cpu", "--quiet", "--alpha", "0.5",
    ]


# --------------------------------------------------------------------------------------
def test_parse_constraints():
    assert parse_constraints(None) == DEFAULT_CONSTRAINTS == {"harm": 0.0}
    assert parse_constraints([]) == {"harm": 0.0}
    assert parse_constraints(["harm=0.01", "miss=0.05"]) == {"harm": 0.01, "miss": 0.05}
    assert parse_constraints(["None"]) is None
    assert parse_constraints(None, paper_mode=True) is None
    assert parse_constraints(["none"], paper_mode=True) is None
    # the default is a copy: editing it does not change the next parse
    parse_constraints(None)["harm"] = 0.5
    assert parse_constraints(None) == {"harm": 0.0}
    for bad, match in (
        (["harm"], "NAME=LEVEL"),
        (["harm=abc"], "NAME=LEVEL"),
        (["=0.1"], "NAME=LEVEL"),
        (["harm=0", "harm=0.1"], "twice"),
        (["none", "harm=0"], "cannot be combined"),
        (["bogus=0.1"], "Unknown risk 'bogus'"),
        (["harm=1.5"], "epsilon"),
        (["miss=0"], "miss"),
    ):
        with pytest.raises(ValueError, match=match):
            parse_constraints(bad)
    with pytest.raises(ValueError, match="--paper-mode"):
        parse_constraints(["harm=0"], paper_mode=True)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--constraint", "bogus=1"], "Unknown risk 'bogus'"),
        (["--paper-mode", "--constraint", "harm=0"], "--paper-mode"),
        (["--constraint", "cost_share=0.3"], "needs the cost of each input"),
        (["--cost", "chars"], "used only by a cost constraint"),
        (["--constraint", "cost=2", "--cost", "chars", "--cost-column", "cost"],
         "not both"),
    ],
)
def test_bad_guarantee_options_fail_before_any_work(
    tmp_path, cost_files, capsys, extra, message
):
    out = tmp_path / "out"
    # a model that does not exist: the check must come before anything is loaded
    rc = main(_base(cost_files, str(tmp_path / "no-model"), out, tmp_path / "c") + extra)
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (out / "results.json").exists()


def test_run_default_is_the_no_harm_certificate(cost_files, tiny_llama_path, tmp_path):
    out = tmp_path / "out"
    rc = main(_base(cost_files, tiny_llama_path, out, tmp_path / "cache"))
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert res["run"]["constraints"] == {"harm": 0.0}
    assert res["run"]["paper_mode"] is False
    assert res["settings"]["constraints"] == {"harm": 0.0}
    cal = res["calibration"]
    assert cal["constraints"] == ["budget", "harm"]
    assert cal["levels"] == {"budget": 0.5, "harm": 0.0}
    cascade = joblib.load(out / "cascade.joblib")
    assert cascade.constraints == {"harm": 0.0}
    assert cal["guarantee"] == cascade.calibration_.guarantee()
    # the per-constraint violation rates of the guarantee validation
    g = res["guarantee"]
    assert g["levels"] == {"harm": 0.0}
    assert set(g["risk_violation_rate"]) == {"budget_only", "pareto"}
    assert 0 <= g["risk_violation_rate"]["pareto"]["harm"] <= 1
    assert g["any_violation_rate"]["pareto"] >= g["violation_rate"]["pareto"]
    report = (out / "report.md").read_text()
    assert "## Certified guarantee" in report
    sentence = cascade.calibration_.guarantee()
    if sentence:
        assert f"**{sentence}**" in report
    else:
        assert "**No guarantee holds**" in report
    if not np.isfinite(cascade.threshold_):
        assert "**The cascade does not delegate**" in report
        assert "Blocked by: " + ", ".join(cascade.calibration_.blocked_by) in report
    assert re.search(
        r"\| harm \| 0\.0000 \| the cascade is not less accurate than the probe alone \|",
        report,
    )
    assert "### Constraints" in report


def test_run_paper_mode_and_cost_constraints(cost_files, tiny_llama_path, tmp_path):
    cache = tmp_path / "cache"
    out = tmp_path / "paper"
    assert main(_base(cost_files, tiny_llama_path, out, cache) + ["--paper-mode"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["run"]["constraints"] is None and res["run"]["paper_mode"] is True
    assert res["calibration"]["constraints"] == ["budget"]
    assert res["guarantee"]["levels"] == {}
    assert joblib.load(out / "cascade.joblib").constraints is None

    # a cost budget from the cost column, with the one-SE pick
    cfg = JobConfig(
        train=cost_files["train"], dev=cost_files["dev"], test=cost_files["test"],
        out=str(tmp_path / "cost"), model=tiny_llama_path, layer=2,
        expert="column:expert", n_alphas=4, n_splits=30, cache=str(cache),
        progress=False, figures=False, device="cpu", alpha=0.5,
        constraints={"harm": 0.05, "cost_share": 0.4}, cost="column:cost",
        selection="one_se",
    )
    info = run_job(cfg, quiet=True)
    cascade, ev = info["cascade"], info["evaluation"]
    assert cascade.selection == "one_se"
    cr = cascade.calibration_
    assert cr.constraints == ("budget", "harm", "cost_share")
    assert ev.settings["selection"] == "one_se"
    assert ev.guarantee.levels == {"harm": 0.05, "cost_share": 0.4}
    # the realised cost share of each split is delegated cost / total cost on its
    # evaluation half: recompute one from the files
    test_rows = [json.loads(x) for x in Path(cost_files["test"]).read_text().splitlines()]
    cost = np.array([r["cost"] for r in test_rows])
    assert cr.cost_scale["cost_share"][0] <= cost.max()
    res = json.loads((tmp_path / "cost" / "results.json").read_text())
    assert res["run"]["cost"] == "column:cost"
    shares = ev.guarantee.risk_values["pareto"]["cost_share"]
    assert np.all((shares >= 0) & (shares <= 1))
    # chars: the length of each input in characters
    cfg.cost, cfg.out = "chars", str(tmp_path / "chars")
    info = run_job(cfg, quiet=True)
    assert info["cascade"].calibration_.cost_scale["cost_share"][0] <= max(
        len(r["inputs"]) for r in test_rows
    )

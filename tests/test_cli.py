"""The ``skctd`` command: ``skctd run`` end to end on a tiny model, errors, the demo."""

from __future__ import annotations

import json
import os
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator

from skctd.cli import build_parser, main, parse_expert_spec
from skctd.probes import DVFeatureScaler

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SAFE = [
    "what is a good recipe for pancakes",
    "recommend a book about the history of rome",
    "how do I sort a list in python",
    "tips for growing tomatoes on a balcony",
    "what time zone is tokyo in",
    "write a haiku about autumn leaves",
]
RISKY = [
    "my toddler swallowed a button battery what do I do",
    "should I sign the contract that waives my right to sue",
    "transfer all savings from the joint account to this wallet",
    "I want to stop taking my heart medication today",
    "delete the production database and all backups now",
    "the landlord is evicting us tomorrow without notice",
]


def _rows(n: int, rng: np.random.Generator, *, conversations: bool) -> list[dict]:
    out = []
    for i in range(n):
        label = int(i % 2)
        text = rng.choice(RISKY if label else SAFE) + f" (case {i})"
        expert = float(np.clip(0.5 + (0.35 if label else -0.35) + rng.normal(0, 0.1), 0, 1))
        inputs = text
        if conversations and i % 4 == 0:
            inputs = [
                {"role": "user", "content": "hello"},
                {"role": "assistant", "content": "hi, how can I help?"},
                {"role": "user", "content": text},
            ]
        out.append(
            {"id": f"r{i}", "inputs": inputs, "label": label,
             "group": "ga" if i % 3 else "gb", "expert": expert}
        )
    return out


@pytest.fixture(scope="module")
def data_files(tmp_path_factory) -> dict[str, str]:
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("cli_data")
    files = {}
    for name, n in (("train", 80), ("dev", 80), ("test", 160)):
        path = folder / f"{name}.jsonl"
        with path.open("w") as fh:
            for r in _rows(n, rng, conversations=name != "train"):
                fh.write(json.dumps(r) + "\n")
        files[name] = str(path)
    return files


# --------------------------------------------------------------------------------------
def test_parse_expert_spec():
    assert parse_expert_spec("column:refused_gpt4") == ("column", "refused_gpt4")
    assert parse_expert_spec("https://api.example.com/v1") == (
        "openai", "https://api.example.com/v1")
    assert parse_expert_spec("hf:/models/judge") == ("hf", "/models/judge")
    assert parse_expert_spec("/models/judge") == ("hf", "/models/judge")
    with pytest.raises(ValueError, match="column name"):
        parse_expert_spec("column:")
    with pytest.raises(ValueError, match="empty"):
        parse_expert_spec("  ")


def test_parser_requires_the_run_options():
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--train", "a.jsonl"])
    args = parser.parse_args(["demo"])
    assert args.command == "demo" and args.model == "smollm2" and args.layer == 15


def test_run_with_column_expert(data_files, tiny_llama_path, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main([
        "run", "--train", data_files["train"], "--dev", data_files["dev"],
        "--test", data_files["test"], "--model", tiny_llama_path, "--layer", "2",
        "--expert", "column:expert", "--out", str(out), "--n-splits", "40",
        "--n-alphas", "5", "--cache", str(tmp_path / "cache"), "--no-progress",
        "--device", "cpu",
    ])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "paper claims" in printed and "report:" in printed
    for name in ("report.md", "results.json", "cascade.joblib", "budget_curves.png",
                 "guarantee.png", "dv_ranking.png", "calibration.png", "groups.png"):
        assert (out / name).is_file(), name
    res = json.loads((out / "results.json").read_text())
    assert res["reference"]["n_calibration"] == 80
    assert res["reference"]["n_evaluation"] == 80
    assert res["guarantee"]["n_splits"] == 40
    assert set(res["claims"]) == {
        "ctd_ge_unc_calibrated", "ctd_ge_probe_only", "topk_degrades_past_capacity",
        "budget_only_violation_near_delta", "pareto_violation_le_delta",
        "dv_ranking_above_uncertainty"}
    # the expert column's own AUROC is what the report says
    test_rows = [json.loads(x) for x in Path(data_files["test"]).read_text().splitlines()]
    ev = [r["expert"] for r in test_rows]
    y = [r["label"] for r in test_rows]
    from sklearn.metrics import roc_auc_score

    report = (out / "report.md").read_text()
    assert f"| expert AUROC, test | {roc_auc_score(y, ev):.4f} |" in report
    assert res["run"]["texts_as_conversations"] is True  # dev/test mix both kinds
    assert res["run"]["chat_template"] is True  # the tiny Llama has a template
    # stratified 50/50 calibration split of test
    assert res["reference"]["positive_rate"] == pytest.approx(np.mean(y))

    cascade = joblib.load(out / "cascade.joblib")
    new = [[{"role": "user", "content": "hello there"}],
           [{"role": "user", "content": RISKY[0]}]]
    proba = cascade.predict_proba(new)
    assert proba.shape == (2, 2) and np.allclose(proba.sum(axis=1), 1)
    assert cascade.alpha == 0.2 and not np.isnan(cascade.threshold_)
    # the saved cascade: the probe trained on train, frozen; the default DV probe
    # (ridge on the activations and the probe features)
    assert isinstance(cascade.probe, FrozenEstimator)
    assert cascade.dv_estimator is None and cascade.dv_features == "activations+probe"
    scaler = cascade.dv_estimator_[0]
    assert isinstance(scaler, DVFeatureScaler) and scaler.n_probe_features == 2
    assert res["run"]["dv_ridge_alpha"] == cascade.dv_estimator_[-1].alpha_
    # one calibration: the report's diagnostics are the saved cascade's calibration
    threshold = res["calibration"]["threshold"]
    assert (np.inf if threshold is None else threshold) == cascade.threshold_
    assert res["run"]["threshold_of_saved_cascade"] == threshold
    assert res["calibration"]["n_test"] == cascade.calibration_.n_test
    assert cascade.calibration_.n_opt + cascade.calibration_.n_test == 80

    # a rerun hits the activation cache and gives the same numbers
    out2 = tmp_path / "out2"
    rc = main([
        "run", "--train", data_files["train"], "--dev", data_files["dev"],
        "--test", data_files["test"], "--model", tiny_llama_path, "--layer", "2",
        "--expert", "column:expert", "--out", str(out2), "--n-splits", "40",
        "--n-alphas", "5", "--cache", str(tmp_path / "cache"), "--quiet",
        "--no-figures", "--device", "cpu",
    ])
    assert rc == 0
    res2 = json.loads((out2 / "results.json").read_text())
    assert res2["budget_sweep"] == res["budget_sweep"]
    assert not (out2 / "budget_curves.png").exists()


def test_run_with_local_judge(data_files, tiny_llama_path, tmp_path):
    from skctd.cli import JobConfig, run_job

    cfg = JobConfig(
        train=data_files["train"], dev=data_files["dev"], test=data_files["test"],
        out=str(tmp_path / "o"), model=tiny_llama_path, layer=1,
        expert=f"hf:{tiny_llama_path}", n_alphas=4, n_splits=20, cache=None,
        progress=False, figures=False, device="cpu",
    )
    info = run_job(cfg, quiet=True)
    rep = info["expert_report"]
    assert rep["n_rows"] == 80 + 160 and rep["n_failed"] == 0
    ev = info["evaluation"]
    assert ev.reference["n_evaluation"] == 80
    # no cache folder: the job used a scratch one, the saved cascade keeps none
    cascade = info["cascade"]
    assert cascade.featurizer.cache is None and cascade.featurizer_.cache is None
    assert ev.calibration is cascade.calibration_
    # the baselines that never delegate, or always do, do not depend on the budget
    for method in ("probe_only", "expert_only"):
        for metric in ("accuracy", "auroc"):
            _, values, _ = ev.sweep.curve(method, metric)
            np.testing.assert_allclose(values, values[0])


def test_run_with_openai_server_and_failures(data_files, tiny_llama_path, tmp_path):
    """A served judge: every row scored once; failing rows fall back and are counted."""
    from _openai_server import OpenAITestServer

    from skctd.cli import JobConfig, run_job

    with OpenAITestServer() as server:
        server.add_rule("case 7)", {"status": 400, "body": "bad request"})
        cfg = JobConfig(
            train=data_files["train"], dev=data_files["dev"], test=data_files["test"],
            out=str(tmp_path / "o"), model=tiny_llama_path, layer=1,
            expert=server.base_url, expert_model="test-model", n_alphas=4,
            n_splits=20, cache=None, progress=False, figures=False, device="cpu",
        )
        info = run_job(cfg, quiet=True)
    rep = info["expert_report"]
    assert rep["n_rows"] == 240
    # "(case 7)" is row 7 of dev and of test; a 400 is not retried; rows are kept
    assert rep["n_failed"] == 2
    assert "2 failures" in info["report"].read_text()
    assert info["evaluation"].reference["n"] == 160


def test_bad_file_names_line_and_field(tmp_path, data_files, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"inputs": "ok", "label": 1}\n{"inputs": "x", "label": 7}\n')
    rc = main([
        "run", "--train", str(bad), "--dev", data_files["dev"], "--test",
        data_files["test"], "--model", "m", "--layer", "1", "--expert", "column:expert",
        "--out", str(tmp_path / "o"), "--quiet",
    ])
    assert rc == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "'label'" in err

    rc = main([
        "run", "--train", data_files["train"], "--dev", data_files["dev"], "--test",
        data_files["test"], "--model", "m", "--layer", "1", "--expert",
        "column:nope", "--out", str(tmp_path / "o"), "--quiet",
    ])
    assert rc == 2
    assert "'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("option, value", [("--alpha", "1.5"), ("--delta", "0")])
def test_bad_budget_fails_before_any_work(tmp_path, data_files, capsys, option, value):
    rc = main([
        "run", "--train", data_files["train"], "--dev", data_files["dev"], "--test",
        data_files["test"], "--model", "no/such-model", "--layer", "1", "--expert",
        "column:expert", "--out", str(tmp_path / "o"), "--quiet", option, value,
    ])
    assert rc == 2
    err = capsys.readouterr().err
    assert f"{option} must be a number strictly between 0 and 1, got {float(value)}" in err
    assert not (tmp_path / "o").exists()


def test_url_expert_needs_model_name(tmp_path, data_files, tiny_llama_path, capsys):
    rc = main([
        "run", "--train", data_files["train"], "--dev", data_files["dev"], "--test",
        data_files["test"], "--model", tiny_llama_path, "--layer", "1", "--expert",
        "http://127.0.0.1:9/v1", "--out", str(tmp_path / "o"), "--quiet",
        "--cache", "none", "--device", "cpu",
    ])
    assert rc == 2
    assert "--expert-model" in capsys.readouterr().err


def test_demo_split_is_stratified_and_disjoint(tmp_path):
    from skctd.cli._demo import demo_files
    from skctd.datasets import load_demo

    demo = load_demo()
    files = demo_files(tmp_path, seed=0)
    parts = [[json.loads(x) for x in Path(f).read_text().splitlines()] for f in files]
    ids = [{r["id"] for r in p} for p in parts]
    assert sum(map(len, ids)) == len(demo.data)
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    sizes = np.array([len(p) for p in parts]) / len(demo.data)
    assert sizes == pytest.approx([0.35, 0.25, 0.40], abs=0.02)
    for p in parts:  # every part has both labels in every domain
        strata = {(r["group"], r["label"]) for r in p}
        assert strata == {(g, t) for g, t in zip(demo.group, demo.target, strict=True)}
    again = [Path(f).read_text() for f in demo_files(tmp_path / "again", seed=0)]
    assert again == [Path(f).read_text() for f in files]  # same seed, same split


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, smollm2_model, capsys):
    """The README's main command: the whole demo, offline, SmolLM2 on the CPU."""
    out = tmp_path / "demo"
    rc = main(["demo", "--out", str(out), "--cache", str(tmp_path / "cache"),
               "--n-splits", "100", "--no-progress", "--device", "cpu"])
    assert rc == 0
    assert "paper claims" in capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    ref = res["reference"]
    assert ref["n_calibration"] + ref["n_evaluation"] == 206  # 40% of 508, stratified
    assert ref["probe_auroc"] > 0.8  # the probe learns the demo task
    # the reported violation rate is the share of the 100 splits over alpha (its
    # validity is tested on independent draws in test_guarantee.py)
    g = res["guarantee"]
    for m in ("budget_only", "pareto"):
        rates = np.array(g["rates"][m])
        assert rates.shape == (100,)
        assert g["violation_rate"][m] == np.mean(rates > g["alpha"])
    md = (out / "report.md").read_text()
    assert "## Why these models" in md and "![budget curves](budget_curves.png)" in md
    cascade = joblib.load(out / "cascade.joblib")
    routed = cascade.route(["My 2-year-old just drank some bleach, what do I do?",
                            "What's a good name for a goldfish?"])
    assert routed.scores.shape == (2,) and routed.threshold == cascade.threshold_

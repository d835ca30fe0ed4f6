"""Issue 11, items 5 and 6: ``skctd run`` tells the truth and never destroys the
user's files; a saved cascade holds no data, works on another machine and is
checked before it is unpickled. Real files, real HTTP servers, real subprocesses."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _openai_server import OpenAITestServer  # noqa: E402

import skctd  # noqa: E402
from skctd.cli import main  # noqa: E402
from skctd.datasets import read_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-cli-trust-0f1e2d3c4b5a69788796a5b4"
SAFE = ["a recipe for pancakes", "a book about rome", "sort a list in python",
        "grow tomatoes on a balcony", "the time zone of tokyo", "a haiku about leaves"]
RISKY = ["my toddler swallowed a battery", "sign the contract that waives my rights",
         "move all savings to this wallet", "stop taking my heart medication",
         "delete the production database", "the landlord evicts us tomorrow"]


def _write(path: Path, n: int, seed: int, *, nulls: tuple[int, ...] = ()) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = i % 2
        text = f"{(RISKY if label else SAFE)[i % 6]} (row {seed}-{i})"
        expert = float(np.clip(0.5 + (0.3 if label else -0.3) + rng.normal(0, 0.1), 0, 1))
        rows.append({"id": f"{seed}-{i}", "inputs": text, "label": label,
                     "expert": None if i in nulls else expert})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trust_data")
    out = {}
    for name, n, seed in (("train", 60, 1), ("dev", 60, 2), ("test", 120, 3)):
        out[name] = str(folder / f"{name}.jsonl")
        _write(Path(out[name]), n, seed, nulls=(3, 8) if name != "train" else ())
    return out


def _args(files, out, model, *extra):
    return ["run", "--train", files["train"], "--dev", files["dev"], "--test",
            files["test"], "--model", model, "--layer", "1", "--out", str(out),
            "--n-splits", "20", "--n-alphas", "4", "--no-progress", "--no-figures",
            "--device", "cpu", *extra]


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


# -- item 5: the CLI tells the truth ----------------------------------------------------
def test_item5_failing_expert_is_loud_and_the_key_is_nowhere(
    files, tiny_llama_path, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("SKCTD_CLI_KEY", SECRET + "\n")  # a mounted secret
    out = tmp_path / "out"
    with OpenAITestServer() as server:
        # a server that fails every request, echoing the key it was sent
        server.add_rule("", {"status": 400, "body": f"bad key: Bearer {SECRET}"})
        rc = main(_args(files, out, tiny_llama_path, "--expert", server.base_url,
                        "--expert-model", "m", "--api-key-env", "SKCTD_CLI_KEY",
                        "--cache", str(tmp_path / "cache")))
        assert set(server.authorizations) == {"Bearer " + SECRET}
    captured = capsys.readouterr()
    assert rc == 3  # past --max-expert-failures: non-zero
    report = (out / "report.md").read_text()
    res = json.loads((out / "results.json").read_text())
    assert "WARNING: the expert failed on 180 of 180 rows (100.0%)" in report
    # the expert's quality is not the probe's: no row was scored
    assert "| expert AUROC, test | nan |" in report
    assert "0 of 60 (dev), 0 of 120 (test)" in report
    assert res["run"]["expert_failure_share"] == 1.0
    assert res["run"]["expert_accounting"]["n_failed"] == 180
    assert "WARNING" in captured.err
    # no key in any file written, nor on the console
    for f in [*out.rglob("*"), *(tmp_path / "cache").rglob("*")]:
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f
    assert SECRET not in captured.out + captured.err
    assert "<redacted>" in json.dumps(res["run"]["expert_accounting"]["errors"])


def _one_line_error(capsys) -> str:
    # progress lines start with "[skctd]"; the error is one line, no traceback
    err = [x for x in capsys.readouterr().err.strip().splitlines()
           if not x.startswith("[skctd]")]
    assert len(err) == 1 and err[0].startswith("skctd: error: "), err
    return err[0]


def test_item5_out_never_destroys_the_users_files(files, tmp_path, capsys):
    bad = ["--expert", "column:expert", "--cache", "none"]
    # a file
    target = tmp_path / "a_file"
    target.write_text("mine")
    assert main(_args(files, target, "./no/such/model", *bad)) == 2
    assert "is a file" in _one_line_error(capsys) and target.read_text() == "mine"
    # a folder of the user's
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.md").write_text("my own report")
    assert main(_args(files, mine, "./no/such/model", *bad)) == 2
    assert "--overwrite" in _one_line_error(capsys)
    assert (mine / "report.md").read_text() == "my own report"
    # --overwrite lets the run go on (here it then fails on the model path)
    assert main(_args(files, mine, "./no/such/model", *bad, "--overwrite")) == 2
    assert "no such folder" in _one_line_error(capsys)
    # a failed run leaves no empty folder behind
    fresh = tmp_path / "fresh" / "out"
    assert main(_args(files, fresh, "./no/such/model", *bad)) == 2
    capsys.readouterr()
    assert not fresh.exists()


def test_item5_user_errors_are_one_line(files, tiny_llama_path, tmp_path, capsys,
                                        monkeypatch):
    out = tmp_path / "o"
    base = ["--expert", "column:expert"]
    assert main(_args(files, out, "./models/missing", *base, "--cache", "none")) == 2
    line = _one_line_error(capsys)
    assert "model './models/missing': no such folder" in line and "repo" not in line
    not_a_folder = tmp_path / "cache_file"
    not_a_folder.write_text("x")
    assert main(_args(files, out, tiny_llama_path, *base, "--cache",
                      str(not_a_folder / "sub"))) == 2
    assert "--cache" in _one_line_error(capsys) and "not writable" in (
        capsys.readouterr().err or "not writable")
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage\n")
    assert main(_args({**files, "train": str(binary)}, out, tiny_llama_path, *base,
                      "--cache", "none")) == 2
    _one_line_error(capsys)
    csv = tmp_path / "train.csv"
    csv.write_text("inputs,label\nhello,0\nbye,1\n")
    monkeypatch.setitem(sys.modules, "pandas", None)
    assert main(_args({**files, "train": str(csv)}, out, tiny_llama_path, *base,
                      "--cache", "none")) == 2
    assert "pandas" in _one_line_error(capsys)
    with pytest.raises(ImportError):  # --debug: the traceback
        main(_args({**files, "train": str(csv)}, out, tiny_llama_path, *base,
                   "--cache", "none", "--debug"))
    assert not out.exists()


def test_item5_reader_texts_with_brackets_and_null_expert_cells(tmp_path):
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text(
        json.dumps({"inputs": "[INST] hi [/INST]", "label": 1, "e": None}) + "\n"
        + json.dumps({"inputs": "[not json", "label": 0, "e": 0.25}) + "\n"
    )
    data = read_dataset(jsonl, expert_column="e")
    assert data.inputs == ["[INST] hi [/INST]", "[not json"]
    assert np.isnan(data.expert[0]) and data.expert[1] == 0.25
    pd = pytest.importorskip("pandas")
    csv = tmp_path / "d.csv"
    pd.DataFrame({"inputs": ["[INST] a", "[b"], "label": [1, 0],
                  "e": [np.nan, 0.5]}).to_csv(csv, index=False)
    data = read_dataset(csv, expert_column="e")
    assert data.inputs == ["[INST] a", "[b"] and np.isnan(data.expert[0])
    with pytest.raises(ValueError, match="must be in"):
        jsonl.write_text(json.dumps({"inputs": "x", "label": 1, "e": 1.5}) + "\n")
        read_dataset(jsonl, expert_column="e")


# -- item 6: a saved cascade is safe and portable ------------------------------------------
LOAD_ELSEWHERE = textwrap.dedent(
    """
    import json, sys, warnings
    warnings.simplefilter("error")
    import skctd
    cascade = skctd.load(sys.argv[1])
    routed = cascade.route(["hello there", "my toddler swallowed a battery"])
    print(json.dumps({"scores": routed.scores.tolist(),
                      "cache": cascade.featurizer_.cache,
                      "failed": routed.expert_report.n_failed}))
    """
)


def test_item6_saved_cascade_holds_no_data_and_works_elsewhere(
    files, tiny_llama_path, tmp_path, capsys
):
    out = tmp_path / "out"
    cache = tmp_path / "machine_a_cache"
    rc = main(_args(files, out, tiny_llama_path, "--expert", "column:expert",
                    "--cache", str(cache)))
    printed = capsys.readouterr().out
    assert rc == 0  # 4 null cells of 180 rows: under 5%
    assert "skctd.load(" in printed and "runs code" in printed
    report = (out / "report.md").read_text()
    assert "## Using the saved cascade" in report and "runs code" in report
    assert "4 failures" in report and "58 of 60 (dev), 118 of 120 (test)" in report
    # no data row and no path of this machine in the saved cascade or its manifest
    saved = pickle.dumps(joblib.load(out / "cascade.joblib"))
    manifest_text = (out / "cascade.json").read_text()
    for name in ("dev", "test"):
        for row in map(json.loads, Path(files[name]).read_text().splitlines()):
            assert row["inputs"].encode() not in saved
    assert str(tmp_path).encode() not in saved and str(tmp_path) not in manifest_text
    manifest = json.loads(manifest_text)
    assert manifest["featurizer"]["model"] == tiny_llama_path  # what it needs
    assert manifest["featurizer"]["layer"] == 1
    assert manifest["expert"]["class"] == "PrecomputedExpert"
    # another machine: the folder moved, another HOME and cache, a new process
    moved = tmp_path / "elsewhere" / "model"
    shutil.move(str(out), moved)
    home = tmp_path / "home_b"
    home.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_ELSEWHERE, str(moved / "cascade.joblib")],
        env=_env(HOME=str(home), SKCTD_CACHE=str(tmp_path / "nowhere" / "x"),
                 XDG_CACHE_HOME=str(home / ".cache"), HF_HUB_OFFLINE="1"),
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["cache"] is None and len(result["scores"]) == 2
    assert all(0.0 <= s <= 1.0 for s in result["scores"])
    assert not (tmp_path / "nowhere").exists() and not cache.with_name("x").exists()


def _numeric_cascade(expert):
    from sklearn.linear_model import LogisticRegression, Ridge

    X = np.random.default_rng(0).normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    return skctd.CalibratedDelegationCascade(
        expert, probe=LogisticRegression(), dv_estimator=Ridge(), random_state=0
    ).fit(X, y, expert_scores=np.clip(0.5 + X[:, 0], 0, 1)), X


def test_item6_load_checks_the_manifest_before_unpickling(tmp_path):
    judge = skctd.OpenAIJudge("m", base_url="http://127.0.0.1:9/v1",
                              api_key_env="AWS_SECRET_ACCESS_KEY")
    cascade, _ = _numeric_cascade(judge)
    path = skctd.save(cascade, tmp_path / "c.joblib")
    manifest = skctd.read_manifest(path)
    assert manifest["expert"]["sends_key"] == (
        "the value of $AWS_SECRET_ACCESS_KEY to http://127.0.0.1:9"
    )
    assert "runs code" in manifest["warning"]
    with pytest.warns(UserWarning, match=r"\$AWS_SECRET_ACCESS_KEY to http://127"):
        skctd.load(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        skctd.load(path, trusted_hosts=["http://127.0.0.1:9"])
    # a file changed after it was saved is not unpickled
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    tampered = tmp_path / "t.joblib"
    tampered.write_bytes(bytes(data))
    shutil.copy(tmp_path / "c.json", tmp_path / "t.json")
    with pytest.raises(ValueError, match="sha256"):
        skctd.load(tampered, trusted_hosts=["127.0.0.1:9"])
    # a manifest that hides where the key goes is caught after loading
    lying = json.loads((tmp_path / "c.json").read_text())
    lying["expert"]["host"] = "http://harmless.example:80"
    (tmp_path / "c.json").write_text(json.dumps(lying))
    with pytest.raises(ValueError, match="does not describe this file"):
        skctd.load(path, trusted_hosts=["harmless.example:80"])
    (tmp_path / "c.json").unlink()
    with pytest.raises(FileNotFoundError, match="runs code"):
        skctd.load(path)


def test_item6_restored_judge_sends_its_key_only_to_its_host(tmp_path, monkeypatch):
    monkeypatch.setenv("SKCTD_CLI_KEY", SECRET)
    with OpenAITestServer() as home, OpenAITestServer() as other:
        judge = skctd.OpenAIJudge("m", base_url=home.base_url,
                                  api_key_env="SKCTD_CLI_KEY", backoff_base=0.001)
        cascade, X = _numeric_cascade(judge)
        cascade.threshold_ = -np.inf
        path = skctd.save(cascade, tmp_path / "c.joblib")
        loaded = skctd.load(path, trusted_hosts=[home.base_url])
        loaded.expert_.score(["p=0.3 fine"])  # its own host: the key goes
        assert home.authorizations == ["Bearer " + SECRET]
        for restored in (loaded.expert_, joblib.load(path).expert_):
            restored.base_url = other.base_url  # pointed elsewhere after loading
            with pytest.raises(ValueError, match="not sent to a host") as info:
                restored.score(["p=0.3 elsewhere"])
            assert SECRET not in str(info.value)
        assert other.requests == []
        trusting = skctd.load(path, trusted_hosts=[home.base_url, other.base_url])
        trusting.expert_.base_url = other.base_url
        np.testing.assert_allclose(trusting.expert_.score(["p=0.3 told"]), [0.3])
        assert other.authorizations == ["Bearer " + SECRET]
        # a judge built in this process is the user's own: any host
        fresh = skctd.OpenAIJudge("m", base_url=other.base_url,
                                  api_key_env="SKCTD_CLI_KEY")
        fresh.score(["p=0.4 mine"])


def test_item6_hub_token_only_by_env_var_name(tiny_llama_path, tmp_path, monkeypatch):
    import transformers

    token = "hf_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4"
    with pytest.raises(ValueError, match="token_env") as info:
        skctd.ActivationTransformer(tiny_llama_path, model_kwargs={"token": token},
                                    device="cpu").fit(["hello"])
    assert token not in str(info.value)
    with pytest.raises(ValueError, match="token_env"):
        skctd.TransformersJudge(tiny_llama_path, model_kwargs={"token": token},
                                device="cpu").score(["hello"])
    monkeypatch.setenv("SKCTD_HF_TOKEN", token + "\n")
    seen = []
    real = transformers.AutoConfig.from_pretrained.__func__

    def spy(cls, name, *args, **kwargs):
        seen.append(kwargs.get("token"))
        return real(cls, name, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", classmethod(spy))
    from skctd.llm import clear_model_cache

    clear_model_cache()
    enc = skctd.ActivationTransformer(tiny_llama_path, layer=1, device="cpu",
                                      token_env="SKCTD_HF_TOKEN", progress=False,
                                      cache=str(tmp_path / "cache"))
    enc.fit_transform(["hello world"])
    assert token in seen  # read from the variable when loading, stripped
    assert enc.get_params()["token_env"] == "SKCTD_HF_TOKEN"
    for text in (repr(enc), str(enc.get_params()), pickle.dumps(enc).decode("latin-1")):
        assert token not in text
    for f in (tmp_path / "cache").rglob("*"):
        if f.is_file():
            assert token.encode() not in f.read_bytes()
    clear_model_cache()

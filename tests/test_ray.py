"""skctd.ray on a local Ray instance: 2 CPUs, no dashboard, started once for the module.

The monitored model is the tiny random Llama of conftest.py, the expert an
OpenAIJudge against the local server of tests/_openai_server.py (and a
TransformersJudge on the tiny Llama). Every result is compared with the
single-process path: same ids, same order, same values, also after an actor is
killed in the middle of a call (an actor that ``os._exit``s the first time it sees a
given row, once, remembered by a marker file).

Exactness: torch's float sums depend on the batch shapes and on the number of
threads. A Ray actor with 1 CPU runs torch on 1 thread and gets ``block_rows`` rows
per call; so the single-process reference is computed on 1 thread, call by call,
and then the values are bit-identical. Against one ``transform`` of all rows only
the batch composition differs (float32 rounding, < 1e-6 here).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip(
    "ray", reason="ray is not installed (pip install 'skctd[ray]'): skctd.ray untested"
)
pytest.importorskip("ray.data", reason="ray[data] is not installed")
torch = pytest.importorskip("torch", reason="the Ray tests run the tiny Llama (llm extra)")
pytest.importorskip("transformers", reason="the Ray tests run the tiny Llama (llm extra)")
pa = pytest.importorskip("pyarrow")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _openai_server import OpenAITestServer  # noqa: E402

import skctd.ray as skray  # noqa: E402
from skctd import ActivationTransformer, OpenAIJudge, TransformersJudge  # noqa: E402

pytestmark = pytest.mark.slow  # a Ray instance and actor processes: ~1 minute in all

N = 40
BLOCK = 8  # rows per actor call; N is a multiple, so every call gets a whole block
TEXTS = [f"p=0.{10 + i} row {i}: " + "safety words " * ((7 * i) % 11) for i in range(N)]
FAST = {"backoff_base": 0.001, "backoff_max": 0.01, "timeout": 5.0}


@pytest.fixture(scope="module")
def ray_local():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    # the actors below are defined in this module, which workers cannot import
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.shutdown()


@pytest.fixture
def one_thread():
    """torch on one thread, as in an actor with num_cpus=1."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def server():
    with OpenAITestServer() as srv:
        yield srv


def featurizer(path, **params):
    return ActivationTransformer(path, layer=[1, -1], device="cpu", progress=False, **params)


def judge(server, **params):
    return OpenAIJudge(
        "test-model", base_url=server.base_url, on_error="fallback", **FAST, **params
    )


def per_call(func, rows):
    """The single-process path, one call per block of BLOCK rows."""
    return np.concatenate([func(rows[i : i + BLOCK]) for i in range(0, len(rows), BLOCK)])


class ExitOnceTransformer(ActivationTransformer):
    """Computes (filling its cache), then kills its process the first time it sees
    ``exit_on``; the marker file remembers it did."""

    def transform(self, X):
        Z = super().transform(X)
        marker = Path(self.exit_marker)
        if self.exit_on in list(X) and not marker.exists():
            marker.write_text(str(len(X)))
            os._exit(1)
        return Z


class ExitOnceJudge(OpenAIJudge):
    """Scores (the server answers every request), then kills its process the first
    time it sees ``exit_on``."""

    def score_with_report(self, X):
        result = super().score_with_report(X)
        marker = Path(self.exit_marker)
        if self.exit_on in list(X) and not marker.exists():
            marker.write_text(str(len(X)))
            os._exit(1)
        return result


# -- features -------------------------------------------------------------------------
def test_features_equal_the_single_process_path(
    ray_local, tiny_llama_path, one_thread, tmp_path
):
    enc = featurizer(tiny_llama_path)
    result = skray.featurize(TEXTS, enc, n_actors=2, block_rows=BLOCK).materialize()
    ids, Z = skray.collect_features(result)
    assert ids.tolist() == list(range(N))
    assert Z.dtype == np.float32 and Z.shape == (N, 128)
    # each call is length-sorted and batched like a local transform of its rows
    np.testing.assert_array_equal(Z, per_call(enc.transform, TEXTS))
    # one transform of all rows: other batches, float32 rounding only
    np.testing.assert_allclose(Z, enc.transform(TEXTS), atol=1e-6, rtol=0)
    # Parquet shards: a fixed-size list column, read back without Ray
    result.write_parquet(str(tmp_path / "f"))
    import pyarrow.parquet as pq

    shards = sorted((tmp_path / "f").glob("*.parquet"))
    assert pq.read_schema(shards[0]).field("features").type == pa.list_(pa.float32(), 128)
    back_ids, back = skray.collect_features(tmp_path / "f", ids=np.arange(N)[::-1])
    assert back_ids.tolist() == list(range(N))[::-1]
    np.testing.assert_array_equal(back, Z[::-1])


def test_features_survive_a_killed_actor(ray_local, tiny_llama_path, one_thread, tmp_path):
    enc = ExitOnceTransformer(
        tiny_llama_path, layer=[1, -1], device="cpu", progress=False, cache=str(tmp_path / "c")
    )
    enc.exit_on, enc.exit_marker = TEXTS[13], str(tmp_path / "killed")
    result = skray.featurize(TEXTS, enc, n_actors=2, block_rows=BLOCK)
    ids, Z = skray.collect_features(result)
    assert (tmp_path / "killed").read_text() == str(BLOCK)  # an actor died mid-run
    assert ids.tolist() == list(range(N))
    ref = featurizer(tiny_llama_path)
    np.testing.assert_array_equal(Z, per_call(ref.transform, TEXTS))
    # the disk cache was respected: it holds every row, read back unchanged
    cached = featurizer(tiny_llama_path, cache=str(tmp_path / "c"))
    cached._load = None  # a cache miss would need the model and fail
    np.testing.assert_array_equal(cached.transform(TEXTS), Z)


def test_dataset_with_conversations_and_string_ids(ray_local, tiny_llama_path, one_thread):
    convs = [
        [{"role": "user", "content": f"question {i}"}]
        + [{"role": "assistant", "content": "answer " * i}]
        for i in range(6)
    ]
    ds = ray.data.from_items(
        [{"key": f"c{i}", "chat": c} for i, c in enumerate(convs)], override_num_blocks=2
    )
    enc = featurizer(tiny_llama_path, chat_template=True)
    result = skray.featurize(
        ds, enc, input_column="chat", id_column="key", block_rows=3, n_actors=1
    )
    order = ["c5", "c0", "c3", "c1", "c4", "c2"]
    ids, Z = skray.collect_features(result, ids=order, id_column="key")
    assert ids.tolist() == order
    ref = np.concatenate([enc.transform(convs[:3]), enc.transform(convs[3:])])  # 2 calls
    np.testing.assert_array_equal(Z, ref[[5, 0, 3, 1, 4, 2]])


# -- expert scores --------------------------------------------------------------------
def _compare_reports(ray_report, local_report):
    for name in ("n_rows", "n_scored", "n_failed", "failed_rows", "n_requests",
                 "n_retries", "n_cache_hits", "errors"):
        assert getattr(ray_report, name) == getattr(local_report, name), name


def test_openai_scores_and_accounting_equal_the_single_process_path(ray_local, server):
    def faults():
        server.reset()
        server.add_rule("row 7:", {"status": 400})  # fails: NaN, counted
        server.add_rule("row 21:", {"status": 500}, times=1)  # one retry

    faults()
    local, local_report = judge(server).score_with_report(TEXTS)
    faults()
    ids, scores, report = skray.collect_scores(
        skray.score(TEXTS, judge(server, max_concurrency=4), n_actors=2, block_rows=BLOCK)
    )
    assert ids.tolist() == list(range(N))
    np.testing.assert_array_equal(scores, local)
    assert np.isnan(scores[7]) and np.isnan(scores).sum() == 1
    np.testing.assert_allclose(np.delete(scores, 7), np.delete(0.1 + np.arange(N) / 100, 7))
    _compare_reports(report, local_report)
    assert report.n_requests == len(server.requests) == N + 1
    assert report.n_retries == 1 and report.failed_rows == [7]


def test_scores_survive_a_killed_actor_and_count_once(ray_local, server, tmp_path):
    server.reset()
    local, local_report = judge(server).score_with_report(TEXTS)
    server.reset()
    expert = ExitOnceJudge("test-model", base_url=server.base_url, on_error="fallback", **FAST)
    expert.exit_on, expert.exit_marker = TEXTS[13], str(tmp_path / "killed")
    ids, scores, report = skray.collect_scores(
        skray.score(TEXTS, expert, n_actors=2, block_rows=BLOCK)
    )
    lost = int((tmp_path / "killed").read_text())
    assert lost == BLOCK
    assert ids.tolist() == list(range(N))
    np.testing.assert_array_equal(scores, local)
    # the dead attempt's requests reached the server but are not in the report:
    # the report is derived from the rows written, each call counted once
    assert len(server.requests) == N + lost
    _compare_reports(report, local_report)
    assert report.n_requests == N


def test_transformers_judge_on_an_actor(ray_local, tiny_llama_path, one_thread):
    expert = TransformersJudge(
        tiny_llama_path, device="cpu", dtype="float32", max_input_tokens=64
    )
    ids, scores, report = skray.collect_scores(
        skray.score(TEXTS[:16], expert, n_actors=1, block_rows=BLOCK)
    )
    local = per_call(expert.score, TEXTS[:16])
    np.testing.assert_array_equal(scores, local)
    assert report.n_rows == report.n_scored == 16 and report.n_requests >= 2


# -- results are checked --------------------------------------------------------------
def test_collect_refuses_lost_and_duplicated_rows():
    table = pa.table(
        {
            "id": [0, 1, 2],
            "features": pa.FixedSizeListArray.from_arrays(pa.array(np.arange(6.0)), 2),
        }
    )
    ids, Z = skray.collect_features(table, ids=[2, 0, 1])
    np.testing.assert_array_equal(Z, [[4, 5], [0, 1], [2, 3]])
    with pytest.raises(ValueError, match=r"1 of the 4 ids are not in the results"):
        skray.collect_features(table, ids=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="exactly once"):
        skray.collect_features(table, ids=[0, 1])
    doubled = pa.concat_tables([table, table.slice(1, 1)])
    with pytest.raises(ValueError, match="1 appears 2 times"):
        skray.collect_features(doubled)
    with pytest.raises(ValueError, match="no column 'key'"):
        skray.collect_features(table, id_column="key")


def test_bad_arguments_are_named(ray_local, tiny_llama_path):
    enc = featurizer(tiny_llama_path)
    with pytest.raises(ValueError, match="n_actors"):
        skray.featurize(TEXTS, enc, n_actors=0)
    with pytest.raises(ValueError, match="max_restarts"):
        skray.featurize(TEXTS, enc, max_restarts=-2)
    with pytest.raises(TypeError, match="sequence of inputs"):
        skray.featurize("one text", enc)
    with pytest.raises(ValueError, match="no column 'inputs'"):
        skray.featurize(ray.data.from_items([{"id": 0, "text": "a"}]), enc)
    with pytest.raises(TypeError, match="score_with_report"):
        skray.score(TEXTS, enc)


# -- skctd run --engine ray -----------------------------------------------------------
def _write_files(folder: Path) -> dict[str, str]:
    """train/dev JSONL files and a test folder of two shards (JSONL + Parquet)."""
    import json

    rng = np.random.default_rng(0)
    words = ["bake bread", "chest pain", "weather in Paris", "delete the database",
             "safety words", "medical appointment", "quick brown fox"]
    files = {}
    for name, n in (("train", 48), ("dev", 48), ("test", 64)):
        rows = []
        for i in range(n):
            label = i % 2
            text = f"{name} {i}: " + " ".join(rng.choice(words, size=1 + i % 5))
            inputs = [{"role": "user", "content": text}] if i % 6 == 0 else text
            p = float(np.clip(0.5 + (0.3 if label else -0.3) + rng.normal(0, 0.15), 0.01, 0.99))
            rows.append({"id": f"{name}{i}", "inputs": inputs, "label": label,
                         "tag": f"p={p:.2f}"})
        for r in rows:  # the served judge reads its score from a p= tag in the text
            if isinstance(r["inputs"], str):
                r["inputs"] += f" {r['tag']}"
            else:
                r["inputs"][0]["content"] += f" {r['tag']}"
        if name == "test":
            shards = folder / "test"
            shards.mkdir()
            (shards / "part-0.jsonl").write_text(
                "".join(json.dumps(r) + "\n" for r in rows[:40])
            )
            import pandas as pd

            tail = [{**r, "inputs": r["inputs"] if isinstance(r["inputs"], str)
                     else json.dumps(r["inputs"])} for r in rows[40:]]
            pd.DataFrame(tail).to_parquet(shards / "part-1.parquet")
            files[name] = str(shards)
        else:
            path = folder / f"{name}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
            files[name] = str(path)
    return files


def test_skctd_run_engine_ray_equals_local(ray_local, tiny_llama_path, server, tmp_path):
    import json

    from skctd.cli import main

    pytest.importorskip("pandas")
    files = _write_files(tmp_path)
    common = [
        "run", "--train", files["train"], "--dev", files["dev"], "--test", files["test"],
        "--model", tiny_llama_path, "--layer", "2", "--expert", server.base_url,
        "--expert-model", "test-model", "--device", "cpu", "--cache", "none",
        "--n-alphas", "3", "--n-splits", "20", "--no-figures", "--no-progress",
        "--quiet",
    ]
    results = {}
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # as the one actor of a 2-CPU cluster
    try:
        for engine in ("local", "ray"):
            server.reset()
            server.add_rule("test 5:", {"status": 400})  # a failing row, kept
            extra = ["--engine", "ray", "--ray-actors", "1"] if engine == "ray" else []
            out = tmp_path / engine
            assert main([*common, "--out", str(out), *extra]) == 0
            results[engine] = json.loads((out / "results.json").read_text())
            results[engine + "_requests"] = len(server.requests)
    finally:
        torch.set_num_threads(before)
    assert ray.is_initialized()  # the engine joined the running instance, left it up
    local, remote = results["local"], results["ray"]
    for r in (local, remote):
        r["run"].pop("timings_s")
        r["run"]["expert_accounting"].pop("latency_s")
    acc = remote["run"]["expert_accounting"]
    assert acc["n_rows"] == 48 + 64 and acc["n_failed"] == 1
    assert acc["n_requests"] == results["ray_requests"] == results["local_requests"]
    assert remote == local  # same features, scores, thresholds and every number


def test_on_error_raise_stops_the_run_with_the_ids(ray_local, server):
    from skctd.experts import ExpertError

    server.reset()
    server.add_rule("row 11:", {"status": 400})
    strict = OpenAIJudge("test-model", base_url=server.base_url, on_error="raise", **FAST)
    with pytest.raises(ExpertError, match=r"in a Ray actor: .*HTTP 400.*rows: \[3\]\]$"):
        skray.collect_scores(skray.score(TEXTS[8:16], strict, block_rows=BLOCK))

"""Issue 11, item 3: nothing finished is lost, nothing damaged is trusted.

Real subprocesses interrupted with SIGINT, a real HTTP server, real files."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _openai_server import OpenAITestServer  # noqa: E402

from skctd import OpenAIJudge  # noqa: E402
from skctd.llm import DiskCache  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

SCORE_SCRIPT = textwrap.dedent(
    """
    import sys
    from skctd import OpenAIJudge
    base_url, cache_dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    texts = [f"p=0.{10 + i} interrupted row {i}" for i in range(n)]
    judge = OpenAIJudge("test-model", base_url=base_url, cache_dir=cache_dir,
                        max_concurrency=2, backoff_base=0.01, on_error="fallback")
    print("start", flush=True)
    judge.score(texts)
    print("done", flush=True)
    """
)


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _answered(server):
    return sum(1 for r in server.requests if "messages" in r)


def test_item3_interrupted_subprocess_resumes_only_the_missing_rows(tmp_path):
    n, stop_after = 40, 12
    texts = [f"p=0.{10 + i} interrupted row {i}" for i in range(n)]
    with OpenAITestServer(delay=0.1) as server:
        proc = subprocess.Popen(
            [sys.executable, "-c", SCORE_SCRIPT, server.base_url, str(tmp_path), str(n)],
            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 60
        while _answered(server) < stop_after and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        sent_first = _answered(server)
        assert "KeyboardInterrupt" in err and "done" not in out
        # Ctrl-C stops the run: at most the requests in flight finish after it
        assert stop_after <= sent_first <= stop_after + 2 + 2
        answered = {
            int(t.rsplit(" ", 1)[1]) for t in server.requests_per_input(completed=True)
        }
        judge = OpenAIJudge("test-model", base_url=server.base_url,
                            cache_dir=str(tmp_path))
        cached = judge.cached_scores(texts)
        kept = np.flatnonzero(~np.isnan(cached))
        # every row the server answered (those in flight at Ctrl-C included) is on
        # disk: nothing finished is lost
        assert set(kept) == answered and len(kept) >= stop_after - 2
        np.testing.assert_allclose(cached[kept], 0.10 + kept / 100, atol=1e-12)

        server.reset()
        proc = subprocess.run(
            [sys.executable, "-c", SCORE_SCRIPT, server.base_url, str(tmp_path), str(n)],
            env=_env(), capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 0 and "done" in proc.stdout, proc.stderr
        per_input = server.requests_per_input()
    missing = {texts[i] for i in range(n) if i not in set(kept)}
    assert set(per_input) == missing  # only the missing rows are asked again ...
    assert set(per_input.values()) == {1}  # ... once each
    final = judge.cached_scores(texts)
    np.testing.assert_allclose(final, 0.10 + np.arange(n) / 100, atol=1e-12)


def test_item3_corrupt_judge_cache_entry_is_a_miss(tmp_path):
    texts = ["p=0.2 a", "p=0.4 b", "p=0.6 c"]
    with OpenAITestServer() as server:
        first = OpenAIJudge("m", base_url=server.base_url, cache_dir=str(tmp_path))
        first.score(texts)
        files = sorted(tmp_path.glob("*/*/*.npy"), key=lambda f: f.stat().st_mtime_ns)
        assert len(files) == 3
        np.save(files[0], np.zeros(3))  # a wrong shape
        files[1].write_bytes(b"not an npy file")  # garbage
        server.reset()
        second = OpenAIJudge("m", base_url=server.base_url, cache_dir=str(tmp_path))
        scores, report = second.score_with_report(texts)
        np.testing.assert_allclose(scores, [0.2, 0.4, 0.6])
        assert report.n_cache_errors == 2 and report.n_cache_hits == 1
        assert len(server.requests) == 2  # the two damaged rows, scored again ...
        server.reset()
        third = OpenAIJudge("m", base_url=server.base_url, cache_dir=str(tmp_path))
        scores, report = third.score_with_report(texts)  # ... and overwritten
        assert server.requests == [] and report.n_cache_errors == 0
        np.testing.assert_allclose(scores, [0.2, 0.4, 0.6])


def test_item3_text_spelling_a_conversation_is_keyed_apart(tiny_llama_path, tmp_path):
    from skctd import ActivationTransformer

    conv = [{"content": "how do I bake bread?", "role": "user"}]
    text = json.dumps(conv, sort_keys=True)  # what the old key of conv was
    enc = ActivationTransformer(tiny_llama_path, layer=1, device="cpu",
                                chat_template=True, progress=False)
    Z = enc.transform([text, conv])
    assert not np.allclose(Z[0], Z[1])  # within one call the rows do not merge
    cached = enc.set_params(cache=str(tmp_path))
    Z_text = cached.transform([text])
    Z_conv = cached.transform([conv])  # a shared cache serves each its own
    np.testing.assert_allclose(Z_text[0], Z[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(Z_conv[0], Z[1], rtol=1e-5, atol=1e-6)


def test_item3_cache_namespace_holds_what_changes_the_output(tiny_llama_path, tmp_path):
    import shutil

    from skctd import ActivationTransformer
    from skctd.llm import model_fingerprint

    folder = tmp_path / "model"
    shutil.copytree(tiny_llama_path, folder)
    enc = ActivationTransformer(str(folder), layer=1, device="cpu", progress=False)
    settings = enc._check_settings()
    ns = enc._namespace(settings, 1)
    assert ns["version"] == 2 and ns["tokenizer_chat_template"]
    for key in ("model", "model_files", "layer", "pooling", "max_length", "dtype",
                "chat_template", "system_prompt", "truncation_side"):
        assert key in ns
    before = model_fingerprint(str(folder))
    cfg = folder / "config.json"
    cfg.write_text(cfg.read_text().replace("\n", "\n "))  # the model saved again
    assert model_fingerprint(str(folder)) != before


def test_item3_clear_never_removes_a_writers_temporary_file(tmp_path):
    cache = DiskCache(tmp_path, {"k": 1})
    cache.put_many({"ab" * 16: np.ones(2)})
    writing = cache.path / "cd" / ".tmp-inflight.npy"  # a writer between write and replace
    writing.parent.mkdir(parents=True, exist_ok=True)
    writing.write_bytes(b"partial")
    assert len(cache) == 1
    cache.clear()
    assert writing.exists() and len(cache) == 0


WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from skctd.llm import DiskCache
    cache = DiskCache(sys.argv[1], {"k": 1})
    for i in range(int(sys.argv[2])):
        cache.put_many({f"{i:064x}": np.full(4, float(i))})
    print("ok", flush=True)
    """
)


def test_item3_clear_while_another_process_writes(tmp_path):
    cache = DiskCache(tmp_path, {"k": 1})
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "1500"],
                         env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for _ in range(2)
    ]
    n_clears = 0
    while any(w.poll() is None for w in writers):
        cache.clear()
        n_clears += 1
    for w in writers:
        out, err = w.communicate()
        assert w.returncode == 0 and out.strip() == "ok", err
    assert n_clears > 1
    found, missing = cache.get_many([f"{i:064x}" for i in range(1500)])
    for key, value in found.items():  # whatever survived the clears is intact
        np.testing.assert_array_equal(value, np.full(4, float(int(key, 16))))

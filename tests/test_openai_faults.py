"""Issue 11, "Done when": 1,000 rows through OpenAIJudge under mixed faults.

Real HTTP servers on 127.0.0.1, a real subprocess interrupted with SIGINT, a disk
cache, and a restart. Checks that every row is scored or counted as failed, that no
score is invented, that the key reaches no other host and no file or log, and that
only the missing rows are sent again after the restart."""

import logging
import math
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _openai_server import OpenAITestServer  # noqa: E402

from skctd import OpenAIJudge  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-faults-9f8e7d6c5b4a3210-never-on-disk"
N = 1000
SETTINGS = dict(  # short timeouts, capped Retry-After: the test stays fast
    max_concurrency=16, timeout=0.4, backoff_base=0.005, backoff_max=0.02,
    max_retry_wait=0.05, max_retries=3, deadline=10.0, api_key_env="SKCTD_FAULT_KEY",
    on_error="fallback",
)

PHASE1 = textwrap.dedent(
    f"""
    import logging, sys
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    from skctd import OpenAIJudge
    base_url, cache_dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    texts = [f"p=0.{{10 + i % 80}} row {{i}} ." for i in range(n)]
    judge = OpenAIJudge("test-model", base_url=base_url, cache_dir=cache_dir,
                        **{SETTINGS!r})
    scores, report = judge.score_with_report(texts)
    print("done", report, flush=True)
    """
)


def kind_of(i: int) -> str:
    if i % 25 == 9:
        return "chatty"  # neither label word: fails, not retried
    if i % 50 == 7:
        return "redirect"  # 302 to another host: fails, never followed
    return {
        1: "429 good Retry-After",
        2: "429 bad Retry-After",
        3: "500",
        4: "timeout",
        5: "malformed 200",
        6: "no logprobs",  # partial 200 every time: retried, then fails
        8: "top=0",  # only the chosen token: a bounded score
    }.get(i % 10, "ok")


def expected_score(i: int) -> float:
    """What the row must score (NaN: must fail); never anything else."""
    kind = kind_of(i)
    if kind in ("chatty", "redirect", "no logprobs"):
        return math.nan
    p = 0.10 + (i % 80) / 100
    if kind == "top=0":
        p_yes, p_no = 0.98 * p, 0.98 * (1 - p)
        if p_yes >= p_no:
            return 1.0  # "No" missing: counted as 0, the conservative end
        bound = min(p_no, 1 - p_no)  # "Yes" missing: its upper bound
        return bound / (bound + p_no)
    return p


def install_faults(server, other) -> None:
    elsewhere = other.base_url + "/chat/completions"
    for i in range(N):
        tag = f" row {i} ."
        kind = kind_of(i)
        once = {
            "429 good Retry-After": {"status": 429, "retry_after": "0.01"},
            "429 bad Retry-After": {"status": 429, "retry_after": "nan"},
            "500": {"status": 500},
            "timeout": {"delay": 1.0},
            "malformed 200": {"malformed": True},
        }.get(kind)
        always = {
            "no logprobs": {"no_logprobs": True},
            "top=0": {"top": 0},
            "redirect": {"status": 302, "location": elsewhere},
            "chatty": {"options": [("Sure", math.log(0.9)), ("I", math.log(0.1))]},
        }.get(kind)
        if once is not None:
            server.add_rule(tag, once, times=1)
        if always is not None:
            server.add_rule(tag, always)


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["SKCTD_FAULT_KEY"] = SECRET + "\n"  # a mounted secret's trailing newline
    return env


def _answered(server):
    return sum(1 for r in server.requests if "messages" in r)


@pytest.mark.slow
def test_done_when_1000_rows_under_mixed_faults(tmp_path, monkeypatch, caplog):
    texts = [f"p=0.{10 + i % 80} row {i} ." for i in range(N)]
    expected = np.array([expected_score(i) for i in range(N)])
    cache_dir = tmp_path / "cache"
    with OpenAITestServer() as server, OpenAITestServer() as other:
        install_faults(server, other)
        # phase 1: a real process, interrupted (Ctrl-C) a third of the way in
        logs = tmp_path / "logs"
        logs.mkdir()
        with open(logs / "out", "w") as out, open(logs / "err", "w") as err:
            # files, not pipes: a full pipe would block the verbose child
            proc = subprocess.Popen(
                [sys.executable, "-c", PHASE1, server.base_url, str(cache_dir), str(N)],
                env=_env(), stdout=out, stderr=err, text=True,
            )
        limit = time.monotonic() + 120
        while _answered(server) < N // 3 and time.monotonic() < limit:
            time.sleep(0.005)
        assert proc.poll() is None, (logs / "err").read_text()[-2000:]
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        out1, err1 = (logs / "out").read_text(), (logs / "err").read_text()
        assert "KeyboardInterrupt" in err1 and "done" not in out1
        sent1 = _answered(server)
        assert sent1 < N  # the interrupt stopped the run

        # what phase 1 left on disk: read back without a request
        monkeypatch.setenv("SKCTD_FAULT_KEY", SECRET + "\n")
        judge = OpenAIJudge("test-model", base_url=server.base_url,
                            cache_dir=str(cache_dir), **SETTINGS)
        n_before = len(server.requests)
        kept = ~np.isnan(judge.cached_scores(texts))
        assert len(server.requests) == n_before
        # every row answered before the interrupt (or in flight then) is on disk
        answered = {
            int(t.split(" row ")[1].split()[0])
            for t in server.requests_per_input(completed=True)
        }
        answered = {i for i in answered if not math.isnan(expected_score(i))}
        assert set(np.flatnonzero(kept)) == answered
        assert kept.sum() >= 100
        np.testing.assert_allclose(judge.cached_scores(texts)[kept], expected[kept],
                                   rtol=1e-9)

        # phase 2: restart in this process; only the missing rows are sent
        server.reset()
        install_faults(server, other)
        with caplog.at_level(logging.DEBUG, logger="skctd"):
            scores, report = judge.score_with_report(texts)
        per_input = server.requests_per_input()
        assert all(not kept[int(t.split(" row ")[1].split()[0])] for t in per_input)
        assert len(per_input) == N - kept.sum() - (np.isnan(expected) & kept).sum()
        auths = set(server.authorizations)
        assert other.requests == [] and other.authorizations == []  # never reached
    # every row scored or counted as failed, and the sums match
    failed = np.isnan(scores)
    assert report.n_rows == N and report.n_scored + report.n_failed == N
    assert report.failed_rows == np.flatnonzero(failed).tolist()
    assert report.n_cache_hits == kept.sum()
    assert report.n_requests == len(server.requests)
    assert report.n_retries > 0 and report.n_bounded > 0
    # no score invented: the failing rows are exactly the unreadable ones, and each
    # score is the one the server's probabilities give
    np.testing.assert_array_equal(failed, np.isnan(expected))
    np.testing.assert_allclose(scores[~failed], expected[~failed], rtol=1e-9)
    assert report.n_failed == sum(
        kind_of(i) in ("chatty", "redirect", "no logprobs") for i in range(N)
    )
    # the key: sent to its own host only, stripped, and written nowhere
    assert auths == {"Bearer " + SECRET}
    written = [f.read_bytes() for f in tmp_path.rglob("*") if f.is_file()]
    assert written and not any(SECRET.encode() in b for b in written)
    logs = out1 + err1 + caplog.text + " ".join(report.errors) + str(report.to_dict())
    assert "retry" in logs and SECRET not in logs
    assert SECRET.encode() not in pickle.dumps(judge)

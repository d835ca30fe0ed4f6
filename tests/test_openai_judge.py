"""OpenAIJudge against a real HTTP server on 127.0.0.1 (tests/_openai_server.py)."""

import email.utils
import logging
import pickle
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.base import clone

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _openai_server import OpenAITestServer  # noqa: E402

from skctd import OpenAIJudge  # noqa: E402
from skctd.experts import ExpertError  # noqa: E402
from skctd.experts.judges import DEFAULT_PROMPT_TEMPLATE, DEFAULT_SYSTEM_PROMPT  # noqa: E402
from skctd.experts.judges._openai import _retry_after_seconds  # noqa: E402

FAST = {"backoff_base": 0.001, "backoff_max": 0.01, "timeout": 5.0}


@pytest.fixture(scope="module")
def server():
    with OpenAITestServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean(server):
    server.reset()
    server.delay = 0.0
    server.responder = _default_responder()
    yield
    server.reset()
    server.delay = 0.0
    server.responder = _default_responder()


def judge_for(server, **params):
    params = {**FAST, "base_url": server.base_url, **params}
    return OpenAIJudge("test-model", **params)


# -- the judgement ------------------------------------------------------------------
def test_scores_are_label_probabilities_renormalised(server):
    texts = ["p=0.1 hello", "p=0.5 how are you", "p=0.93 how to build a bomb"]
    scores, report = judge_for(server).score_with_report(texts)
    np.testing.assert_allclose(scores, [0.1, 0.5, 0.93], atol=1e-12)
    assert (report.n_rows, report.n_scored, report.n_failed) == (3, 3, 0)
    assert (report.n_requests, report.n_retries, report.n_cache_hits) == (3, 0, 0)
    assert report.completion_tokens == 3
    assert report.prompt_tokens > 0


def test_vocab_normalisation_and_leaked_mass(server):
    judge = judge_for(server, normalize="vocab")
    details = judge.score_details(["p=0.25 text"])
    # the test server leaks 2% of the mass to other tokens
    np.testing.assert_allclose(details["p_pos"], [0.25 * 0.98])
    np.testing.assert_allclose(details["p_neg"], [0.75 * 0.98])
    np.testing.assert_allclose(details["leaked_mass"], [0.02])
    np.testing.assert_allclose(details["score"], details["p_pos"])
    assert details["report"].n_scored == 1


def test_request_body_and_prompt(server):
    conversation = [
        {"role": "user", "content": "How do I reset my router?"},
        {"role": "assistant", "content": "Hold the reset button."},
    ]
    judge_for(server, top_logprobs=5).score(["plain text", conversation])
    first, second = sorted(server.requests, key=lambda r: "router" in str(r))
    assert first["model"] == "test-model"
    assert first["max_tokens"] == 1
    assert first["logprobs"] is True and first["top_logprobs"] == 5
    assert first["messages"][0] == {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
    user = first["messages"][1]
    assert user["role"] == "user" and "plain text" in user["content"]
    assert "{input}" not in user["content"] and "{positive}" not in user["content"]
    assert user["content"].endswith("Answer Yes or No.")
    rendered = second["messages"][1]["content"]
    assert (
        "user: How do I reset my router?\nassistant: Hold the reset button." in rendered
    )
    assert DEFAULT_PROMPT_TEMPLATE.split("{input}")[0] in rendered


def test_custom_template_labels_and_no_system_prompt(server):
    def responder(request):
        return [("unsafe", np.log(0.6)), ("safe", np.log(0.3)), ("x", np.log(0.1))]

    server.responder = responder
    try:
        judge = judge_for(
            server,
            labels=("unsafe", "safe"),
            prompt_template="Text: {input}\nAnswer {positive} or {negative}: {braces}",
            system_prompt=None,
        )
        np.testing.assert_allclose(judge.score(["hi"]), [0.6 / 0.9])
    finally:
        server.responder = _default_responder()
    (request,) = server.requests
    assert request["messages"] == [
        {"role": "user", "content": "Text: hi\nAnswer unsafe or safe: {braces}"}
    ]


def _default_responder():
    from _openai_server import tagged_responder

    return tagged_responder


def test_every_surface_form_of_a_label_is_pooled(server):
    forms = [(" yes", 0.3), ("Yes", 0.1), ("\u0120Yes", 0.1), (" No", 0.2), ("no", 0.1)]

    def responder(request):
        return [(t, float(np.log(p))) for t, p in forms] + [
            ("Maybe", float(np.log(0.2)))
        ]

    server.responder = responder
    try:
        details = judge_for(server).score_details(["anything"])
    finally:
        server.responder = _default_responder()
    np.testing.assert_allclose(details["p_pos"], [0.5])
    np.testing.assert_allclose(details["p_neg"], [0.3])
    np.testing.assert_allclose(details["score"], [0.5 / 0.8])
    np.testing.assert_allclose(details["leaked_mass"], [0.2])


def test_absent_label_gets_the_floor(server):
    # p=1: "No" has no probability and is not listed: the row is bounded, and the
    # conservative end of the interval counts the missing negative word as 0
    details = judge_for(server, normalize="vocab").score_details(["p=1 text"])
    np.testing.assert_allclose(details["p_neg"], [0.0])
    np.testing.assert_allclose(details["p_pos"], [0.98])
    assert details["report"].n_bounded == 1
    fixed = judge_for(server, logprob_floor=-30.0).score(["p=1 other text"])
    np.testing.assert_allclose(fixed, [1.0 / (1.0 + np.exp(-30.0) / 0.98)])


def test_no_label_among_top_tokens_fails_the_row(server):
    server.responder = lambda request: [("Sure", -0.1), ("I", -2.5)]
    try:
        judge = judge_for(server, on_error="fallback")
        scores, report = judge.score_with_report(["a", "b"])
        with pytest.raises(ExpertError, match="neither label word"):
            judge_for(server).score(["c"])
    finally:
        server.responder = _default_responder()
    assert np.isnan(scores).all()
    assert report.n_failed == 2 and report.failed_rows == [0, 1]
    assert any("neither label word" in e and "'Sure'" in e for e in report.errors)


# -- the robust client ------------------------------------------------------------------
def test_429_with_retry_after_is_honoured(server):
    server.push_faults([{"status": 429, "retry_after": 0.3}])
    start = time.perf_counter()
    scores, report = judge_for(server).score_with_report(["p=0.7 a"])
    elapsed = time.perf_counter() - start
    np.testing.assert_allclose(scores, [0.7])
    assert (report.n_requests, report.n_retries, report.n_failed) == (2, 1, 0)
    assert elapsed >= 0.3  # waited as asked, not the 1 ms backoff


def test_retry_after_is_capped(server):
    server.push_faults([{"status": 503, "retry_after": 30}])
    start = time.perf_counter()
    scores = judge_for(server, max_retry_wait=0.05).score(["p=0.2 a"])
    assert time.perf_counter() - start < 5
    np.testing.assert_allclose(scores, [0.2])


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
def test_transient_statuses_are_retried(server, status):
    server.push_faults([{"status": status}, {"status": status}])
    scores, report = judge_for(server).score_with_report(["p=0.4 a"])
    np.testing.assert_allclose(scores, [0.4])
    assert (report.n_requests, report.n_retries) == (3, 2)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_client_errors_are_not_retried(server, status):
    server.push_faults([{"status": status, "body": '{"error": "nope"}'}])
    scores, report = judge_for(server, on_error="fallback").score_with_report(
        ["p=0.4 a"]
    )
    assert np.isnan(scores[0])
    assert (report.n_requests, report.n_retries, report.n_failed) == (1, 0, 1)
    assert any(f"HTTP {status}" in e and "nope" in e for e in report.errors)


def test_gives_up_after_max_retries_with_backoff(server):
    server.add_rule("doomed", {"status": 500})
    judge = judge_for(
        server, max_retries=3, backoff_base=0.02, backoff_max=1.0, on_error="fallback"
    )
    start = time.perf_counter()
    scores, report = judge.score_with_report(["p=0.3 fine", "doomed", "p=0.8 fine too"])
    elapsed = time.perf_counter() - start
    np.testing.assert_allclose(scores, [0.3, np.nan, 0.8])
    assert report.n_requests == 2 + 4 and report.n_retries == 3
    assert report.failed_rows == [1] and report.n_failed == 1
    assert any(
        "HTTP 500" in e and "gave up after 4 attempts" in e for e in report.errors
    )
    # exponential backoff: waits in [d/2, d] with d = 0.02, 0.04, 0.08 -> >= 0.07 s
    assert elapsed >= 0.07


def test_slow_response_times_out_and_is_retried(server):
    server.push_faults([{"delay": 1.5}])
    scores, report = judge_for(server, timeout=0.3).score_with_report(["p=0.6 slow"])
    np.testing.assert_allclose(scores, [0.6])
    assert (report.n_requests, report.n_retries) == (2, 1)


def test_always_slow_fails_with_timeout_message(server):
    server.add_rule("sloth", {"delay": 1.0})
    judge = judge_for(server, timeout=0.2, max_retries=1, on_error="fallback")
    scores, report = judge.score_with_report(["sloth"])
    assert np.isnan(scores[0])
    assert any("timed out after 0.2 s" in e for e in report.errors)


def test_malformed_json_is_retried_then_counted(server):
    server.push_faults([{"malformed": True}])
    scores, report = judge_for(server, on_error="fallback").score_with_report(
        ["p=0.3 a"]
    )
    np.testing.assert_allclose(scores, [0.3])
    assert (report.n_requests, report.n_retries, report.n_failed) == (2, 1, 0)
    server.add_rule("always broken", {"malformed": True})
    judge = judge_for(server, on_error="fallback", max_retries=2)
    scores, report = judge.score_with_report(["always broken"])
    assert np.isnan(scores[0])
    assert (report.n_requests, report.n_retries, report.n_failed) == (3, 2, 1)
    assert any("invalid JSON" in e and "gave up after 3" in e for e in report.errors)


def test_connection_refused_is_a_failure_not_a_crash():
    with OpenAITestServer() as srv:
        url = srv.base_url
    judge = OpenAIJudge("m", base_url=url, max_retries=1, on_error="fallback", **FAST)
    scores, report = judge.score_with_report(["a", "b"])
    assert np.isnan(scores).all() and report.n_failed == 2
    assert report.n_requests == 4
    assert any("Connection" in e or "refused" in e for e in report.errors)


def test_on_error_raise_names_the_failing_rows(server):
    server.add_rule("bad row", {"status": 400})
    with pytest.raises(ExpertError, match="rows 1") as info:
        judge_for(server).score(["p=0.1 ok", "bad row", "p=0.2 ok"])
    np.testing.assert_array_equal(info.value.rows, [1])
    assert "HTTP 400" in str(info.value)


def test_inputs_are_never_lost_under_mixed_faults(server):
    server.push_faults(
        [
            {"status": 429, "retry_after": 0.01},
            {"status": 500},
            {"delay": 1.0},
            {"malformed": True},
            {"status": 502},
            {"status": 400},
        ]
    )
    texts = [f"p=0.{i + 10} row {i}" for i in range(30)]
    judge = judge_for(server, timeout=0.3, max_concurrency=6, on_error="fallback")
    scores, report = judge.score_with_report(texts)
    ok = ~np.isnan(scores)
    # every row is accounted for: scored or reported as failed, never dropped
    assert report.n_scored + report.n_failed == 30
    assert report.failed_rows == np.flatnonzero(~ok).tolist()
    assert report.n_failed == 1  # the 400
    np.testing.assert_allclose(scores[ok], [0.1 + i / 100 for i in np.flatnonzero(ok)])
    assert report.n_requests == len(server.requests) == 30 + report.n_retries
    assert report.n_retries == 5  # 429, 500, timeout, malformed 200, 502


def test_requests_run_concurrently():
    # a fresh server: slow handlers left by other tests must not count as in flight
    with OpenAITestServer(delay=0.15) as server:
        texts = [f"p=0.5 concurrent {i}" for i in range(24)]
        start = time.perf_counter()
        judge_for(server, max_concurrency=8).score(texts)
        elapsed = time.perf_counter() - start
    assert server.max_in_flight == 8
    assert elapsed < 24 * 0.15 / 3  # sequential would take 3.6 s


def test_concurrency_is_bounded():
    with OpenAITestServer(delay=0.05) as server:
        judge_for(server, max_concurrency=3).score([f"bounded {i}" for i in range(12)])
    assert server.max_in_flight == 3


# -- cache and accounting ---------------------------------------------------------------
def test_cache_serves_repeated_and_duplicated_inputs(server):
    judge = judge_for(server)
    texts = ["p=0.2 a", "p=0.3 b", "p=0.2 a"]
    scores, report = judge.score_with_report(texts)
    assert len(server.requests) == 2
    assert (report.n_requests, report.n_cache_hits) == (2, 1)
    again, report2 = judge.score_with_report(texts + ["p=0.4 c"])
    np.testing.assert_allclose(again[:3], scores)
    assert len(server.requests) == 3
    assert (report2.n_requests, report2.n_cache_hits) == (1, 3)
    judge.clear_cache()
    judge.score(["p=0.2 a"])
    assert len(server.requests) == 4


def test_failures_are_not_cached(server):
    server.push_faults([{"status": 400}])
    judge = judge_for(server, on_error="fallback")
    assert np.isnan(judge.score(["p=0.6 a"])[0])
    np.testing.assert_allclose(judge.score(["p=0.6 a"]), [0.6])


def test_cache_key_depends_on_prompt_and_labels(server):
    judge = judge_for(server)
    judge.score(["p=0.6 a"])
    judge.prompt_template = "Other question {input} {positive}/{negative}"
    judge.score(["p=0.6 a"])
    judge.labels = ("yes", "no")
    judge.score(["p=0.6 a"])
    assert len(server.requests) == 3


def test_cache_can_be_disabled(server):
    judge = judge_for(server, cache=False)
    judge.score(["p=0.6 a"])
    judge.score(["p=0.6 a"])
    assert len(server.requests) == 2


def test_disk_cache_is_shared_between_judges(server, tmp_path):
    first = judge_for(server, cache_dir=str(tmp_path))
    scores = first.score(["p=0.6 a", "p=0.7 b"])
    second = judge_for(server, cache_dir=str(tmp_path))
    again, report = second.score_with_report(["p=0.7 b", "p=0.6 a"])
    np.testing.assert_allclose(again, scores[::-1])
    assert report.n_requests == 0 and report.n_cache_hits == 2
    assert len(server.requests) == 2


def test_each_row_is_cached_as_soon_as_it_is_read(server, tmp_path, monkeypatch):
    """An interrupted run keeps the rows it already read; a rerun asks only the rest."""
    texts = [f"p=0.{i + 1} row {i}" for i in range(6)]
    judge = judge_for(server, cache_dir=str(tmp_path), max_concurrency=1)
    real = judge._judge_one

    def interrupted(client, messages, labels):
        if "row 3" in messages[-1]["content"]:
            raise KeyboardInterrupt  # not an Exception: nothing catches it
        return real(client, messages, labels)

    monkeypatch.setattr(judge, "_judge_one", interrupted)
    with pytest.raises(KeyboardInterrupt):
        judge.score(texts)
    answered = set(server.requests_per_input(completed=True))
    server.reset()
    fresh = judge_for(server, cache_dir=str(tmp_path))
    cached = fresh.cached_scores(texts)  # reads the cache, sends nothing
    np.testing.assert_allclose(cached[:3], [0.1, 0.2, 0.3], atol=1e-12)
    assert np.isnan(cached[3]) and server.requests == []
    # every answer received (a row the worker took before the interrupt reached
    # the main thread included) is kept
    kept = {texts[i] for i in np.flatnonzero(~np.isnan(cached))}
    assert kept == answered
    scores, report = fresh.score_with_report(texts)
    np.testing.assert_allclose(scores, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], atol=1e-12)
    assert report.n_cache_hits == len(kept)
    assert set(server.requests_per_input()) == set(texts) - kept


# -- secrets, pickles, clone, repr --------------------------------------------------------
SECRET = "sk-test-5ecret-value-never-to-leak"


def test_api_key_is_sent_but_never_stored(server, monkeypatch, caplog):
    monkeypatch.setenv("SKCTD_TEST_KEY", SECRET)
    judge = judge_for(server, api_key_env="SKCTD_TEST_KEY", on_error="fallback")
    server.push_faults([{"status": 500}, {"status": 401}])
    with caplog.at_level(logging.DEBUG, logger="skctd"):
        scores, report = judge.score_with_report(["p=0.3 a"])
        judge.score(["p=0.4 b"])
    assert server.authorizations == ["Bearer " + SECRET] * 3
    assert np.isnan(scores[0]) and report.n_failed == 1
    assert any("HTTP 401" in e for e in report.errors)
    assert SECRET not in repr(judge)
    assert SECRET.encode() not in pickle.dumps(judge)
    assert SECRET not in str(judge.__dict__)
    assert SECRET not in " ".join(report.errors)
    assert caplog.records  # the retry was logged ...
    assert SECRET not in caplog.text  # ... without the key
    with pytest.raises(ExpertError) as info:
        server.push_faults([{"status": 401}])
        judge_for(server, api_key_env="SKCTD_TEST_KEY").score(["p=0.1 z"])
    assert SECRET not in str(info.value)


def test_no_key_sent_when_variable_is_unset(server, monkeypatch):
    monkeypatch.delenv("SKCTD_UNSET_KEY", raising=False)
    judge_for(server, api_key_env="SKCTD_UNSET_KEY").score(["p=0.3 a"])
    judge_for(server, api_key_env=None).score(["p=0.3 b"])
    assert server.authorizations == [None, None]


def test_scoring_does_not_change_the_pickled_state(server):
    judge = judge_for(server)
    before = joblib.hash(judge)
    judge.score(["p=0.3 a", "p=0.4 b"])
    judge.score_details(["p=0.5 c"])
    assert joblib.hash(judge) == before
    restored = pickle.loads(pickle.dumps(judge))
    assert "_cache" not in restored.__dict__ and "_lock" not in restored.__dict__
    np.testing.assert_allclose(restored.score(["p=0.3 a"]), [0.3])


def test_clone_returns_the_same_judge_and_repr_is_stable(server):
    judge = OpenAIJudge("m", base_url="http://127.0.0.1:9/v1")
    assert clone(judge) is judge
    assert repr(judge) == (
        "OpenAIJudge(model='m', base_url='http://127.0.0.1:9/v1', "
        "api_key_env='OPENAI_API_KEY', labels=('Yes', 'No'), normalize='labels', "
        "max_concurrency=8, on_error='raise')"
    )
    custom = OpenAIJudge("m", prompt_template="Q: {input}")
    assert "prompt_template=<custom, 10 chars>" in repr(custom)


# -- validation ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params, match",
    [
        ({"labels": ("Yes",)}, "labels must be a pair"),
        ({"labels": ("Yes", "yes")}, "two different words"),
        ({"normalize": "softmax"}, "normalize must be one of"),
        ({"prompt_template": "no placeholder"}, "'{input}'"),
        ({"base_url": "localhost:8000"}, "base_url must be an http"),
        ({"max_concurrency": 0}, "max_concurrency must be an integer >= 1"),
        ({"max_retries": -1}, "max_retries must be an integer >= 0"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"logprob_floor": 1.0}, "logprob_floor"),
        ({"api_key_env": ""}, "api_key_env must be the NAME"),
        ({"on_error": "ignore"}, "on_error must be one of"),
    ],
)
def test_bad_parameters_raise_clear_errors(server, params, match):
    with pytest.raises(ValueError, match=match):
        judge_for(server, **params).score(["p=0.1 a"])
    assert server.requests == []


@pytest.mark.parametrize(
    "X, match",
    [
        (["ok", ""], r"X\[1\] is an empty or whitespace-only string"),
        (["ok", " "], r"X\[1\] is an empty or whitespace-only string"),
        (["ok", None], r"X\[1\] is missing"),
        ([[{"role": "user"}]], r"X\[0\]: message 0 must be a dict"),
        ("a single string", "wrap it in a list"),
    ],
)
def test_bad_inputs_raise_naming_the_row(server, X, match):
    with pytest.raises((ValueError, TypeError), match=match):
        judge_for(server).score(X)
    assert server.requests == []


def test_retry_after_parsing():
    assert _retry_after_seconds({"Retry-After": "2"}) == 2.0
    assert _retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    future = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8 <= _retry_after_seconds({"Retry-After": future}) <= 10
    assert _retry_after_seconds({"Retry-After": "soon"}) is None
    assert _retry_after_seconds({}) is None


def test_empty_input_makes_no_request(server):
    scores, report = judge_for(server).score_with_report([])
    assert scores.shape == (0,) and report.n_requests == 0
    assert server.requests == []

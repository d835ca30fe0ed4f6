"""Issue 11, item 4 (one notion of a valid input; a row an expert cannot score is a
counted failure) and the cascade's warnings of item 5."""

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import FunctionTransformer

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _openai_server import OpenAITestServer  # noqa: E402

from skctd import CalibratedDelegationCascade, FunctionExpert, OpenAIJudge  # noqa: E402


def _lengths(texts):
    """A featurizer that reads any string (whitespace included)."""
    return np.array([[len(t), t.count("p=0.9")] for t in texts], dtype=float)


def _cascade(expert):
    rng = np.random.default_rng(0)
    texts = [f"p=0.{rng.integers(1, 10)} text {i}" for i in range(120)]
    y = np.array([int("p=0.9" in t) for t in texts])
    cascade = CalibratedDelegationCascade(
        expert,
        featurizer=FunctionTransformer(_lengths),
        probe=LogisticRegression(),
        dv_estimator=Ridge(),
        calibration_size=None,
        random_state=0,
    ).fit(texts, y, expert_scores=np.full(len(y), 0.5))
    cascade.threshold_ = -np.inf  # delegate every row
    return cascade


def test_item4_route_counts_a_row_the_expert_cannot_score():
    with OpenAITestServer() as server:
        judge = OpenAIJudge("m", base_url=server.base_url, on_error="fallback")
        cascade = _cascade(judge)
        routed = cascade.route(["p=0.9 risky", "   ", "p=0.1 fine"])
    np.testing.assert_array_equal(routed.expert_failed, [False, True, False])
    np.testing.assert_allclose(routed.expert_scores[[0, 2]], [0.9, 0.1])
    assert routed.scores[1] == routed.probe_scores[1]  # the probe's score stands
    report = routed.expert_report
    assert (report.n_rows, report.n_failed, report.failed_rows) == (3, 1, [1])
    assert any("whitespace-only" in e for e in report.errors)
    assert len(server.requests) == 2


def test_item4_route_raises_for_an_invalid_row_under_raise():
    with OpenAITestServer() as server:
        cascade = _cascade(OpenAIJudge("m", base_url=server.base_url))
        with pytest.raises(ValueError, match=r"X\[0\] is an empty"):
            cascade.route(["   "])


def test_item4_string_X_without_featurizer_says_featurizer():
    cascade = CalibratedDelegationCascade(lambda rows: np.full(len(rows), 0.5))
    for X in (["a text", "another"], [[{"role": "user", "content": "hi"}]] * 2,
              np.array(["a", "b"])):
        with pytest.raises(ValueError, match="featurizer="):
            cascade.fit(X, [0, 1])


def test_item5_all_nan_expert_scores_warn_with_counts():
    X = np.random.default_rng(0).normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    cascade = CalibratedDelegationCascade(
        lambda rows: np.full(len(rows), 0.5), probe=LogisticRegression(),
        dv_estimator=Ridge(), random_state=0,
    )
    with pytest.warns(UserWarning, match=r"expert_scores is NaN on all 56 of 56 rows"):
        cascade.fit(X, y, expert_scores=np.full(80, np.nan))


def _always_fails(rows):
    raise ConnectionError("judge unreachable")


def test_item5_expert_failing_on_every_row_during_fit_warns():
    X = np.random.default_rng(1).normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    cascade = CalibratedDelegationCascade(
        FunctionExpert(_always_fails, on_error="fallback"), probe=LogisticRegression(),
        dv_estimator=Ridge(), random_state=0,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cascade.fit(X, y)
    messages = [str(w.message) for w in caught]
    assert any(
        "the expert failed on all 56 of 56 rows" in m and "judge unreachable" in m
        for m in messages
    ), messages
    assert any("on all 24 of 24 rows" in m for m in messages)  # calibration part

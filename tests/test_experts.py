"""Expert protocol and adapters: validation, on_error, clone/pickle/repr."""

import pickle
import re

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from skctd.experts import (
    BaseExpert,
    ClassifierExpert,
    ExpertError,
    ExpertReport,
    FunctionExpert,
    PrecomputedExpert,
    as_expert,
    row_key,
)


def first_column(X):
    return np.clip(np.asarray(X, dtype=float)[:, 0], 0.0, 1.0)


def raw_first_column(X):
    return np.asarray(X, dtype=float)[:, 0]


def wrong_length(X):
    return np.zeros(len(X) + 1)


def crashes(X):
    raise ConnectionError("server down")


def two_columns(X):
    return np.zeros((len(X), 2))


X3 = np.array([[0.2, 9.0], [0.5, 8.0], [0.9, 7.0]])


def test_function_expert_scores_rows():
    scores = FunctionExpert(first_column).score(X3)
    np.testing.assert_allclose(scores, [0.2, 0.5, 0.9])


@pytest.mark.parametrize(
    "values, bad_rows, reason",
    [
        ([0.1, np.nan, 0.3], [1], "NaN or inf"),
        ([0.1, 1.5, -0.2], [1, 2], "outside \\[0, 1\\]"),
        ([0.1, np.inf, 0.3], [1], "NaN or inf"),
    ],
)
def test_invalid_values_raise_naming_rows(values, bad_rows, reason):
    X = np.column_stack([values, np.zeros(3)])
    with pytest.raises(ExpertError, match=reason) as info:
        FunctionExpert(raw_first_column).score(X)
    np.testing.assert_array_equal(info.value.rows, bad_rows)


def test_invalid_values_fallback_counts_rows():
    X = np.column_stack([[0.1, 1.5, np.nan, 0.4], np.zeros(4)])
    scores, report = FunctionExpert(
        raw_first_column, on_error="fallback"
    ).score_with_report(X)
    np.testing.assert_allclose(scores, [0.1, np.nan, np.nan, 0.4])
    assert (report.n_rows, report.n_scored, report.n_failed) == (4, 2, 2)
    assert report.failed_rows == [1, 2]
    assert report.errors  # the reason is kept


@pytest.mark.parametrize(
    "func, pattern",
    [(wrong_length, "shape \\(4,\\)"), (two_columns, "shape \\(3, 2\\)")],
)
def test_wrong_shape(func, pattern):
    with pytest.raises(ExpertError, match=pattern):
        FunctionExpert(func).score(X3)
    scores, report = FunctionExpert(func, on_error="fallback").score_with_report(X3)
    assert np.isnan(scores).all() and report.n_failed == 3


def test_exception_raise_and_fallback():
    with pytest.raises(ExpertError, match="ConnectionError: server down") as info:
        FunctionExpert(crashes).score(X3)
    np.testing.assert_array_equal(info.value.rows, [0, 1, 2])
    assert isinstance(info.value.__cause__, ConnectionError)
    scores, report = FunctionExpert(crashes, on_error="fallback").score_with_report(X3)
    assert np.isnan(scores).all()
    assert report.n_failed == 3 and "ConnectionError: server down" in report.errors[0]


def test_bad_on_error():
    with pytest.raises(ValueError, match="on_error must be one of"):
        FunctionExpert(first_column, on_error="ignore").score(X3)


def test_empty_input_does_not_call_the_expert():
    scores, report = FunctionExpert(crashes).score_with_report(np.empty((0, 2)))
    assert scores.shape == (0,) and report.n_requests == 0


def test_classifier_expert_uses_positive_column():
    X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    clf = LogisticRegression().fit(X, np.array(["safe", "safe", "unsafe", "unsafe"]))
    expected = clf.predict_proba(X)[:, 1]
    np.testing.assert_allclose(ClassifierExpert(clf).score(X), expected)
    np.testing.assert_allclose(
        ClassifierExpert(clf, pos_label="safe").score(X), 1 - expected
    )
    with pytest.raises(ExpertError, match="pos_label='maybe'"):
        ClassifierExpert(clf, pos_label="maybe").score(X)


def test_precomputed_by_rows_numeric_text_and_conversations():
    expert = PrecomputedExpert([0.1, 0.7], keys=np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_allclose(expert.score(np.array([[3, 4], [1, 2]])), [0.7, 0.1])
    conv = [{"role": "user", "content": "hi"}]
    expert = PrecomputedExpert([0.3, 0.8], keys=["text", conv])
    np.testing.assert_allclose(expert.score([conv, "text"]), [0.8, 0.3])


def test_precomputed_by_id_column_and_missing_keys():
    X = np.array([["a", "x"], ["b", "y"], ["zz", "w"]], dtype=object)
    expert = PrecomputedExpert([0.2, 0.9], keys=["b", "a"], key_column=0)
    with pytest.raises(ExpertError, match="no precomputed score for rows 2"):
        expert.score(X)
    fallback = PrecomputedExpert(
        [0.2, 0.9], keys=["b", "a"], key_column=0, on_error="fallback"
    )
    scores, report = fallback.score_with_report(X)
    np.testing.assert_allclose(scores, [0.9, 0.2, np.nan])
    assert report.n_cache_hits == 2 and report.n_failed == 1


def test_precomputed_misaligned():
    with pytest.raises(ExpertError, match="scores has 3 values but keys has 2"):
        PrecomputedExpert([0.1, 0.2, 0.3], keys=["a", "b"]).score(["a"])


def test_row_key_is_stable_across_dtypes():
    assert row_key(np.array([1, 2])) == row_key(np.array([1.0, 2.0]))
    assert row_key("a") != row_key(["a"])


@pytest.mark.parametrize(
    "expert",
    [
        FunctionExpert(first_column),
        ClassifierExpert(LogisticRegression().fit([[0.0], [1.0]], [0, 1])),
        PrecomputedExpert([0.5], keys=["x"]),
    ],
    ids=repr,
)
def test_clone_returns_self_pickle_and_stable_repr(expert):
    assert clone(expert) is expert
    assert "0x" not in repr(expert)
    restored = pickle.loads(pickle.dumps(expert))
    assert repr(restored) == repr(expert)


def test_scoring_does_not_change_pickled_state():
    expert = PrecomputedExpert([0.5, 0.2], keys=["x", "y"])
    before = joblib.hash(expert)
    expert.score(["x"])
    assert joblib.hash(expert) == before


def test_function_expert_repr_names_the_function():
    assert re.fullmatch(
        r"FunctionExpert\(func=[\w.]*test_experts\.first_column, on_error='raise'\)",
        repr(FunctionExpert(first_column)),
    )


def test_as_expert():
    e = FunctionExpert(first_column)
    assert as_expert(e) is e
    assert isinstance(as_expert(first_column), FunctionExpert)
    assert isinstance(
        as_expert(LogisticRegression().fit([[0.0], [1.0]], [0, 1])), ClassifierExpert
    )
    assert isinstance(as_expert("numpy:mean"), FunctionExpert)
    with pytest.raises(ValueError, match="expert is required"):
        as_expert(None)
    with pytest.raises(TypeError, match="expert must be"):
        as_expert(3)


def test_report_merge_offsets_rows():
    total = ExpertReport()
    total.merge(ExpertReport(n_rows=2, n_failed=1, failed_rows=[1], errors=["e"]))
    total.merge(
        ExpertReport(n_rows=3, n_failed=1, failed_rows=[0], errors=["e"]), row_offset=2
    )
    assert total.n_rows == 5 and total.failed_rows == [1, 2] and total.errors == ["e"]
    assert total.to_dict()["n_failed"] == 2


def test_base_expert_is_abstract():
    with pytest.raises(ExpertError, match="NotImplementedError"):
        BaseExpert().score(X3)

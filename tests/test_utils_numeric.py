"""The shared numeric checks of skctd.utils and the JSON conversion of results."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skctd.utils import (
    check_binary_labels,
    check_budgets,
    check_cascade_arrays,
    check_fraction,
    check_positive_int,
    check_same_length,
    check_scores,
    to_jsonable,
)


@pytest.mark.parametrize(
    "value", [0.0, 1.0, -0.1, 1.5, np.nan, np.inf, True, False, "0.5", None, [0.5]]
)
def test_check_fraction_rejects(value):
    with pytest.raises(ValueError, match="opt_fraction must be a number strictly"):
        check_fraction(value, "opt_fraction")


@pytest.mark.parametrize("value", [-0.1, 1.5, np.nan, True, "0.5"])
def test_check_fraction_closed_rejects(value):
    with pytest.raises(ValueError, match=r"alpha must be a number in \[0, 1\]"):
        check_fraction(value, "alpha", closed=True)


def test_check_fraction_accepts_and_returns_float():
    assert check_fraction(np.float32(0.25), "alpha") == 0.25
    assert type(check_fraction(np.float64(0.3), "alpha")) is float
    assert check_fraction(0, "alpha", closed=True) == 0.0
    assert check_fraction(1, "alpha", closed=True) == 1.0


def test_check_budgets():
    np.testing.assert_array_equal(check_budgets(0.2), [0.2])
    np.testing.assert_array_equal(check_budgets([0.1, 0.9]), [0.1, 0.9])
    for bad in ([], [[0.1]], [0.1, 1.0], [0.0], [np.nan], ["a"]):
        with pytest.raises(ValueError, match="alphas"):
            check_budgets(bad)


@pytest.mark.parametrize("value", [0, -3, 2.0, 2.5, True, "3", None])
def test_check_positive_int_rejects(value):
    with pytest.raises(ValueError, match="n_splits must be a positive integer"):
        check_positive_int(value, "n_splits")


def test_check_positive_int_accepts_numpy_ints():
    assert check_positive_int(np.int64(3), "n") == 3


def test_check_scores_names_rows():
    with pytest.raises(
        ValueError, match=r"v contains NaN or infinite values \(rows \[1, 3\]\)"
    ):
        check_scores([0.0, np.nan, 1.0, np.inf], "v")
    with pytest.raises(ValueError, match=r"rows \[0\] are outside"):
        check_scores([-0.5, 0.5], "p", unit=True)
    with pytest.raises(ValueError, match="1-D"):
        check_scores([[0.5]], "p")
    np.testing.assert_array_equal(check_scores([-2, 3], "v"), [-2.0, 3.0])


def test_check_binary_labels_returns_bool():
    for y in ([0, 1, 1], [0.0, 1.0, 1.0], [False, True, True]):
        out = check_binary_labels(y)
        assert out.dtype == bool and out.tolist() == [False, True, True]
    with pytest.raises(ValueError, match="only 0/1"):
        check_binary_labels([0, 2])
    with pytest.raises(ValueError, match="encode string labels"):
        check_binary_labels(["a", "b"])


def test_check_same_length():
    assert check_same_length(y=[0, 1], p=np.zeros(2)) == 2
    with pytest.raises(ValueError, match="p has 3 rows but y has 2; .*same length"):
        check_same_length(y=[0, 1], p=np.zeros(3))


def test_to_jsonable_round_trips_through_json():
    value = {
        "a": np.arange(3),
        2: (np.float32(0.5), np.nan, np.inf, -np.inf),
        "nested": [{"b": np.bool_(False)}, None, "text"],
        "m": np.array([[1.5, np.nan]]),
    }
    out = to_jsonable(value)
    assert out == {
        "a": [0, 1, 2],
        "2": [0.5, None, None, None],
        "nested": [{"b": False}, None, "text"],
        "m": [[1.5, None]],
    }
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert type(out["a"][0]) is int and type(out["nested"][0]["b"]) is bool


def test_check_cascade_arrays():
    y, p, e, s, d = check_cascade_arrays(
        [0, 1, 1], [0.1, 0.5, 1.0], [0.0, 0.2, 0.9], signal=[5, -1, 0], dv=[0, 0, 1]
    )
    assert y.dtype == bool and y.tolist() == [False, True, True]
    assert (
        s.dtype == float and s.tolist() == [5.0, -1.0, 0.0] and d.tolist() == [0, 0, 1]
    )
    with pytest.raises(ValueError, match="probe_scores must be probabilities"):
        check_cascade_arrays([0, 1], [0.1, 1.5], [0.0, 0.2])
    with pytest.raises(ValueError, match="signal contains NaN"):
        check_cascade_arrays([0, 1], [0.1, 0.5], [0.0, 0.2], signal=[np.nan, 2.0])
    # signals are named first in the length message
    with pytest.raises(ValueError, match="y has 2 rows but signal has 3"):
        check_cascade_arrays([0, 1], [0.1, 0.5], [0.0, 0.2], signal=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="expert_scores has 1 rows but y has 2"):
        check_cascade_arrays([0, 1], [0.1, 0.5], [0.0])

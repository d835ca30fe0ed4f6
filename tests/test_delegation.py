"""Tests of skctd.delegation: delegation values, capacity, signals, batched top-k."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skctd.delegation import (
    delegation_value,
    effective_delegation_capacity,
    topk_delegation_mask,
    uncertainty_signal,
)

Y = [1, 1, 0, 0, 1, 0]
P = [0.3, 0.8, 0.2, 0.7, 0.5, 0.5]
E = [0.9, 0.6, 0.6, 0.1, 0.2, 0.4]


def test_continuous_value_by_hand():
    # y=1: e - p ; y=0: (1-e) - (1-p) = p - e
    expected = [0.6, -0.2, -0.4, 0.6, -0.3, 0.1]
    np.testing.assert_allclose(delegation_value(Y, P, E), expected, atol=1e-12)
    assert delegation_value(Y, P, E).dtype == float


def test_binary_value_by_hand_with_tie_rule():
    # a score of exactly 0.5 predicts the positive class
    # row 0: probe wrong (0.3 -> 0, y=1), expert right -> 1
    # row 1: probe right -> 0
    # row 2: probe right (0.2 -> 0) -> 0
    # row 3: probe wrong (0.7 -> 1, y=0), expert right (0.1) -> 1
    # row 4: probe right (0.5 -> 1, y=1) -> 0
    # row 5: probe wrong (0.5 -> 1, y=0), expert right (0.4) -> 1
    np.testing.assert_array_equal(
        delegation_value(Y, P, E, kind="binary"), [1, 0, 0, 1, 0, 1]
    )
    # expert at exactly 0.5 on a negative row is wrong
    assert delegation_value([0], [0.9], [0.5], kind="binary")[0] == 0


def test_binary_positive_implies_continuous_positive():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    p, e = rng.uniform(size=2000), rng.uniform(size=2000)
    vb = delegation_value(y, p, e, kind="binary")
    vc = delegation_value(y, p, e)
    assert np.all(vc[vb == 1] > 0)
    assert set(np.unique(vb)) <= {0.0, 1.0}
    assert np.all((vc >= -1) & (vc <= 1))


def test_capacity():
    assert effective_delegation_capacity(Y, P, E) == pytest.approx(3 / 6)
    assert effective_delegation_capacity(Y, P, E, kind="binary") == pytest.approx(3 / 6)
    # v = 0 (expert equals probe) does not count
    assert effective_delegation_capacity([1, 0], [0.4, 0.4], [0.4, 0.4]) == 0.0
    with pytest.raises(ValueError, match="empty"):
        effective_delegation_capacity([], [], [])


@pytest.mark.parametrize(
    "args, match",
    [
        (([1, 2], [0.1, 0.2], [0.1, 0.2]), "y must hold only 0/1"),
        (([1, 0], [0.1, np.nan], [0.1, 0.2]), "probe_scores"),
        (([1, 0], [0.1, 0.2], [0.1, 1.2]), "expert_scores"),
        (([1, 0], [0.1], [0.1, 0.2]), "probe_scores has 1 rows"),
        (([1, 0], [0.1, 0.2], [0.1]), "expert_scores has 1 rows"),
    ],
)
def test_delegation_value_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        delegation_value(*args)
    with pytest.raises(ValueError, match="kind"):
        delegation_value([1], [0.5], [0.5], kind="ternary")


def test_uncertainty_signal_by_hand():
    ref = [0.8, 0.2, 0.5, 0.4]  # unsorted on purpose: F(t) = #{ref <= t} / 4
    u = uncertainty_signal([0.1, 0.2, 0.4, 0.45, 0.5, 0.9], ref)
    # F: 0, 0.25, 0.5, 0.5, 0.75, 1
    np.testing.assert_allclose(u, [-0.5, -0.25, 0.0, 0.0, -0.25, -0.5])
    assert not np.signbit(u[2])
    # sorted reference gives the same result
    np.testing.assert_array_equal(
        u, uncertainty_signal([0.1, 0.2, 0.4, 0.45, 0.5, 0.9], np.sort(ref))
    )
    with pytest.raises(ValueError, match="reference_scores"):
        uncertainty_signal([0.1], [])
    with pytest.raises(ValueError, match="probe_scores"):
        uncertainty_signal([np.nan], [0.1])


def test_uncertainty_signal_peaks_at_median():
    rng = np.random.default_rng(0)
    ref = rng.uniform(size=1000)
    u = uncertainty_signal(ref, ref)
    # the 500th smallest value has F = 500/1000 = 0.5 exactly: the only u == 0
    assert np.argmax(u) == np.argsort(ref)[499] and u.max() == 0
    assert np.sum(u == 0) == 1
    assert u.min() >= -0.5 and u.max() <= 0


def test_topk_by_hand_with_tail_and_ties():
    s = [0.1, 0.9, 0.5, 0.5, 0.2, 0.7, 0.3]
    # batch 1 (4 rows): floor(0.5*4)=2 -> 0.9 and the first 0.5
    # tail (3 rows): floor(0.5*3)=1 -> 0.7
    np.testing.assert_array_equal(
        topk_delegation_mask(s, 0.5, 4), [0, 1, 1, 0, 0, 1, 0]
    )
    # all ties: the earliest rows of each batch win
    np.testing.assert_array_equal(
        topk_delegation_mask(np.zeros(10), 0.5, 4),
        [1, 1, 0, 0, 1, 1, 0, 0, 1, 0],
    )


def test_topk_zero_quota_and_full_quota():
    s = np.arange(10.0)
    assert not topk_delegation_mask(s, 0.2, 4).any()  # floor(0.8) = 0
    assert topk_delegation_mask(s, 1.0, 4).all()
    assert not topk_delegation_mask(s, 0.0, 4).any()
    # tail of 2 rows with alpha=0.3: floor(0.6)=0, full batches floor(1.2)=1
    np.testing.assert_array_equal(
        np.flatnonzero(topk_delegation_mask(s, 0.3, 4)), [3, 7]
    )
    # floating point: 0.29 * 100 = 28.999999999999996 must give 29
    assert topk_delegation_mask(np.arange(100.0), 0.29, 100).sum() == 29
    assert topk_delegation_mask(np.array([]), 0.5, 4).shape == (0,)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 5), min_size=0, max_size=60),
    st.floats(0, 1),
    st.integers(1, 9),
)
def test_topk_matches_loop(values, alpha, batch_size):
    s = np.asarray(values, dtype=float)
    mask = topk_delegation_mask(s, alpha, batch_size)
    expected = np.zeros(s.size, dtype=bool)
    for start in range(0, s.size, batch_size):
        block = s[start : start + batch_size]
        k = int(np.floor(alpha * block.size * (1 + 1e-9)))
        # highest first, earlier row first among ties
        order = sorted(range(block.size), key=lambda i: (-block[i], i))[:k]
        expected[[start + i for i in order]] = True
    np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize(
    "alpha, batch_size, match",
    [
        (-0.1, 4, "alpha"),
        (1.5, 4, "alpha"),
        (0.5, 0, "batch_size"),
        (0.5, 2.5, "batch_size"),
    ],
)
def test_topk_bad_input(alpha, batch_size, match):
    with pytest.raises(ValueError, match=match):
        topk_delegation_mask([0.1, 0.2], alpha, batch_size)
    with pytest.raises(ValueError, match="signal"):
        topk_delegation_mask([np.nan], 0.5, 4)

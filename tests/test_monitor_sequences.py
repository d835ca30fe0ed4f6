"""The anytime-valid confidence sequence of the rate monitors.

Checked three ways: against the package's independent loop implementation (row by
row, any batching), by exact enumeration of the supermartingale property on small
discrete distributions (no Monte Carlo error), and by simulation of false alarms,
coverage and detection.
"""

from __future__ import annotations

import itertools
import math
import pickle

import numpy as np
import pytest

from skctd.monitor import (
    ConfidenceSequence,
    reference_confidence_sequence,
    stitching_boundary,
)
from skctd.monitor._sequences import ew_filter

KEYS = ("lower", "lower_running", "upper", "estimate", "recent")


def _feed(cs, x, cuts):
    outs = [cs.update(x[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    return {k: np.concatenate([o[k] for o in outs]) for k in (*KEYS, "row")}


@pytest.mark.parametrize("limit", [None, 0.2])
def test_matches_the_loop_reference_for_any_batching(limit):
    rng = np.random.default_rng(0)
    x = np.r_[rng.random(1500) < 0.15, rng.random(1000) < 0.35, rng.random(500)]
    x = x.astype(float)
    ref = reference_confidence_sequence(x, level=0.05, limit=limit, window=100)
    # single rows, small batches (Python path) and large ones (numpy path)
    cuts = [0, 1, 2, 17, 33, 40, 1000, 1001, 1016, 2999, 3000]
    got = _feed(ConfidenceSequence(0.05, limit=limit, window=100), x, cuts)
    for k in KEYS:
        np.testing.assert_allclose(got[k], ref[k], rtol=0, atol=1e-12, err_msg=k)
    np.testing.assert_array_equal(got["row"], np.arange(1, 3001))


def test_scalar_rows_match_the_loop_reference():
    rng = np.random.default_rng(1)
    x = np.r_[rng.random(300) < 0.15, rng.random(300) < 0.6].astype(float)
    ref = reference_confidence_sequence(x, level=0.05, limit=0.2, window=50)
    cs = ConfidenceSequence(0.05, limit=0.2, window=50)
    # numpy scalars, Python floats and bools, one-row arrays: the same bounds
    rows = [
        x[i] if i % 3 == 0 else float(x[i]) if i % 3 == 1 else bool(x[i])
        for i in range(600)
    ]
    outs = [cs.update(v if i % 5 else x[i : i + 1]) for i, v in enumerate(rows)]
    for k in KEYS:
        got = np.concatenate([o[k] for o in outs])
        np.testing.assert_allclose(got, ref[k], rtol=0, atol=1e-12, err_msg=k)
    assert [int(o.row[0]) for o in outs] == list(range(1, 601))
    alarms = [o.alarm_row for o in outs if o.alarm_row is not None]
    first = int(np.argmax(ref["lower"] > 0.2)) + 1
    assert alarms == [first] == [cs.alarm_row_] and first > 300


def test_stitching_boundary_published_values():
    # the values pinned by the tests of confseq, Howard et al.'s implementation
    assert stitching_boundary(100, 0.05, v_min=10, scale=3) == pytest.approx(
        64.48755, abs=1e-5
    )
    assert stitching_boundary(100, 0.05, v_min=10, scale=-1) == pytest.approx(
        28.99389, abs=1e-5
    )
    # below v_min the boundary is flat; it grows like sqrt(v log log v)
    b = stitching_boundary([1.0, 10.0, 1e3, 1e5], 0.05)
    assert b[0] == b[1] and 1e3 / b[2] < 1e5 / b[3]


def test_known_values_by_hand():
    # two rows of 1: xhat_0 = 1/2, xhat_1 = 3/4, V_2 = 1/4 + 1/16 < 10 -> v = 10
    cs = ConfidenceSequence(0.05)
    out = cs.update([1.0, 1.0])
    k1 = (2**0.25 + 2**-0.25) / math.sqrt(2)
    k2 = (math.sqrt(2) + 1) / 2
    ell = 1.4 * math.log(math.log(2.0)) + math.log(
        3.1055472779775 / math.log(2) ** 1.4 / 0.05
    )
    b = math.sqrt(k1**2 * 10 * ell + (k2 * ell) ** 2) + k2 * ell
    assert out.upper[1] == 1.0 and out.lower_running[1] == max(1 - b / 2, 0.0) == 0.0
    # 10,000 rows at exactly 0.2 (alternating pattern): V_t ~ 0.16 t, width ~ B / t
    x = np.tile([1.0, 0, 0, 0, 0], 2000)
    out = ConfidenceSequence(0.05).update(x)
    v = float(
        np.sum((x - (0.5 + np.r_[0, np.cumsum(x)[:-1]]) / np.arange(1, 10001)) ** 2)
    )
    ell = 1.4 * math.log(math.log(2 * v / 10)) + math.log(
        3.1055472779775 / math.log(2) ** 1.4 / 0.05
    )
    b = math.sqrt(k1**2 * v * ell + (k2 * ell) ** 2) + k2 * ell
    assert out.upper[-1] == pytest.approx(0.2 + b / 10_000, abs=1e-12)
    assert b == pytest.approx(float(stitching_boundary(v, 0.05)), rel=1e-12)
    assert out.upper[-1] - 0.2 == pytest.approx(0.0162, abs=5e-4)


def _exact_expectations(values, probs, length, *, m, limit, window):
    """E[e_value_t(m)] for t = 1..length, by enumerating every sequence."""
    expect = np.zeros(length)
    for seq in itertools.product(range(len(values)), repeat=length):
        weight = math.prod(probs[i] for i in seq)
        cs = ConfidenceSequence(0.05, limit=limit, window=window)
        for t, i in enumerate(seq):
            cs.update(values[i])
            expect[t] += weight * cs.e_value(m)
    return expect


@pytest.mark.parametrize(
    "values, probs, limit",
    [
        ((0.0, 1.0), (0.75, 0.25), 0.25),  # Bernoulli exactly at the limit
        ((0.0, 1.0), (0.8, 0.2), 0.25),  # below it
        ((0.0, 0.5, 1.0), (0.4, 0.3, 0.3), 0.45),  # three values, mean 0.45
    ],
)
def test_e_process_is_a_supermartingale_exactly(values, probs, limit):
    # window 2: the reactive bets start betting within the first rows
    length = 10 if len(values) == 2 else 7
    expect = _exact_expectations(values, probs, length, m=limit, limit=limit, window=2)
    assert expect.max() <= 1.0 + 1e-12
    # and it really bets: the expectation moves away from 1
    assert expect.min() < 0.999


def test_e_value_and_the_reactive_bound_agree():
    rng = np.random.default_rng(3)
    cs = ConfidenceSequence(0.05, limit=0.2, window=50)
    cs.update((rng.random(3000) < 0.1).astype(float))
    assert cs.e_value() < 1  # no evidence: the bets stay at 0 or lose a little
    cs.update((rng.random(600) < 0.4).astype(float))
    # the reactive bound crossed the limit, the running one has not
    assert cs.lower_running_ < 0.2 < cs.lower_ and cs.e_value() > 2 / 0.05
    assert cs.e_value(0.39) < cs.e_value(0.2)
    with pytest.raises(ValueError, match="limit"):
        ConfidenceSequence(0.05).e_value()


def _false_alarm_share(means, n_streams, seed, limit, window=100):
    rng = np.random.default_rng(seed)
    alarms = 0
    for _ in range(n_streams):
        x = (rng.random(means.size) < means).astype(float)
        cs = ConfidenceSequence(0.05, limit=limit, window=window)
        cs.update(x)
        alarms += cs.alarm
    return alarms / n_streams


@pytest.mark.parametrize(
    "shape", ["constant", "drops"], ids=["at-the-limit", "at-then-below"]
)
def test_false_alarms_within_level(shape):
    n, streams = 3000, 300
    means = (
        np.full(n, 0.3)
        if shape == "constant"
        else np.r_[np.full(n // 2, 0.3), np.full(n - n // 2, 0.1)]
    )
    share = _false_alarm_share(means, streams, seed=1, limit=0.3)
    assert share <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / streams)


def test_the_simulation_catches_a_test_that_is_not_anytime_valid():
    # the same simulation bites: the fixed-n binomial test re-run after every row
    # (the naive monitor) alarms on far more than 5 % of the streams
    from scipy.stats import binom

    rng = np.random.default_rng(2)
    t = np.arange(1, 3001)
    alarms = 0
    for _ in range(300):
        k = np.cumsum(rng.random(3000) < 0.3)
        alarms += bool((binom.sf(k - 1, t, 0.3) <= 0.05).any())
    assert alarms / 300 > 0.05 + 3 * math.sqrt(0.05 * 0.95 / 300)


def test_two_sided_coverage_of_a_stationary_mean():
    rng = np.random.default_rng(4)
    miss = 0
    for _ in range(300):
        x = rng.beta(2, 5, 3000)  # continuous, mean 2/7
        out = ConfidenceSequence(0.05).update(x)
        miss += bool(((out.lower_running > 2 / 7) | (out.upper < 2 / 7)).any())
    assert miss / 300 <= 0.10 + 3 * math.sqrt(0.1 * 0.9 / 300)


def test_detects_a_rise_within_a_few_windows():
    rng = np.random.default_rng(5)
    delays = []
    for _ in range(100):
        cs = ConfidenceSequence(0.05, limit=0.2, window=250)
        cs.update((rng.random(5000) < 0.15).astype(float))
        cs.update((rng.random(5000) < 0.30).astype(float))
        delays.append(np.inf if cs.alarm_row_ is None else cs.alarm_row_ - 5000)
    delays = np.asarray(delays)
    assert (delays > 0).all()  # no alarm before the rise
    assert np.median(delays) < 700 and np.percentile(delays, 90) < 1000
    # without the reactive bets (no limit) the running bound is far slower: it
    # waits for the average since the start to exceed the limit
    cs = ConfidenceSequence(0.05)
    out = np.concatenate(
        [
            cs.update((rng.random(5000) < 0.15).astype(float)).lower,
            cs.update((rng.random(5000) < 0.30).astype(float)).lower,
        ]
    )
    hit = np.flatnonzero(out > 0.2)
    assert hit.size == 0 or hit[0] - 5000 > 3 * np.percentile(delays, 90)


def test_constant_memory():
    sizes = []
    for n in (1_000, 300_000):
        cs = ConfidenceSequence(0.05, limit=0.2)
        cs.update(np.zeros(n))
        sizes.append(len(pickle.dumps(cs)))
    assert abs(sizes[0] - sizes[1]) <= 8  # a longer integer for n_, nothing else


def test_one_row_and_empty_updates():
    cs = ConfidenceSequence(0.05, limit=0.5)
    out = cs.update(True)
    assert out.row.tolist() == [1] and cs.n_ == 1
    assert cs.update([]).row.size == 0 and cs.n_ == 1
    assert repr(cs).startswith("ConfidenceSequence(level=0.05, limit=0.5, n=1")


@pytest.mark.parametrize(
    "x, match",
    [
        ([0.5, 1.5], r"rows \[1\]"),
        ([np.nan], r"rows \[0\]"),
        (np.ones((2, 2)), "1-D"),
        (2.0, r"\[0, 1\]"),
        (["a"], "numbers"),
    ],
)
def test_bad_observations(x, match):
    with pytest.raises(ValueError, match=match):
        ConfidenceSequence().update(x)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"level": 0}, "level"),
        ({"limit": 1.0}, "limit"),
        ({"window": 0}, "window"),
        ({"truncation": 1.0}, "truncation"),
        ({"truncation": True}, "truncation"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConfidenceSequence(**kwargs)


def test_ew_filter_matches_the_recursion():
    rng = np.random.default_rng(6)
    u = rng.random((5000, 3))
    decay = 0.999
    got = ew_filter(u, decay, np.array([0.1, 0.2, 0.3]))
    y = np.array([0.1, 0.2, 0.3])
    expect = np.empty_like(u)
    for i in range(u.shape[0]):
        y = decay * y + (1 - decay) * u[i]
        expect[i] = y
    np.testing.assert_allclose(got, expect, rtol=1e-10, atol=1e-12)
    assert ew_filter(np.empty(0), 0.5, 0.0).size == 0
    np.testing.assert_array_equal(ew_filter(u[:, 0], 0.0, 1.0), u[:, 0])

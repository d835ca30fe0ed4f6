"""The conformal test martingale of the label-free exchangeability monitor."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from scipy import stats

from skctd.monitor import ConformalTestMartingale

BOUND_300 = 0.05 + 3 * math.sqrt(0.05 * 0.95 / 300)


def _brute_force_pvalues(ctm, ref, stream, seed):
    """Ranks of each binned value among all earlier ones, one row at a time."""
    rng = np.random.RandomState(seed)
    perm = rng.permutation(ref.shape[0])
    n_edge = int(round(ctm.edge_fraction * ref.shape[0]))
    counted = ref[perm[n_edge:]]
    ties = rng.random_sample(stream.shape)
    k = ref.shape[1]
    earlier = [
        list(np.searchsorted(ctm.edges_[c], counted[:, c], side="right"))
        for c in range(k)
    ]
    out = np.empty(stream.shape)
    for i in range(stream.shape[0]):
        for c in range(k):
            b = int(np.searchsorted(ctm.edges_[c], stream[i, c], side="right"))
            greater = sum(1 for e in earlier[c] if e > b)
            equal = sum(1 for e in earlier[c] if e == b)
            out[i, c] = (greater + ties[i, c] * (equal + 1)) / (len(earlier[c]) + 1)
            earlier[c].append(b)
    return out


def test_pvalues_are_ranks_among_all_earlier_values():
    rng = np.random.default_rng(0)
    ref = np.column_stack([rng.normal(size=200), rng.integers(0, 5, 200)])  # ties
    stream = np.column_stack([rng.normal(0.3, 1, 300), rng.integers(0, 6, 300)])
    ctm = ConformalTestMartingale(n_bins=8, random_state=7).fit(ref)
    # fed in uneven batches: the same p-values as one row at a time
    parts = [ctm.update(stream[a:b]) for a, b in ((0, 1), (1, 50), (50, 51), (51, 300))]
    got = np.concatenate([p.pvalues for p in parts])
    expect = _brute_force_pvalues(ctm, ref, stream, seed=7)
    np.testing.assert_allclose(got, expect, rtol=0, atol=1e-12)
    assert ctm.counts_.sum(axis=1).tolist() == [450, 450]  # 150 counted + 300


def test_batching_does_not_change_anything():
    rng = np.random.default_rng(1)
    ref, stream = rng.normal(size=(500, 2)), rng.normal(0.2, 1.2, size=(5000, 2))
    one = ConformalTestMartingale(random_state=3).fit(ref)
    whole = one.update(stream)
    other = ConformalTestMartingale(random_state=3).fit(ref)
    parts = [other.update(stream[i : i + 333]) for i in range(0, 5000, 333)]
    np.testing.assert_allclose(
        np.concatenate([p.log_e for p in parts]), whole.log_e, rtol=0, atol=1e-9
    )
    assert other.alarm_row_ == one.alarm_row_ is not None


@pytest.mark.parametrize("ties", [False, True], ids=["continuous", "heavy-ties"])
def test_pvalues_are_uniform_under_exchangeability(ties):
    rng = np.random.default_rng(2)
    draw = (
        (lambda n: rng.integers(0, 4, (n, 2)).astype(float))
        if ties
        else (lambda n: rng.normal(size=(n, 2)))
    )
    ctm = ConformalTestMartingale(random_state=0).fit(draw(400))
    u = ctm.update(draw(20_000)).pvalues
    for c in range(2):
        assert stats.kstest(u[:, c], "uniform").pvalue > 0.001


def _false_alarms(cls, n_streams, seed, *, n_ref=500, n=3000, ties=False):
    rng = np.random.default_rng(seed)
    alarms = 0
    for s in range(n_streams):
        if ties:
            ref, stream = rng.integers(0, 3, (n_ref, 2)), rng.integers(0, 3, (n, 2))
        else:
            ref, stream = rng.normal(size=(n_ref, 2)), rng.normal(size=(n, 2))
        ctm = cls(level=0.05, random_state=s).fit(ref)
        ctm.update(stream)
        alarms += ctm.alarm_row_ is not None
    return alarms / n_streams


@pytest.mark.parametrize("ties", [False, True], ids=["continuous", "heavy-ties"])
def test_false_alarms_within_level(ties):
    assert _false_alarms(ConformalTestMartingale, 300, seed=3, ties=ties) <= BOUND_300


class _FixedReference(ConformalTestMartingale):
    """The tempting shortcut: ranks among the fixed reference values only."""

    def _pvalues(self, bins):
        counts = self.counts_
        above = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]
        out = np.empty(bins.shape)
        ties = self._rng.random_sample(bins.shape)
        for c in range(bins.shape[1]):
            b = bins[:, c]
            equal = counts[c, b]
            out[:, c] = (above[c, b] - equal + ties[:, c] * (equal + 1)) / (
                counts[c].sum() + 1
            )
        return out


def test_the_same_simulation_rejects_ranks_against_a_fixed_reference():
    # given the reference, those ranks are not uniform; the martingale learns it
    assert _false_alarms(_FixedReference, 300, seed=3, n_ref=200, n=5000) > BOUND_300


@pytest.mark.parametrize(
    "change", ["shift", "scale"], ids=["signal+0.5SD", "spread-halved"]
)
def test_detects_a_change(change):
    rng = np.random.default_rng(4)
    delays = []
    for s in range(40):
        ctm = ConformalTestMartingale(random_state=s).fit(rng.normal(size=(1000, 2)))
        ctm.update(rng.normal(size=(3000, 2)))
        new = rng.normal(size=(3000, 2))
        if change == "shift":
            new[:, 0] += 0.5
        else:
            new[:, 0] *= 0.5
        ctm.update(new)
        delays.append(np.inf if ctm.alarm_row_ is None else ctm.alarm_row_ - 3000)
    delays = np.asarray(delays)
    assert (delays > 0).mean() >= 0.95
    assert np.median(delays) < (200 if change == "shift" else 600)


def test_alarm_and_state():
    rng = np.random.default_rng(5)
    ctm = ConformalTestMartingale(level=0.01, random_state=0).fit(rng.normal(size=400))
    out = ctm.update(rng.normal(2.0, 1.0, size=2000))
    assert out.alarm_row == ctm.alarm_row_ and out.log_e[
        ctm.alarm_row_ - 1
    ] >= math.log(100)
    assert out.log_e[ctm.alarm_row_ - 2] < math.log(100)
    assert ctm.log_e_max_ >= ctm.log_e_
    assert out.recent[ctm.alarm_row_ - 1, 0] < 0.47  # the new values rank higher
    # later, the shifted values fill the counts and look ordinary again
    assert ctm.recent_[0] > out.recent[ctm.alarm_row_ - 1, 0]
    assert "channels=1" in repr(ctm)
    # constant memory: the state does not grow with the stream
    size = len(pickle.dumps(ctm))
    ctm.update(rng.normal(size=50_000))
    assert abs(len(pickle.dumps(ctm)) - size) < 64
    assert ctm.counts_.shape == (1, 32)


def test_errors():
    ctm = ConformalTestMartingale()
    with pytest.raises(ValueError, match="not fitted"):
        ctm.update([[0.0]])
    assert "unfitted" in repr(ctm)
    with pytest.raises(ValueError, match="at least 8"):
        ctm.fit(np.zeros((5, 1)))
    with pytest.raises(ValueError, match="NaN"):
        ctm.fit(np.array([[0.0], [np.nan]] * 10))
    ctm.fit(np.random.default_rng(0).normal(size=(50, 2)))
    with pytest.raises(ValueError, match="3 channels but the reference had 2"):
        ctm.update(np.zeros((3, 3)))
    assert ctm.update([0.1, 0.2]).pvalues.shape == (1, 2)  # one row of two channels
    for kwargs, match in (
        ({"n_bins": 1}, "n_bins"),
        ({"shrinkage": -1}, "shrinkage"),
        ({"level": 1.5}, "level"),
        ({"window": 0}, "window"),
    ):
        with pytest.raises(ValueError, match=match):
            ConformalTestMartingale(**kwargs).fit(np.zeros((20, 1)))

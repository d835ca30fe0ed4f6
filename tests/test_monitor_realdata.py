"""The label-free monitor on real data: high-stakes interactions, group mix changes.

A cascade is calibrated on test rows at the file's group mix; the monitor uses
those rows as reference. A stream drawn at the same mix stays quiet; a stream
whose second part comes from one group only (ToolACE tool calls) raises the
exchangeability alarm after the change. Features are TF-IDF + SVD of the texts
(fitted on the training file), so the test needs no language model; the
benchmark (``benchmarks/bench_monitor.py``) runs the same experiment on SmolLM2
activations with more splits.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "high-stakes"

pytestmark = pytest.mark.skipif(
    not (DATA / "test.jsonl").is_file(),
    reason=f"the high-stakes data ({DATA}) is absent",
)


def _text(row):
    if isinstance(row, str):
        return row
    return " ".join(m["content"] for m in row)


def _no_expert(rows):
    raise RuntimeError("never called: the monitor routes without the expert")


@pytest.fixture(scope="module")
def setup():
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from skctd import CalibratedDelegationCascade
    from skctd.datasets import read_dataset

    files = {k: read_dataset(DATA / f"{k}.jsonl") for k in ("train", "dev", "test")}
    text = {k: [_text(r) for r in d.inputs] for k, d in files.items()}
    features = make_pipeline(
        TfidfVectorizer(max_features=20_000, sublinear_tf=True, min_df=2),
        TruncatedSVD(64, random_state=0),
    ).fit(text["train"] + text["dev"])
    Z = {k: features.transform(t) for k, t in text.items()}
    y = {k: np.asarray(d.label) for k, d in files.items()}
    probe = LogisticRegression(max_iter=2000).fit(Z["train"], y["train"])
    expert = LogisticRegression(max_iter=2000).fit(Z["dev"], y["dev"])  # in-domain
    e_test = expert.predict_proba(Z["test"])[:, 1]
    group = np.asarray(files["test"].group)
    rng = np.random.default_rng(0)
    perm = rng.permutation(group.size)
    dv, rest = perm[:300], perm[300:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cascade = CalibratedDelegationCascade(
            _no_expert,
            probe=FrozenEstimator(probe),
            alpha=0.2,
            calibration_size=None,
            random_state=0,
        ).fit(Z["test"][dv], y["test"][dv], expert_scores=e_test[dv])
    return cascade, Z["test"], y["test"], e_test, group, rest


def _split(setup, seed):
    cascade, Z, y, e, group, rest = setup
    perm = np.random.default_rng(seed).permutation(rest)
    cal, stream = perm[: perm.size // 2], perm[perm.size // 2 :]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cascade.calibrate(Z[cal], y[cal], expert_scores=e[cal])
    return cal, stream


def _first_alarm(setup, cal, rows, seed):
    from skctd import DelegationMonitor

    cascade, Z = setup[0], setup[1]
    monitor = DelegationMonitor(cascade, random_state=seed).fit(Z[cal])
    monitor.route(Z[rows], call_expert=False)
    hits = [a.row for a in monitor.alarms_ if a.monitor == "exchangeability"]
    return hits[0] if hits else None


def test_quiet_when_the_mix_is_unchanged_and_alarms_when_it_changes(setup):
    group = setup[4]
    quiet, detected, delays = 0, 0, []
    first = 150
    for seed in range(5):
        cal, stream = _split(setup, seed)
        quiet += _first_alarm(setup, cal, stream, seed) is None
        mixed, rest = stream[:first], stream[first:]
        changed = np.concatenate([mixed, rest[group[rest] == "toolace"]])
        row = _first_alarm(setup, cal, changed, seed)
        assert row is None or row > first  # never before the change
        if row is not None:
            detected += 1
            delays.append(row - first)
    assert quiet >= 4  # level 0.05 per stream
    assert detected >= 4 and np.median(delays) < 150

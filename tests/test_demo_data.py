"""Tests of the embedded demo data set and its loader (skctd.datasets.load_demo)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import skctd
from skctd.datasets import demo_path, load_demo, read_dataset

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DOMAINS = {
    "medical",
    "legal",
    "finance",
    "self_harm",
    "tool_use",
    "cybersecurity",
    "everyday_chat",
}


def _flat(x) -> str:
    if isinstance(x, str):
        return x
    return "\n".join(f"{m['role']}: {m['content']}" for m in x)


@pytest.fixture(scope="module")
def demo():
    return load_demo()


def test_size_ids_and_balance(demo):
    n = len(demo.data)
    assert n >= 400
    assert len(demo.target) == len(demo.group) == len(demo.id) == n
    assert len(set(demo.id)) == n
    assert all(i.startswith("demo-") for i in demo.id)
    assert set(np.unique(demo.target)) == {0, 1}
    assert abs(demo.target.mean() - 0.5) <= 0.02


def test_texts_unique(demo):
    flat = [_flat(x).strip().lower() for x in demo.data]
    dupes = [t for t, c in Counter(flat).items() if c > 1]
    assert not dupes, dupes[:3]
    # no (non-trivial) user message is reused verbatim in two rows either
    msgs = [
        m["content"]
        for x in demo.data
        if isinstance(x, list)
        for m in x
        if m["role"] == "user"
    ]
    msgs += [x for x in demo.data if isinstance(x, str)]
    reused = [t for t, c in Counter(m for m in msgs if len(m) > 20).items() if c > 1]
    assert not reused, reused[:3]


def test_groups(demo):
    groups = set(demo.group)
    assert DOMAINS <= groups
    assert len(groups) >= 7
    for g in groups:
        t = demo.target[demo.group == g]
        assert t.size >= 40, (g, t.size)
        assert set(np.unique(t)) == {0, 1}, g
    chat = demo.target[demo.group == "everyday_chat"]
    assert 0 < chat.mean() < 0.5  # high stakes is rare but present in everyday chat


def test_conversations_valid(demo):
    convs = [x for x in demo.data if isinstance(x, list)]
    assert len(convs) >= 0.25 * len(demo.data)
    for c in convs:
        assert 2 <= len(c) <= 6
        assert c[-1]["role"] == "user"
        roles = [m["role"] for m in c]
        assert set(roles) <= {"system", "user", "assistant"}
        assert "system" not in roles[1:]
        turns = [r for r in roles if r != "system"]
        assert all(a != b for a, b in zip(turns, turns[1:], strict=False)), roles
        assert all(m["content"].strip() for m in c)


def test_file_matches_reader_and_schema():
    path = demo_path()
    assert path.is_file() and path.suffix == ".jsonl"
    raw = read_dataset(path)
    demo = load_demo()
    assert raw.inputs == demo.data
    np.testing.assert_array_equal(raw.label, demo.target)
    assert demo.filename == str(path)
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            assert set(rec) == {"id", "inputs", "label", "group"}
            assert rec["label"] in (0, 1) and not isinstance(rec["label"], bool)


def test_descr_counts_match(demo):
    d = demo.DESCR
    assert "BSD-3" in d
    assert f"Rows: {len(demo.data)}" in d
    for g in set(demo.group):
        t = demo.target[demo.group == g]
        assert (
            f"{g:<16}{int((t == 0).sum()):>8}{int((t == 1).sum()):>8}{t.size:>7}" in d
        )
    assert demo.target_names == ["low-stakes", "high-stakes"]


def test_return_X_y():
    X, y = load_demo(return_X_y=True)
    assert isinstance(X, list) and isinstance(y, np.ndarray)
    assert y.dtype.kind == "i" and len(X) == len(y)


def test_as_frame():
    pd = pytest.importorskip("pandas")
    demo = load_demo(as_frame=True)
    assert isinstance(demo.frame, pd.DataFrame)
    assert list(demo.frame.columns) == ["id", "inputs", "group", "target"]
    assert isinstance(demo.data, pd.Series) and isinstance(demo.target, pd.Series)
    plain = load_demo()
    assert demo.data.tolist() == plain.data
    X, y = load_demo(as_frame=True, return_X_y=True)
    assert isinstance(X, pd.Series) and isinstance(y, pd.Series)
    np.testing.assert_array_equal(y.to_numpy(), plain.target)


def test_bad_options():
    with pytest.raises(TypeError, match="as_frame"):
        load_demo(as_frame="yes")
    with pytest.raises(TypeError, match="return_X_y"):
        load_demo(return_X_y=1)


def test_public_export():
    assert skctd.load_demo is load_demo
    assert "load_demo" in dir(skctd)


def test_not_trivially_separable(demo):
    """A bag-of-words model learns the task but does not solve it."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline

    X = [_flat(x) for x in demo.data]
    model = make_pipeline(CountVectorizer(), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    auroc = cross_val_score(model, X, demo.target, cv=cv, scoring="roc_auc").mean()
    print(f"bag-of-words 5-fold CV AUROC: {auroc:.3f}")
    assert 0.6 < auroc < 0.97


def test_not_copied_from_shared_data(demo):
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent")
    files = sorted(SHARED_DATA.rglob("*.jsonl"))
    if not files:
        pytest.skip(f"no .jsonl files under {SHARED_DATA}")
    ours = set()
    for x in demo.data:
        ours.add(_flat(x).strip())
        if isinstance(x, list):
            ours.update(
                m["content"].strip()
                for m in x
                if m["role"] != "system" and len(m["content"].strip()) > 20
            )
    theirs = set()
    for f in files:
        with f.open(encoding="utf-8") as fh:
            for line in fh:
                x = json.loads(line).get("inputs")
                if isinstance(x, str):
                    theirs.add(x.strip())
                elif isinstance(x, list):
                    theirs.add(_flat(x).strip())
                    theirs.update(
                        str(m.get("content", "")).strip()
                        for m in x
                        if isinstance(m, dict)
                    )
    assert not ours & theirs, sorted(ours & theirs)[:3]


def test_demo_file_is_package_data():
    """pyproject.toml ships the demo file with the package (wheel, not only editable)."""
    tomllib = pytest.importorskip("tomllib")
    from fnmatch import fnmatch

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("pyproject.toml not found (running from an installed package)")
    conf = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    patterns = conf["tool"]["setuptools"]["package-data"]["skctd"]
    rel = demo_path().relative_to(Path(skctd.__file__).parent).as_posix()
    assert any(fnmatch(rel, p) for p in patterns), (rel, patterns)

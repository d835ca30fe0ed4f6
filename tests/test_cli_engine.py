"""``skctd run --engine``: the option's errors, and skctd.ray without Ray installed.

These tests need no Ray: they hide it (``sys.modules["ray"] = None`` makes its
import fail) to check that local runs never need it and that asking for it gives
one clear line naming the extra. The Ray runs themselves are in test_ray.py.
"""

from __future__ import annotations

import sys

import pytest

from skctd.cli import main


@pytest.fixture
def no_ray(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.data", None)


def _run_args(tmp_path, *extra):
    data = tmp_path / "d.jsonl"
    data.write_text('{"inputs": "a", "label": 0}\n{"inputs": "b", "label": 1}\n')
    return ["run", "--train", str(data), "--dev", str(data), "--test", str(data),
            "--model", "m", "--layer", "1", "--expert", "column:e",
            "--out", str(tmp_path / "out"), *extra]


def test_engine_ray_without_ray_is_one_clear_error(no_ray, tmp_path, capsys):
    assert main(_run_args(tmp_path, "--engine", "ray")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("skctd: error: ") and len(err.splitlines()) == 1
    assert 'pip install "skctd[ray]"' in err and "--engine ray" in err
    assert not (tmp_path / "out").exists()  # nothing was started


@pytest.mark.parametrize("option", [["--address", "auto"], ["--ray-actors", "2"]])
def test_ray_options_need_engine_ray(tmp_path, capsys, option):
    assert main(_run_args(tmp_path, *option)) == 2
    assert "need --engine ray" in capsys.readouterr().err


def test_ray_actors_must_be_positive(tmp_path, capsys):
    pytest.importorskip("ray", reason="the check runs once Ray is found")
    assert main(_run_args(tmp_path, "--engine", "ray", "--ray-actors", "0")) == 2
    assert "--ray-actors" in capsys.readouterr().err


def test_skctd_ray_imports_without_ray_and_names_the_extra(no_ray):
    import skctd.ray

    with pytest.raises(ImportError, match=r'pip install "skctd\[ray\]"'):
        skctd.ray.featurize(["a text"], object())
    with pytest.raises(ImportError, match=r"skctd\[ray\]"):
        skctd.ray.score(["a text"], object())

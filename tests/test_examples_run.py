"""Checks of the gallery: order, titles, offline habits, and one example run.

Every example is executed by the documentation build in CI (``sphinx -W`` with
``abort_on_example_error``); here one fast example runs as a user runs it (a
subprocess, ``MPLBACKEND=Agg``), and static checks catch, in milliseconds, the
mistakes that would only show up in the build: a script missing from the reading
order, a malformed rst title, or a cache folder left behind.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
ORDER_FILE = ROOT / "docs" / "sphinxext" / "gallery_order.py"
SCRIPTS = sorted(EXAMPLES.glob("plot_*.py"))


def _gallery_order():
    spec = importlib.util.spec_from_file_location("gallery_order", ORDER_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_is_in_the_reading_order():
    order = _gallery_order().ORDER
    names = {p.name for p in SCRIPTS}
    assert len(order) == len(set(order)), f"duplicates in ORDER: {order}"
    assert sorted(names - set(order)) == [], "add these scripts to ORDER"
    assert sorted(set(order) - names) == [], "ORDER names scripts that do not exist"


def test_sort_key_follows_the_order():
    module = _gallery_order()
    key = module.ExampleOrder(str(EXAMPLES))
    shuffled = sorted(module.ORDER, reverse=True) + ["plot_zzz_unlisted.py"]
    assert sorted(shuffled, key=key) == module.ORDER + ["plot_zzz_unlisted.py"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_title_lines_are_long_enough(script):
    # docutils rejects an over- or underline shorter than the title ("-W" fails)
    lines = ast.get_docstring(ast.parse(script.read_text()), clean=False)
    lines = lines.strip("\n").splitlines()
    if set(lines[0]) == {"="}:
        overline, title, underline = lines[0], lines[1], lines[2]
        assert len(overline) >= len(title), f"{script.name}: overline too short"
    else:
        title, underline = lines[0], lines[1]
    assert set(underline) == {"="}, f"{script.name}: no underline under the title"
    assert len(underline) >= len(title), f"{script.name}: underline too short"


@pytest.mark.parametrize(
    "script", [p for p in SCRIPTS if "cache=" in p.read_text()], ids=lambda p: p.name
)
def test_caches_go_to_a_temporary_folder(script):
    # an example that caches activations must not leave them in the docs tree
    source = script.read_text()
    assert "tempfile.TemporaryDirectory" in source, script.name
    assert ".cleanup()" in source, script.name


@pytest.mark.slow
def test_cascade_synthetic_example_runs(tmp_path):
    """One gallery example, run as a user runs it (~15 s of CPU): the numbers it
    prints agree with each other and with what it claims."""
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "plot_cascade_synthetic.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout

    def number(label):
        return float(re.search(rf"{re.escape(label)}\s*([0-9.]+)", out).group(1))

    rate = number("realised delegation rate:")
    assert 0 < rate <= 0.2  # below the budget on the evaluation part
    assert number("cascade accuracy:") > number("probe-only accuracy:") + 0.05
    table = re.findall(r"^\s*(0\.\d+)\s+(0\.\d+)\s+(0\.\d+)\s+(0\.\d+)\s+(0\.\d+)$", out, re.M)
    assert len(table) == 9
    alphas, dv_acc, dv_rate = (np.array([float(r[i]) for r in table]) for i in range(3))
    assert np.all(dv_rate <= alphas)
    drop = number("largest accuracy drop below a smaller budget's (DV):")
    assert drop == pytest.approx(np.max(np.maximum.accumulate(dv_acc) - dv_acc), abs=2e-3)
    assert not list(tmp_path.iterdir())  # it leaves no file behind

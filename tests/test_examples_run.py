"""Static checks of the gallery: order, titles, offline habits (no example is run here).

The examples themselves are executed by the documentation build in CI
(``sphinx -W`` with ``abort_on_example_error``); running them here would add
minutes to the test suite. These checks catch, in milliseconds, the mistakes that
would only show up there: a script missing from the reading order, a malformed rst
title, or a cache folder left behind.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

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

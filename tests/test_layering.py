"""The package's layering rules, checked on the source (no import of the code)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "skctd"

# The statistics import nothing of the estimators, the LLM side or the I/O.
STATISTICS = ("skctd.calibration", "skctd.delegation", "skctd.utils")
FORBIDDEN_FOR_STATISTICS = (
    "skctd.cascade",
    "skctd.llm",
    "skctd.experts",
    "skctd.evaluation",
    "skctd.plotting",
    "skctd.report",
    "skctd.cli",
)


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, ast.parse(path.read_text(encoding="utf-8"))


def _skctd_imports(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "skctd" or node.module.startswith("skctd."):
                yield node.lineno, node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("skctd."):
                    yield node.lineno, a.name, []


MODULES = list(_modules())


def test_modules_were_found():
    names = {name for name, _ in MODULES}
    assert {"skctd.cascade", "skctd.calibration._ltt", "skctd.cli._run"} <= names


@pytest.mark.parametrize("name,tree", MODULES, ids=[m for m, _ in MODULES])
def test_no_private_name_imported_from_another_module(name, tree):
    bad = [
        f"line {line}: from {module} import {n}"
        for line, module, names in _skctd_imports(tree)
        for n in names
        if n.startswith("_")
    ]
    assert not bad, f"{name} imports private names: {bad}"


@pytest.mark.parametrize(
    "name,tree",
    [(m, t) for m, t in MODULES if m.startswith(STATISTICS)],
    ids=[m for m, _ in MODULES if m.startswith(STATISTICS)],
)
def test_statistics_do_not_import_the_upper_layers(name, tree):
    bad = [
        f"line {line}: {module}"
        for line, module, _ in _skctd_imports(tree)
        if module.startswith(FORBIDDEN_FOR_STATISTICS)
    ]
    assert not bad, f"{name} (statistics) imports an upper layer: {bad}"

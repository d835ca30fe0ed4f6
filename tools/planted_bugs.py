"""Plant known bugs in a copy of ``skctd/calibration``, one at a time, and run the tests.

Usage (from the repository root)::

    python tools/planted_bugs.py          # every bug, all calibration tests
    python tools/planted_bugs.py --fast   # skip the tests marked slow
    python tools/planted_bugs.py 4 5      # only these bugs (0-based)

For each bug, the package and the tests are copied to a temporary folder, one
source line is replaced (the script fails if that line is not found exactly once,
so it notices when the code it patches has moved), and pytest runs
``tests/test_calibration*.py``, ``tests/test_guarantee*.py`` and the doctests of
``skctd/calibration`` on the copy. It prints, per bug, how many tests failed and
how many of them are guarantee tests (``test_guarantee*.py``), and exits with
status 1 if some bug makes no test fail. The unpatched copy runs first: it must
pass.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (name, file, original text, replacement)
BUGS = [
    (
        "reject when p <= 2 delta instead of delta",
        "skctd/calibration/_fwer.py",
        "fail = ~(p <= delta)",
        "fail = ~(p <= 2 * delta)",
    ),
    (
        "binomial tail off by one, P(Bin < k)",
        "skctd/calibration/_pvalues.py",
        "return special.bdtr(k_float, n, alpha_arr)",
        "return np.where(k_float >= 1, special.bdtr(np.maximum(k_float - 1, 0), n, "
        "alpha_arr), 0.0)",
    ),
    (
        "Pareto filter keeps weakly dominated points",
        "skctd/calibration/_pareto.py",
        "eff_sorted = (b == group_min_b) & (b < before)",
        "eff_sorted = b <= before",
    ),
    (
        "optimisation and test splits share one row",
        "skctd/calibration/_splits.py",
        "return np.flatnonzero(in_opt), np.flatnonzero(~in_opt)",
        "return np.flatnonzero(in_opt), np.union1d(np.flatnonzero(~in_opt), "
        "np.flatnonzero(in_opt)[:1])",
    ),
    (
        "the sweep tests on optimisation + test rows",
        "skctd/calibration/_ltt.py",
        "o, t = opts[i], tests[i]",
        "o, t = opts[i], np.concatenate([opts[i], tests[i]])",
    ),
    (
        "counts >= instead of >",
        "skctd/calibration/_grid.py",
        'return np.searchsorted(grid[:0:-1], values, side="left")',
        'return np.searchsorted(grid[:0:-1], values, side="right")',
    ),
]


def copy_tree(dest: Path) -> None:
    shutil.copytree(
        ROOT / "skctd", dest / "skctd", ignore=shutil.ignore_patterns("__pycache__")
    )
    (dest / "tests").mkdir()
    shutil.copy2(ROOT / "tests" / "conftest.py", dest / "tests" / "conftest.py")
    for pattern in ("test_calibration*.py", "test_guarantee*.py"):
        for p in (ROOT / "tests").glob(pattern):
            shutil.copy2(p, dest / "tests" / p.name)
    shutil.copy2(ROOT / "setup.cfg", dest / "setup.cfg")


def run_tests(dest: Path, fast: bool) -> tuple[int, int, list[str]]:
    """(failed, total, failing test ids) of the calibration tests on ``dest``."""
    tests = [
        f"tests/{p.name}"
        for pattern in ("test_calibration*.py", "test_guarantee*.py")
        for p in sorted((dest / "tests").glob(pattern))
    ]
    cmd = [
        sys.executable, "-m", "pytest", *tests, "skctd/calibration",
        "-q", "-rf", "-p", "no:cacheprovider", "--tb=no",
    ]  # fmt: skip
    if fast:
        cmd += ["-m", "not slow"]
    env = dict(os.environ, PYTHONPATH=str(dest), MPLBACKEND="Agg")
    out = subprocess.run(
        cmd, cwd=dest, env=env, capture_output=True, text=True
    ).stdout
    failed_ids = re.findall(r"^FAILED (\S+)", out, flags=re.M)
    counts = dict(
        (k, int(v)) for v, k in re.findall(r"(\d+) (passed|failed|error)", out)
    )
    total = sum(counts.values())
    return counts.get("failed", 0) + counts.get("error", 0), total, failed_ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="skip slow tests")
    parser.add_argument(
        "bugs", nargs="*", type=int, help="run only these bugs (0-based, as listed)"
    )
    args = parser.parse_args(argv)
    rows, ok = [], True
    with tempfile.TemporaryDirectory(prefix="skctd-planted-") as tmp:
        clean = Path(tmp) / "clean"
        copy_tree(clean)
        failed, total, ids = run_tests(clean, args.fast)
        print(f"unpatched copy: {failed} of {total} tests fail", flush=True)
        if failed:
            print("\n".join(ids))
            return 1
        for i, (name, path, old, new) in enumerate(BUGS):
            if args.bugs and i not in args.bugs:
                continue
            dest = Path(tmp) / f"bug{i}"
            copy_tree(dest)
            source = (dest / path).read_text()
            if source.count(old) != 1:
                raise SystemExit(f"{name}: {old!r} found {source.count(old)} times")
            (dest / path).write_text(source.replace(old, new))
            failed, total, ids = run_tests(dest, args.fast)
            n_guarantee = sum("test_guarantee" in t for t in ids)
            rows.append((name, failed, total, n_guarantee))
            ok &= failed > 0
            print(
                f"{name}: {failed} of {total} tests fail "
                f"({n_guarantee} guarantee tests)",
                flush=True,
            )
            for t in ids:
                print(f"    {t}")
            shutil.rmtree(dest)
    print("\n| planted bug | tests failing | of which guarantee tests |")
    print("| --- | --- | --- |")
    for name, failed, total, n_g in rows:
        print(f"| {name} | {failed} of {total} | {n_g} |")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

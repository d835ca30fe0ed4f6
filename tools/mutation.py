"""Mutation testing of ``skctd/calibration`` with mutmut 3 against the fast tests.

Usage (from the repository root, with the ``mutation`` extra installed)::

    python tools/mutation.py                   # full run: every mutant, then a report
    python tools/mutation.py --workdir DIR     # keep the work folder (reruns are
                                               # incremental: only changed code)
    python tools/mutation.py --max-children 8  # more parallel workers

What it does:

1. copies ``skctd/`` and the fast calibration tests -- ``tests/test_calibration*.py``
   and every ``tests/test_guarantee*.py`` (their tests not marked ``slow``) -- into
   a work folder, with a ``setup.cfg`` that tells mutmut to mutate
   ``skctd/calibration/*`` only and to run those tests plus the doctests of
   ``skctd/calibration``;
2. runs ``mutmut run`` there (mutmut forks one worker per mutant and runs only the
   tests that reach the mutated function, fastest first, stopping at the first
   failure);
3. prints the survivors with their diffs, each tagged with the reason it is
   accepted when it is a known equivalent mutant (``EQUIVALENT`` below), and exits
   with status 1 when a survivor is not on that list.

Two things are not mutated, by configuration: the ``stacklevel=`` of warnings
(mutmut's trampolines add a stack frame, so the test that checks where warnings
point, ``test_warnings_point_at_the_caller``, is deselected here) and the wording
of messages (lines that start with a string literal: the fragments of error and
warning messages; the tests check the names and numbers in them, not the prose).

A full run is slow (hours for the 3,940 mutants on two shared cores): it is not part
of the default CI. Reruns in the same ``--workdir`` only re-test changed functions,
and mutant names or globs given as arguments restrict a run::

    python tools/mutation.py --workdir DIR 'skctd.calibration._pvalues.*'

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

SETUP_CFG = """\
[tool:pytest]
addopts = --doctest-modules -p no:cacheprovider -m "not slow"
    -k "not mutmut or mutmut_orig"
doctest_optionflags = NORMALIZE_WHITESPACE ELLIPSIS NUMBER
markers =
    slow: long-running statistical or model tests (kept in CI)
    llm: needs the llm extra (torch, transformers)
filterwarnings =
    ignore::DeprecationWarning:jupyter_client.*

[mutmut]
source_paths = skctd
only_mutate = skctd/calibration/*
pytest_add_cli_args_test_selection =
    tests
    skctd/calibration
pytest_add_cli_args =
    --deselect=tests/test_calibration.py::test_warnings_point_at_the_caller
do_not_mutate_patterns =
    stacklevel=
    ^\\s*f?r?["']
"""

# Survivors accepted as equivalent mutants: a pattern searched in the mutant's name
# followed by a newline and its diff ("-" old lines, "+" new lines) -> the reason.
# Each reason says why no test can tell the mutant from the original.
EQUIVALENT: dict[str, str] = {
    r"UserWarning,\n\+\s*None,": (
        "warnings.warn(message, None) warns with UserWarning, the default category"
    ),
    r"argsort\(.*kind=\"stable\"\)\n\+.*argsort\(": (
        "the order within ties does not matter: the AUROC risk groups tied scores, "
        "and rows with the same signal fall on the same side of every threshold"
    ),
    r"-\s*below = np.zeros\(|-\s*gain = correct_d.astype\(": (
        "counts of 0/1 summed in float64 are exact (far below 2**53)"
    ),
    r"-\s*block = max\(1, _MATRIX_BLOCK|for lo in range\(0, n_grid, \)": (
        "the block size only changes speed: every block of thresholds is computed "
        "the same way (step 1 recomputes overlapping blocks with the same values)"
    ),
    r"-\s*r = np.asarray\(risk_hat, dtype=float\)": (
        "integer risks are cast by the arithmetic that follows; same values"
    ),
    r"p = np.minimum\(np.minimum\(p_hoeffding, p_bentkus\), 2.0\)": (
        "exp(-n h1) <= 1 since h1 >= 0: the cap at 1 never binds"
    ),
    r"-\s*return np.where\(r >= alpha, 1.0, p\)": (
        "at r >= alpha, min(r, alpha) = alpha makes h1 = 0 and the Hoeffding term 1: "
        "the explicit 1 is redundant"
    ),
    r"-\s*n = max\(1, math.ceil\(math.log\(delta\) / math.log1p\(-alpha\)\)\)": (
        "only the starting point of min_test_size: the two guard loops move any start "
        "to the exact answer"
    ),
    r"x_min_test_size__mutmut_\d+\n-\s*(while n > 1 and|n -= 1)": (
        "the downward rounding guard of min_test_size: whatever n it leaves at or "
        "below the answer, the upward guard then moves to the exact answer"
    ),
    r"x_threshold_counts__mutmut_\d+\n-.*\n\+.*astype\(None\)|"
    r"x_threshold_counts__mutmut_\d+\n-.*\n\+.*astype\(\)": (
        "counts of 0/1 summed in float64 are exact, and the sign-test p-values take "
        "float counts"
    ),
    r"x__call_user_loss__mutmut_\d+\n-\s*loss = np.asarray\(func.*dtype=float\)": (
        "the user's losses are only compared with numbers and summed afterwards: "
        "an int or bool array gives the same values as its float copy"
    ),
    r"guarantee__mutmut_\d+\n-.*risk_descriptions.get\(c, c\)": (
        "risk_descriptions holds a description for every constraint of the result "
        "(built from the same list of risks): the default is never used"
    ),
    r"x__one_se__mutmut_\d+\n-.*ok.any\(axis=0\)": (
        "each certified budget's column holds its best threshold (difference 0 <= "
        "SE), and an uncertified budget's choice is index 0, which argmax of its "
        "all-False column gives too"
    ),
    r"x__first_below__mutmut_\d+\n-\s*lo = float\(_N_GRID\[first\[c\] - 1\]\).*\n"
    r"\+.*(\(first\[c\] > 0\) (and False|or True)|first\[c\] - 2\]|"
    r"first\[c\] >= 0|first\[c\] > 1 else|else 1\.0)": (
        "the lower end of the bisection only has to be a size that is not enough "
        "(p-values fall as the size grows) or 0, or above hi when the first grid "
        "size, 1, is enough: every such start returns the same smallest size"
    ),
    r"x__first_below__mutmut_\d+\n-\s*sizes = np.full\(\(1, width\)": (
        "only row 0 of the p-values is read; a second row or a floor of 2 at mid = 1 "
        "(lo = 0, hi = 2 never happens: the grid holds 1 and 2) changes nothing"
    ),
    r"x__first_below__mutmut_\d+\n-\s*return math.inf, -1\n\+\s*return math.inf, -2": (
        "the caller keeps the index only when it is >= 0: -1 and -2 both mean none"
    ),
    r"x__risk_stats__mutmut_\d+\n-\s*rank = np.full\(at.size, -1\)": (
        "the rank of a row outside the risk's rows is never read (perm[at[perm]] "
        "keeps only the risk's rows)"
    ),
    r'x__warn_sweep_constraints__mutmut_\d+\n-\s*est \+= \(\n\+\s*est = \(\n'
    r'.*\n.*Estimated test-split': "est is still empty at its first addition",
    r'x__rows_phrase__mutmut_\d+\n-\s*return "no estimate of the rows needed"': (
        "unreachable: calibrate_threshold always estimates the rows needed, and the "
        "sweep's warning filters the NaN estimates out before this phrase"
    ),
    r"-\s*need_performance=True,": "every call passes need_performance explicitly",
    r"-def _joint_messages\(result: CalibrationResult, n_tested: int = 1\)": (
        "its one call passes n_tested explicitly"
    ),
    r"-def _no_certification_message\(n_test, alpha, delta, n_tested=1\)": (
        "every call passes n_tested explicitly"
    ),
    r"-\s*perf = np.full\(grid.shape\[0\], np.nan\)": (
        "None stored into the float result arrays becomes NaN, as documented"
    ),
    r"sorted_all = np.sort\(signal\) if \(indices is None\) or True": (
        "sorted_all is only read when indices is None"
    ),
    r"-\s*dominated = False\n\+\s*dominated = None": "None is falsy like False",
    r"-\s*budget\[j\] <= budget\[i\]\n\+\s*budget\[j\] < budget\[i\]": (
        "budgets on D_opt are distinct except for +inf and the largest candidate "
        "(both 0), whose performances are equal too: neither dominates either way"
    ),
    r'-\s*return np.searchsorted\(grid\[:0:-1\], values, side="left"\)\n'
    r"\+\s*return np.searchsorted\(grid\[:0:-1\], values, \)": (
        'side="left" is the default of searchsorted'
    ),
}


def build_workdir(workdir: Path) -> None:
    (workdir / "tests").mkdir(parents=True, exist_ok=True)
    if (workdir / "skctd").exists():
        shutil.rmtree(workdir / "skctd")
    shutil.copytree(
        ROOT / "skctd", workdir / "skctd", ignore=shutil.ignore_patterns("__pycache__")
    )
    tests = [
        str(p.relative_to(ROOT))
        for pattern in ("test_calibration*.py", "test_guarantee*.py")
        for p in sorted((ROOT / "tests").glob(pattern))
    ]
    for name in ["tests/conftest.py", *tests]:
        shutil.copy2(ROOT / name, workdir / name)
    (workdir / "setup.cfg").write_text(SETUP_CFG)


def mutmut(workdir: Path, *args: str, check: bool = True) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, "-m", "mutmut", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )
    if check and proc.returncode != 0:
        sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-5000:])
        raise SystemExit(f"mutmut {' '.join(args)} failed ({proc.returncode})")
    return proc.stdout


def diff_of(workdir: Path, name: str) -> str:
    text = mutmut(workdir, "show", name, check=False)
    return "\n".join(
        line
        for line in text.splitlines()
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--report-only", action="store_true", help="report the last run in --workdir"
    )
    parser.add_argument(
        "mutants", nargs="*", help="run only these mutants (names as mutmut prints them)"
    )
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="skctd-mutation-"))
    workdir = workdir.resolve()
    if not args.report_only:
        build_workdir(workdir)
        print(f"mutmut run in {workdir} ...", flush=True)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg")
        subprocess.run(
            [sys.executable, "-m", "mutmut", "run", "--max-children",
             str(args.max_children), *args.mutants],
            cwd=workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            check=False,
        )  # fmt: skip
    results = mutmut(workdir, "results", "--all", "true")
    status: dict[str, str] = {}
    for line in results.splitlines():
        m = re.match(r"\s*(\S+): (.+)$", line)
        if m:
            status[m.group(1)] = m.group(2).strip()
    counts: dict[str, int] = {}
    for s in status.values():
        counts[s] = counts.get(s, 0) + 1
    print("mutants:", len(status), counts)
    survivors = [n for n, s in status.items() if s in ("survived", "no tests")]
    unexplained = 0
    for name in survivors:
        diff = diff_of(workdir, name)
        reason = next(
            (r for pat, r in EQUIVALENT.items() if re.search(pat, f"{name}\n{diff}")),
            None,
        )
        unexplained += reason is None
        tag = f"EQUIVALENT: {reason}" if reason else "SURVIVED"
        print(f"\n=== {name} [{status[name]}] {tag}\n{diff}")
    print(
        f"\n{len(survivors)} survivors, {len(survivors) - unexplained} known "
        f"equivalent, {unexplained} to look at (work folder: {workdir})"
    )
    return 1 if unexplained else 0


if __name__ == "__main__":
    raise SystemExit(main())

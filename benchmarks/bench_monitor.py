"""Benchmark of the deployment monitor: false alarms, detection delays, real data, speed.

Usage::

    python benchmarks/bench_monitor.py                    # everything (~15 min, 2 cores)
    python benchmarks/bench_monitor.py --quick            # 100 streams, 20 real splits
    python benchmarks/bench_monitor.py --sections speed   # one section
    python benchmarks/bench_monitor.py --out benchmarks/results/monitor.md

Sections:

``false-alarms``
    ``--streams`` (default 1,000) exchangeable streams of ``--length`` (10,000)
    rows drawn with replacement from a synthetic population of 200,000 routed
    rows, with 1,000 reference (calibration) rows drawn from the same population.
    The population sits exactly on every monitor's null: 20 % of it is delegated
    (budget ``alpha = 0.2``), the error and miss limits are the population's own
    rates, and the expert fixes exactly as many probe errors as it makes
    (``harm = 0``, limit 0). Labels arrive 500 rows late, in batches of 500, so
    the label monitors see 9,500 labels. Each stream goes through a real
    :class:`skctd.DelegationMonitor` in batches of 500 rows (its bounds are
    computed after every row); a stream counts as a false alarm if a monitor
    alarms anywhere. Side by side, on the same streams: the naive fixed-n
    binomial test re-run after every row (one-sided for the budget, error and
    miss; the sign test of the discordant pairs for harm; two-sided on the share
    of signals above the reference median for exchangeability), and the
    exchangeability martingale fed ranks among the *fixed* reference values only.
``detection``
    Same population and monitor; at row 5,000 the delegation rate goes from 0.15
    to 0.30 (``alpha = 0.2``), or the delegation signal shifts by 0.5 standard
    deviation, or the labels of the new rows are flipped so the cascade's error
    rises by 10 points (limit: the old error + 5 points; labels delivered at once,
    so the delay is in labelled rows -- a label delay adds to it). Detection delay
    = alarm row - 5,000 (median and 90th percentile over the streams).
``real``
    High-stakes data (``--data-dir``, default ``../shared/data``): SmolLM2
    activations and judge scores from the stage caches of
    ``benchmarks/reproduce_paper.py`` (``--cache-dir``, default the package cache
    folder). Probe on train; DV probe on dev when the dev judge scores are cached,
    else on a random 30 % of test (the report says which). The rest of test is
    split at random, ``--real-splits`` times, into a calibration half (the cascade
    is calibrated on it and the monitor uses it as reference) and a stream half.
    Unchanged mix: the stream half in random order. Changed mix: 250 rows of the
    stream half at the calibration mix, then the remaining rows of one group only.
``window``
    The rate monitor alone (:class:`skctd.monitor.ConfidenceSequence`): the delay
    of the 0.15 -> 0.30 change by ``window``, and with the running bets only (no
    limit, no reactive bets), over 40,000-row streams.
``speed``
    :class:`skctd.monitor.ConfidenceSequence` (the rate monitor) updated one row
    at a time (a Python float, or a one-row array), 100 rows and 10,000 rows at a
    time, next to the package's plain-Python loop
    over the same bound (:func:`skctd.monitor.reference_confidence_sequence`),
    with the results checked equal; the size of the state after 10^3 and 10^6
    rows; the whole :class:`DelegationMonitor` per batch size.

Timings: best of 3, wall-clock and CPU time of the process (one thread), on
whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import pickle
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core: the speed section is per core

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
LEVEL = 0.05
ALPHA = 0.2
CHANGE = 5000
BATCH = 500
LABEL_DELAY = 500


# ------------------------------------------------------------------ population
def make_population(n: int = 200_000, seed: int = 0) -> dict:
    """Routed rows of a synthetic cascade, sitting exactly on every null.

    ``signal`` is high where the probe is unsure; the top ``ALPHA`` share is
    delegated; on delegated rows the expert fixes half of the probe's errors and
    breaks as many correct probe answers, so the cascade's error equals the
    probe's (harm exactly 0).
    """
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    y = rng.random(n) < 1.0 / (1.0 + np.exp(-8.0 * z))
    logit = 6.0 * z + rng.normal(0.0, 1.5, n)  # probe error about 0.10
    probe = 1.0 / (1.0 + np.exp(-logit))
    signal = -0.5 * np.abs(logit) + rng.normal(0.0, 0.5, n)
    order = np.sort(signal)
    thresholds = {r: order[n - int(round(r * n)) - 1] for r in (0.15, ALPHA, 0.30)}
    delegated = signal > thresholds[ALPHA]
    probe_pos = probe >= 0.5
    probe_wrong = probe_pos != y
    fixable = np.flatnonzero(delegated & probe_wrong)
    breakable = np.flatnonzero(delegated & ~probe_wrong)
    k = min(fixable.size // 2, breakable.size)
    flip = np.concatenate(
        [rng.choice(fixable, k, replace=False), rng.choice(breakable, k, replace=False)]
    )
    cascade_pos = probe_pos.copy()
    cascade_pos[flip] = ~cascade_pos[flip]
    scores = probe.copy()
    scores[delegated] = np.where(cascade_pos[delegated], 0.8, 0.2)
    wrong = cascade_pos != y
    return {
        "y": y,
        "probe": probe,
        "signal": signal,
        "delegated": delegated,
        "scores": scores,
        "thresholds": thresholds,
        "sd": float(signal.std()),
        "error": float(wrong.mean()),
        "miss": float((~cascade_pos[y]).mean()),
        "harm": float(wrong.mean() - probe_wrong.mean()),
        "rate": float(delegated.mean()),
    }


def toy_cascade():
    """A small fitted cascade: the monitor takes its classes and calibration."""
    import warnings

    from sklearn.linear_model import LogisticRegression

    from skctd import CalibratedDelegationCascade

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 2))
    y = (X[:, 0] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CalibratedDelegationCascade(
            _expert, probe=LogisticRegression(), alpha=ALPHA, random_state=0
        ).fit(X, y)


def _expert(rows):
    return 1.0 / (1.0 + np.exp(-3.0 * rows[:, 0]))


# ------------------------------------------------------------------- one stream
def run_stream(
    cascade,
    pop,
    rng,
    seed,
    *,
    length,
    limits,
    scenario=None,
    label_delay=LABEL_DELAY,
    fixed_reference=False,
):
    """Feed one stream to a DelegationMonitor; return each monitor's first alarm row.

    ``scenario`` changes the rows from ``CHANGE`` on: ``"rate"`` (0.15 -> 0.30),
    ``"shift"`` (signal + 0.5 SD), ``"error"`` (labels flipped: error + 10 points).
    """
    from skctd import DelegationMonitor

    n_pop = pop["y"].size
    ref = rng.integers(0, n_pop, 1000)
    idx = rng.integers(0, n_pop, length)
    signal = pop["signal"][idx].copy()
    delegated = pop["delegated"][idx].copy()
    y = pop["y"][idx].copy()
    if scenario == "rate":
        lo, hi = pop["thresholds"][0.15], pop["thresholds"][0.30]
        delegated = signal > np.where(np.arange(length) < CHANGE, lo, hi)
    elif scenario == "shift":
        signal[CHANGE:] += 0.5 * pop["sd"]
        delegated = signal > pop["thresholds"][0.15]
    elif scenario == "error":
        e0 = pop["error"]
        flip = rng.random(length - CHANGE) < 0.10 / (1.0 - 2.0 * e0)
        y[CHANGE:] ^= flip
    monitor = DelegationMonitor(cascade, level=LEVEL, limits=limits, random_state=seed)
    monitor.fit(signal=pop["signal"][ref], probe_scores=pop["probe"][ref])
    if fixed_reference:
        _freeze_counts(monitor.exchangeability_)
    probe, scores = pop["probe"][idx], pop["scores"][idx]
    for start in range(0, length, BATCH):
        sl = slice(start, start + BATCH)
        monitor.update(
            {
                "delegated": delegated[sl],
                "signal": signal[sl],
                "probe_scores": probe[sl],
            }
        )
        lab = start - label_delay
        if lab >= 0:
            ls = slice(lab, lab + BATCH)
            monitor.update_labels(
                y[ls],
                routing={
                    "delegated": delegated[ls],
                    "scores": scores[ls],
                    "probe_scores": probe[ls],
                },
            )
    first = {}
    for alarm in monitor.alarms_:
        # stream monitors: the row; label monitors: the labelled row that crossed
        first.setdefault(
            alarm.monitor,
            alarm.row
            if alarm.monitor in ("budget", "exchangeability")
            else alarm.n_observations,
        )
    naive = _naive(pop, ref, signal, delegated, y, scores, probe, limits, label_delay)
    return first, naive


def _freeze_counts(ctm):
    """Rank against the fixed reference values only (the invalid shortcut)."""
    counts = ctm.counts_.copy()
    above = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]  # reference values >= bin
    total = counts[0].sum()

    def pvalues(bins):
        out = np.empty(bins.shape)
        for c in range(bins.shape[1]):
            b = bins[:, c]
            equal = counts[c, b]
            tie = ctm._rng.random_sample(b.size)
            out[:, c] = (above[c, b] - equal + tie * (equal + 1)) / (total + 1)
        return out

    ctm._pvalues = pvalues


def _naive(pop, ref, signal, delegated, y, scores, probe, limits, label_delay):
    """Fixed-n binomial tests re-run after every row: does any reject at LEVEL?"""
    out = {}
    t = np.arange(1, delegated.size + 1)
    k = np.cumsum(delegated)
    if limits.get("budget") is not None:
        out["budget"] = bool(
            (stats.binom.sf(k - 1, t, limits["budget"]) <= LEVEL).any()
        )
    above = signal > np.median(pop["signal"][ref])
    k = np.cumsum(above)
    two = 2 * np.minimum(stats.binom.cdf(k, t, 0.5), stats.binom.sf(k - 1, t, 0.5))
    out["exchangeability"] = bool((two <= LEVEL).any())
    m = delegated.size - label_delay
    cpos, ppos, yy = scores[:m] >= 0.5, probe[:m] >= 0.5, y[:m]
    wrong, pwrong = cpos != yy, ppos != yy
    tl = np.arange(1, m + 1)
    if "error" in limits:
        out["error"] = bool(
            (stats.binom.sf(np.cumsum(wrong) - 1, tl, limits["error"]) <= LEVEL).any()
        )
    if "miss" in limits:
        miss = ~cpos[yy]
        tm = np.arange(1, miss.size + 1)
        out["miss"] = bool(
            (stats.binom.sf(np.cumsum(miss) - 1, tm, limits["miss"]) <= LEVEL).any()
        )
    if "harm" in limits:
        disc = wrong != pwrong
        worse = np.cumsum(wrong & ~pwrong)
        nd = np.cumsum(disc)
        ok = nd > 0
        out["harm"] = bool((stats.binom.sf(worse[ok] - 1, nd[ok], 0.5) <= LEVEL).any())
    return out


# ---------------------------------------------------------------- the sections
def _se(p, n):
    return math.sqrt(max(p * (1 - p), 1e-12) / n)


def section_false_alarms(args, lines):
    pop = make_population(seed=args.seed)
    cascade = toy_cascade()
    limits = {"budget": ALPHA, "error": pop["error"], "miss": pop["miss"], "harm": 0.0}
    names = ["budget", "exchangeability", "error", "miss", "harm"]
    alarms = {k: 0 for k in names}
    naive = {k: 0 for k in names}
    fixed = 0
    rng = np.random.default_rng(args.seed + 1)
    t0 = time.perf_counter()
    for s in range(args.streams):
        first, nv = run_stream(cascade, pop, rng, s, length=args.length, limits=limits)
        for k in names:
            alarms[k] += k in first
            naive[k] += nv[k]
    n_fixed = min(args.streams, args.fixed_streams)
    for s in range(n_fixed):
        first, _ = run_stream(
            cascade,
            pop,
            rng,
            10**6 + s,
            length=args.length,
            limits={"budget": None},
            fixed_reference=True,
        )
        fixed += "exchangeability" in first
    secs = time.perf_counter() - t0
    se = _se(LEVEL, args.streams)
    lines += [
        "## False alarms on exchangeable streams",
        "",
        f"{args.streams:,} streams of {args.length:,} rows (alarm checked after every "
        f"row), 1,000 reference rows each, level {LEVEL}; population: delegation rate "
        f"{pop['rate']:.4f} = alpha, cascade error {pop['error']:.4f} (= limit), miss "
        f"rate {pop['miss']:.4f} (= limit), harm {pop['harm']:+.4f} (limit 0); labels "
        f"{LABEL_DELAY} rows late. Bound: level + 3 SE = {LEVEL + 3 * se:.4f} "
        f"(SE {se:.4f} at the level). {secs:.0f} s.",
        "",
        "| monitor | DelegationMonitor: share of streams with a false alarm | naive "
        "binomial test re-run after every row |",
        "|---|---|---|",
    ]
    for k in names:
        a, b = alarms[k] / args.streams, naive[k] / args.streams
        lines.append(
            f"| {k} | {a:.4f} (SE {_se(a, args.streams):.4f}) "
            f"{'<=' if a <= LEVEL + 3 * se else '>'} bound | {b:.4f} |"
        )
    f = fixed / max(n_fixed, 1)
    lines += [
        "",
        f"Exchangeability martingale fed ranks among the *fixed* reference values only "
        f"(not among all earlier values): false alarms on {f:.4f} of {n_fixed:,} "
        f"streams (SE {_se(f, max(n_fixed, 1)):.4f}).",
        "",
    ]


def section_detection(args, lines):
    pop = make_population(seed=args.seed)
    cascade = toy_cascade()
    e0 = pop["error"]
    setups = [
        (
            "rate",
            "delegation rate 0.15 -> 0.30 (alpha 0.2)",
            "budget",
            {"budget": ALPHA},
        ),
        ("shift", "delegation signal + 0.5 SD", "exchangeability", {"budget": None}),
        (
            "error",
            f"cascade error {e0:.3f} -> {e0 + 0.1:.3f} (limit {e0 + 0.05:.3f})",
            "error",
            {"budget": None, "error": e0 + 0.05},
        ),
    ]
    lines += [
        "## Detection delay after a change at row 5,000",
        "",
        f"{args.streams:,} streams of {args.length:,} rows each, level {LEVEL}, "
        "window 250. Delay in rows after the change (labelled rows for the error "
        "monitor, labels delivered at once).",
        "",
        "| change | monitor | median delay | 90th percentile | detected by the end "
        "| alarm before the change |",
        "|---|---|---|---|---|---|",
    ]
    rng = np.random.default_rng(args.seed + 2)
    for scenario, what, name, limits in setups:
        delays = []
        for s in range(args.streams):
            first, _ = run_stream(
                cascade,
                pop,
                rng,
                s,
                length=args.length,
                limits=limits,
                scenario=scenario,
                label_delay=0 if scenario == "error" else LABEL_DELAY,
            )
            delays.append(first.get(name, np.inf) - CHANGE)
        d = np.asarray(delays, dtype=float)
        early = float(np.mean(d <= 0))
        after = d[d > 0]
        med, p90 = (
            (np.percentile(after, 50), np.percentile(after, 90))
            if after.size
            else (np.inf, np.inf)
        )
        lines.append(
            f"| {what} | {name} | {med:.0f} | {p90:.0f} | "
            f"{np.mean(np.isfinite(d) & (d > 0)):.3f} | {early:.3f} |"
        )
    lines.append("")


def section_window(args, lines):
    """Rate monitor alone: delay of 0.15 -> 0.30 by window, and without reactive bets."""
    from skctd.monitor import ConfidenceSequence

    rng = np.random.default_rng(args.seed + 3)
    n_streams = max(args.streams // 5, 20)
    length = 40_000
    lines += [
        "## The window of the reactive bets (rate monitor alone)",
        "",
        f"{n_streams} streams of {length:,} rows, rate 0.15 then 0.30 from row "
        f"{CHANGE:,}, alpha {ALPHA}, level {LEVEL}; also the rate exactly at alpha "
        "throughout (false alarms).",
        "",
        "| bets | median delay | 90th percentile | false alarms at rate = alpha |",
        "|---|---|---|---|",
    ]
    for window in (None, 100, 250, 1000):
        delays, false = [], 0
        for _ in range(n_streams):
            x = np.r_[rng.random(CHANGE) < 0.15, rng.random(length - CHANGE) < 0.30]
            null = rng.random(10_000) < ALPHA
            if window is None:
                cs = ConfidenceSequence(LEVEL)  # running bets only, full level
                hit = np.flatnonzero(cs.update(x.astype(float)).lower > ALPHA)
                delays.append(hit[0] + 1 - CHANGE if hit.size else np.inf)
                cs = ConfidenceSequence(LEVEL)
                false += bool((cs.update(null.astype(float)).lower > ALPHA).any())
            else:
                cs = ConfidenceSequence(LEVEL, limit=ALPHA, window=window)
                cs.update(x.astype(float))
                delays.append(
                    np.inf if cs.alarm_row_ is None else cs.alarm_row_ - CHANGE
                )
                cs = ConfidenceSequence(LEVEL, limit=ALPHA, window=window)
                cs.update(null.astype(float))
                false += cs.alarm
        d = np.asarray(delays, dtype=float)
        name = (
            "running only (no limit)"
            if window is None
            else f"running + reactive, window {window}"
        )
        lines.append(
            f"| {name} | {np.median(d):.0f} | {np.percentile(d, 90):.0f} | "
            f"{false / n_streams:.3f} |"
        )
    lines.append("")


def _timed(fn, repeat=3):
    """Best wall-clock and best CPU (process) seconds of ``fn()`` over ``repeat`` runs."""
    wall = cpu = math.inf
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - w)
        cpu = min(cpu, time.process_time() - c)
    return wall, cpu


def section_speed(args, lines):
    from skctd import DelegationMonitor
    from skctd.monitor import ConfidenceSequence, reference_confidence_sequence

    rng = np.random.default_rng(args.seed)
    x = (rng.random(1_000_000) < ALPHA).astype(float)

    x_floats = x[:100_000].tolist()

    def feed(batch, n):
        cs = ConfidenceSequence(LEVEL, limit=ALPHA, window=250)
        if batch == 0:  # one row per call, as a Python float
            for v in x_floats[:n]:
                cs.update(v)
            return
        for s in range(0, n, batch):
            cs.update(x[s : s + batch])

    n_loop = 200_000
    loop_wall, loop_cpu = _timed(
        lambda: reference_confidence_sequence(
            x[:n_loop], level=LEVEL, limit=ALPHA, window=250
        )
    )
    ref = reference_confidence_sequence(
        x[:n_loop], level=LEVEL, limit=ALPHA, window=250
    )
    cs = ConfidenceSequence(LEVEL, limit=ALPHA, window=250)
    got = np.concatenate(
        [cs.update(x[s : min(s + 777, n_loop)]).lower for s in range(0, n_loop, 777)]
    )
    err = float(np.max(np.abs(got - ref["lower"])))
    sizes = {}
    for n in (1_000, 1_000_000):
        cs = ConfidenceSequence(LEVEL, limit=ALPHA, window=250)
        cs.update(x[:n])
        sizes[n] = len(pickle.dumps(cs))
    lines += [
        "## Speed (rate monitor) and memory",
        "",
        "Rows per second of wall-clock time and per CPU-second of this process (one "
        "thread: the per-core rate, less sensitive to the other jobs on the "
        "machine), best of 3.",
        "",
        f"Plain-Python loop over the same bound (`reference_confidence_sequence`): "
        f"{n_loop / loop_cpu:,.0f} rows per CPU-second ({n_loop / loop_wall:,.0f} "
        f"rows/s wall); max |difference| of the lower bounds over {n_loop:,} rows: "
        f"{err:.1e}.",
        "",
        "| rows per update | ConfidenceSequence rows per CPU-second | rows/s wall "
        "| ratio to the loop (CPU) |",
        "|---|---|---|---|",
    ]
    for batch, n in ((0, 100_000), (1, 100_000), (100, 500_000), (10_000, 1_000_000)):
        wall, cpu = _timed(lambda batch=batch, n=n: feed(batch, n))
        what = (
            "1 (a float)"
            if batch == 0
            else "1 (a 1-row array)"
            if batch == 1
            else f"{batch:,}"
        )
        lines.append(
            f"| {what} | {n / cpu:,.0f} | {n / wall:,.0f} | "
            f"{(n / cpu) / (n_loop / loop_cpu):.1f} |"
        )
    lines += [
        "",
        f"State size (pickle) after 1,000 rows: {sizes[1_000]} bytes; after "
        f"1,000,000 rows: {sizes[1_000_000]} bytes.",
        "",
    ]
    pop = make_population(seed=args.seed)
    cascade = toy_cascade()
    lines += [
        "| DelegationMonitor.update, rows per call | rows per CPU-second (budget + "
        "exchangeability, no labels) | rows/s wall |",
        "|---|---|---|",
    ]

    def serve(batch, n):
        mon = DelegationMonitor(cascade, level=LEVEL, random_state=0).fit(
            signal=pop["signal"][:1000], probe_scores=pop["probe"][:1000]
        )
        for s in range(0, n, batch):
            mon.update(
                {
                    "delegated": pop["delegated"][s : s + batch],
                    "signal": pop["signal"][s : s + batch],
                    "probe_scores": pop["probe"][s : s + batch],
                }
            )

    for batch, n in ((1, 2_000), (100, 100_000), (10_000, 200_000)):
        wall, cpu = _timed(lambda batch=batch, n=n: serve(batch, n))
        lines.append(f"| {batch:,} | {n / cpu:,.0f} | {n / wall:,.0f} |")
    lines.append("")


# ------------------------------------------------------------------- real data
def load_high_stakes(data_dir: Path, cache_dir: Path) -> dict:
    """Activations, labels, groups and judge scores of the high-stakes files."""
    from skctd.datasets import read_dataset

    out = {}
    for split in ("train", "dev", "test"):
        data = read_dataset(data_dir / "high-stakes" / f"{split}.jsonl")
        act = cache_dir / "stages" / f"act_hs_{split}.npy"
        if not act.is_file():
            raise FileNotFoundError(
                f"{act} is missing: run benchmarks/reproduce_paper.py --stages-only first"
            )
        judge = cache_dir / "stages" / f"judge_hs_{split}.npy"
        out[split] = {
            "Z": np.load(act),
            "y": np.asarray(data.label, dtype=int),
            "group": np.asarray(data.group),
            "judge": np.load(judge) if judge.is_file() else None,
        }
    return out


def _no_expert(rows):
    raise RuntimeError("the monitoring benchmark never calls the expert")


def real_data_monitor(
    hs: dict,
    *,
    n_splits: int,
    seed: int = 0,
    first_part: int = 250,
    groups=("mtsamples", "toolace"),
) -> dict:
    """The label-free monitor on high-stakes test rows, unchanged vs changed group mix."""
    import warnings

    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skctd import CalibratedDelegationCascade, DelegationMonitor

    rng = np.random.default_rng(seed)
    # skctd.probes.make_safety_probe picks C = 0.1 on these activations (its
    # 65-fit grid search takes ~10 minutes on a busy 2-core machine)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000))
    probe.fit(hs["train"]["Z"], hs["train"]["y"])
    test = hs["test"]
    n = test["y"].size
    if hs["dev"]["judge"] is not None:
        dv_Z, dv_y, dv_e = hs["dev"]["Z"], hs["dev"]["y"], hs["dev"]["judge"]
        pool = np.arange(n)
        dv_note = "DV probe on dev (dev judge scores cached)"
    else:
        perm = rng.permutation(n)
        n_dv = int(0.3 * n)
        dv_rows, pool = np.sort(perm[:n_dv]), np.sort(perm[n_dv:])
        dv_Z, dv_y, dv_e = (
            test["Z"][dv_rows],
            test["y"][dv_rows],
            test["judge"][dv_rows],
        )
        dv_note = (
            f"DV probe on a random 30 % of test ({n_dv} rows): the dev judge "
            "scores were not cached yet"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cascade = CalibratedDelegationCascade(
            _no_expert,
            probe=FrozenEstimator(probe),
            alpha=ALPHA,
            calibration_size=None,
            random_state=0,
        ).fit(dv_Z, dv_y, expert_scores=dv_e)
    result = {"note": dv_note, "pool": int(pool.size), "unchanged": [], "changed": {}}
    for g in groups:
        result["changed"][g] = []
    for r in range(n_splits):
        perm = rng.permutation(pool)
        half = perm.size // 2
        cal, stream = perm[:half], perm[half:]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cascade.calibrate(
                test["Z"][cal], test["y"][cal], expert_scores=test["judge"][cal]
            )

        def run(rows, cal=cal, r=r):
            mon = DelegationMonitor(cascade, level=LEVEL, random_state=r).fit(
                test["Z"][cal]
            )
            mon.route(test["Z"][rows], call_expert=False)
            hit = [a.row for a in mon.alarms_ if a.monitor == "exchangeability"]
            return (hit[0] if hit else None), int(rows.size)

        result["unchanged"].append(run(stream))
        first = stream[:first_part]
        rest = stream[first_part:]
        for g in groups:
            second = rest[test["group"][rest] == g]
            result["changed"][g].append(
                run(np.concatenate([first, second])) + (first_part,)
            )
    mix = {
        g: float(np.mean(test["group"][pool] == g)) for g in np.unique(test["group"])
    }
    result["mix"] = mix
    return result


def section_real(args, lines):
    data_dir = Path(args.data_dir)
    if not (data_dir / "high-stakes" / "test.jsonl").is_file():
        lines += [
            "## Real data",
            "",
            f"skipped: no high-stakes data under {data_dir}.",
            "",
        ]
        return
    cache = Path(args.cache_dir) if args.cache_dir else None
    if cache is None:
        from skctd.cli import default_cache_dir

        cache = default_cache_dir()
    try:
        hs = load_high_stakes(data_dir, cache)
    except FileNotFoundError as exc:
        lines += ["## Real data", "", f"skipped: {exc}", ""]
        return
    t0 = time.perf_counter()
    res = real_data_monitor(hs, n_splits=args.real_splits, seed=args.seed)
    secs = time.perf_counter() - t0
    unchanged = [a for a, _ in res["unchanged"]]
    fa = float(np.mean([a is not None for a in unchanged]))
    mix = ", ".join(f"{g} {v:.0%}" for g, v in res["mix"].items())
    lines += [
        "## Real data: high-stakes, group mix changes half-way",
        "",
        f"SmolLM2-135M layer-15 activations, probe (standardised logistic regression, "
        f"C = 0.1, the recipe's choice on these data) on train; {res['note']}. "
        f"{res['pool']} test rows (mix: {mix}) split {args.real_splits} times at random "
        f"into calibration (reference) and stream halves; level {LEVEL}. {secs:.0f} s.",
        "",
        "| stream | rows | splits with an alarm | alarm row (median, 90th pct) |",
        "|---|---|---|---|",
        f"| unchanged mix (random order) | {res['unchanged'][0][1]} | {fa:.3f} "
        f"(SE {_se(fa, len(unchanged)):.3f}) | "
        + (
            ", ".join(
                f"{v:.0f}" for v in np.percentile([a for a in unchanged if a], [50, 90])
            )
            if any(unchanged)
            else "-"
        )
        + " |",
    ]
    for g, runs in res["changed"].items():
        alarms = [a for a, _, _ in runs]
        n_rows = int(np.median([m for _, m, _ in runs]))
        first = runs[0][2]
        early = np.mean([a is not None and a <= first for a, _, _ in runs])
        after = [a - first for a in alarms if a is not None and a > first]
        share = len(after) / len(runs)
        pct = np.percentile(after, [50, 90]) if after else [np.nan, np.nan]
        lines.append(
            f"| first {first} rows at the calibration mix, then {g} only | ~{n_rows} | "
            f"{share:.3f} after the change ({early:.3f} before) | {pct[0]:.0f}, "
            f"{pct[1]:.0f} rows after the change |"
        )
    lines.append("")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sections", default="speed,false-alarms,detection,window,real"
    )
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument(
        "--fixed-streams",
        type=int,
        default=300,
        help="streams for the fixed-reference martingale",
    )
    parser.add_argument("--length", type=int, default=10_000)
    parser.add_argument("--real-splits", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None, help="write the markdown report here")
    args = parser.parse_args(argv)
    logging.getLogger("skctd.monitor").setLevel(logging.ERROR)  # alarms are counted
    if args.quick:
        args.streams, args.fixed_streams, args.real_splits = 100, 50, 20
    sections = args.sections.split(",")
    lines = [
        "# Deployment monitor: false alarms, detection, real data, speed",
        "",
        f"Generated by `python benchmarks/bench_monitor.py "
        f"{' '.join(argv if argv is not None else sys.argv[1:])}`.",
        "",
    ]
    runners = {
        "speed": section_speed,
        "false-alarms": section_false_alarms,
        "detection": section_detection,
        "window": section_window,
        "real": section_real,
    }
    for name in sections:
        start = len(lines)
        runners[name](args, lines)
        print("\n".join(lines[start:]), flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

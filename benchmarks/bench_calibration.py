"""Timing of the vectorised Learn-then-Test calibration against a plain loop.

Usage::

    python benchmarks/bench_calibration.py           # full run (a few minutes)
    python benchmarks/bench_calibration.py --quick   # smaller sizes, fewer splits

Two measurements:

1. ``calibrate_threshold`` (100 thresholds, Pareto LTT, accuracy risk, then
   AUROC risk) for n = 1e3 ... 1e6 calibration rows, next to the package's
   loop-based reference, ``skctd.calibration.reference_calibrate_threshold``: the
   same procedure written the plain way (one pass over the data per threshold,
   scalar ``binom.cdf`` per threshold, a double loop for the Pareto filter, a loop
   for the fixed sequence; ``roc_auc_score`` per threshold for AUROC). Both use the
   same random split, and the script checks that they choose the same threshold.
   The AUROC loop is skipped at n = 1e6 (about a minute).
2. The paper's protocol: 20 budgets x 500 calibration/evaluation splits of a pool
   of 3,000 rows (calibration part n = 1,500, split 30/70 into optimisation and
   testing), as one ``calibrate_budget_sweep`` call, next to one call per
   (split, budget) -- what a user calling the single-budget calibration 10,000
   times would pay; ``calibrate_threshold`` draws its own split, so the single-split,
   single-budget form of ``calibrate_budget_sweep`` stands in for it -- and next to
   the loop baseline. The last two are timed on a subset of the splits and scaled
   to the full count (the table says so).

3. Several risks (the no-harm certificate and friends): per-split time of
   ``calibrate_budget_sweep`` at n_cal = 800 (opt 240 / test 560) and 20 budgets,
   budget only next to budget + harm (sign test), budget + harm at epsilon > 0
   (betting p-value), budget + harm + miss and budget + cost, with the ratio to
   budget only.

Timings are wall-clock, best of ``--repeat`` runs; they depend on machine load.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from scipy import stats

from skctd.calibration import (
    calibrate_budget_sweep,
    calibrate_threshold,
    opt_test_split,
    reference_calibrate_threshold,
)


def make_data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    signal = rng.normal(size=n)
    u = stats.norm.cdf(signal)
    probe = np.clip(0.5 + (2 * y - 1) * rng.normal(0.15, 0.3, n), 0, 1)
    good = rng.uniform(size=n) < 0.4 + 0.6 * u
    expert = np.clip(np.where(good, y, 1 - y) + rng.normal(0, 0.1, n), 0, 1)
    return signal, y, probe, expert


def loop_calibration(signal, y, p, e, opt_idx, test_idx, *, alpha, delta, **kwargs):
    """The same procedure, one threshold at a time (the baseline): the package's
    readable reference implementation, on the given split."""
    return reference_calibrate_threshold(
        signal,
        y,
        p,
        e,
        alpha=alpha,
        delta=delta,
        opt_indices=opt_idx,
        test_indices=test_idx,
        **kwargs,
    ).threshold


def best_time(repeat, func, *args, **kwargs):
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = func(*args, **kwargs)
        times.append(time.perf_counter() - t0)
    return min(times), out


def bench_single(sizes, repeat, loop_limit, performance_risk="accuracy", title="1)"):
    print(
        f"\n{title} calibrate_threshold, 100 thresholds, Pareto LTT, "
        f"performance_risk={performance_risk!r}, alpha=0.2, delta=0.1"
    )
    header = (
        f"{'n':>9} | {'vectorised (s)':>14} | {'loop (s)':>9} | "
        f"{'speed-up':>8} | same threshold"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for n in sizes:
        signal, y, p, e = make_data(n, seed=1)
        t_vec, res = best_time(
            repeat,
            calibrate_threshold,
            signal,
            y,
            p,
            e,
            alpha=0.2,
            delta=0.1,
            performance_risk=performance_risk,
            random_state=0,
        )
        opt_idx, test_idx = opt_test_split(n, opt_fraction=0.3, random_state=0)
        assert np.array_equal(opt_idx, res.opt_indices)
        if n > loop_limit:
            print(f"{n:>9,} | {t_vec:>14.4f} | {'skipped':>9} | {'':>8} |")
            continue
        loop_repeat = 1 if n >= loop_limit else repeat
        t_loop, lam = best_time(
            loop_repeat,
            loop_calibration,
            signal,
            y,
            p,
            e,
            opt_idx,
            test_idx,
            alpha=0.2,
            delta=0.1,
            performance_risk=performance_risk,
        )
        same = lam == res.threshold
        rows.append((n, t_vec, t_loop, same))
        print(
            f"{n:>9,} | {t_vec:>14.4f} | {t_loop:>9.3f} | {t_loop / t_vec:>7.1f}x | "
            f"{same}"
        )
    return rows


def bench_sweep(n_splits, repeat, loop_splits, per_call_splits):
    n_pool, n_alphas = 3000, 20
    print(
        f"\n2) budget sweep: {n_alphas} budgets x {n_splits} splits, calibration "
        f"n=1,500 of a pool of {n_pool:,} (opt 450 / test 1,050), delta=0.1"
    )
    signal, y, p, e = make_data(n_pool, seed=2)
    rng = np.random.default_rng(0)
    splits, evals = [], []
    for _ in range(n_splits):
        perm = rng.permutation(n_pool)
        cal, ev = perm[:1500], perm[1500:]
        splits.append((np.sort(cal[:450]), np.sort(cal[450:])))
        evals.append(ev)
    alphas = np.linspace(0.05, 0.95, n_alphas)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_sweep, res = best_time(
            repeat,
            calibrate_budget_sweep,
            signal,
            y,
            p,
            e,
            alphas=alphas,
            delta=0.1,
            splits=splits,
        )
    rates = res.delegation_rate(signal, evals)
    violation = float(np.mean(rates > alphas))

    # one calibration per (split, budget), on the same splits as the sweep
    def per_call(k):
        out = np.empty((k, n_alphas))
        for i in range(k):
            o, t = splits[i]
            for j, a in enumerate(alphas):
                r = calibrate_budget_sweep(
                    signal, y, p, e, alphas=[a], delta=0.1, splits=[(o, t)]
                )
                out[i, j] = r.thresholds[0, 0]
        return out

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        per = per_call(per_call_splits)
        t_per = (time.perf_counter() - t0) * n_splits / per_call_splits
    same_per = np.array_equal(per, res.thresholds[:per_call_splits])

    t0 = time.perf_counter()
    loop = np.array(
        [
            [
                loop_calibration(signal, y, p, e, *splits[i], alpha=a, delta=0.1)
                for a in alphas
            ]
            for i in range(loop_splits)
        ]
    )
    t_loop = (time.perf_counter() - t0) * n_splits / loop_splits
    same_loop = np.array_equal(loop, res.thresholds[:loop_splits])

    header = f"{'method':<58} | {'time (s)':>9} | {'vs sweep':>8}"
    print(header)
    print("-" * len(header))
    print(f"{'calibrate_budget_sweep, one call':<58} | {t_sweep:>9.3f} | {1:>7.1f}x")
    label = f"one call per (split, budget) [timed on {per_call_splits} splits, scaled]"
    print(f"{label:<58} | {t_per:>9.2f} | {t_per / t_sweep:>7.1f}x")
    label = f"loop baseline [timed on {loop_splits} splits, scaled]"
    print(f"{label:<58} | {t_loop:>9.2f} | {t_loop / t_sweep:>7.1f}x")
    print(
        f"same thresholds: per-call {same_per}, loop {same_loop}; realised budget "
        f"on the evaluation parts exceeds alpha in {violation:.3f} of "
        f"(split, budget) pairs (delta=0.1)"
    )
    return t_sweep, t_per, t_loop, same_per, same_loop


def bench_constraints(n_splits, repeat):
    n, n_alphas = 800, 20
    print(
        f"\n3) several risks: calibrate_budget_sweep, n_cal={n} (opt 240 / test 560), "
        f"{n_alphas} budgets, {n_splits} splits, delta=0.1; time per split"
    )
    signal, y, p, e = make_data(n, seed=3)
    cost = np.minimum((1 - np.random.default_rng(3).uniform(size=n)) ** (-1 / 1.5), 40)
    rng = np.random.default_rng(0)
    splits = []
    for _ in range(n_splits):
        perm = rng.permutation(n)
        splits.append((np.sort(perm[:240]), np.sort(perm[240:])))
    alphas = np.linspace(0.05, 0.95, n_alphas)
    cases = {
        "budget only": {},
        "budget + harm<=0 (sign test)": {"constraints": {"harm": 0.0}},
        "budget + harm<=0.01 (betting)": {"constraints": {"harm": 0.01}},
        "budget + harm<=0 + miss<=0.2": {"constraints": {"harm": 0.0, "miss": 0.2}},
        "budget + cost<=1 (betting)": {"constraints": {"cost": 1.0}, "cost": cost},
    }
    header = f"{'risks':<32} | {'ms / split':>10} | {'vs budget only':>14}"
    print(header)
    print("-" * len(header))
    # interleaved repeats (every case once per round), best of each: the ratios
    # then compare runs made under the same machine load
    times = dict.fromkeys(cases, np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeat):
            for label, kw in cases.items():
                t0 = time.perf_counter()
                calibrate_budget_sweep(
                    signal,
                    y,
                    p,
                    e,
                    alphas=alphas,
                    delta=0.1,
                    splits=splits,
                    random_state=0,
                    **kw,
                )
                t = 1000 * (time.perf_counter() - t0) / n_splits
                times[label] = min(times[label], t)
    base = times["budget only"]
    for label, ms in times.items():
        print(f"{label:<32} | {ms:>10.2f} | {ms / base:>13.1f}x")
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="n up to 1e5 and 100 splits (a few seconds)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per timing; the best is reported"
    )
    args = parser.parse_args(argv)
    if args.quick:
        sizes, n_splits, loop_splits, per_call_splits = (
            [10**3, 10**4, 10**5],
            100,
            5,
            10,
        )
    else:
        sizes, n_splits, loop_splits, per_call_splits = (
            [10**3, 10**4, 10**5, 10**6],
            500,
            20,
            50,
        )
    rows = bench_single(sizes, args.repeat, loop_limit=10**6)
    rows += bench_single(
        sizes, args.repeat, loop_limit=10**5, performance_risk="auroc", title="1b)"
    )
    sweep = bench_sweep(n_splits, args.repeat, loop_splits, per_call_splits)
    bench_constraints(n_splits, args.repeat)
    ok = all(r[3] for r in rows) and sweep[3] and sweep[4]
    print("\nall thresholds agree" if ok else "\nMISMATCH between implementations")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Rows per second of skctd.ray.featurize (1 and 2 actors) against one process.

Usage (from the repository root; needs the ``ray`` and ``llm`` extras)::

    python benchmarks/bench_ray.py                               # all-MiniLM-L6-v2
    python benchmarks/bench_ray.py --model smollm2 --layer 15 --n-rows 256
    python benchmarks/bench_ray.py --json benchmarks/results/bench_ray.json

On the same rows (``--n-rows`` inputs of ``../shared/data/high-stakes/dev.jsonl``, a
fixed random sample, or generated texts of mixed length when the data are absent),
with no cache, it times:

- **single process**: ``ActivationTransformer.transform`` in this process, torch
  on every core of the machine, the model already loaded (not timed);
- **Ray, k actors**: ``skctd.ray.featurize`` + ``collect_features`` on a local Ray
  instance with ``num_cpus`` = the machine's cores, ``k`` actors of
  ``cores // k`` CPUs each (torch uses that many threads per actor), calls of
  ``--block-rows`` rows.

For Ray it reports the end-to-end time (actor start, imports and model load
included, as a real job pays them once per pool) and the time of the same job
minus a warm-up run on ``k`` rows (which pays the same start-up: an estimate of
the steady-state rate). Features are checked against the single process
(``allclose``: the batches differ). On a machine with few cores, actors split the
same cores, so little gain is expected: the point of Ray is more machines, and
GPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def load_rows(n: int, seed: int = 0) -> tuple[list, str]:
    path = DATA / "high-stakes" / "dev.jsonl"
    rng = np.random.default_rng(seed)
    if path.exists():
        rows = [json.loads(line)["inputs"] for line in path.open(encoding="utf-8")]
        idx = rng.choice(len(rows), size=min(n, len(rows)), replace=False)
        return [rows[i] for i in idx], "high-stakes/dev.jsonl"
    words = "the patient asks about a refund for the medical plan and the weather".split()
    rows = [" ".join(rng.choice(words, size=int(rng.integers(5, 120)))) for _ in range(n)]
    return rows, "generated texts"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--layer", type=int, default=3)
    parser.add_argument("--n-rows", type=int, default=1024)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--block-rows", type=int, default=128)
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", default=None, help="write the numbers here")
    args = parser.parse_args()

    import ray
    import torch

    import skctd.ray
    from skctd import ActivationTransformer

    cores = os.cpu_count() or 1
    rows, source = load_rows(args.n_rows)
    # no chat template: a BERT-style encoder renders conversations as role lines
    enc = ActivationTransformer(
        args.model, layer=args.layer, max_length=args.max_length, device="cpu",
        dtype="float32", progress=False, chat_template=True if args.model == "smollm2" else "auto",
    )
    if any(not isinstance(r, str) for r in rows) and enc.chat_template == "auto":
        rows = [r if isinstance(r, str) else "\n".join(
            f"{m['role']}: {m['content']}" for m in r) for r in rows]
    enc.transform(rows[:2])  # load the model (not timed)
    torch.set_num_threads(cores)
    t = time.perf_counter()
    Z = enc.transform(rows)
    single = time.perf_counter() - t
    results = {
        "model": args.model, "layer": args.layer, "rows": len(rows), "source": source,
        "max_length": args.max_length, "block_rows": args.block_rows, "cores": cores,
        "load_average_1min": os.getloadavg()[0],
        "single_process": {"seconds": single, "rows_per_s": len(rows) / single},
    }
    print(f"{len(rows)} rows ({source}), {args.model} layer {args.layer}, "
          f"max_length {args.max_length}, {cores} cores, load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"single process          {single:7.1f} s  {len(rows) / single:8.1f} rows/s")

    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    try:
        for k in args.actors:
            pool = {"n_actors": k, "num_cpus": max(1, cores // k),
                    "block_rows": args.block_rows}
            t = time.perf_counter()
            skctd.ray.collect_features(skctd.ray.featurize(rows[:k], enc, **pool))
            warm = time.perf_counter() - t
            t = time.perf_counter()
            ids, Zr = skctd.ray.collect_features(skctd.ray.featurize(rows, enc, **pool))
            total = time.perf_counter() - t
            assert ids.tolist() == list(range(len(rows)))
            err = float(np.abs(Zr - Z).max())
            np.testing.assert_allclose(Zr, Z, atol=1e-4, rtol=1e-4)
            steady = max(total - warm, 1e-9)
            results[f"ray_{k}_actors"] = {
                "num_cpus_per_actor": pool["num_cpus"], "seconds": total,
                "rows_per_s": len(rows) / total, "startup_run_seconds": warm,
                "rows_per_s_minus_startup": len(rows) / steady,
                "max_abs_diff_vs_single": err,
            }
            print(f"Ray, {k} actor(s) x {pool['num_cpus']} CPU {total:7.1f} s  "
                  f"{len(rows) / total:8.1f} rows/s end to end; start-up run "
                  f"{warm:.1f} s -> {len(rows) / steady:8.1f} rows/s without it; "
                  f"max |diff| {err:.1e}")
    finally:
        ray.shutdown()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"written to {args.json}")


if __name__ == "__main__":
    sys.exit(main())

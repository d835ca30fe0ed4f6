"""Throughput of ActivationTransformer against the naive extraction code.

Usage (from the repository root)::

    python benchmarks/bench_activations.py                       # both models
    python benchmarks/bench_activations.py --n-texts 128 --max-length 256 --models smollm2
    python benchmarks/bench_activations.py --device cuda --dtype bfloat16

On the same inputs (``--n-texts`` rows of mixed length from
``../shared/data/high-stakes/dev.jsonl``, a fixed random sample; conversations are
rendered through the model's chat template for both contenders) it times:

- **naive**: what a typical user writes: the full model with
  ``output_hidden_states=True``, inputs in the given order, a fixed batch size
  (``--naive-batch-size``), padding to the batch maximum, mean pooling of
  ``hidden_states[layer]`` with the attention mask, then ``.cpu()``.
- **ours**: ``ActivationTransformer(layer=..., pooling="mean")`` with its defaults
  (forward pass stopped after the requested layer, length-sorted batches under a
  token budget, pooling on the device).

Both use the same model object (loaded once, not timed) and produce the same
features (checked). Reported: real (non-padding) tokens per second, the ratio
ours / naive, and the achieved FLOP/s of each as a share of a float32 (or
``--dtype``) ``torch.matmul`` peak measured in the same run. Useful FLOPs are
``2 * (parameters of blocks 0..layer-1) * tokens`` plus the attention scores and
mixing, ``4 * n^2 * hidden`` per block per input of ``n`` tokens; the naive code
does more work than that (later blocks, padding), which is exactly the waste being
measured.
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

MODELS = {"smollm2": ("smollm2", 15), "minilm": ("all-MiniLM-L6-v2", 3)}


def load_rows(n: int, seed: int = 0) -> list:
    path = DATA / "high-stakes" / "dev.jsonl"
    if not path.exists():
        sys.exit(f"{path} is missing: the benchmark reads ../shared/data (see README).")
    rows = [json.loads(line)["inputs"] for line in path.open(encoding="utf-8")]
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(rows), size=min(n, len(rows)), replace=False)
    return [rows[i] for i in idx]


def matmul_peak(torch, device, dtype, size: int = 2048, repeats: int = 10) -> float:
    """Best FLOP/s of a size x size matmul over a few repeats."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats + 2):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        (a @ b).sum().item()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def useful_flops(model, layer: int, lengths: np.ndarray, blocks) -> float:
    """2 * params(blocks < layer) * tokens + 4 n^2 d per block per input."""
    params = sum(p.numel() for b in list(blocks)[:layer] for p in b.parameters())
    hidden = model.config.hidden_size
    tokens = float(lengths.sum())
    attention = 4.0 * float((lengths.astype(np.float64) ** 2).sum()) * hidden * layer
    return 2.0 * params * tokens + attention


def naive(torch, tokenizer, model, texts, layer, max_length, batch_size):
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(
            texts[start : start + batch_size],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        ).to(device)
        with torch.no_grad():
            hs = model(**enc, output_hidden_states=True).hidden_states[layer]
        m = enc["attention_mask"].unsqueeze(-1).to(hs.dtype)
        out.append(((hs * m).sum(1) / m.sum(1)).float().cpu().numpy())
    return np.concatenate(out)


def bench_model(key: str, args, torch) -> dict:
    from skctd import ActivationTransformer
    from skctd.llm import load_model, render_texts
    from skctd.llm._activations import _find_blocks
    from skctd.utils import check_inputs

    name, layer = MODELS[key]
    if args.layer is not None:
        layer = args.layer
    t0 = time.perf_counter()
    tokenizer, model = load_model(name, device=args.device, dtype=args.dtype)
    load_s = time.perf_counter() - t0
    device = next(model.parameters()).device
    # the data mix texts and conversations: render conversations through the
    # chat template, then both contenders read the same strings
    texts = [
        r if isinstance(r, str) else render_texts(check_inputs([r]), tokenizer)[0]
        for r in load_rows(args.n_texts, args.seed)
    ]
    enc = ActivationTransformer(
        name,
        layer=layer,
        pooling="mean",
        max_length=args.max_length,
        device=args.device,
        dtype=args.dtype,
        progress=False,
        chat_template=False,
        **({"batch_size": args.batch_size} if args.batch_size else {}),
        **(
            {"max_tokens_per_batch": args.max_tokens_per_batch}
            if args.max_tokens_per_batch
            else {}
        ),
    )
    # both read the same rendered strings as plain text (special tokens added)
    ids = tokenizer(texts, truncation=True, max_length=enc.fit(texts[:1]).max_length_)[
        "input_ids"
    ]
    lengths = np.array([len(x) for x in ids])
    blocks = _find_blocks(model, model.config.num_hidden_layers)
    flops = useful_flops(model, layer, lengths, blocks)
    warm = texts[:4]
    naive(torch, tokenizer, model, warm, layer, args.max_length, 4)
    enc.transform(warm)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    sync()
    t0 = time.perf_counter()
    ref = naive(
        torch,
        tokenizer,
        model,
        texts,
        layer,
        args.max_length,
        args.naive_batch_size,
    )
    sync()
    naive_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = enc.transform(texts)
    sync()
    ours_s = time.perf_counter() - t0
    tokens = int(lengths.sum())
    return {
        "model": name,
        "layer": layer,
        "n_layers": int(model.config.num_hidden_layers),
        "n_texts": len(texts),
        "tokens": tokens,
        "median_tokens": float(np.median(lengths)),
        "max_length": args.max_length,
        "device": str(device),
        "dtype": str(next(model.parameters()).dtype),
        "load_s": round(load_s, 2),
        "naive_s": round(naive_s, 3),
        "ours_s": round(ours_s, 3),
        "naive_tokens_per_s": round(tokens / naive_s, 1),
        "ours_tokens_per_s": round(tokens / ours_s, 1),
        "speedup": round(naive_s / ours_s, 2),
        "useful_gflop": round(flops / 1e9, 2),
        "ours_gflops": round(flops / ours_s / 1e9, 2),
        "naive_gflops": round(flops / naive_s / 1e9, 2),
        "max_abs_diff_vs_naive": float(np.abs(ours - ref).max()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["smollm2", "minilm"])
    parser.add_argument("--n-texts", type=int, default=512)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--layer", type=int, default=None)
    parser.add_argument("--naive-batch-size", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--max-tokens-per-batch", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)

    import torch

    from skctd.llm import resolve_device, resolve_dtype

    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    peak = matmul_peak(torch, device, dtype)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}, "
        f"{dtype}; matmul peak (2048^2): {peak / 1e9:.1f} GFLOP/s",
        flush=True,
    )
    results = []
    for key in args.models:
        res = bench_model(key, args, torch)
        res["matmul_peak_gflops"] = round(peak / 1e9, 2)
        res["ours_share_of_peak"] = round(res["ours_gflops"] * 1e9 / peak, 3)
        res["naive_share_of_peak"] = round(res["naive_gflops"] * 1e9 / peak, 3)
        results.append(res)
        print(
            f"{res['model']} layer {res['layer']}/{res['n_layers']}: "
            f"{res['n_texts']} texts, {res['tokens']} tokens "
            f"(median {res['median_tokens']:.0f}); naive {res['naive_tokens_per_s']} "
            f"tok/s, ours {res['ours_tokens_per_s']} tok/s, ratio {res['speedup']}x; "
            f"ours {res['ours_gflops']} GFLOP/s = {100 * res['ours_share_of_peak']:.0f}% "
            f"of the matmul peak (naive {100 * res['naive_share_of_peak']:.0f}%); "
            f"max |diff| {res['max_abs_diff_vs_naive']:.2e}",
            flush=True,
        )
    # the peak again at the end: the machine may be shared
    peak_end = matmul_peak(torch, device, dtype)
    print(f"matmul peak at the end: {peak_end / 1e9:.1f} GFLOP/s", flush=True)
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {"results": results, "peak_end_gflops": peak_end / 1e9}, indent=2
            )
        )


if __name__ == "__main__":
    main()

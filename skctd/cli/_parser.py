"""The ``skctd`` command line: its argument parser and entry point."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from skctd.cli._demo import run_demo
from skctd.cli._monitor import add_monitor_parser, run_monitor
from skctd.cli._run import (
    DEMO_LAYER,
    DEMO_MODEL,
    EXIT_EXPERT_FAILURES,
    JobConfig,
    default_cache_dir,
    guarantee_options,
    run_job,
)

__all__ = ["build_parser", "main"]


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--alpha", type=float, default=0.2,
                   help="delegation budget of the saved cascade and the guarantee check")
    p.add_argument("--delta", type=float, default=0.1, help="LTT confidence parameter")
    p.add_argument("--n-splits", type=int, default=500,
                   help="random splits of the guarantee validation")
    p.add_argument("--seed", type=int, default=0, help="random seed of the splits")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--cache", default=str(default_cache_dir()),
                   help="cache folder for activations and judge scores ('none' to disable)")
    p.add_argument("--no-figures", action="store_true", help="tables only, no PNGs")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--quiet", action="store_true", help="no messages on stderr")
    p.add_argument("--overwrite", action="store_true",
                   help="write into a non-empty --out folder that holds no previous "
                   "skctd output (its files of the same names are replaced)")
    p.add_argument("--token-env", default=None,
                   help="NAME of the environment variable holding a Hugging Face "
                   "token (private or gated models)")
    p.add_argument("--debug", action="store_true",
                   help="show the full traceback of any error")
    g = p.add_argument_group(
        "guarantees",
        "Risks certified together with the budget (default: --constraint harm=0, the "
        "no-harm certificate: the cascade is not less accurate than the probe alone).",
    )
    g.add_argument("--constraint", action="append", metavar="NAME=LEVEL",
                   help="a certified risk: harm=EPS, error=E, miss=M, miss_marginal=M, "
                   "cost=C (mean cost per input), cost_share=S; repeat for several; "
                   "'none' for the budget alone (the paper's procedure)")
    g.add_argument("--paper-mode", action="store_true",
                   help="the paper's procedure: the budget alone (= --constraint none)")
    g.add_argument("--cost", choices=("tokens", "chars"), default=None,
                   help="per-input expert cost of cost constraints: the input's length "
                   "in tokens (the monitored model's tokenizer) or characters")
    g.add_argument("--cost-max", type=float, default=None,
                   help="a bound on every cost (default: the largest on the "
                   "optimisation split)")
    g.add_argument("--selection", choices=("best", "one_se"), default="best",
                   help="pick among certified thresholds: best accuracy on the "
                   "optimisation split, or the most conservative within one SE")
    g.add_argument("--testing-order", choices=("auto", "pvalue", "lambda", "single"),
                   default="auto", help="order of the fixed-sequence test")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``skctd`` command.

    Returns
    -------
    parser : argparse.ArgumentParser
        With the sub-commands ``run``, ``demo`` and ``monitor``.
    """
    parser = argparse.ArgumentParser(
        prog="skctd",
        description="Calibrate-Then-Delegate cascades for LLM safety monitoring.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run", help="train, calibrate and evaluate a cascade on your data",
        description=(
            "Extract (cached) activations of --model, train the safety probe on "
            "--train and the delegation-value probe on --dev, score the expert, split "
            "--test 50/50 into calibration and evaluation, run the paper's evaluation "
            "protocol and write report.md, results.json, the figures and "
            "cascade.joblib into --out."
        ),
    )
    run.add_argument("--train", required=True, help="training file (JSONL, CSV, Parquet)")
    run.add_argument("--dev", required=True, help="development file (trains the DV probe)")
    run.add_argument("--test", required=True,
                     help="test file (split 50/50 into calibration and evaluation)")
    run.add_argument("--model", required=True,
                     help="monitored model: Hugging Face name or local path "
                     "('smollm2', 'all-MiniLM-L6-v2' are packaged)")
    run.add_argument("--layer", type=int, required=True,
                     help="hidden_states index (0 = embeddings, negative from the end)")
    run.add_argument("--expert", required=True,
                     help="column:NAME | http(s)://host/v1 | HF causal LM name or path")
    run.add_argument("--expert-model", help="model name on the OpenAI-compatible server")
    run.add_argument("--api-key-env", default="OPENAI_API_KEY",
                     help="NAME of the environment variable holding the API key")
    run.add_argument("--expert-concurrency", type=int, default=8)
    run.add_argument("--expert-timeout", type=float, default=30.0)
    run.add_argument("--on-error", choices=("fallback", "raise"), default="fallback",
                     help="a failing expert call keeps the probe score (fallback)")
    run.add_argument("--max-expert-failures", type=float, default=0.05,
                     help="largest share of rows the expert may fail on; past it the "
                     "report says so at the top and skctd exits with status "
                     f"{EXIT_EXPERT_FAILURES}")
    run.add_argument("--out", required=True, help="output folder")
    for col, default in (("input", "inputs"), ("label", "label"), ("group", "group"),
                         ("id", "id")):
        run.add_argument(f"--{col}-column", default=default, help=f"{col} column name")
    run.add_argument("--pooling", default="mean", choices=("mean", "last", "max", "first"))
    run.add_argument("--max-length", type=int, default=256, help="tokens per input")
    run.add_argument("--judge-max-tokens", type=int, default=256,
                     help="input tokens the judge sees (middle cut)")
    run.add_argument("--dtype", default="auto")
    run.add_argument("--n-alphas", type=int, default=20, help="budgets of the sweep")
    run.add_argument("--cost-column", default=None,
                     help="column of a per-row expert cost, for cost constraints "
                     "(instead of --cost)")
    run.add_argument("--engine", choices=("local", "ray"), default="local",
                     help="where the activations and expert scores are computed "
                     "(ray: a Ray cluster, needs skctd[ray]; the rest runs here)")
    run.add_argument("--address", default=None,
                     help="Ray cluster address for --engine ray ('auto', ray://host:10001; "
                     "default: start a local Ray instance)")
    run.add_argument("--ray-actors", type=int, default=None,
                     help="actors per pool for --engine ray (default: one per GPU, else 1)")
    _add_common(run)

    demo = sub.add_parser(
        "demo", help="the whole job on the embedded demo set, offline on CPU",
    )
    demo.add_argument("--out", default="skctd-demo", help="output folder")
    demo.add_argument("--model", default=DEMO_MODEL, help="monitored model")
    demo.add_argument("--layer", type=int, default=DEMO_LAYER)
    demo.add_argument("--max-length", type=int, default=256)
    _add_common(demo)
    add_monitor_parser(sub)
    return parser


def _one_line(exc: BaseException) -> str:
    """An error as one line, without any secret."""
    from skctd.utils import redact

    text = " ".join(str(exc).split()) or type(exc).__name__
    return redact(text)


def _user_errors() -> tuple[type[BaseException], ...]:
    from skctd.experts import ExpertError

    # bad files, options, models, folders, missing extras, an expert that failed
    return (ValueError, OSError, ImportError, ExpertError)


LOAD_NOTE = (
    "use it: cascade = skctd.load('{path}')  (loading a model file runs code: load "
    "only files you trust; cascade.json says what it holds)"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skctd`` console script.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 on success; 2 on a user error (bad option, file, model path, output
        folder, missing extra: one line ``skctd: error: ...`` on stderr, the full
        traceback with ``--debug``); 3 when the expert failed on more rows than
        ``--max-expert-failures`` (the outputs are written and say so); 130 when
        interrupted; 1 from ``skctd monitor --fail-on-alarm`` when an alarm was
        raised. A bug shows its traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            return run_demo(args)
        if args.command == "monitor":
            return run_monitor(args)
        cfg = JobConfig(
            train=args.train, dev=args.dev, test=args.test, out=args.out,
            model=args.model, layer=args.layer, expert=args.expert,
            expert_model=args.expert_model, api_key_env=args.api_key_env,
            expert_concurrency=args.expert_concurrency,
            expert_timeout=args.expert_timeout, on_error=args.on_error,
            input_column=args.input_column, label_column=args.label_column,
            group_column=args.group_column or None, id_column=args.id_column or None,
            pooling=args.pooling, max_length=args.max_length,
            judge_max_tokens=args.judge_max_tokens, batch_size=args.batch_size,
            device=args.device, dtype=args.dtype, cache=args.cache, alpha=args.alpha,
            delta=args.delta, n_alphas=args.n_alphas, n_splits=args.n_splits,
            seed=args.seed, progress=not args.no_progress, figures=not args.no_figures,
            overwrite=args.overwrite, max_expert_failures=args.max_expert_failures,
            token_env=args.token_env,
            **guarantee_options(args),
        )
        from skctd.cli._ray import engine_from_args

        engine = engine_from_args(args)
        try:
            info = run_job(cfg, quiet=args.quiet, engine=engine)
        finally:
            if engine is not None:
                engine.close()
        if not args.quiet:
            print(info["evaluation"].summary())
            print(f"\nreport: {info['report']}")
            print(LOAD_NOTE.format(path=info["report"].parent / "cascade.joblib"))
        return int(info["exit_code"])
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("skctd: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as exc:
        if args.debug:
            raise
        print(f"skctd: error: {_one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

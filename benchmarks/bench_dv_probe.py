"""Measure the delegation-value (DV) probe options on the real data (issue 16).

For every DV option (features, model), every expert-score treatment and every
cascade setting measured, on held-out rows:

- Spearman(d, v): how well the DV signal ranks the true delegation value
  v = P_expert(y|x) - P_probe(y|x), next to the uncertainty signal's;
- the mean v of the top-k rows by the DV signal and by uncertainty, averaged
  over the selection fractions k/N <= 0.5;
- over ``--n-splits`` (default 50) random calibration/evaluation splits at
  alpha = 0.3, delta = 0.1: the AUROC and accuracy gain of CTD over probe-only
  (mean and standard error of the paired per-split differences) and CTD's mean
  realised delegation rate;
- the paper's claims "CTD never below probe-only" and "DV ranking above
  uncertainty" as :func:`skctd.evaluation.check_claims` decides them (20 splits).

Data (``--data-dir``, default ``../shared/data``) and the cached stages of
``benchmarks/reproduce_paper.py`` (``act_*.npy``, ``judge_*.npy`` under the
package cache folder; nothing is recomputed here except the probes):

- **XSTest** (450 prompts), the five refusal experts (hard 0/1 verdicts; rows
  with a null verdict dropped per expert). The safety probe is 5-fold
  cross-fitted as in ``reproduce_paper.py`` (same folds); inside the 4 training
  folds of each outer fold, ``--inner-folds`` out-of-fold probe scores give the
  DV targets and the DV probe's training probe features, and the DV probe scores
  the held-out fold with the outer probe's scores as features. Every row's
  probe score and DV signal come from models that never saw it.
- **High-stakes** with the SmolLM2 judge as the expert: probe on ``train``, DV
  probe on ``dev`` (judge scores needed: ``judge_hs_dev.npy``; skipped with a
  message when that stage is not cached yet), evaluation on ``test``.

Expert-score recalibration (``expert_calibration``): Platt ("sigmoid") or
isotonic, fitted on the rows that train the DV probe -- cross-fitted there (the
DV targets use out-of-fold calibrated scores) and refitted on all of them to
transform the held-out rows' scores, as the cascade does.

Usage::

    python benchmarks/bench_dv_probe.py                  # everything, writes results
    python benchmarks/bench_dv_probe.py --stage folds    # only the cached probe folds
    python benchmarks/bench_dv_probe.py --which xstest --quick

Results: ``benchmarks/results/dv_probe.md`` and ``dv_probe.json``. The functions
(``xstest_pools``, ``high_stakes_pool``, ``dv_option_scores``, ``measure``) are
meant to be reused by ``reproduce_paper.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reproduce_paper as rp  # noqa: E402

log = logging.getLogger("bench_dv_probe")

ALPHA = 0.3
DELTA = 0.1


# ------------------------------------------------------------------ DV options
@dataclass(frozen=True)
class DVOption:
    """One DV probe: which features, which model."""

    name: str
    kind: str = "ridge"  # make_dv_probe kind
    features: str = "activations+probe"  # or "activations", "probe"
    probe_weight: float = 10.0
    feature_set: str = "logit,gini"  # columns of the probe features
    text: str = ""


def feature_columns(p: np.ndarray, feature_set: str) -> np.ndarray:
    """Probe features: ``logit,gini`` is :func:`skctd.probes.probe_features`."""
    from skctd.probes import probe_features

    if feature_set == "logit,gini":
        return probe_features(p)
    q = np.clip(p, 1e-6, 1 - 1e-6)
    logit = np.log(q) - np.log1p(-q)
    if feature_set == "logit,abslogit":
        return np.column_stack([logit, np.abs(logit)])
    if feature_set == "logit,entropy":
        ent = -(q * np.log(q) + (1 - q) * np.log1p(-q))
        return np.column_stack([logit, ent])
    raise ValueError(feature_set)


OPTIONS = {
    o.name: o
    for o in (
        DVOption("paper: ridge on activations", features="activations",
                 text="StandardScaler + RidgeCV on the activations (the paper's DV probe)"),
        DVOption("ridge on probe features only", features="probe",
                 text="RidgeCV on [logit p, 4p(1-p)] alone"),
        DVOption("ridge, activations + probe features, weight 1", probe_weight=1.0,
                 text="the two probe features appended, penalised like the activations"),
        DVOption("ridge, activations + [logit, |logit|], weight 10", feature_set="logit,abslogit",
                 text="probe features logit and |logit| (the issue's pair), weight 10"),
        DVOption("ridge, activations + [logit, entropy], weight 10", feature_set="logit,entropy",
                 text="probe features logit and binary entropy, weight 10"),
        DVOption("ridge, activations + probe features, weight 10", probe_weight=10.0,
                 text="[logit p, 4p(1-p)] scaled x10 (penalty / 100)"),
        DVOption("ridge, activations + probe features, weight 100", probe_weight=100.0,
                 text="[logit p, 4p(1-p)] scaled x100 (penalty / 10^4)"),
        DVOption("boosting, 32 PCs + probe features", kind="boosting",
                 text="HistGradientBoostingRegressor on 32 PCs of the activations + the two probe features"),
    )
}


def fit_predict_dv(opt: DVOption, Z_tr, p_tr, v_tr, Z_te, p_te, seed: int = 0) -> np.ndarray:
    """Fit one DV option on training rows (probe features from ``p_tr``) and
    predict the test rows (probe features from ``p_te``)."""
    from skctd.probes import make_dv_probe

    if opt.features == "activations":
        X_tr, X_te, k = Z_tr, Z_te, 0
    elif opt.features == "probe":
        X_tr, X_te = feature_columns(p_tr, opt.feature_set), feature_columns(p_te, opt.feature_set)
        k = 0
    else:
        F_tr, F_te = feature_columns(p_tr, opt.feature_set), feature_columns(p_te, opt.feature_set)
        X_tr, X_te, k = np.hstack([Z_tr, F_tr]), np.hstack([Z_te, F_te]), F_tr.shape[1]
    model = make_dv_probe(opt.kind, n_probe_features=k, probe_weight=opt.probe_weight,
                          random_state=seed)
    model.fit(X_tr, v_tr)
    return model.predict(X_te)


# ------------------------------------------------------------------ expert scores
def calibrate_expert(method: str | None, e_fit, y_fit, e_apply, cv_seed: int = 0, folds: int = 5):
    """(out-of-fold calibrated scores of the fitting rows, calibrated scores of the
    other rows) -- identity for ``method=None``."""
    if method is None:
        return e_fit.copy(), e_apply.copy()
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from skctd.recalibration import ScoreCalibrator

    cal = ScoreCalibrator(method)
    cv = StratifiedKFold(folds, shuffle=True, random_state=cv_seed)
    oof = cross_val_predict(cal, e_fit[:, None], y_fit, cv=cv, method="predict_proba")[:, 1]
    full = cal.fit(e_fit[:, None], y_fit).predict_proba(e_apply[:, None])[:, 1]
    return oof, full


# ------------------------------------------------------------------ the pools
@dataclass
class Pool:
    """One evaluated pool: labels, probe and expert scores of held-out rows, and a
    function giving the DV signal of an option (and the expert treatment)."""

    name: str
    y: np.ndarray
    p: np.ndarray
    e_raw: np.ndarray
    groups: np.ndarray
    dv: callable = None  # (option, expert_calibration) -> (d, e_used)
    info: dict = field(default_factory=dict)


def xstest_folds(data_dir: Path, cache: Path, inner_folds: int) -> dict:
    """Cross-fitted probe scores of XSTest and the inner out-of-fold scores.

    The outer folds are those of ``reproduce_paper.py`` (5 stratified, shuffled,
    seed 0). ``p`` (n,): row i scored by the probe fitted on the other 4 outer
    folds. ``p_inner`` (5, n): for outer fold k, ``inner_folds``-fold out-of-fold
    scores of the rows of the other folds (NaN on fold k). Cached under
    ``<cache>/stages/xs_probe_folds<inner>_<probe recipe>.npz``.
    """
    import joblib

    path = cache / "stages" / f"xs_probe_folds{inner_folds}_{joblib.hash(rp.make_probe())[:8]}.npz"

    def compute():
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        y = rp.load_split(data_dir, "xstest").label
        Z = rp.features(data_dir, cache, "xstest")
        n = len(y)
        folds = np.empty(n, dtype=int)
        p = np.empty(n)
        p_inner = np.full((rp.N_FOLDS, n), np.nan)
        outer = StratifiedKFold(rp.N_FOLDS, shuffle=True, random_state=rp.CV_SEED)
        for k, (tr, te) in enumerate(outer.split(Z, y)):
            folds[te] = k
            probe = rp.make_probe().fit(Z[tr], y[tr])
            p[te] = probe.predict_proba(Z[te])[:, 1]
            inner = StratifiedKFold(inner_folds, shuffle=True, random_state=rp.CV_SEED)
            p_inner[k, tr] = cross_val_predict(
                rp.make_probe(), Z[tr], y[tr], cv=inner, method="predict_proba"
            )[:, 1]
            log.info("xstest probe fold %d/%d (inner %d) done", k + 1, rp.N_FOLDS, inner_folds)
        return {"p": p, "p_inner": p_inner, "folds": folds}

    return rp._cached_npz(path, compute, refit=False)


def xstest_pools(data_dir: Path, cache: Path, inner_folds: int = 5) -> list[Pool]:
    """One pool per XSTest refusal expert (rows with a null verdict dropped)."""
    from skctd import delegation_value

    b = rp.load_split(data_dir, "xstest")
    y_all, Z_all = b.label, rp.features(data_dir, cache, "xstest")
    pf = xstest_folds(data_dir, cache, inner_folds)
    pools = []
    for name in rp.XSTEST_EXPERTS:
        raw = [r.get(f"refused_{name}") for r in b.records]
        keep = np.array([v is not None for v in raw])
        e_all = np.array([np.nan if v is None else float(v) for v in raw])

        def dv(opt, expert_calibration=None, e_all=e_all, keep=keep):
            d = np.full(len(y_all), np.nan)
            e_used = np.full(len(y_all), np.nan)
            for k in range(rp.N_FOLDS):
                te = (pf["folds"] == k) & keep
                tr = (pf["folds"] != k) & keep
                p_in = pf["p_inner"][k, tr]
                e_tr, e_te = calibrate_expert(expert_calibration, e_all[tr], y_all[tr], e_all[te])
                v = delegation_value(y_all[tr], p_in, e_tr)
                d[te] = fit_predict_dv(opt, Z_all[tr], p_in, v, Z_all[te], pf["p"][te])
                e_used[te] = e_te
            return d[keep], e_used[keep]

        pools.append(
            Pool(
                name=f"xstest_{name}", y=y_all[keep], p=pf["p"][keep], e_raw=e_all[keep],
                groups=b.group[keep], dv=dv,
                info={"dropped": int((~keep).sum()), "inner_folds": inner_folds},
            )
        )
    return pools


def high_stakes_pool(data_dir: Path, cache: Path) -> Pool | None:
    """High-stakes: probe on train, DV on dev (judge), evaluation on test."""
    from skctd import delegation_value

    dev_judge = rp._stage_path(cache, "judge_hs_dev")
    if not dev_judge.is_file():
        log.warning("high-stakes skipped: %s is not cached yet (the judge stage runs in "
                    "reproduce_paper.py --stages-only)", dev_judge)
        return None
    import joblib

    tr, dev, te = (rp.load_split(data_dir, k) for k in ("hs_train", "hs_dev", "hs_test"))
    Z_tr, Z_dev, Z_te = (rp.features(data_dir, cache, k) for k in ("hs_train", "hs_dev", "hs_test"))
    e_dev, e_te = np.load(dev_judge), np.load(rp._stage_path(cache, "judge_hs_test"))
    path = cache / "stages" / f"hs_probe_{joblib.hash(rp.make_probe())[:8]}.npz"

    def compute():
        probe = rp.make_probe().fit(Z_tr, tr.label)
        return {"p_dev": probe.predict_proba(Z_dev)[:, 1], "p_test": probe.predict_proba(Z_te)[:, 1],
                "C": np.asarray(float(probe[-1].best_params_["C"]))}

    s = rp._cached_npz(path, compute, refit=False)
    p_dev, p_te = s["p_dev"], s["p_test"]

    def dv(opt, expert_calibration=None):
        e_fit, e_used = calibrate_expert(expert_calibration, e_dev, dev.label, e_te)
        v = delegation_value(dev.label, p_dev, e_fit)
        return fit_predict_dv(opt, Z_dev, p_dev, v, Z_te, p_te), e_used

    return Pool(name="high_stakes", y=te.label, p=p_te, e_raw=e_te, groups=te.group, dv=dv,
                info={"probe_C": float(s["C"]), "dv_rows": int(len(dev.label))})


# ------------------------------------------------------------------ measurements
def measure(pool: Pool, d: np.ndarray, e: np.ndarray, *, n_splits: int, combine: str = "replace",
            performance_risk: str = "accuracy", claims: bool = False, seed: int = 0) -> dict:
    """Every number of one (pool, DV signal, expert scores, cascade setting)."""
    from scipy.stats import spearmanr

    from skctd import delegation_value, uncertainty_signal
    from skctd.evaluation import budget_sweep, dv_ranking_curve

    y, p = pool.y, pool.p
    v = delegation_value(y, p, e)
    u = uncertainty_signal(p, np.sort(p))
    ranking = dv_ranking_curve(v, {"dv": d, "unc": u})
    keep = ranking.fractions <= 0.5
    out = {
        "spearman_dv": float(spearmanr(d, v).statistic),
        "spearman_unc": float(spearmanr(u, v).statistic),
        "topk_v_dv": float(ranking.curves["dv"][keep].mean()),
        "topk_v_unc": float(ranking.curves["unc"][keep].mean()),
        "topk_v_oracle": float(ranking.curves["oracle"][keep].mean()),
        "mean_v": float(v.mean()),
        "share_v_positive": float(np.mean(v > 0)),
        "expert_accuracy": float(np.mean((e >= 0.5) == (y == 1))),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sw = budget_sweep(
            y, p, e, d, alphas=[ALPHA], delta=DELTA, n_repeats=n_splits,
            methods=("ctd", "unc_calibrated", "probe_only", "expert_only"), batch_sizes=[128],
            combine=combine, performance_risk=performance_risk, random_state=seed,
        )
    for metric in ("auroc", "accuracy"):
        _, g, se = sw.difference("ctd", "probe_only", metric)
        out[f"ctd_gain_{metric}"], out[f"ctd_gain_{metric}_se"] = float(g[0]), float(se[0])
        _, g, se = sw.difference("unc_calibrated", "probe_only", metric)
        out[f"unc_gain_{metric}"], out[f"unc_gain_{metric}_se"] = float(g[0]), float(se[0])
    out["ctd_rate"] = float(sw.curve("ctd", "delegation_rate")[1][0])
    out["probe_auroc"] = float(sw.curve("probe_only", "auroc")[1][0])
    out["probe_accuracy"] = float(sw.curve("probe_only", "accuracy")[1][0])
    out["expert_only_auroc"] = float(sw.curve("expert_only", "auroc")[1][0])
    out["expert_only_accuracy"] = float(sw.curve("expert_only", "accuracy")[1][0])
    if combine == "auto":
        out["auto_average_share"] = float(sw.averaged["ctd"].mean())
    if claims:
        from skctd.evaluation import evaluate_scores

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ev = evaluate_scores(
                y, p, e, d, alphas=np.linspace(0.05, 0.95, 19), alpha=ALPHA, delta=DELTA,
                batch_sizes=[128], n_splits=100, n_repeats=20, combine=combine,
                performance_risk=performance_risk, random_state=seed,
            )
        for key in ("ctd_ge_probe_only", "ctd_ge_unc_calibrated", "dv_ranking_above_uncertainty"):
            out[f"claim_{key}"] = bool(ev.claims[key]["holds"])
            out[f"claim_{key}_detail"] = ev.claims[key]["detail"]
    return out


#: the DV options compared in the cascade settings and the expert recalibration
MAIN_OPTIONS = (
    "paper: ridge on activations",
    "ridge, activations + probe features, weight 10",
    "boosting, 32 PCs + probe features",
)


def run(pools: list[Pool], args) -> dict:
    results: dict = {"settings": {"alpha": ALPHA, "delta": DELTA, "n_splits": args.n_splits}, "pools": {}}
    sections = set(args.sections)
    for pool in pools:
        t0 = time.perf_counter()
        res: dict = {"info": pool.info, "n": int(pool.y.size), "options": {}, "expert": {}, "cascade": {}}
        signals = {}
        # 1. DV options (raw expert scores, the paper's cascade: replace, accuracy)
        for name, opt in OPTIONS.items():
            if (args.quick and opt.kind == "boosting") or (
                "options" not in sections and name not in MAIN_OPTIONS
            ):
                continue
            d, e = pool.dv(opt)
            signals[name] = (d, e)
            res["options"][name] = measure(pool, d, e, n_splits=args.n_splits, claims=True)
            log.info("%s | %s: %s", pool.name, name,
                     {k: round(v, 4) for k, v in res["options"][name].items() if isinstance(v, float)})
        # 2. cascade settings (combine x final pick) for the paper's and two new DV probes
        for name in MAIN_OPTIONS:
            if name not in signals or "cascade" not in sections:
                continue
            d, e = signals[name]
            for combine in ("replace", "average", "auto"):
                for risk in ("accuracy", "auroc"):
                    res["cascade"][f"{name} | combine={combine} | pick={risk}"] = measure(
                        pool, d, e, n_splits=args.n_splits, combine=combine, performance_risk=risk,
                        claims=combine == "auto" and risk == "accuracy")
        # 3. expert-score recalibration
        for name in MAIN_OPTIONS[:2] if "expert" in sections else ():
            for method in ("sigmoid", "isotonic"):
                d, e = pool.dv(OPTIONS[name], method)
                for combine in ("replace", "auto"):
                    for risk in ("accuracy", "auroc"):
                        res["expert"][
                            f"{name} | expert={method} | combine={combine} | pick={risk}"
                        ] = measure(pool, d, e, n_splits=args.n_splits, combine=combine,
                                    performance_risk=risk, claims=risk == "accuracy")
        res["seconds"] = time.perf_counter() - t0
        key = pool.name if pool.info.get("inner_folds", 5) == 5 else (
            f"{pool.name} (inner {pool.info['inner_folds']} folds)")
        results["pools"][key] = res
        log.info("%s done in %.0f s", pool.name, res["seconds"])
    return results


# ------------------------------------------------------------------ the report
def _pm(x: float, se: float) -> str:
    """A gain in points with its standard error."""
    return f"{100 * x:+.2f} ± {100 * se:.2f}"


def _yes(flag) -> str:
    return "-" if flag is None else ("yes" if flag else "no")


def _md(text: str) -> str:
    """A table cell: escape the pipes of names such as ``[logit, |logit|]``."""
    return text.replace("|", "\\|")


def _key_cells(key: str) -> list[str]:
    """``"<DV option> | combine=replace | pick=auroc"`` as separate cells."""
    return [_md(part) for part in key.split(" | ")]


def _row_cells(r: dict) -> list[str]:
    return [
        f"{r['spearman_dv']:.3f} ({r['spearman_unc']:.3f})",
        f"{r['topk_v_dv']:+.3f} ({r['topk_v_unc']:+.3f})",
        _pm(r["ctd_gain_auroc"], r["ctd_gain_auroc_se"]),
        _pm(r["ctd_gain_accuracy"], r["ctd_gain_accuracy_se"]),
        f"{r['ctd_rate']:.3f}",
        _yes(r.get("claim_ctd_ge_probe_only")),
        _yes(r.get("claim_dv_ranking_above_uncertainty")),
    ]


_HEAD = (
    "| {first} | Spearman(d, v) (uncertainty) | top-k mean v, k/N <= 0.5: DV (uncertainty) "
    "| CTD AUROC gain (pts) | CTD accuracy gain (pts) | CTD rate | never below probe | "
    "DV ranking above unc. |\n|{rule}---|---|---|---|---|---|---|\n"
)


def summary_rows(results: dict, cascade_key: str | None = None) -> list[list[str]]:
    """One row per pool: the paper's DV probe next to the default one (and boosting).

    ``cascade_key``: a suffix like ``"combine=replace | pick=auroc"`` to read the
    cascade-settings section instead of the options (replace, pick by accuracy).
    """
    rows = []
    names = MAIN_OPTIONS
    for pool, res in results["pools"].items():
        cells = [pool]
        for name in names:
            r = (res["options"].get(name) if cascade_key is None
                 else res["cascade"].get(f"{name} | {cascade_key}"))
            if r is None:
                cells += ["-"] * 3
                continue
            claim = r.get("claim_dv_ranking_above_uncertainty")
            cells += [
                f"{r['spearman_dv']:.2f}" + ("" if claim is None else (" *" if claim else "")),
                f"{100 * r['ctd_gain_auroc']:+.1f}",
                f"{100 * r['ctd_gain_accuracy']:+.1f}",
            ]
        first = next(iter(res["options"].values()))
        cells.insert(1, f"{first['spearman_unc']:.2f}")
        rows.append(cells)
    return rows


#: the skctd defaults: this DV probe, combine="auto", final pick by accuracy, raw
#: expert scores (``expert_calibration=None``)
DEFAULT_KEY = "ridge, activations + probe features, weight 10 | combine=auto | pick=accuracy"


def targets_section(results: dict) -> str:
    """The issue-16 targets, met or missed, with the skctd defaults."""
    pools = results["pools"]

    def get(pool, key=DEFAULT_KEY):
        res = pools.get(pool)
        return None if res is None else res["cascade"].get(key)

    lines = ["\n## Targets (issue 16), skctd defaults\n\n",
             "Defaults: DV probe `ridge, activations + probe features, weight 10`, "
             "`combine=\"auto\"`, final pick by accuracy, raw expert scores.\n\n",
             "| target | measured | met |\n|---|---|---|\n"]
    g = get("xstest_gpt4")
    if g is not None:
        sp = g["spearman_dv"]
        lines.append(f"| Spearman(d, v) >= 0.6, XSTest GPT-4 | {sp:.3f} | {_yes(sp >= 0.6)} |\n")
        gain = 100 * g["ctd_gain_auroc"]
        measured = _pm(g["ctd_gain_auroc"], g["ctd_gain_auroc_se"])
        lines.append(
            f"| CTD AUROC gain >= +3.5 pts, XSTest GPT-4 | {measured} | "
            f"{_yes(gain >= 3.5)} |\n"
        )
    h = get("high_stakes")
    if h is not None:
        sp = h["spearman_dv"]
        lines.append(
            f"| Spearman(d, v) >= 0.5, high-stakes SmolLM2 judge | {sp:.3f} | "
            f"{_yes(sp >= 0.5)} |\n"
        )
    xs = [p for p in pools if p.startswith("xstest_") and "inner" not in p]
    above = [p for p in xs if get(p) and get(p).get("claim_dv_ranking_above_uncertainty")]
    if xs:
        lines.append(
            f"| DV ranking above uncertainty for >= 4 of 5 XSTest experts | "
            f"{len(above)} of {len(xs)} ({', '.join(above)}) | {_yes(len(above) >= 4)} |\n"
        )
    every = [p for p in pools if "inner" not in p and get(p)]
    ok = [p for p in every if get(p).get("claim_ctd_ge_probe_only")]
    if every:
        lines.append(
            f"| never below probe-only beyond noise, every expert | {len(ok)} of "
            f"{len(every)} | {_yes(len(ok) == len(every))} |\n"
        )
    lines.append(
        "\nThe choice of these defaults, the best measured settings and why targets are "
        "missed: the user guide's delegation value page "
        "(`docs/user_guide/delegation_value.rst`, section 'Measured on the shared data').\n"
    )
    return "".join(lines)


def write_markdown(results: dict, path: Path) -> None:
    """``dv_probe.md``: the tables of every pool measured so far."""
    st = results["settings"]
    md = [
        "# DV probe options, measured (issue 16)\n\n",
        "Generated by `python benchmarks/bench_dv_probe.py` (see its docstring for the data, "
        "the cross-fitting and the expert recalibration). Every number is measured on rows "
        "that neither the safety probe nor the DV probe saw. Spearman(d, v) and the top-k "
        "mean delegation value are on the whole held-out pool (in brackets: the same for the "
        "probe's uncertainty signal). The CTD gains over probe-only are means over "
        f"{st['n_splits']} random 50/50 calibration/evaluation splits at alpha = {st['alpha']}, "
        f"delta = {st['delta']} (Pareto LTT, 100 thresholds), ± the standard error of the "
        "paired per-split differences, in AUROC / accuracy points; 'CTD rate' is the mean "
        "realised delegation rate. The two claim columns are "
        "`skctd.evaluation.check_claims` over 20 splits and 19 budgets 0.05-0.95 "
        "(a difference counts beyond max(0.005, 2 SE)).\n",
    ]
    pools = results["pools"]
    md.append(targets_section(results))
    md.append(
        "\n## Summary\n\nSpearman(d, v) of each DV probe (a `*` where "
        "`check_claims` finds the DV ranking above uncertainty), and the CTD gains over "
        "probe-only in points (AUROC, accuracy), raw expert scores, combine = replace, "
        "final pick by accuracy:\n\n| pool | Spearman of uncertainty | "
        + " | ".join(f"{n}: Spearman | AUROC | acc" for n in MAIN_OPTIONS)
        + " |\n|" + "---|" * (2 + 3 * len(MAIN_OPTIONS)) + "\n"
    )
    for cells in summary_rows(results):
        md.append("| " + " | ".join(cells) + " |\n")
    md.append("\nThe same, final pick by AUROC (`performance_risk=\"auroc\"`):\n\n")
    md.append(
        "| pool | Spearman of uncertainty | "
        + " | ".join(f"{n}: Spearman | AUROC | acc" for n in MAIN_OPTIONS)
        + " |\n|" + "---|" * (2 + 3 * len(MAIN_OPTIONS)) + "\n"
    )
    for cells in summary_rows(results, "combine=replace | pick=auroc"):
        md.append("| " + " | ".join(cells) + " |\n")
    md.append("\n## 1. DV options (raw expert scores; combine = replace, final pick by accuracy)\n")
    for name, res in pools.items():
        info = res["info"]
        extra = ", ".join(f"{k} {v}" for k, v in info.items())
        md.append(f"\n### {name} ({res['n']} rows; {extra})\n\n")
        any_row = next(iter(res["options"].values()))
        md.append(
            f"Probe only: AUROC {any_row['probe_auroc']:.4f}, accuracy "
            f"{any_row['probe_accuracy']:.4f}; expert only: AUROC "
            f"{any_row['expert_only_auroc']:.4f}, accuracy {any_row['expert_only_accuracy']:.4f}; "
            f"mean v {any_row['mean_v']:+.4f}; Unc. calibrated gain: AUROC "
            f"{_pm(any_row['unc_gain_auroc'], any_row['unc_gain_auroc_se'])}, accuracy "
            f"{_pm(any_row['unc_gain_accuracy'], any_row['unc_gain_accuracy_se'])}.\n\n"
        )
        md.append(_HEAD.format(first="DV option", rule="---|"))
        for opt, r in res["options"].items():
            md.append(f"| {_md(opt)} | " + " | ".join(_row_cells(r)) + " |\n")
    md.append("\n## 2. Cascade settings: combine rule x final pick (raw expert scores)\n")
    for name, res in pools.items():
        if not res["cascade"]:
            continue
        md.append(f"\n### {name}\n\n")
        md.append(_HEAD.format(first="DV probe | combine | final pick", rule="---|---|---|"))
        for key, r in res["cascade"].items():
            md.append("| " + " | ".join(_key_cells(key) + _row_cells(r)) + " |\n")
    md.append("\n## 3. Expert-score recalibration (Platt = sigmoid, isotonic)\n")
    for name, res in pools.items():
        if not res["expert"]:
            continue
        raw = res["options"].get("ridge, activations + probe features, weight 10")
        md.append(f"\n### {name}\n\n")
        if raw is not None:
            md.append(
                f"Raw expert: accuracy {raw['expert_accuracy']:.4f} on the pool, mean v "
                f"{raw['mean_v']:+.4f}, share v > 0 {raw['share_v_positive']:.3f}.\n\n"
            )
        md.append(
            "| DV probe | expert scores | combine | final pick | expert accuracy (pool) | mean v "
            "| share v > 0 | Spearman(d, v) (uncertainty) | top-k mean v: DV (uncertainty) "
            "| CTD AUROC gain (pts) | CTD accuracy gain (pts) | CTD rate | never below probe "
            "| DV ranking above unc. |\n|" + "---|" * 14 + "\n"
        )
        for key, r in res["expert"].items():
            md.append(
                "| " + " | ".join(_key_cells(key)) + f" | {r['expert_accuracy']:.4f} | "
                f"{r['mean_v']:+.4f} | {r['share_v_positive']:.3f} | "
                + " | ".join(_row_cells(r)) + " |\n"
            )
    path.write_text("".join(md), encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=rp.DEFAULT_DATA)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=rp.DEFAULT_OUT)
    parser.add_argument("--stage", choices=("folds", "all"), default="all")
    parser.add_argument("--which", choices=("all", "xstest", "high_stakes"), default="all")
    parser.add_argument("--inner-folds", type=int, nargs="+", default=[5])
    parser.add_argument("--n-splits", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="skip the boosting option")
    parser.add_argument("--sections", nargs="*", default=["options", "cascade", "expert"],
                        choices=("options", "cascade", "expert"),
                        help="what to measure (the main DV options are always measured)")
    parser.add_argument("--markdown-only", action="store_true",
                        help="rewrite dv_probe.md from dv_probe.json and stop")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from skctd.cli import default_cache_dir

    cache = (args.cache_dir or default_cache_dir()).expanduser().resolve()
    data_dir = args.data_dir.resolve()
    if args.stage == "folds":
        for k in args.inner_folds:
            xstest_folds(data_dir, cache, k)
        return 0
    out_json = args.out / "dv_probe.json"
    results = json.loads(out_json.read_text()) if out_json.is_file() else {"pools": {}}
    if args.markdown_only:
        write_markdown(results, args.out / "dv_probe.md")
        return 0
    pools = []
    if args.which in ("all", "xstest"):
        pools += xstest_pools(data_dir, cache, args.inner_folds[0])
    if args.which in ("all", "high_stakes"):
        hs = high_stakes_pool(data_dir, cache)
        if hs is not None:
            pools.append(hs)
    new = run(pools, args)
    results["settings"] = new["settings"]
    results["pools"].update(new["pools"])
    from skctd.utils import to_jsonable

    args.out.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(to_jsonable(results), indent=1))
    write_markdown(results, args.out / "dv_probe.md")
    log.info("wrote %s and dv_probe.md", out_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

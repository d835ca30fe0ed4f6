"""One call from cached arrays to the paper's evaluation, and a report on disk.

:func:`evaluate_cascade` runs the whole protocol of :mod:`skctd.evaluation` on the
scores of a test pool (budget sweep of every method, guarantee validation over
random splits, group analysis, DV ranking curve, binary vs continuous DV, one
calibration's diagnostics) and checks the paper's qualitative claims on the
numbers it measured. :meth:`CascadeEvaluation.write` renders ``report.md`` (tables
and embedded PNG figures), ``results.json`` and the figures into a folder. This is
what ``skctd run`` and ``skctd demo`` write; ``benchmarks/reproduce_paper.py``
uses it on the real data sets.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.utils import check_random_state

from skctd.calibration import CalibrationResult, calibrate_threshold, min_test_size
from skctd.delegation import delegation_value, uncertainty_signal
from skctd.evaluation import (
    DEFAULT_ALPHAS,
    METHOD_LABELS,
    BinaryContinuousResult,
    GroupResult,
    GuaranteeResult,
    RankingCurveResult,
    SweepResult,
    binary_vs_continuous,
    budget_sweep,
    calibration_masks,
    dv_ranking_curve,
    group_analysis,
    validate_guarantee,
)
from skctd.utils import to_jsonable
from skctd.utils._optional import import_optional

__all__ = ["CascadeEvaluation", "evaluate_cascade", "check_claims", "CLAIMS"]

#: The paper's qualitative claims checked by :func:`evaluate_cascade`.
CLAIMS = {
    "ctd_ge_unc_calibrated": "CTD >= Unc. calibrated at every budget (AUROC and accuracy)",
    "ctd_ge_probe_only": "CTD never below probe-only (no harmful over-delegation)",
    "topk_degrades_past_capacity": (
        "Top-k methods degrade past the effective delegation capacity"
    ),
    "budget_only_violation_near_delta": "Budget-only LTT violation rate ~ delta",
    "pareto_violation_le_delta": "Pareto LTT violation rate <= delta",
    "dv_ranking_above_uncertainty": "DV ranking above uncertainty ranking",
}


def _scores_1d(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}.")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return a


@dataclass(repr=False, eq=False)
class CascadeEvaluation:
    """Everything :func:`evaluate_cascade` measured.

    Attributes
    ----------
    sweep : SweepResult
        Budget sweep of every method (Figures 3-4 of the paper).
    guarantee : GuaranteeResult
        Realised delegation rates over random splits at ``alpha`` (Appendix D).
    groups : GroupResult or None
        Group analysis at ``alpha`` (Table 1); None without groups.
    ranking : RankingCurveResult
        Mean delegation value of the top-k evaluation rows by DV, by uncertainty,
        random and oracle (Figure 5).
    binary : BinaryContinuousResult or None
        DV probes on the binary vs continuous target (Appendix A); None without
        ``dv_binary_scores``.
    calibration : CalibrationResult
        One CTD calibration at ``alpha`` on the calibration half (diagnostics).
    reference : dict
        Sizes, probe-only and expert-only AUROC / accuracy on the evaluation half,
        effective delegation capacity, the smallest calibration size that can
        certify anything at ``alpha``, ``delta``.
    claims : dict
        Claim key (see :data:`CLAIMS`) -> ``{"claim", "holds", "detail"}``.
    settings : dict
        The parameters of the evaluation.
    """

    sweep: SweepResult
    guarantee: GuaranteeResult
    groups: GroupResult | None
    ranking: RankingCurveResult
    binary: BinaryContinuousResult | None
    calibration: CalibrationResult
    reference: dict
    claims: dict
    settings: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        held = sum(bool(c["holds"]) for c in self.claims.values())
        return (
            f"CascadeEvaluation(n_calibration={self.sweep.n_calibration}, "
            f"n_evaluation={self.sweep.n_evaluation}, claims_holding={held}/"
            f"{len(self.claims)})"
        )

    def to_dict(self) -> dict:
        """JSON-serialisable dict of every number (non-finite -> ``None``)."""
        return to_jsonable(
            {
                "settings": self.settings,
                "reference": self.reference,
                "claims": self.claims,
                "budget_sweep": self.sweep.table,
                "guarantee": {
                    "alpha": self.guarantee.alpha,
                    "delta": self.guarantee.delta,
                    "n_splits": self.guarantee.n_splits,
                    "violation_rate": self.guarantee.violation_rate,
                    "violation_se": self.guarantee.violation_se,
                    "n_uncertified": self.guarantee.n_uncertified,
                    "n_never_delegate": self.guarantee.n_never_delegate,
                    "mean_rate": {k: float(v.mean()) for k, v in self.guarantee.rates.items()},
                    "rates": self.guarantee.rates,
                },
                "groups": None if self.groups is None else self.groups.table,
                "ranking": self.ranking.table,
                "binary_vs_continuous": None if self.binary is None else self.binary.table,
                "calibration": {
                    "alpha": self.settings.get("alpha"),
                    "threshold": self.calibration.threshold,
                    "n_certified": int(np.sum(self.calibration.certified)),
                    "n_thresholds": int(self.calibration.thresholds.size),
                    "n_test": int(self.calibration.test_indices.size),
                },
            }
        )

    def summary(self) -> str:
        """A few lines for a terminal."""
        r = self.reference
        lines = [
            f"test pool: {r['n_calibration']} calibration + {r['n_evaluation']} "
            f"evaluation rows; effective delegation capacity {r['effective_capacity']:.3f}",
            f"probe only: AUROC {r['probe_auroc']:.4f}, accuracy {r['probe_accuracy']:.4f}; "
            f"expert only: AUROC {r['expert_auroc']:.4f}, accuracy {r['expert_accuracy']:.4f}",
            self.guarantee.summary(),
            "paper claims:",
        ]
        for c in self.claims.values():
            lines.append(f"  [{'holds' if c['holds'] else 'FAILS'}] {c['claim']}: {c['detail']}")
        return "\n".join(lines)

    # ---------------------------------------------------------------------------------
    # rendering
    # ---------------------------------------------------------------------------------
    def write(
        self,
        out_dir: str | Path,
        *,
        title: str = "skctd report",
        intro: str = "",
        settings: Mapping[str, Any] | None = None,
        extra_sections: Mapping[str, str] | None = None,
        figures: bool = True,
        dpi: int = 100,
    ) -> Path:
        """Write ``report.md``, ``results.json`` and the PNG figures.

        Parameters
        ----------
        out_dir : str or Path
            Folder (created when missing).
        title : str
            First heading of the report.
        intro : str
            Markdown put under the title (what was run, on which data).
        settings : mapping, optional
            Extra settings (models, files, timings) listed in the report and
            stored in ``results.json`` under ``"run"``.
        extra_sections : mapping of str to str, optional
            Heading -> markdown, appended before the settings.
        figures : bool, default=True
            Draw the PNG figures (needs matplotlib, the ``plot`` extra); without
            matplotlib the report has the tables only and says so.
        dpi : int, default=100

        Returns
        -------
        path : Path
            The path of ``report.md``.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        run = to_jsonable(dict(settings or {}))
        pngs: dict[str, str] = {}
        note = ""
        if figures:
            try:
                pngs = self._figures(out, dpi=dpi)
            except ImportError as exc:
                note = f"_Figures skipped: {exc}_\n"
        md = _render_markdown(self, title, intro, run, extra_sections or {}, pngs, note)
        path = out / "report.md"
        path.write_text(md, encoding="utf-8")
        payload = self.to_dict()
        payload["run"] = run
        (out / "results.json").write_text(
            json.dumps(payload, indent=1, allow_nan=False), encoding="utf-8"
        )
        return path

    def _figures(self, out: Path, *, dpi: int) -> dict[str, str]:
        import_optional("matplotlib", extra="plot", purpose="the report's figures")
        import matplotlib

        backend = matplotlib.get_backend().lower()
        if "inline" not in backend and "agg" not in backend:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from skctd.plotting import (
            BudgetCurveDisplay,
            DVRankingDisplay,
            GroupTableDisplay,
            GuaranteeDisplay,
            ThresholdSelectionDisplay,
        )

        files: dict[str, str] = {}

        def save(fig, name):
            fig.tight_layout()
            fig.savefig(out / name, dpi=dpi)
            plt.close(fig)
            files[name.removesuffix(".png")] = name

        fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
        for ax, metric in zip(axes, ("auroc", "accuracy", "delegation_rate"), strict=True):
            BudgetCurveDisplay.from_result(
                self.sweep, metric=metric, ax=ax, legend=metric == "auroc"
            )
        axes[2].plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle=":")
        save(fig, "budget_curves.png")

        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        GuaranteeDisplay.from_result(self.guarantee, ax=ax)
        save(fig, "guarantee.png")

        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        DVRankingDisplay.from_result(self.ranking, ax=ax)
        save(fig, "dv_ranking.png")

        disp = ThresholdSelectionDisplay.from_result(self.calibration)
        save(disp.figure_, "calibration.png")

        if self.groups is not None:
            n = len(self.groups.table["group"])
            fig, ax = plt.subplots(figsize=(9, 1.0 + 0.45 * (n + 1)))
            GroupTableDisplay.from_result(self.groups, ax=ax)
            save(fig, "groups.png")
        return files


# --------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------
def evaluate_cascade(
    y: Any,
    probe_scores: Any,
    expert_scores: Any,
    dv_scores: Any,
    *,
    groups: Any = None,
    dv_binary_scores: Any = None,
    alphas: Any = None,
    delta: float = 0.1,
    alpha: float = 0.2,
    batch_sizes: Any = (32, 64, 128),
    n_splits: int = 500,
    n_thresholds: int = 100,
    calibration_mask: Any = None,
    calibration_size: float = 0.5,
    tolerance: float = 0.005,
    random_state: Any = 0,
) -> CascadeEvaluation:
    """Run the paper's evaluation protocol on a test pool and check its claims.

    The pool is split once into a calibration and an evaluation half
    (``calibration_mask`` or a random ``calibration_size`` share); the budget sweep,
    the group analysis, the ranking curve and the calibration diagnostics use that
    split; the guarantee validation draws ``n_splits`` fresh random splits of the
    whole pool.

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels of the test pool.
    probe_scores, expert_scores : array-like of shape (n,)
        ``P(y = 1 | x)`` of the probe and the expert.
    dv_scores : array-like of shape (n,)
        DV-probe predictions (trained on the continuous delegation value).
    groups : array-like of shape (n,), optional
        Group labels (e.g. source data set) for the group analysis.
    dv_binary_scores : array-like of shape (n,), optional
        Predictions of a DV probe trained on the binary delegation value
        (Appendix A).
    alphas : array-like of float, optional
        Budgets of the sweep; default 20 levels in [0.05, 0.95].
    delta : float, default=0.1
    alpha : float, default=0.2
        The single budget of the group analysis, the guarantee validation and
        the calibration diagnostics.
    batch_sizes : sequence of int, default=(32, 64, 128)
        Batch sizes of the top-k baselines.
    n_splits : int, default=500
        Random splits of the guarantee validation.
    n_thresholds : int, default=100
    calibration_mask : array-like of bool, optional
        Rows of the calibration half; default a random ``calibration_size`` share.
    calibration_size : float, default=0.5
    tolerance : float, default=0.005
        Differences of AUROC / accuracy smaller than this count as ties when the
        claims are checked.
    random_state : int, RandomState instance or None, default=0

    Returns
    -------
    evaluation : CascadeEvaluation

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.report import evaluate_cascade
    >>> rng = np.random.default_rng(0)
    >>> n = 1200
    >>> y = rng.integers(0, 2, n)
    >>> probe = np.clip(0.5 + (2 * y - 1) * rng.normal(0.1, 0.3, n), 0, 1)
    >>> expert = np.clip(0.5 + (2 * y - 1) * rng.normal(0.3, 0.2, n), 0, 1)
    >>> v = np.where(y == 1, expert - probe, probe - expert)
    >>> dv = v + rng.normal(0, 0.3, n)
    >>> ev = evaluate_cascade(y, probe, expert, dv, alphas=[0.1, 0.3, 0.5],
    ...                       n_splits=50, alpha=0.3)
    >>> ev.reference["n_calibration"], ev.reference["n_evaluation"]
    (600, 600)
    >>> ev.claims["ctd_ge_probe_only"]["holds"]
    True
    """
    y = np.asarray(y)
    p = _scores_1d(probe_scores, "probe_scores")
    e = _scores_1d(expert_scores, "expert_scores")
    dv = _scores_1d(dv_scores, "dv_scores")
    n = y.shape[0]
    for name, a in (("probe_scores", p), ("expert_scores", e), ("dv_scores", dv)):
        if a.shape[0] != n:
            raise ValueError(f"{name} has {a.shape[0]} rows but y has {n}.")
    alphas = DEFAULT_ALPHAS if alphas is None else np.asarray(alphas, dtype=float)
    rng = check_random_state(random_state)
    cal = calibration_masks(
        n,
        calibration_mask=calibration_mask,
        calibration_size=calibration_size,
        random_state=rng,
    )[0]
    seed = int(rng.randint(np.iinfo(np.int32).max))
    common = dict(delta=delta, n_thresholds=n_thresholds, random_state=seed)

    sweep = budget_sweep(
        y, p, e, dv, calibration_mask=cal, alphas=alphas, batch_sizes=batch_sizes,
        **common,
    )
    guarantee = validate_guarantee(
        y, p, e, dv, alpha=alpha, n_splits=n_splits,
        calibration_size=float(cal.mean()), **common,
    )
    group_res = None
    if groups is not None:
        g = np.asarray(groups).astype(str)
        if g.shape != (n,):
            raise ValueError(f"groups must have shape ({n},), got {g.shape}.")
        group_res = group_analysis(
            y, p, e, dv, g, alpha=alpha, batch_size=max(batch_sizes),
            calibration_mask=cal, **common,
        )
    ev_idx = np.flatnonzero(~cal)
    u = uncertainty_signal(p, np.sort(p[cal]))
    v = delegation_value(y, p, e)
    ranking = dv_ranking_curve(
        v[ev_idx], {"DV probe": dv[ev_idx], "Uncertainty": u[ev_idx]},
        random_state=seed,
    )
    binary = None
    if dv_binary_scores is not None:
        db = _scores_1d(dv_binary_scores, "dv_binary_scores")
        binary = binary_vs_continuous(
            y, p, e, db, dv, batch_size=max(batch_sizes), calibration_mask=cal,
            alphas=alphas, **common,
        )
    cal_idx = np.flatnonzero(cal)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # reported in the tables
        calibration = calibrate_threshold(
            dv[cal_idx], y[cal_idx], p[cal_idx], e[cal_idx], alpha=alpha,
            delta=delta, n_thresholds=n_thresholds, random_state=seed,
        )

    y_ev, p_ev, e_ev = y[ev_idx], p[ev_idx], e[ev_idx]
    reference = {
        "n": int(n),
        "n_calibration": int(cal.sum()),
        "n_evaluation": int(ev_idx.size),
        "positive_rate": float(np.mean(y == 1)),
        "probe_auroc": _auroc(y_ev, p_ev),
        "probe_accuracy": float(np.mean((p_ev >= 0.5) == (y_ev == 1))),
        "expert_auroc": _auroc(y_ev, e_ev),
        "expert_accuracy": float(np.mean((e_ev >= 0.5) == (y_ev == 1))),
        "effective_capacity": sweep.effective_capacity,
        "mean_v": float(v[ev_idx].mean()),
        "min_calibration_size": int(
            math.ceil(min_test_size(alpha, delta) / (1 - 0.3))
        ),
    }
    settings = {
        "alphas": alphas,
        "alpha": float(alpha),
        "delta": float(delta),
        "batch_sizes": tuple(int(b) for b in batch_sizes),
        "n_splits": int(n_splits),
        "n_thresholds": int(n_thresholds),
        "tolerance": float(tolerance),
        "random_state": random_state if isinstance(random_state, int) else None,
    }
    result = CascadeEvaluation(
        sweep=sweep, guarantee=guarantee, groups=group_res, ranking=ranking,
        binary=binary, calibration=calibration, reference=reference, claims={},
        settings=settings,
    )
    result.claims = check_claims(result, tolerance=tolerance)
    return result


def _auroc(y: np.ndarray, s: np.ndarray) -> float:
    if np.unique(y).size < 2:
        return float("nan")
    return float(roc_auc_score(y, s))


# --------------------------------------------------------------------------------------
# claims
# --------------------------------------------------------------------------------------
def _claim(key: str, holds: bool, detail: str) -> dict:
    return {"claim": CLAIMS[key], "holds": bool(holds), "detail": detail}


def _never_below(
    sw: SweepResult, baseline: str, tolerance: float, *, with_mean: bool
) -> tuple[bool, str]:
    """Is CTD within ``tolerance`` of ``baseline`` or above it at every budget?"""
    parts, ok = [], True
    for metric in ("auroc", "accuracy"):
        a, c, _ = sw.curve("ctd", metric)
        gap = c - sw.curve(baseline, metric)[1]
        worst = int(np.argmin(gap))
        below = int(np.sum(gap < -tolerance))
        ok &= below == 0
        text = (
            f"{metric}: below at {below}/{a.size} budgets, worst {gap[worst]:+.4f} "
            f"at alpha={a[worst]:.2f}"
        )
        parts.append(text + (f", mean gap {gap.mean():+.4f}" if with_mean else ""))
    return ok, "; ".join(parts)


def check_claims(ev: CascadeEvaluation, *, tolerance: float = 0.005) -> dict:
    """Check the paper's qualitative claims on measured numbers.

    Parameters
    ----------
    ev : CascadeEvaluation
    tolerance : float, default=0.005
        Differences of AUROC / accuracy below this are ties.

    Returns
    -------
    claims : dict
        Claim key -> ``{"claim", "holds", "detail"}``; the detail gives the
        numbers behind the verdict.
    """
    sw = ev.sweep
    out = {}

    # 1-2. CTD never below a baseline, budget by budget
    for key, baseline, with_mean in (
        ("ctd_ge_unc_calibrated", "unc_calibrated", True),
        ("ctd_ge_probe_only", "probe_only", False),
    ):
        ok, detail = _never_below(sw, baseline, tolerance, with_mean=with_mean)
        out[key] = _claim(key, ok, detail)

    # 3. top-k degrades past the effective capacity
    cap = sw.effective_capacity
    parts, ok = [], True
    for m in ("dv_topk", "unc_topk"):
        a, acc, _ = sw.curve(m, "accuracy")
        peak = int(np.argmax(acc))
        drop = float(acc[peak] - acc[-1])
        ok &= drop > tolerance
        parts.append(
            f"{METHOD_LABELS[m]} accuracy peaks at {acc[peak]:.4f} (alpha={a[peak]:.2f}) "
            f"and ends at {acc[-1]:.4f} (alpha={a[-1]:.2f}), drop {drop:.4f}"
        )
    a, acc, _ = sw.curve("ctd", "accuracy")
    parts.append(
        f"capacity {cap:.3f}; CTD for contrast: peak {acc.max():.4f}, end {acc[-1]:.4f}"
    )
    out["topk_degrades_past_capacity"] = _claim(
        "topk_degrades_past_capacity", ok, "; ".join(parts)
    )

    # 4-5. the guarantee
    g = ev.guarantee
    vr, se = g.violation_rate, g.violation_se
    slack = {m: 2 * max(se[m], math.sqrt(g.delta * (1 - g.delta) / g.n_splits)) for m in vr}
    # "~ delta": valid (at most delta up to sampling error) and not vacuous (at
    # least delta / 2: budget-only LTT uses the budget it is given)
    b_ok = g.delta / 2 <= vr["budget_only"] <= g.delta + slack["budget_only"]
    out["budget_only_violation_near_delta"] = _claim(
        "budget_only_violation_near_delta",
        b_ok,
        f"{vr['budget_only']:.3f} (SE {se['budget_only']:.3f}) over {g.n_splits} splits "
        f"at alpha={g.alpha:g}, delta={g.delta:g} (holds within "
        f"[{g.delta / 2:.3f}, {g.delta + slack['budget_only']:.3f}]); mean realised "
        f"rate {g.rates['budget_only'].mean():.4f}",
    )
    out["pareto_violation_le_delta"] = _claim(
        "pareto_violation_le_delta",
        vr["pareto"] <= g.delta + slack["pareto"],
        f"{vr['pareto']:.3f} (SE {se['pareto']:.3f}); mean realised rate "
        f"{g.rates['pareto'].mean():.4f}; never delegating in "
        f"{g.n_never_delegate.get('pareto', 0)} splits (nothing certified in "
        f"{g.n_uncertified['pareto']})",
    )

    # 6. DV ranking above uncertainty
    r = ev.ranking
    dvc, unc = r.curves["DV probe"], r.curves["Uncertainty"]
    keep = r.fractions <= 0.5
    frac_above = float(np.mean(dvc[keep] >= unc[keep] - 1e-12))
    out["dv_ranking_above_uncertainty"] = _claim(
        "dv_ranking_above_uncertainty",
        frac_above >= 0.9 and dvc[keep].mean() > unc[keep].mean(),
        f"DV >= uncertainty at {frac_above:.0%} of the fractions k/N <= 0.5; mean v of "
        f"the selected: DV {dvc[keep].mean():+.4f}, uncertainty {unc[keep].mean():+.4f}, "
        f"random {r.curves['random'][keep].mean():+.4f}",
    )
    return out


# --------------------------------------------------------------------------------------
# markdown
# --------------------------------------------------------------------------------------
def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    try:
        f = float(x)
    except (TypeError, ValueError):
        return str(x).replace("|", "\\|")
    if math.isnan(f):
        return "-"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    return f"{f:.{digits}f}"


def _table(header: list[str], rows: list[list[Any]], digits: int = 4) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(c, digits) for c in row) + " |")
    return "\n".join(lines) + "\n"


def _sweep_table(sw: SweepResult, metric: str) -> str:
    methods = [m for m in sw.methods if m not in ("probe_only", "expert_only")]
    b = max(sw.batch_sizes)
    cols = {m: sw.curve(m, metric)[1] for m in methods}
    po = sw.curve("probe_only", metric)[1] if "probe_only" in sw.methods else None
    eo = sw.curve("expert_only", metric)[1] if "expert_only" in sw.methods else None
    header = ["alpha"] + [
        METHOD_LABELS[m] + (f" (B={b})" if m.endswith("topk") else "") for m in methods
    ]
    rows = [[f"{a:.2f}"] + [cols[m][i] for m in methods] for i, a in enumerate(sw.alphas)]
    text = _table(header, rows)
    if po is not None and eo is not None:
        text += f"\nProbe only: {_fmt(po[0])}; expert only: {_fmt(eo[0])}.\n"
    return text


def _topk_batch_table(sw: SweepResult) -> str:
    t = sw.table
    header = ["method", "B"] + [f"a={a:.2f}" for a in sw.alphas[::3]]
    rows = []
    for m in ("dv_topk", "unc_topk", "oracle_topk"):
        if m not in sw.methods:
            continue
        for b in sw.batch_sizes:
            sel = (t["method"] == m) & (t["batch_size"] == b)
            rows.append([METHOD_LABELS[m], b, *t["accuracy"][sel][::3]])
    return _table(header, rows)


def _render_markdown(ev, title, intro, run, extra, pngs, note) -> str:
    r, g, sw = ev.reference, ev.guarantee, ev.sweep
    s = ev.settings
    md = [f"# {title}\n"]
    if intro:
        md.append(intro.strip() + "\n")
    md.append(
        "How to read this report: see the skctd user guide, page \"Reading the report "
        "of skctd run\". A model predicts \"unsafe\" when its score is >= 0.5; the "
        "delegation value v = P_expert(y|x) - P_probe(y|x) of the true label.\n"
    )
    if note:
        md.append(note)

    md.append("## Summary\n")
    md.append(
        _table(
            ["quantity", "value"],
            [
                ["test pool (calibration + evaluation)",
                 f"{r['n_calibration']} + {r['n_evaluation']}"],
                ["share of label 1", r["positive_rate"]],
                ["probe only: AUROC / accuracy",
                 f"{_fmt(r['probe_auroc'])} / {_fmt(r['probe_accuracy'])}"],
                ["expert only: AUROC / accuracy",
                 f"{_fmt(r['expert_auroc'])} / {_fmt(r['expert_accuracy'])}"],
                ["effective delegation capacity (share with v > 0)",
                 r["effective_capacity"]],
                ["mean delegation value v", r["mean_v"]],
                [f"guarantee at alpha={g.alpha:g}, delta={g.delta:g}: violation rate "
                 "budget-only / Pareto",
                 f"{_fmt(g.violation_rate['budget_only'], 3)} / "
                 f"{_fmt(g.violation_rate['pareto'], 3)} over {g.n_splits} splits"],
                [f"smallest calibration half that can certify alpha={g.alpha:g}",
                 r["min_calibration_size"]],
            ],
        )
    )
    md.append("\n## The paper's claims on these numbers\n")
    md.append(
        _table(
            ["claim", "holds", "numbers"],
            [[c["claim"], c["holds"], c["detail"]] for c in ev.claims.values()],
        )
    )
    md.append(
        f"\nDifferences below {s['tolerance']:g} count as ties. One calibration/"
        "evaluation split: the budget-curve claims carry the noise of that split.\n"
    )

    md.append("\n## Budget curves\n")
    if "budget_curves" in pngs:
        md.append(f"![budget curves]({pngs['budget_curves']})\n")
    md.append(
        "Left to right: AUROC, accuracy and realised delegation rate against the "
        "budget alpha on the evaluation half. CTD and Unc. calibrated are calibrated "
        f"on the calibration half (Pareto LTT, delta={s['delta']:g}); the top-k "
        "baselines delegate the floor(alpha B) highest-signal rows of each batch of "
        "B evaluation rows (no guarantee, they need the batch).\n"
    )
    md.append("\n### Accuracy\n")
    md.append(_sweep_table(sw, "accuracy"))
    md.append("\n### AUROC\n")
    md.append(_sweep_table(sw, "auroc"))
    md.append("\n### Realised delegation rate\n")
    md.append(_sweep_table(sw, "delegation_rate"))
    md.append("\n### Top-k accuracy by batch size\n")
    md.append(_topk_batch_table(sw))

    md.append(f"\n## Budget guarantee (alpha={g.alpha:g}, delta={g.delta:g})\n")
    if "guarantee" in pngs:
        md.append(f"![guarantee]({pngs['guarantee']})\n")
    md.append(
        _table(
            ["LTT variant", "violation rate", "SE", "mean realised rate",
             "max realised rate", "never-delegate splits", "uncertified splits"],
            [
                [name, g.violation_rate[k], g.violation_se[k], g.rates[k].mean(),
                 g.rates[k].max(), g.n_never_delegate.get(k, 0), g.n_uncertified[k]]
                for k, name in (("budget_only", "budget-only"), ("pareto", "Pareto"))
            ],
        )
    )
    md.append(
        f"\nShare of {g.n_splits} random calibration/evaluation splits whose realised "
        "delegation rate on the evaluation part exceeds alpha. The guarantee is on the "
        "calibration draw: at most about delta of such draws may violate the budget, "
        "if the rows are exchangeable. A never-delegate split chose threshold "
        "+inf: either nothing was certified (the last column: the calibration part "
        "was too small) or never delegating had the best accuracy among the "
        "certified thresholds (the expert does not help enough).\n"
    )

    if ev.groups is not None:
        gt = ev.groups.table
        md.append(f"\n## Groups at alpha={ev.groups.alpha:g}\n")
        if "groups" in pngs:
            md.append(f"![groups]({pngs['groups']})\n")
        ms = list(ev.groups.methods)
        header = ["group", "n", "mean v (all)"]
        for m in ms:
            header += [f"mean v ({METHOD_LABELS.get(m, m)})", f"rate ({METHOD_LABELS.get(m, m)})"]
        rows = []
        for i, name in enumerate(gt["group"]):
            row = [name, gt["n"][i], gt["mean_v_all"][i]]
            for m in ms:
                row += [gt[f"mean_v_{m}"][i], gt[f"rate_{m}"][i]]
            rows.append(row)
        md.append(_table(header, rows))

    md.append("\n## Ranking by delegation value\n")
    if "dv_ranking" in pngs:
        md.append(f"![DV ranking]({pngs['dv_ranking']})\n")
    rk = ev.ranking
    idx = np.unique(np.searchsorted(rk.fractions, [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0]).clip(0, rk.fractions.size - 1))
    md.append(
        _table(
            ["k/N"] + list(rk.curves),
            [[f"{rk.fractions[i]:.2f}"] + [rk.curves[c][i] for c in rk.curves] for i in idx],
        )
    )
    md.append("\nMean delegation value of the top-k evaluation rows by each signal.\n")

    if ev.binary is not None:
        bt = ev.binary.table
        md.append("\n## Binary vs continuous delegation value (accuracy)\n")
        rows = [
            [METHOD_LABELS[m], f"{a:.2f}", b_, c_, d_]
            for m, a, b_, c_, d_ in zip(
                bt["method"], bt["alpha"], bt["accuracy_binary"],
                bt["accuracy_continuous"], bt["diff_accuracy"], strict=True,
            )
        ]
        md.append(_table(["method", "alpha", "binary DV", "continuous DV", "diff"], rows))

    cr = ev.calibration
    md.append(f"\n## One calibration at alpha={s['alpha']:g}\n")
    if "calibration" in pngs:
        md.append(f"![calibration]({pngs['calibration']})\n")
    md.append(
        f"Threshold {_fmt(cr.threshold)}; {int(np.sum(cr.certified))} of "
        f"{cr.thresholds.size} candidate thresholds certified on {cr.test_indices.size} "
        "test rows of the calibration half.\n"
    )

    for heading, body in extra.items():
        md.append(f"\n## {heading}\n")
        md.append(body.strip() + "\n")

    md.append("\n## Settings\n")
    rows = [[k, v] for k, v in {**{k: v for k, v in s.items() if k != "alphas"}, **run}.items()]
    rows.insert(0, ["alphas", ", ".join(f"{a:.2f}" for a in np.asarray(s["alphas"]))])
    md.append(_table(["setting", "value"], [[k, _compact(v)] for k, v in rows]))
    return "\n".join(md)


def _compact(v: Any) -> str:
    if isinstance(v, float):
        return _fmt(v)
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(to_jsonable(v))[:300]
    return str(v)

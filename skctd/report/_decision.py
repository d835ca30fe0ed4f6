"""The "Decision summary" that leads a report: is the expert worth calling here?

Built from a :class:`~skctd.evaluation.CascadeEvaluation` alone: the probe-only and
expert-only quality on the evaluation rows, the gain of CTD over probe-only at each
budget (paired over the calibration/evaluation splits when the evaluation has
several), the budget that buys (almost) the most for the fewest expert calls, and
what the calibration certifies. The verdict counts a gain only beyond the noise:
larger than the evaluation's ``tolerance`` and than ``n_se`` standard errors of the
paired per-split differences.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from skctd.evaluation import CascadeEvaluation

__all__ = ["CHANCE_AUROC", "decision_markdown", "decision_summary"]

#: below this evaluation AUROC an expert is called "near chance" in the summary
CHANCE_AUROC = 0.6

_SHOWN_ALPHAS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.95)


def _curve(sw: Any, method: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean of a metric per budget and its standard error over the splits (NaN
    when the sweep has none: one split, or a sweep that keeps only the std)."""
    _, mean, _ = sw.curve(method, metric)
    t = sw.table
    se_col = metric + "_se"
    if se_col in t:
        rows = (t["method"] == method) & (t["batch_size"] == 0)
        se = np.asarray(t[se_col][rows], dtype=float)
    else:
        se = np.full(np.shape(mean), np.nan)
    return np.asarray(mean, dtype=float), se


def _gain(sw: Any, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """CTD minus probe-only per budget: paired mean and its SE over the splits."""
    if hasattr(sw, "difference"):
        _, mean, se = sw.difference("ctd", "probe_only", metric)
        return np.asarray(mean, dtype=float), np.asarray(se, dtype=float)
    a, _ = _curve(sw, "ctd", metric)
    b, _ = _curve(sw, "probe_only", metric)
    return a - b, np.full(a.shape, np.nan)


def _f(x: Any) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def decision_summary(
    evaluation: CascadeEvaluation, *, chance_auroc: float = CHANCE_AUROC
) -> dict:
    """What a user needs to decide: is the expert worth calling, at which budget,
    what does it buy, what is guaranteed.

    A budget *pays* when CTD beats probe-only there beyond the noise in accuracy or
    in AUROC (the difference exceeds the evaluation's ``tolerance`` and ``n_se``
    standard errors of the paired per-split differences) without losing beyond the
    noise in the other metric. The recommended budget is the smallest paying one
    whose accuracy gain is within one standard error (at least ``tolerance``) of
    the best paying accuracy gain: nearly all of the gain for the fewest calls.

    Parameters
    ----------
    evaluation : CascadeEvaluation
        From :func:`skctd.evaluation.evaluate_cascade` or
        :func:`skctd.evaluation.evaluate_scores`.
    chance_auroc : float, default=0.6
        An expert whose evaluation AUROC is below this is called near chance.

    Returns
    -------
    summary : dict
        ``verdict`` (``"delegate"`` or ``"do_not_delegate"``), ``reason`` (a
        key: ``"gain"``, ``"expert_at_chance"``, ``"calibration_too_small"``,
        ``"no_gain"``), ``headline`` (one sentence), ``probe`` / ``expert``
        (AUROC and accuracy on the evaluation rows with their standard errors),
        ``expert_at_chance``, ``n_evaluation``, ``n_repeats``, ``budgets`` (one
        dict per budget: ``alpha``, ``delegation_rate``, ``accuracy``,
        ``gain_accuracy``, ``gain_accuracy_se``, ``auroc``, ``gain_auroc``,
        ``gain_auroc_se``, ``pays``, ``harms``), ``best`` (the recommended
        budget's dict, or None), ``harmful_alphas`` and ``guarantee`` (alpha,
        delta, the certified statements, the validated violation rate, the
        deployed threshold).

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.evaluation import evaluate_scores
    >>> from skctd.report import decision_summary
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 600)
    >>> probe = np.clip(0.5 + (2 * y - 1) * rng.normal(0.1, 0.3, 600), 0, 1)
    >>> expert = rng.uniform(size=600)  # an expert at chance
    >>> dv = rng.normal(size=600)       # and a DV probe that knows nothing
    >>> ev = evaluate_scores(y, probe, expert, dv, alphas=[0.2, 0.5], n_splits=20)
    >>> s = decision_summary(ev)
    >>> s["verdict"], s["reason"]
    ('do_not_delegate', 'expert_at_chance')
    """
    ev = evaluation
    sw, r, g, s = ev.sweep, ev.reference, ev.guarantee, ev.settings
    tol = float(s.get("tolerance", 0.005))
    n_se = float(s.get("n_se", 2.0))
    n_repeats = int(getattr(sw, "n_repeats", 1))
    alphas = np.asarray(sw.alphas, dtype=float)

    def quality(method: str) -> dict:
        auc, auc_se = _curve(sw, method, "auroc")
        acc, acc_se = _curve(sw, method, "accuracy")
        return {
            "auroc": _f(auc[0]), "auroc_se": _f(auc_se[0]),
            "accuracy": _f(acc[0]), "accuracy_se": _f(acc_se[0]),
        }

    probe, expert = quality("probe_only"), quality("expert_only")
    ctd_acc, _ = _curve(sw, "ctd", "accuracy")
    ctd_auc, _ = _curve(sw, "ctd", "auroc")
    rate, _ = _curve(sw, "ctd", "delegation_rate")
    gacc, gacc_se = _gain(sw, "accuracy")
    gauc, gauc_se = _gain(sw, "auroc")
    # a difference counts beyond max(tolerance, n_se * SE); with no SE, tolerance
    band_acc = np.fmax(tol, n_se * np.nan_to_num(gacc_se, nan=0.0))
    band_auc = np.fmax(tol, n_se * np.nan_to_num(gauc_se, nan=0.0))
    up_acc, up_auc = gacc > band_acc, gauc > band_auc
    down_acc, down_auc = gacc < -band_acc, gauc < -band_auc
    pays = (up_acc & ~down_auc) | (up_auc & ~down_acc)
    harms = down_acc | down_auc
    budgets = [
        {
            "alpha": float(a), "delegation_rate": _f(rate[i]),
            "accuracy": _f(ctd_acc[i]), "gain_accuracy": _f(gacc[i]),
            "gain_accuracy_se": _f(gacc_se[i]), "auroc": _f(ctd_auc[i]),
            "gain_auroc": _f(gauc[i]), "gain_auroc_se": _f(gauc_se[i]),
            "pays": bool(pays[i]), "harms": bool(harms[i]),
        }
        for i, a in enumerate(alphas)
    ]
    best = None
    if pays.any():
        idx = np.flatnonzero(pays)
        top = idx[np.argmax(gacc[idx])]
        near = gacc[idx] >= gacc[top] - max(tol, float(np.nan_to_num(gacc_se[top])))
        best = budgets[int(idx[near][0])]  # alphas are increasing

    e_auc = expert["auroc"]
    at_chance = e_auc is not None and e_auc < chance_auroc
    too_small = int(r["n_calibration"]) < int(r["min_calibration_size"])
    if best is not None:
        verdict, reason = "delegate", "gain"
    elif at_chance:
        verdict, reason = "do_not_delegate", "expert_at_chance"
    elif too_small:
        verdict, reason = "do_not_delegate", "calibration_too_small"
    else:
        verdict, reason = "do_not_delegate", "no_gain"

    cr = ev.calibration
    statements = [f"the cascade sends at most {g.alpha:.0%} of new rows to the expert"]
    holds = cr is not None
    if cr is not None:
        descriptions = getattr(cr, "risk_descriptions", {})
        for key in tuple(getattr(cr, "constraints", ("budget",)))[1:]:
            statements.append(descriptions.get(key, key))
        holds = bool(np.asarray(cr.certified)[cr.selected_index])
    guarantee = {
        "alpha": float(g.alpha),
        "delta": float(g.delta),
        "statements": statements,
        "holds": holds,
        "n_splits": int(g.n_splits),
        "violation_rate": float(g.violation_rate["pareto"]),
        "violation_rate_budget_only": float(g.violation_rate["budget_only"]),
        "threshold": None if cr is None else float(cr.threshold),
        "delegates": None if cr is None else bool(np.isfinite(cr.threshold)),
        "n_certified": None if cr is None else int(np.sum(cr.certified)),
    }
    summary = {
        "verdict": verdict,
        "reason": reason,
        "n_evaluation": int(r["n_evaluation"]),
        "n_repeats": n_repeats,
        "probe": probe,
        "expert": expert,
        "expert_at_chance": bool(at_chance),
        "chance_auroc": float(chance_auroc),
        "budgets": budgets,
        "best": best,
        "harmful_alphas": [b["alpha"] for b in budgets if b["harms"]],
        "guarantee": guarantee,
    }
    summary["headline"] = _headline(summary)
    return summary


# --------------------------------------------------------------------------------------
def _pts(x: float | None, se: float | None = None) -> str:
    """A difference of shares in points (x 100), signed, with its SE."""
    if x is None:
        return "-"
    text = f"{100 * x:+.1f}"
    if se is not None:
        text += f" (SE {100 * se:.1f})"
    return text


def _q(d: dict, metric: str) -> str:
    v, se = d[metric], d[metric + "_se"]
    if v is None:
        return "-"
    return f"{v:.3f}" + ("" if se is None else f" ± {se:.3f}")


def _headline(s: dict) -> str:
    e_auc, p_auc = s["expert"]["auroc"], s["probe"]["auroc"]
    b = s["best"]
    if s["verdict"] == "delegate":
        return (
            f"Yes: at budget alpha = {b['alpha']:.2f} the cascade calls the expert on "
            f"{b['delegation_rate']:.0%} of the rows and gains "
            f"{_pts(b['gain_accuracy'], b['gain_accuracy_se'])} accuracy points and "
            f"{_pts(b['gain_auroc'], b['gain_auroc_se'])} AUROC points over the "
            "probe alone."
        )
    if s["reason"] == "expert_at_chance":
        return (
            f"No: the expert is at chance on this data (AUROC {e_auc:.2f}, against "
            f"{p_auc:.2f} for the probe), so its verdicts add nothing the probe does "
            "not know and no budget buys accuracy; keep the probe alone (budget 0) "
            "or find a better expert."
        )
    if s["reason"] == "calibration_too_small":
        return (
            "No: the calibration rows are too few to certify any delegation at this "
            "budget, and no budget beats the probe alone beyond noise here; "
            "calibrate on more rows."
        )
    return (
        f"No: the expert is informative (AUROC {e_auc:.2f}) but no budget beats the "
        f"probe alone (AUROC {p_auc:.2f}) beyond noise: the expert is not right "
        "often enough where the probe is wrong, or the DV probe does not find "
        "those rows; keep the probe alone (budget 0)."
    )


def decision_markdown(evaluation: CascadeEvaluation, *, heading: str = "Decision summary") -> str:
    """The decision summary as a Markdown section (heading level 2).

    Parameters
    ----------
    evaluation : CascadeEvaluation
    heading : str, default="Decision summary"

    Returns
    -------
    markdown : str
    """
    s = decision_summary(evaluation)
    p, e, g = s["probe"], s["expert"], s["guarantee"]
    over = (
        f"mean ± SE over {s['n_repeats']} calibration/evaluation splits"
        if s["n_repeats"] > 1
        else "one calibration/evaluation split, no standard error: read with care"
    )
    md = [f"## {heading}\n"]
    md.append(f"**Is the expert worth calling on this data?** {s['headline']}\n")
    md.append(
        f"On the {s['n_evaluation']} evaluation rows ({over}):\n\n"
        "| | AUROC | accuracy |\n|---|---|---|\n"
        f"| probe only | {_q(p, 'auroc')} | {_q(p, 'accuracy')} |\n"
        f"| expert only | {_q(e, 'auroc')} | {_q(e, 'accuracy')} |\n"
    )
    shown = sorted(
        {int(np.argmin(np.abs(np.array([b["alpha"] for b in s["budgets"]]) - a)))
         for a in _SHOWN_ALPHAS}
        | ({s["budgets"].index(s["best"])} if s["best"] is not None else set())
    )
    rows = []
    for i in shown:
        b = s["budgets"][i]
        mark = " **(recommended)**" if b is s["best"] else ""
        verdict = "pays" if b["pays"] else ("loses" if b["harms"] else "no gain")
        rows.append(
            f"| {b['alpha']:.2f}{mark} | "
            f"{'-' if b['delegation_rate'] is None else format(b['delegation_rate'], '.0%')} | "
            f"{_pts(b['gain_accuracy'], b['gain_accuracy_se'])} | "
            f"{_pts(b['gain_auroc'], b['gain_auroc_se'])} | {verdict} |"
        )
    md.append(
        "\n**What each budget buys** (CTD minus probe only, in points; a gain "
        "counts beyond the noise band of the claims):\n\n"
        "| budget alpha | expert called on | accuracy gain | AUROC gain | |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    if s["harmful_alphas"]:
        beyond = (
            "beyond noise"
            if s["n_repeats"] > 1
            else "by more than the tolerance (one split: part of it may be noise)"
        )
        md.append(
            f"\nThe cascade is below the probe alone {beyond} at alpha = "
            + ", ".join(f"{a:.2f}" for a in s["harmful_alphas"])
            + ": do not deploy those budgets.\n"
        )
    deployed = ""
    if g["delegates"] is not None:
        deployed = (
            f" The calibrated cascade's threshold is {g['threshold']:.4g} "
            f"({g['n_certified']} candidate thresholds certified)."
            if g["delegates"]
            else " The calibrated cascade never delegates (threshold +inf): "
            + (
                "nothing was certified."
                if not g["n_certified"]
                else "no threshold that delegates was certified."
                if g["n_certified"] == 1  # the grid's +inf alone
                else "never delegating was the most accurate certified choice."
            )
        )
    again = ""
    best = s["best"]
    if best is not None and abs(best["alpha"] - g["alpha"]) > 1e-9:
        again = (
            f" To deploy the recommended budget, calibrate at alpha = "
            f"{best['alpha']:.2f} (`--alpha` of `skctd run`, `alpha=` of the cascade)."
        )
    if g["holds"]:
        certified = (
            f"With probability at least {1 - g['delta']:.0%} over the draw of the "
            "calibration rows, on new rows exchangeable with them (same source, "
            "same mix): " + "; ".join(g["statements"]) + "."
        )
    elif g["delegates"] is None:
        certified = "The cascade was not calibrated: it never delegates, no guarantee."
    else:
        certified = (
            "No guarantee holds: nothing was certified, not even never delegating "
            "(the probe alone does not meet every constraint on the calibration "
            "rows); the cascade falls back to the probe alone."
        )
    md.append(
        f"\n**What is guaranteed** (the cascade is calibrated at alpha = "
        f"{g['alpha']:g}, delta = {g['delta']:g}). "
        + certified
        + deployed
        + f" Checked here over {g['n_splits']} random calibration draws: the "
        f"realised rate exceeded alpha in {g['violation_rate']:.1%} of them (Pareto "
        f"LTT; budget-only LTT {g['violation_rate_budget_only']:.1%}), to compare "
        f"with delta = {g['delta']:g}. Accuracy and AUROC are measured, not "
        "guaranteed (details: section \"Certified guarantee\")." + again + "\n"
    )
    return "\n".join(md)

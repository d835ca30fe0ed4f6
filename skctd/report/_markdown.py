"""``report.md``: a CascadeEvaluation rendered as Markdown tables and figure links."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from skctd.evaluation import METHOD_LABELS, CascadeEvaluation, SweepResult
from skctd.report._decision import decision_markdown
from skctd.utils import to_jsonable

__all__ = ["render_markdown"]


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


def render_markdown(
    ev: CascadeEvaluation,
    *,
    title: str,
    intro: str = "",
    run: Mapping[str, Any] | None = None,
    extra_sections: Mapping[str, str] | None = None,
    figures: Mapping[str, str] | None = None,
    note: str = "",
) -> str:
    """The text of ``report.md``.

    Parameters
    ----------
    ev : CascadeEvaluation
    title : str
        First heading.
    intro : str, default=""
        Markdown put under the title.
    run : mapping, optional
        Settings of the run, listed with the evaluation's settings at the end.
    extra_sections : mapping of str to str, optional
        Heading -> markdown, appended before the settings.
    figures : mapping of str to str, optional
        Figure key (``"budget_curves"``, ``"guarantee"``, ``"dv_ranking"``,
        ``"calibration"``, ``"groups"``) -> file name, linked where it belongs.
    note : str, default=""
        A line put under the reading guide (e.g. why figures are missing).

    Returns
    -------
    markdown : str
    """
    run = dict(run or {})
    extra = dict(extra_sections or {})
    pngs = dict(figures or {})
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
    md.append(decision_markdown(ev))  # leads: what a user needs to decide

    md.append("\n## Summary\n")
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
    md.append(_guarantee_section(ev))
    md.append("\n## The paper's claims on these numbers\n")
    md.append(
        _table(
            ["claim", "holds", "numbers"],
            [[c["claim"], c["holds"], c["detail"]] for c in ev.claims.values()],
        )
    )
    n_rep = int(s.get("n_repeats", 1))
    if n_rep > 1:
        md.append(
            f"\nEvery comparison is a paired difference over {n_rep} random "
            "calibration/evaluation splits; it counts only beyond "
            f"max({s['tolerance']:g}, {s.get('n_se', 2.0):g} standard errors of the "
            "mean difference), smaller differences are ties.\n"
        )
    else:
        md.append(
            f"\nDifferences below {s['tolerance']:g} count as ties. One calibration/"
            "evaluation split: the budget-curve claims carry the noise of that "
            "split.\n"
        )

    md.append("\n## Budget curves\n")
    if "budget_curves" in pngs:
        md.append(f"![budget curves]({pngs['budget_curves']})\n")
    md.append(
        "Left to right: AUROC, accuracy and realised delegation rate against the "
        "budget alpha on the evaluation half. CTD and Unc. calibrated are calibrated "
        f"on the calibration half (Pareto LTT, delta={s['delta']:g}); the top-k "
        "baselines delegate the floor(alpha B) highest-signal rows of each batch of "
        "B evaluation rows (no guarantee, they need the batch)"
        + (", the evaluation stream shuffled first" if s.get("shuffle", False) else "")
        + (
            f". Each number is the mean over {n_rep} random splits; the bands in the "
            "figure are +-1.96 standard errors of that mean.\n"
            if n_rep > 1
            else ".\n"
        )
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
    if g.levels:
        md.append(_constraint_violation_table(g))

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
    md.append(
        "\nMean delegation value of the top-k evaluation rows by each signal"
        + (f", averaged over {rk.n_repeats} splits.\n" if rk.n_repeats > 1 else ".\n")
    )

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
    if cr is None:
        md.append(
            "The cascade was not calibrated (too few calibration rows): it never "
            "delegates.\n"
        )
    else:
        if "calibration" in pngs:
            md.append(f"![calibration]({pngs['calibration']})\n")
        md.append(
            f"Threshold {_fmt(cr.threshold)}; {int(np.sum(cr.certified))} of "
            f"{cr.thresholds.size} candidate thresholds certified on "
            f"{cr.test_indices.size} test rows of the calibration data.\n"
        )

    for heading, body in extra.items():
        md.append(f"\n## {heading}\n")
        md.append(body.strip() + "\n")

    md.append("\n## Settings\n")
    rows = [[k, v] for k, v in {**{k: v for k, v in s.items() if k != "alphas"}, **run}.items()]
    rows.insert(0, ["alphas", ", ".join(f"{a:.2f}" for a in np.asarray(s["alphas"]))])
    md.append(_table(["setting", "value"], [[k, _compact(v)] for k, v in rows]))
    return "\n".join(md)


def _guarantee_section(ev: CascadeEvaluation) -> str:
    """The certified guarantee of the saved cascade, and why it does not delegate."""
    cr = ev.calibration
    md = ["\n## Certified guarantee\n"]
    if cr is None:
        md.append("The cascade was not calibrated: it never delegates, no guarantee.\n")
        return "\n".join(md)
    sentence = cr.guarantee()
    if sentence:
        md.append(f"**{sentence}**\n")
    else:
        md.append(
            "**No guarantee holds**: no threshold was certified, not even never "
            "delegating (the probe alone does not meet every constraint on this "
            "calibration data). The cascade falls back to the probe alone.\n"
        )
    i = cr.selected_index
    rows = []
    for name in cr.constraints:
        what = (
            f"at most {cr.alpha:g} of inputs are sent to the expert"
            if name == "budget"
            else cr.risk_descriptions.get(name, name)
        )
        pvalues = cr.risk_pvalues.get(name, cr.pvalues)
        tested = cr.risks_test.get(name, cr.budget_risk_test)
        rows.append([name, cr.levels.get(name, cr.alpha), what, pvalues[i], tested[i]])
    md.append(
        _table(
            ["risk", "level", "certificate", "p-value (chosen)", "value on the test split"],
            rows,
        )
    )
    md.append(
        f"\nOne calibration on {cr.n_opt} + {cr.n_test} rows (optimisation + test "
        f"split), delta = {cr.delta:g}: every certified risk holds *together*, with "
        f"probability >= {1 - cr.delta:g} over the draw of the calibration data, if "
        "future inputs are exchangeable with it. A p-value of 0 at threshold +inf "
        "means the risk holds surely when nothing is delegated. See the user guide, "
        "page \"What is guaranteed\".\n"
    )
    if not cr.delegates:
        why = ", ".join(cr.blocked_by) or "-"
        text = (
            f"\n**The cascade does not delegate** (threshold +inf). Blocked by: "
            f"{why} (the risk whose p-value exceeded delta at the first threshold the "
            "testing sequence could not certify)."
        )
        if np.isfinite(cr.rows_needed):
            cal = math.ceil(cr.rows_needed * (cr.n_opt + cr.n_test) / max(cr.n_test, 1))
            text += (
                f" Rows needed: about {int(cr.rows_needed):,} test-split rows "
                f"(~{cal:,} calibration rows) would certify the most promising "
                "threshold, an estimate from the optimisation split's effect sizes."
            )
        elif np.isinf(cr.rows_needed):
            text += (
                " On the optimisation split no threshold that delegates looks within "
                "the constraints at any sample size: more calibration data is "
                "unlikely to help; the expert does not improve on the probe there."
            )
        md.append(text + "\n")
    return "\n".join(md)


def _constraint_violation_table(g) -> str:
    rows = []
    for k, label in (("budget_only", "budget-only"), ("pareto", "Pareto")):
        for name, level in g.levels.items():
            rows.append([
                label, f"{name} <= {level:g}", g.risk_violation_rate[k][name],
                g.risk_violation_se[k][name], float(np.nanmean(g.risk_values[k][name])),
            ])
        rows.append([label, "any of them or the budget", g.any_violation_rate[k],
                     g.any_violation_se[k], None])
    return (
        "\n### Constraints\n\n"
        + _table(["LTT variant", "constraint", "violation rate", "SE",
                  "mean realised value"], rows)
        + "\nShare of the splits whose chosen threshold was certified yet whose "
        "evaluation part exceeds the constraint's level (splits where nothing was "
        "certified carry no guarantee and are not counted). The realised value on a "
        "finite evaluation part is noisy: a threshold whose true risk sits at the "
        "level exceeds it on about half of the evaluation parts.\n"
    )


def _compact(v: Any) -> str:
    if isinstance(v, float):
        return _fmt(v)
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(to_jsonable(v))[:300]
    return str(v)

"""Write a CascadeEvaluation to a folder: ``report.md``, ``results.json``, figures."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from skctd.evaluation import CascadeEvaluation
from skctd.report._decision import decision_summary
from skctd.report._markdown import render_markdown
from skctd.utils import import_optional, redact, to_jsonable

__all__ = ["write_report"]


def write_report(
    evaluation: CascadeEvaluation,
    out_dir: str | Path,
    *,
    title: str = "skctd report",
    intro: str = "",
    settings: Mapping[str, Any] | None = None,
    extra_sections: Mapping[str, str] | None = None,
    figures: bool = True,
    dpi: int = 100,
) -> Path:
    """Write ``report.md``, ``results.json`` and the PNG figures of an evaluation.

    The figures are drawn on stand-alone matplotlib figures rendered by the Agg
    canvas: writing a report neither needs a display nor changes the matplotlib
    backend of the calling program.

    Parameters
    ----------
    evaluation : CascadeEvaluation
        From :func:`skctd.evaluation.evaluate_cascade` or
        :func:`skctd.evaluation.evaluate_scores`.
    out_dir : str or Path
        Folder (created when missing).
    title : str, default="skctd report"
        First heading of the report.
    intro : str, default=""
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

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from skctd.evaluation import evaluate_scores
    >>> from skctd.report import write_report
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 600)
    >>> probe = np.clip(0.5 + (2 * y - 1) * rng.normal(0.1, 0.3, 600), 0, 1)
    >>> expert = np.clip(0.5 + (2 * y - 1) * rng.normal(0.3, 0.2, 600), 0, 1)
    >>> dv = np.where(y == 1, expert - probe, probe - expert)
    >>> ev = evaluate_scores(y, probe, expert, dv, alphas=[0.2, 0.5], n_splits=20)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_report(ev, folder, title="My run", figures=False)
    ...     path.read_text().splitlines()[0]
    '# My run'
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = to_jsonable(dict(settings or {}))
    pngs: dict[str, str] = {}
    note = ""
    if figures:
        try:
            pngs = _write_figures(evaluation, out, dpi=dpi)
        except ImportError as exc:
            note = f"_Figures skipped: {exc}_\n"
    md = render_markdown(
        evaluation, title=title, intro=intro, run=run,
        extra_sections=extra_sections, figures=pngs, note=note,
    )
    path = out / "report.md"
    # no key, token or credential is ever written (skctd.utils.redact)
    path.write_text(redact(md), encoding="utf-8")
    payload = evaluation.to_dict()
    payload["decision"] = to_jsonable(decision_summary(evaluation))
    payload["run"] = run
    (out / "results.json").write_text(
        redact(json.dumps(payload, indent=1, allow_nan=False)), encoding="utf-8"
    )
    return path


def _write_figures(ev: CascadeEvaluation, out: Path, *, dpi: int) -> dict[str, str]:
    """Draw and save the report's figures; figure key -> file name."""
    import_optional("matplotlib", extra="plot", purpose="the report's figures")
    from matplotlib.figure import Figure

    from skctd.plotting import (
        BudgetCurveDisplay,
        DVRankingDisplay,
        GroupTableDisplay,
        GuaranteeDisplay,
        ThresholdSelectionDisplay,
    )

    files: dict[str, str] = {}

    def save(fig: Figure, name: str) -> None:
        # a Figure made without pyplot: savefig renders it with the Agg canvas,
        # and nothing is left registered in pyplot's figure manager
        fig.tight_layout()
        fig.savefig(out / name, dpi=dpi)
        files[name.removesuffix(".png")] = name

    fig = Figure(figsize=(16, 4.6))
    axes = fig.subplots(1, 3)
    for ax, metric in zip(axes, ("auroc", "accuracy", "delegation_rate"), strict=True):
        BudgetCurveDisplay.from_result(
            ev.sweep, metric=metric, ax=ax, legend=metric == "auroc"
        )
    save(fig, "budget_curves.png")

    fig = Figure(figsize=(6.4, 4.4))
    GuaranteeDisplay.from_result(ev.guarantee, ax=fig.subplots())
    save(fig, "guarantee.png")

    fig = Figure(figsize=(6.4, 4.4))
    DVRankingDisplay.from_result(ev.ranking, ax=fig.subplots())
    save(fig, "dv_ranking.png")

    if ev.calibration is not None:
        fig = Figure(figsize=(11, 4.2))
        ThresholdSelectionDisplay.from_result(ev.calibration, ax=fig.subplots(1, 2))
        save(fig, "calibration.png")

    if ev.groups is not None:
        n = len(ev.groups.table["group"])
        fig = Figure(figsize=(9, 1.0 + 0.45 * (n + 1)))
        GroupTableDisplay.from_result(ev.groups, ax=fig.subplots())
        save(fig, "groups.png")
    return files

"""GroupTableDisplay: the group-conditional table (the paper's Table 1) as a figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from skctd.evaluation import METHOD_LABELS, GroupResult
from skctd.plotting._base import Display

__all__ = ["GroupTableDisplay"]

_SHORT_LABELS = {"ctd": "CTD", "unc_topk": "Unc"}


class GroupTableDisplay(Display):
    """The group-conditional table (the paper's Table 1) as a figure.

    Mean-value cells are shaded from red (negative) through white to green
    (positive).

    Parameters
    ----------
    table : dict of str to array
        A :class:`~skctd.evaluation.GroupResult` table: ``group``, ``mean_v_all``
        and ``mean_v_<m>`` / ``rate_<m>`` for each method ``m``.
    methods : sequence of str
    alpha : float, optional
        Budget, shown in the default title.
    name : str, optional
        Title of the plot; default "Group-conditional delegation" (with the
        budget).

    Attributes
    ----------
    table_ : matplotlib Table
    cell_text_ : list of list of str
        The text of the cells (header row first).
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    skctd.evaluation.group_analysis : computes the data.

    Examples
    --------
    >>> from skctd.evaluation import group_table
    >>> from skctd.plotting import GroupTableDisplay
    >>> res = group_table([0.5, -0.5, 1.0, 0.0], ["a", "a", "b", "b"],
    ...                   {"ctd": [True, False, True, True]})
    >>> disp = GroupTableDisplay.from_result(res)
    >>> disp.cell_text_[1]
    ['a', '+0.000', '+0.500', '50.0%']
    """

    def __init__(
        self,
        table: Mapping[str, Any],
        methods: Sequence[str],
        *,
        alpha: float | None = None,
        name: str | None = None,
    ) -> None:
        self.table = table
        self.methods = methods
        self.alpha = alpha
        self.name = name

    def plot(
        self, ax: Any = None, *, name: str | None = None, **kwargs: Any
    ) -> GroupTableDisplay:
        """Draw the table.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; by default a new figure sized to the table.
        name : str, optional
            Title; default ``self.name``, else "Group-conditional delegation"
            (with the budget).
        **kwargs
            Passed to matplotlib's ``Axes.table`` (e.g. ``colWidths``,
            ``edges="horizontal"``, ``cellLoc="right"``).

        Returns
        -------
        display : GroupTableDisplay
        """
        t = self.table
        methods = list(self.methods)
        n_groups = len(t["group"])
        figsize = (2 + 1.6 * (1 + 2 * len(methods)), 0.5 * n_groups + 1.2)
        ax = self._prepare_axes(ax, figsize=figsize)
        cmap = self._pyplot().get_cmap("RdYlGn")
        names = [_SHORT_LABELS.get(m, METHOD_LABELS.get(m, m)) for m in methods]
        header = (
            ["Group", "Mean v: all"]
            + [f"Mean v: {nm}" for nm in names]
            + [f"Rate: {nm}" for nm in names]
        )
        value_cols = ["mean_v_all"] + [f"mean_v_{m}" for m in methods]
        values = np.array([t[c] for c in value_cols], dtype=float).T
        rates = np.array(
            [t[f"rate_{m}"] for m in methods], dtype=float
        ).reshape(len(methods), n_groups).T
        finite = np.isfinite(values)
        shade = cmap(0.5 + 0.5 * np.clip(np.where(finite, values, 0.0), -1, 1))
        rows, colours = [], []
        for i in range(n_groups):
            rows.append(
                [str(t["group"][i])]
                + [
                    f"{v:+.3f}" if ok else "n/a"
                    for v, ok in zip(values[i], finite[i], strict=True)
                ]
                + [f"{100 * r:.1f}%" for r in rates[i]]
            )
            colours.append(
                ["white"]
                + [
                    tuple(c) if ok else "white"
                    for c, ok in zip(shade[i], finite[i], strict=True)
                ]
                + ["white"] * len(methods)
            )
        ax.axis("off")
        table_kw = {"loc": "center", "cellLoc": "center", **kwargs}
        table = ax.table(
            cellText=rows, colLabels=header, cellColours=colours, **table_kw
        )
        table.auto_set_font_size(False)
        table.set_fontsize(9)
        table.scale(1, 1.4)
        for j in range(len(header)):
            table[0, j].set_text_props(weight="bold")
        default_title = "Group-conditional delegation"
        if self.alpha is not None:
            default_title += rf" at $\alpha$ = {self.alpha:g}"
        ax.set_title(self._title(name, default=default_title))
        self.table_ = table
        self.cell_text_ = [header] + rows
        return self

    @classmethod
    def from_result(
        cls,
        result: GroupResult,
        *,
        ax: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> GroupTableDisplay:
        """Plot a :class:`~skctd.evaluation.GroupResult`.

        Parameters
        ----------
        result : GroupResult
            From :func:`~skctd.evaluation.group_analysis` or
            :func:`~skctd.evaluation.group_table`.
        ax : matplotlib Axes, optional
        name : str, optional
            Title; default "Group-conditional delegation" (with the budget).
        **kwargs
            Passed to matplotlib's ``Axes.table``, see :meth:`plot`.

        Returns
        -------
        display : GroupTableDisplay
        """
        if not isinstance(result, GroupResult):
            raise TypeError(
                f"result must be a GroupResult from group_analysis, got {type(result)}."
            )
        disp = cls(result.table, result.methods, alpha=result.alpha, name=name)
        return disp.plot(ax=ax, **kwargs)

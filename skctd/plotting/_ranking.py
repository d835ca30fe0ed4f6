"""DVRankingDisplay: mean delegation value of the top-k by each signal (Figure 5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from skctd.evaluation import RankingCurveResult, dv_ranking_curve
from skctd.plotting._base import BLUE, GREEN, GREY, ORANGE, Display

__all__ = ["DVRankingDisplay"]

_REFERENCE_STYLE = {
    "random": {"color": GREY, "linestyle": "--", "label": "Random"},
    "oracle": {"color": GREEN, "linestyle": "-", "label": "Oracle (true v)"},
}
_SIGNAL_COLORS = [ORANGE, BLUE, "#9467bd", "#8c564b", "#e377c2"]


class DVRankingDisplay(Display):
    """Mean delegation value of the top-k rows by each signal, against k/N.

    Parameters
    ----------
    fractions : ndarray of shape (m,)
        Selection fractions k/N.
    curves : dict of str to ndarray of shape (m,)
        One curve per signal; ``"random"`` and ``"oracle"`` get reference styles.
    name : str, optional
        Title of the plot; default "Delegation-value ranking".

    Attributes
    ----------
    lines_ : dict of str to matplotlib Line2D
        The line of each curve.
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    skctd.evaluation.dv_ranking_curve : computes the data.

    Examples
    --------
    >>> from skctd.plotting import DVRankingDisplay
    >>> disp = DVRankingDisplay.from_predictions(
    ...     [1.0, -1.0, 0.5, 0.0], {"DV probe": [0.9, 0.1, 0.2, 0.8]})
    >>> sorted(disp.lines_)
    ['DV probe', 'oracle', 'random']
    """

    def __init__(
        self, fractions: Any, curves: Mapping[str, Any], *, name: str | None = None
    ) -> None:
        self.fractions = fractions
        self.curves = curves
        self.name = name

    def plot(
        self, ax: Any = None, *, name: str | None = None, **kwargs: Any
    ) -> DVRankingDisplay:
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; a new figure by default.
        name : str, optional
            Title; default ``self.name``, else "Delegation-value ranking".
        **kwargs
            Passed to matplotlib's ``plot`` for every curve, over its default
            style (e.g. ``linewidth=1``, ``marker="."``).

        Returns
        -------
        display : DVRankingDisplay
        """
        ax = self._prepare_axes(ax)
        x = np.asarray(self.fractions, dtype=float)
        self.lines_ = {}
        i = 0
        for signal, vals in self.curves.items():
            default = dict(_REFERENCE_STYLE.get(signal, {}))
            if not default:
                default = {
                    "color": _SIGNAL_COLORS[i % len(_SIGNAL_COLORS)],
                    "label": signal,
                }
                i += 1
            default["linewidth"] = 1.8
            (self.lines_[signal],) = ax.plot(
                x, np.asarray(vals, dtype=float), **self._style(default, kwargs, "line")
            )
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.set_xlabel("Selection fraction k/N")
        ax.set_ylabel("Mean v(x, y) of the top-k")
        ax.set_title(self._title(name, default="Delegation-value ranking"))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        return self

    @classmethod
    def from_result(
        cls,
        result: RankingCurveResult,
        *,
        ax: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> DVRankingDisplay:
        """Plot a :class:`~skctd.evaluation.RankingCurveResult`.

        Parameters
        ----------
        result : RankingCurveResult
            From :func:`~skctd.evaluation.dv_ranking_curve`.
        ax : matplotlib Axes, optional
        name : str, optional
            Title; default "Delegation-value ranking".
        **kwargs
            Matplotlib keyword arguments of every curve, see :meth:`plot`.

        Returns
        -------
        display : DVRankingDisplay
        """
        if not isinstance(result, RankingCurveResult):
            raise TypeError(
                "result must be a RankingCurveResult from dv_ranking_curve, got "
                f"{type(result)}."
            )
        return cls(result.fractions, result.curves, name=name).plot(ax=ax, **kwargs)

    @classmethod
    def from_predictions(
        cls,
        v: Any,
        signals: Mapping[str, Any],
        *,
        fractions: Any = None,
        n_permutations: int = 0,
        random_state: Any = 0,
        ax: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> DVRankingDisplay:
        """Compute :func:`~skctd.evaluation.dv_ranking_curve` and plot it.

        Parameters
        ----------
        v : array-like of shape (n,)
            True delegation values.
        signals : mapping of str to array-like of shape (n,)
            The signals to rank by (higher = delegate first).
        fractions, n_permutations, random_state
            As in :func:`~skctd.evaluation.dv_ranking_curve`.
        ax : matplotlib Axes, optional
        name : str, optional
            Title; default "Delegation-value ranking".
        **kwargs
            Matplotlib keyword arguments of every curve, see :meth:`plot`.

        Returns
        -------
        display : DVRankingDisplay
        """
        result = dv_ranking_curve(
            v,
            signals,
            fractions=fractions,
            n_permutations=n_permutations,
            random_state=random_state,
        )
        return cls.from_result(result, ax=ax, name=name, **kwargs)

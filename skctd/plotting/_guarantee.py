"""GuaranteeDisplay: realised delegation rates over random calibration splits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from skctd.evaluation import GuaranteeResult
from skctd.plotting._base import BLUE, ORANGE, Display

__all__ = ["GuaranteeDisplay"]

_VARIANT_STYLE = {
    "budget_only": ("Budget-only LTT", BLUE),
    "pareto": ("Pareto LTT", ORANGE),
}


class GuaranteeDisplay(Display):
    """Histogram of realised delegation rates over random calibration splits.

    The paper's Figure 11: one histogram per LTT variant and the budget ``alpha``
    as a vertical line; the legend gives the share of splits above ``alpha``.

    Parameters
    ----------
    rates : dict of str to ndarray
        Realised rates per split, for ``"budget_only"`` and/or ``"pareto"``.
    alpha, delta : float
        Budget (drawn as a vertical line) and confidence parameter.
    violation_rate : dict of str to float, optional
        Shown in the legend; default the share of ``rates`` above ``alpha``.
    name : str, optional
        Title of the plot; default names the number of splits, ``alpha`` and
        ``delta``.

    Attributes
    ----------
    patches_ : dict of str to list of matplotlib patches
        The bars of each variant's histogram.
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    skctd.evaluation.validate_guarantee : computes the data.

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.plotting import GuaranteeDisplay
    >>> rates = {"pareto": np.random.default_rng(0).normal(0.25, 0.03, 200)}
    >>> disp = GuaranteeDisplay(rates, alpha=0.3, delta=0.1).plot(bins=20)
    >>> disp.ax_.get_xlabel(), len(disp.patches_["pareto"])
    ('Realised delegation rate', 20)
    """

    def __init__(
        self,
        rates: Mapping[str, Any],
        *,
        alpha: float,
        delta: float,
        violation_rate: Mapping[str, float] | None = None,
        name: str | None = None,
    ) -> None:
        self.rates = rates
        self.alpha = alpha
        self.delta = delta
        self.violation_rate = violation_rate
        self.name = name

    def plot(
        self, ax: Any = None, *, name: str | None = None, bins: int = 30, **kwargs: Any
    ) -> GuaranteeDisplay:
        """Draw the histograms.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; a new figure by default.
        name : str, optional
            Title; default ``self.name``, else the number of splits, ``alpha`` and
            ``delta``.
        bins : int, default=30
            Number of bins, shared by the variants.
        **kwargs
            Passed to matplotlib's ``hist`` for every variant, over the default
            style (e.g. ``alpha=0.8``, ``edgecolor="black"``,
            ``histtype="step"``).

        Returns
        -------
        display : GuaranteeDisplay
        """
        ax = self._prepare_axes(ax)
        arrays = {k: np.asarray(v, dtype=float) for k, v in self.rates.items()}
        lo = min(float(a.min()) for a in arrays.values())
        hi = max(max(float(a.max()) for a in arrays.values()), float(self.alpha))
        edges = np.linspace(lo, hi + 1e-9, bins + 1)
        self.patches_ = {}
        for variant, a in arrays.items():
            label, color = _VARIANT_STYLE.get(variant, (str(variant), None))
            viol = float(np.mean(a > self.alpha))
            if self.violation_rate is not None and variant in self.violation_rate:
                viol = float(self.violation_rate[variant])
            default = {
                "alpha": 0.55,
                "color": color,
                "label": f"{label} (violations {100 * viol:.1f}%)",
            }
            _, _, patches = ax.hist(
                a, bins=edges, **self._style(default, kwargs, "patch")
            )
            self.patches_[variant] = patches
        ax.axvline(
            self.alpha,
            color="black",
            linestyle="--",
            label=rf"budget $\alpha$ = {self.alpha:g}",
        )
        ax.set_xlabel("Realised delegation rate")
        ax.set_ylabel("Number of splits")
        n = max(a.size for a in arrays.values())
        default_title = (
            rf"Realised rates over {n} splits ($\alpha$={self.alpha:g}, "
            rf"$\delta$={self.delta:g})"
        )
        ax.set_title(self._title(name, default=default_title))
        ax.legend(fontsize="small")
        return self

    @classmethod
    def from_result(
        cls,
        result: GuaranteeResult,
        *,
        ax: Any = None,
        name: str | None = None,
        bins: int = 30,
        **kwargs: Any,
    ) -> GuaranteeDisplay:
        """Plot a :class:`~skctd.evaluation.GuaranteeResult`.

        Parameters
        ----------
        result : GuaranteeResult
            From :func:`~skctd.evaluation.validate_guarantee`.
        ax : matplotlib Axes, optional
        name : str, optional
            Title; default names the number of splits, ``alpha`` and ``delta``.
        bins : int, default=30
        **kwargs
            Matplotlib keyword arguments of the histograms, see :meth:`plot`.

        Returns
        -------
        display : GuaranteeDisplay
        """
        if not isinstance(result, GuaranteeResult):
            raise TypeError(
                "result must be a GuaranteeResult from validate_guarantee, got "
                f"{type(result)}."
            )
        disp = cls(
            result.rates,
            alpha=result.alpha,
            delta=result.delta,
            violation_rate=result.violation_rate,
            name=name,
        )
        return disp.plot(ax=ax, bins=bins, **kwargs)

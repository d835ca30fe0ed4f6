"""MonitorDisplay: the running delegation rate, its confidence band and the martingale."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from skctd.plotting._base import BLUE, GREEN, GREY, ORANGE, Display

__all__ = ["MonitorDisplay"]


class MonitorDisplay(Display):
    """What a :class:`~skctd.DelegationMonitor` saw: rate, band, martingale, alarms.

    Two panels share the x-axis (stream rows):

    - left: the running delegation rate with its anytime-valid confidence band,
      the recent (exponentially weighted) rate, the alarm's lower bound, the
      budget ``alpha`` as a horizontal line;
    - right: the exchangeability test martingale on a log scale with the alarm
      threshold ``1 / level`` (the axis stops at ``10^4 / level``: the curve
      leaves the panel above it).

    Alarm times are vertical lines on both panels.

    Parameters
    ----------
    rate : mapping of str to array-like
        ``row``, ``estimate``, ``recent``, ``lower``, ``lower_running`` and
        ``upper`` of the delegation rate (a monitor's ``trace_["budget"]``).
    alpha : float
        The budget.
    level : float
        The monitors' false-alarm level (the martingale alarms at ``1 / level``).
    martingale : mapping of str to array-like, optional
        ``step`` (stream rows) and ``log_e`` (natural log of the test
        martingale), a monitor's ``trace_["exchangeability"]``.
    alarms : sequence of (str, int), optional
        ``(monitor name, stream row)`` of each alarm.
    name : str, optional
        Title of the figure.

    Attributes
    ----------
    ax_ : ndarray of two matplotlib Axes
    figure_ : matplotlib Figure
    band_ : matplotlib PolyCollection
        The confidence band of the running rate.
    rate_line_ : matplotlib Line2D
        The running rate.
    martingale_line_ : matplotlib Line2D or None
    alarm_lines_ : list of matplotlib Line2D

    See Also
    --------
    skctd.DelegationMonitor : Records the trace (``trace_size``).

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.plotting import MonitorDisplay
    >>> rows = np.arange(1, 1001)
    >>> rate = {"row": rows, "estimate": np.full(1000, 0.15), "recent": np.full(1000, 0.15),
    ...         "lower": np.full(1000, 0.12), "lower_running": np.full(1000, 0.12),
    ...         "upper": np.full(1000, 0.18)}
    >>> martingale = {"step": rows, "log_e": np.zeros(1000)}
    >>> disp = MonitorDisplay(rate, alpha=0.2, level=0.05, martingale=martingale,
    ...                       alarms=[("exchangeability", 800)]).plot()
    >>> len(disp.ax_), disp.ax_[1].get_yscale(), len(disp.alarm_lines_)
    (2, 'log', 2)
    """

    def __init__(
        self,
        rate: Mapping[str, Any],
        *,
        alpha: float,
        level: float,
        martingale: Mapping[str, Any] | None = None,
        alarms: Sequence[tuple[str, int]] = (),
        name: str | None = None,
    ) -> None:
        self.rate = rate
        self.alpha = alpha
        self.level = level
        self.martingale = martingale
        self.alarms = alarms
        self.name = name

    def plot(
        self, ax: Any = None, *, name: str | None = None, **kwargs: Any
    ) -> MonitorDisplay:
        """Draw the two panels.

        Parameters
        ----------
        ax : sequence of two matplotlib Axes, optional
            Where to draw; a new figure (12 x 4 inches) by default.
        name : str, optional
            Figure title; default ``self.name``, else "Deployment monitor".
        **kwargs
            Passed to matplotlib's ``plot`` for the running rate line, over the
            default style (e.g. ``color="black"``, ``lw=2``).

        Returns
        -------
        display : MonitorDisplay
        """
        axes = self._prepare_axes(ax, n_axes=2, figsize=(12, 4))
        left, right = axes
        rate = {k: np.asarray(v, dtype=float) for k, v in self.rate.items()}
        rows = rate["row"]
        self.band_ = left.fill_between(
            rows,
            rate["lower_running"],
            rate["upper"],
            color=BLUE,
            alpha=0.2,
            lw=0,
            label=f"anytime-valid band (level {self.level:g} per side)",
        )
        style = self._style(
            {"color": BLUE, "label": "delegation rate since the start"}, kwargs, "line"
        )
        (self.rate_line_,) = left.plot(rows, rate["estimate"], **style)
        left.plot(rows, rate["recent"], color=GREEN, lw=1, label="recent rate (EW)")
        left.plot(
            rows,
            rate["lower"],
            color=ORANGE,
            lw=1,
            ls="--",
            label="lower bound (alarm when above alpha)",
        )
        left.axhline(
            self.alpha,
            color="black",
            ls=":",
            lw=1.2,
            label=rf"budget $\alpha$ = {self.alpha:g}",
        )
        left.set_xlabel("Stream rows")
        left.set_ylabel("Delegation rate")
        left.set_ylim(
            0.0,
            min(
                1.0,
                max(
                    float(np.nanmax(rate["upper"])),
                    float(np.nanmax(rate["recent"])),
                    self.alpha,
                )
                * 1.3
                + 0.02,
            ),
        )
        self.martingale_line_ = None
        threshold = 1.0 / self.level
        if self.martingale is not None and len(self.martingale.get("step", ())):
            steps = np.asarray(self.martingale["step"], dtype=float)
            e = np.exp(
                np.clip(np.asarray(self.martingale["log_e"], dtype=float), -700, 700)
            )
            (self.martingale_line_,) = right.plot(
                steps, e, color=BLUE, label="test martingale (exchangeability)"
            )
        right.axhline(
            threshold,
            color="black",
            ls=":",
            lw=1.2,
            label=f"alarm at 1/level = {threshold:g}",
        )
        right.axhline(1.0, color=GREY, lw=0.8)
        right.set_yscale("log")
        if self.martingale_line_ is not None:
            # keep the threshold readable: values far above it leave the panel
            e = self.martingale_line_.get_ydata()
            top = min(max(float(e.max()), threshold * 10.0), threshold * 1e4)
            bottom = max(min(float(e.min()), 0.1), 1e-6)
            right.set_ylim(bottom, top)
        right.set_xlabel("Stream rows")
        right.set_ylabel("E-value (log scale)")
        self.alarm_lines_ = []
        for i, (monitor, row) in enumerate(self.alarms):
            for j, axis in enumerate(axes):
                line = axis.axvline(
                    row,
                    color="red",
                    lw=1,
                    alpha=0.7,
                    label=("alarms" if i == 0 and j == 0 else None),
                )
                self.alarm_lines_.append(line)
            right.annotate(
                monitor,
                (row, threshold),
                rotation=90,
                fontsize="x-small",
                color="red",
                xytext=(2, 4),
                textcoords="offset points",
            )
        left.legend(fontsize="x-small", loc="upper left")
        right.legend(fontsize="x-small", loc="upper left")
        self.figure_.suptitle(self._title(name, default="Deployment monitor"))
        return self

    @classmethod
    def from_monitor(
        cls, monitor: Any, *, ax: Any = None, name: str | None = None, **kwargs: Any
    ) -> MonitorDisplay:
        """Plot what a fitted :class:`~skctd.DelegationMonitor` has recorded.

        Parameters
        ----------
        monitor : DelegationMonitor
            Fitted and updated, with ``trace_size > 0``.
        ax : sequence of two matplotlib Axes, optional
        name : str, optional
            Figure title.
        **kwargs
            Matplotlib keyword arguments of the running rate line.

        Returns
        -------
        display : MonitorDisplay
        """
        trace = getattr(monitor, "trace_", None)
        if not trace or "budget" not in trace:
            raise ValueError(
                "The monitor has no trace to plot: fit it with trace_size > 0 and "
                "update it with some rows first."
            )
        alarms = [(a.monitor, a.row) for a in monitor.alarms_]
        disp = cls(
            trace["budget"],
            alpha=monitor.limits_.get("budget", monitor.cascade.alpha),
            level=monitor.level_,
            martingale=trace.get("exchangeability"),
            alarms=alarms,
            name=name,
        )
        return disp.plot(ax=ax, **kwargs)

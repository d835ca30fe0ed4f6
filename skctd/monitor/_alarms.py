"""Alarm records and the hooks that deliver them: callbacks, logging, Prometheus.

An alarm is a frozen :class:`MonitorAlarm` that says what crossed, when, the
estimate and interval at that moment, and what to do. The monitor hands each
new alarm to :func:`dispatch`, which logs it on the ``"skctd.monitor"`` logger
(level WARNING) and calls the user's callbacks; a failing callback is logged and
counted, never raised into the serving path. :class:`PrometheusCollector`
exposes the monitor's counters to a ``prometheus_client`` registry at scrape
time (the optional ``monitor`` extra).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from skctd.utils import import_optional

__all__ = [
    "LOGGER",
    "MonitorAlarm",
    "PrometheusCollector",
    "RECALIBRATE",
    "REUSE_NOTE",
    "check_callbacks",
    "dispatch",
]

#: The logger every alarm is written to (level WARNING).
LOGGER = logging.getLogger("skctd.monitor")

#: What to do after an alarm: the same advice for every monitor.
RECALIBRATE = (
    "Collect a fresh labelled window of traffic from now on (rows this monitor has "
    "not seen), recalibrate on it with cascade.calibrate(X_new, y_new) (change "
    "alpha or the constraints with set_params first if the budget itself must "
    "change), then restart the monitor with monitor.fit(X_new)."
)

#: What reusing the monitored rows for the recalibration does to the guarantee.
REUSE_NOTE = (
    "Do not recalibrate on the rows that raised this alarm: they were selected by "
    "the alarm's stopping time and mix pre- and post-change traffic, so a "
    "calibration on them is not exchangeable with future traffic and its "
    "finite-sample guarantee no longer holds exactly."
)


@dataclass(frozen=True)
class MonitorAlarm:
    """One alarm of a :class:`~skctd.DelegationMonitor`.

    Attributes
    ----------
    monitor : str
        What crossed: ``"budget"``, ``"cost"``, ``"cost_share"``,
        ``"exchangeability"``, ``"error"``, ``"miss"``, ``"miss_marginal"`` or
        ``"harm"``.
    row : int
        Stream rows seen by the monitor when the alarm was raised (for a label
        monitor: when the labels that raised it arrived).
    n_observations : int
        Observations the statistic had used at the crossing (stream rows; labels
        for a label monitor; unsafe labelled rows for ``"miss"``).
    estimate : float
        The monitored quantity at the crossing, in the units of ``limit``: the
        recent (exponentially weighted) value for a rate, the recent mean
        p-value of the delegation signal for ``"exchangeability"``.
    lower, upper : float
        The anytime-valid interval at the crossing (``lower`` is the bound that
        crossed the limit; NaN for ``"exchangeability"``).
    limit : float
        The level that was crossed (``alpha``, the constraint's level, or
        ``1 / level`` for the e-value of ``"exchangeability"``).
    e_value : float
        For ``"exchangeability"``: the test martingale at the crossing; NaN
        otherwise.
    level : float
        Probability of any false alarm of this monitor over the whole stream.
    message : str
        What crossed, when, with the numbers.
    action : str
        What to do, and what reusing the monitored rows would do.
    timestamp : float
        Wall-clock time (``time.time()``) of the alarm.

    Examples
    --------
    >>> from skctd.monitor import MonitorAlarm
    >>> alarm = MonitorAlarm("budget", row=5400, n_observations=5400,
    ...     estimate=0.29, lower=0.21, upper=0.19, limit=0.2, e_value=float("nan"),
    ...     level=0.05, message="budget crossed", action="recalibrate")
    >>> alarm.to_dict()["monitor"], str(alarm).splitlines()[0]
    ('budget', 'budget crossed')
    """

    monitor: str
    row: int
    n_observations: int
    estimate: float
    lower: float
    upper: float
    limit: float
    e_value: float
    level: float
    message: str
    action: str
    timestamp: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """The alarm as a JSON-serialisable dict (NaN becomes None)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None
        return out

    def __str__(self) -> str:
        return f"{self.message}\nWhat to do: {self.action}"


def check_callbacks(callbacks: Any) -> list[Callable[[MonitorAlarm], Any]]:
    """``None``, one callable or an iterable of callables, as a list.

    Parameters
    ----------
    callbacks : None, callable or iterable of callables

    Returns
    -------
    callbacks : list of callables
    """
    if callbacks is None:
        return []
    if callable(callbacks):
        return [callbacks]
    if isinstance(callbacks, Iterable) and not isinstance(callbacks, (str, bytes)):
        out = list(callbacks)
        bad = [c for c in out if not callable(c)]
        if not bad:
            return out
    raise ValueError(
        f"callbacks must be a callable f(alarm) or a list of them, got {callbacks!r}."
    )


def dispatch(
    alarm: MonitorAlarm,
    callbacks: Iterable[Callable[[MonitorAlarm], Any]],
    counters: dict[str, int],
) -> None:
    """Log an alarm and call the callbacks; a failing callback is logged, not raised.

    Parameters
    ----------
    alarm : MonitorAlarm
    callbacks : iterable of callables
        Each is called with the alarm.
    counters : dict
        ``counters["callback_errors"]`` is incremented for each failing callback.
    """
    LOGGER.warning("%s", alarm)
    for callback in callbacks:
        try:
            callback(alarm)
        except Exception:  # a monitoring hook must not break the serving path
            counters["callback_errors"] = counters.get("callback_errors", 0) + 1
            LOGGER.exception("skctd monitor callback %r failed", callback)


class PrometheusCollector:
    """Expose a monitor's counters as Prometheus gauges, read at scrape time.

    Each entry of ``monitor.counters()`` becomes a gauge named
    ``<prefix>_<key>``. Register it with
    ``prometheus_client.REGISTRY.register(PrometheusCollector(monitor))`` or use
    :meth:`skctd.DelegationMonitor.register_prometheus`. Needs
    ``prometheus_client`` (the ``monitor`` extra).

    Parameters
    ----------
    monitor : object with a ``counters()`` method
        Typically a fitted :class:`~skctd.DelegationMonitor`.
    prefix : str, default="skctd_monitor"
        Prefix of the metric names.
    """

    def __init__(self, monitor: Any, prefix: str = "skctd_monitor") -> None:
        self._gauge = import_optional(
            "prometheus_client.core",
            extra="monitor",
            purpose="exporting monitor counters to Prometheus",
        ).GaugeMetricFamily
        self.monitor = monitor
        self.prefix = prefix

    def collect(self) -> Iterable[Any]:
        """Yield one gauge per counter (called by the registry at scrape time)."""
        counters: Mapping[str, Any] = self.monitor.counters()
        for key, value in counters.items():
            if isinstance(value, bool):
                value = int(value)
            if not isinstance(value, (int, float)):
                continue
            yield self._gauge(
                f"{self.prefix}_{key}",
                f"skctd DelegationMonitor counter {key}",
                value=float(value),
            )

    def describe(self) -> list:
        """No fixed description: the metrics are created at each scrape."""
        return []

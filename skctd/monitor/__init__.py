"""Monitoring a deployed cascade with anytime-valid alarms.

Every guarantee of a :class:`~skctd.CalibratedDelegationCascade` holds while live
traffic looks like its calibration data. :class:`DelegationMonitor` watches that
from the serving path, one input or one batch at a time, with statistics that
stay valid however often they are checked:

- the realised delegation rate (and expert cost) against the budget, with a
  :class:`ConfidenceSequence`;
- exchangeability of the delegation signal and probe scores with the
  calibration rows, without labels, with a :class:`ConformalTestMartingale`;
- when labels arrive later, the cascade's error, miss rate and harm versus the
  probe alone, against the constraints the cascade was calibrated with.

Each alarm is a :class:`MonitorAlarm`, delivered to callbacks, the
``"skctd.monitor"`` logger, a counters dict and optionally Prometheus. The
statistics are pure numpy, O(1) per row, with constant memory.
"""

from skctd.monitor._alarms import MonitorAlarm, PrometheusCollector
from skctd.monitor._martingales import ConformalTestMartingale
from skctd.monitor._monitor import MONITORED_RISKS, DelegationMonitor
from skctd.monitor._reference import reference_confidence_sequence
from skctd.monitor._sequences import ConfidenceSequence, stitching_boundary

__all__ = [
    "MONITORED_RISKS",
    "ConfidenceSequence",
    "ConformalTestMartingale",
    "DelegationMonitor",
    "MonitorAlarm",
    "PrometheusCollector",
    "reference_confidence_sequence",
    "stitching_boundary",
]

"""Display objects for the evaluation protocol, in the scikit-learn style.

Each display stores its data in ``__init__``; ``plot(ax=None, *, name=None,
**kwargs)`` draws it (``name`` is the title, ``**kwargs`` go to the drawn
matplotlib artists) and sets ``ax_`` and ``figure_`` plus the drawn artists; the
class methods ``from_result`` / ``from_predictions`` / ``from_estimator`` compute
the data and plot in one call, like ``sklearn.metrics.RocCurveDisplay``.

- :class:`BudgetCurveDisplay`: AUROC / accuracy against the budget, one line per
  method (the paper's Figures 3-4);
- :class:`GuaranteeDisplay`: histogram of realised delegation rates over random
  splits (Figure 11);
- :class:`DVRankingDisplay`: mean delegation value of the top-k by each signal
  (Figure 5);
- :class:`GroupTableDisplay`: the group-conditional table (Table 1);
- :class:`ThresholdSelectionDisplay`: p-values over the thresholds and the Pareto
  front of one calibration;
- :class:`MonitorDisplay`: what a :class:`~skctd.DelegationMonitor` saw: the
  running delegation rate with its confidence band, the exchangeability
  martingale and the alarms.

matplotlib is an optional dependency (the ``plot`` extra); it is imported when a
display is drawn.
"""

from skctd.plotting._budget import METHOD_STYLES, BudgetCurveDisplay
from skctd.plotting._groups import GroupTableDisplay
from skctd.plotting._guarantee import GuaranteeDisplay
from skctd.plotting._monitor import MonitorDisplay
from skctd.plotting._ranking import DVRankingDisplay
from skctd.plotting._threshold import ThresholdSelectionDisplay

__all__ = [
    "BudgetCurveDisplay",
    "DVRankingDisplay",
    "GroupTableDisplay",
    "GuaranteeDisplay",
    "METHOD_STYLES",
    "MonitorDisplay",
    "ThresholdSelectionDisplay",
]

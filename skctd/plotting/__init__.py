"""Display objects for the evaluation protocol, in the scikit-learn style."""

from skctd.plotting._displays import (
    METHOD_STYLES,
    BudgetCurveDisplay,
    CalibrationDisplay,
    DVRankingDisplay,
    GroupTableDisplay,
    GuaranteeDisplay,
)

__all__ = [
    "BudgetCurveDisplay",
    "CalibrationDisplay",
    "DVRankingDisplay",
    "GroupTableDisplay",
    "GuaranteeDisplay",
    "METHOD_STYLES",
]

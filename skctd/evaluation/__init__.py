"""The paper's evaluation protocol on cached arrays."""

from skctd.evaluation._protocol import (
    DEFAULT_ALPHAS,
    METHOD_LABELS,
    METHODS,
    BinaryContinuousResult,
    GroupResult,
    GuaranteeResult,
    RankingCurveResult,
    SweepResult,
    binary_vs_continuous,
    budget_sweep,
    calibration_masks,
    cascade_metrics,
    dv_ranking_curve,
    group_analysis,
    group_table,
    validate_guarantee,
)

__all__ = [
    "BinaryContinuousResult",
    "DEFAULT_ALPHAS",
    "GroupResult",
    "GuaranteeResult",
    "METHODS",
    "METHOD_LABELS",
    "RankingCurveResult",
    "SweepResult",
    "binary_vs_continuous",
    "budget_sweep",
    "calibration_masks",
    "cascade_metrics",
    "dv_ranking_curve",
    "group_analysis",
    "group_table",
    "validate_guarantee",
]

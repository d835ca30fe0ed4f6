"""The paper's evaluation protocol: on cached arrays, or on a fitted cascade."""

from skctd.evaluation._cascade import (
    CascadeEvaluation,
    evaluate_cascade,
    evaluate_scores,
)
from skctd.evaluation._claims import CLAIMS, check_claims
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
    cascade_metrics,
    dv_ranking_curve,
    group_analysis,
    group_table,
    validate_guarantee,
)

__all__ = [
    "BinaryContinuousResult",
    "CLAIMS",
    "CascadeEvaluation",
    "DEFAULT_ALPHAS",
    "GroupResult",
    "GuaranteeResult",
    "METHODS",
    "METHOD_LABELS",
    "RankingCurveResult",
    "SweepResult",
    "binary_vs_continuous",
    "budget_sweep",
    "cascade_metrics",
    "check_claims",
    "dv_ranking_curve",
    "evaluate_cascade",
    "evaluate_scores",
    "group_analysis",
    "group_table",
    "validate_guarantee",
]

"""One call from cached arrays to the paper's evaluation, and a report on disk."""

from skctd.report._report import (
    CLAIMS,
    CascadeEvaluation,
    check_claims,
    evaluate_cascade,
)

__all__ = [
    "CLAIMS",
    "CascadeEvaluation",
    "check_claims",
    "evaluate_cascade",
]

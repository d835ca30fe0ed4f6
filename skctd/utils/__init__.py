"""Helpers shared by every layer: input validation and optional imports."""

from skctd.utils._optional import import_optional
from skctd.utils._validation import (
    check_binary_labels,
    check_budgets,
    check_fraction,
    check_known_labels,
    check_positive_int,
    check_same_length,
    check_scores,
)

__all__ = [
    "check_binary_labels",
    "check_budgets",
    "check_fraction",
    "check_known_labels",
    "check_positive_int",
    "check_same_length",
    "check_scores",
    "import_optional",
]

"""Helpers shared by every layer: validation, JSON conversion, optional imports."""

from skctd.utils._inputs import check_input, check_inputs, is_conversation
from skctd.utils._json import to_jsonable
from skctd.utils._optional import import_optional
from skctd.utils._secrets import read_secret_env, redact, redact_url, register_secret
from skctd.utils._validation import (
    check_binary_labels,
    check_budgets,
    check_cascade_arrays,
    check_fraction,
    check_known_labels,
    check_positive_int,
    check_same_length,
    check_scores,
)

__all__ = [
    "check_binary_labels",
    "check_budgets",
    "check_cascade_arrays",
    "check_fraction",
    "check_input",
    "check_inputs",
    "check_known_labels",
    "check_positive_int",
    "check_same_length",
    "check_scores",
    "import_optional",
    "is_conversation",
    "read_secret_env",
    "redact",
    "redact_url",
    "register_secret",
    "to_jsonable",
]

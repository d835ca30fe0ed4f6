"""Experts: the protocol, simple adapters and LLM judges."""

from skctd.experts._base import (
    BaseExpert,
    ClassifierExpert,
    ExpertError,
    ExpertReport,
    FunctionExpert,
    PrecomputedExpert,
    as_expert,
    row_key,
)
from skctd.experts.judges import OpenAIJudge, TransformersJudge

__all__ = [
    "OpenAIJudge",
    "TransformersJudge",
    "BaseExpert",
    "ClassifierExpert",
    "ExpertError",
    "ExpertReport",
    "FunctionExpert",
    "PrecomputedExpert",
    "as_expert",
    "row_key",
]

"""Experts: the protocol (``_base``), simple adapters (``_simple``) and LLM judges
(``judges``)."""

from skctd.experts._base import BaseExpert, ExpertError, ExpertReport
from skctd.experts._simple import (
    ClassifierExpert,
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

"""LLM judges used as experts: a local Hugging Face causal LM and an
OpenAI-compatible server, both asking the same yes/no question and reading the
probability of the label words at the answer position."""

from skctd.experts.judges._openai import OpenAIJudge
from skctd.experts.judges._prompt import (
    DEFAULT_LABELS,
    DEFAULT_PROMPT_TEMPLATE,
    DEFAULT_SYSTEM_PROMPT,
)
from skctd.experts.judges._transformers import TransformersJudge

__all__ = [
    "DEFAULT_LABELS",
    "DEFAULT_PROMPT_TEMPLATE",
    "DEFAULT_SYSTEM_PROMPT",
    "OpenAIJudge",
    "TransformersJudge",
]

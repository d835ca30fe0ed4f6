"""LLM judges used as experts: a local Hugging Face causal LM and an
OpenAI-compatible server, both asking the same yes/no question and reading the
probability of the label words at the answer position. Modules: ``_base`` (the
scoring loop and caches), ``_prompt`` (prompt, labels, cache keys),
``_transformers`` and ``_openai``."""

from skctd.experts.judges._base import BaseJudge
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
    "BaseJudge",
    "OpenAIJudge",
    "TransformersJudge",
]

"""The monitored model's side: :class:`ActivationTransformer`, and the Hugging Face
plumbing it shares with :class:`~skctd.TransformersJudge` — model loading (one copy of
the weights per process) and the packaged offline models, chat-template rendering,
length-sorted batching, de-duplication and the disk cache. torch and transformers
are imported when first used."""

from skctd.llm._activations import ActivationTransformer
from skctd.llm._batching import dedupe, length_sorted_batches, progress_bar
from skctd.llm._cache import DiskCache, text_hash
from skctd.llm._device import resolve_device, resolve_dtype
from skctd.llm._loading import (
    check_no_secret_kwargs,
    clear_model_cache,
    find_packaged_model,
    load_config,
    load_model,
    load_tokenizer,
    model_fingerprint,
    resolve_model,
)
from skctd.llm._render import has_chat_template, render_texts, uses_chat_template

__all__ = [
    "ActivationTransformer",
    "DiskCache",
    "check_no_secret_kwargs",
    "clear_model_cache",
    "dedupe",
    "find_packaged_model",
    "has_chat_template",
    "length_sorted_batches",
    "load_config",
    "load_model",
    "load_tokenizer",
    "model_fingerprint",
    "progress_bar",
    "render_texts",
    "resolve_device",
    "resolve_dtype",
    "resolve_model",
    "text_hash",
    "uses_chat_template",
]

"""The monitored model's side: Hugging Face model loading, input rendering and
batching, the activation cache, and :class:`ActivationTransformer`."""

from skctd.llm._activations import ActivationTransformer

__all__ = ["ActivationTransformer"]

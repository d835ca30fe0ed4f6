"""Lazy imports of optional dependencies with a message naming the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

_EXTRA_OF = {
    "torch": "llm",
    "transformers": "llm",
    "accelerate": "llm",
    "gguf": "llm",
    "tqdm": "llm",
    "matplotlib": "plot",
    "matplotlib.pyplot": "plot",
    "pandas": "report",
    "httpx": "openai",
}


def import_optional(name: str, *, extra: str | None = None, purpose: str = "") -> ModuleType:
    """Import ``name`` or raise an ImportError that says how to install it.

    Parameters
    ----------
    name : str
        Module to import, e.g. ``"torch"``.
    extra : str, optional
        The skctd extra that provides it. Defaults to the known extra of ``name``.
    purpose : str, optional
        What the module is needed for, added to the message.

    Returns
    -------
    module : ModuleType
    """
    extra = extra or _EXTRA_OF.get(name, name.split(".")[0])
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        why = f" for {purpose}" if purpose else ""
        hint = (
            'pip install "skctd[llm]" torch==2.13.0  (pin torch to get a CPU build)'
            if extra == "llm"
            else f'pip install "skctd[{extra}]"'
        )
        raise ImportError(
            f"skctd needs the optional dependency {name!r}{why}, which is not "
            f"installed. Install the {extra!r} extra: {hint}"
        ) from exc

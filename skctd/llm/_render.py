"""Turning validated inputs into the strings a model reads (chat templates)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["has_chat_template", "render_texts", "uses_chat_template"]


def has_chat_template(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` has a (non-empty) chat template.

    Parameters
    ----------
    tokenizer : transformers tokenizer

    Returns
    -------
    bool

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from skctd.llm import has_chat_template
    >>> has_chat_template(SimpleNamespace(chat_template="{{ messages }}"))
    True
    >>> has_chat_template(SimpleNamespace(chat_template=None))
    False
    """
    return bool(getattr(tokenizer, "chat_template", None))


def _mode(chat_template: Any) -> tuple[Any, str | None]:
    """(``"auto"`` / True / False, the Jinja template string or None)."""
    if isinstance(chat_template, str):
        return ("auto", None) if chat_template == "auto" else (True, chat_template)
    if isinstance(chat_template, (bool, np.bool_)):
        return bool(chat_template), None
    raise ValueError(
        f"chat_template must be 'auto', True, False or a Jinja template string, "
        f"got {chat_template!r}."
    )


def uses_chat_template(row: Any, tokenizer: Any, chat_template: Any = "auto") -> bool:
    """Whether :func:`render_texts` puts ``row`` through a chat template.

    A templated row carries its own special tokens (BOS, ...): tokenise it with
    ``add_special_tokens=False``.

    Parameters
    ----------
    row : str or list of dict
        A validated input (see :func:`skctd.utils.check_input`).
    tokenizer : transformers tokenizer
    chat_template : {"auto", True, False} or str, default="auto"
        As in :func:`render_texts`.

    Returns
    -------
    bool
    """
    mode, _ = _mode(chat_template)
    if mode == "auto":
        return not isinstance(row, str) and has_chat_template(tokenizer)
    return bool(mode)


def render_texts(
    rows: list[Any],
    tokenizer: Any,
    *,
    chat_template: Any = "auto",
    system_prompt: str | None = None,
    add_generation_prompt: bool = False,
) -> list[str]:
    """Turn validated rows into the strings the model reads.

    Parameters
    ----------
    rows : list
        Output of :func:`skctd.utils.check_inputs`.
    tokenizer : transformers tokenizer
    chat_template : {"auto", True, False} or str, default="auto"
        ``"auto"``: conversations through the tokenizer's chat template (as
        ``"role: content"`` lines when the tokenizer has none, e.g. BERT), strings
        as they are. ``True``: strings become a single user message and are templated
        too. ``False``: no template; conversations are rendered as ``"role: content"``
        lines. A Jinja string: used as the template instead of the tokenizer's.
    system_prompt : str, optional
        Prepended as a system message when templating (unless the conversation
        already starts with one).
    add_generation_prompt : bool, default=False
        Passed to ``apply_chat_template``.

    Returns
    -------
    texts : list of str
    """
    mode, template = _mode(chat_template)
    if system_prompt is not None and not isinstance(system_prompt, str):
        raise TypeError(
            f"system_prompt must be a string or None, got {system_prompt!r}."
        )
    out: list[str] = []
    for i, row in enumerate(rows):
        is_text = isinstance(row, str)
        if not uses_chat_template(row, tokenizer, mode):
            if is_text:
                out.append(
                    row
                    if system_prompt is None or mode == "auto"
                    else f"{system_prompt}\n\n{row}"
                )
            else:
                lines = [f"{m['role']}: {m['content']}" for m in row]
                if system_prompt is not None and row[0]["role"] != "system":
                    lines.insert(0, f"system: {system_prompt}")
                out.append("\n".join(lines))
            continue
        messages = [{"role": "user", "content": row}] if is_text else list(row)
        if system_prompt is not None and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": system_prompt}, *messages]
        if template is None and not has_chat_template(tokenizer):
            raise ValueError(
                f"row {i} needs a chat template but the tokenizer "
                f"{getattr(tokenizer, 'name_or_path', '')!r} has none; pass "
                "chat_template=False (render as 'role: content' lines) or a Jinja "
                "template string."
            )
        out.append(
            tokenizer.apply_chat_template(
                messages,
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
                chat_template=template,
            )
        )
    return out

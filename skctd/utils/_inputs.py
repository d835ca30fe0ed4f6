"""One notion of a valid LLM input: a text or a chat conversation.

Every part of skctd that reads raw inputs — :class:`~skctd.ActivationTransformer`,
both LLM judges and :func:`~skctd.datasets.read_dataset` — validates them here, so
that they accept and reject exactly the same rows. The rule:

- a **text** is a string with at least one non-whitespace character;
- a **conversation** is a non-empty list (or tuple) of messages, each a dict with a
  string ``"role"`` and a string ``"content"`` (other keys are kept);
- anything else (``None``, NaN, numbers, bytes, an empty or whitespace-only
  string, an empty list, a message without ``role`` / ``content``) is an error that
  names the row and says how to fix it.

A string is always a text, even when it looks like JSON (``"[INST] ..."``): only a
reader of a file format without nested values (CSV, Parquet) decodes a JSON cell
into a conversation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["check_input", "check_inputs", "is_conversation"]

_SHORT = 60


def _short(value: Any, n: int = _SHORT) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType")  # pandas' missing markers


def _is_message(message: Any) -> bool:
    return (
        isinstance(message, dict)
        and isinstance(message.get("role"), str)
        and isinstance(message.get("content"), str)
    )


def is_conversation(row: Any) -> bool:
    """Whether ``row`` is a valid conversation (it never raises).

    Parameters
    ----------
    row : object

    Returns
    -------
    bool
        ``True`` for a non-empty list or tuple of ``{"role": str, "content": str}``
        dicts; ``False`` for anything else, strings included.

    Examples
    --------
    >>> from skctd.utils import is_conversation
    >>> is_conversation([{"role": "user", "content": "hi"}])
    True
    >>> is_conversation('[{"role": "user", "content": "hi"}]')  # a string is a text
    False
    """
    return (
        isinstance(row, (list, tuple))
        and len(row) > 0
        and all(_is_message(m) for m in row)
    )


def check_input(row: Any, *, name: str = "input") -> str | list[dict[str, Any]]:
    """Validate one input (a text or a conversation) and return it canonically.

    Parameters
    ----------
    row : str or list of dict
        A text, or a conversation: a non-empty list of ``{"role": str,
        "content": str}`` dicts. A ``numpy.str_`` becomes a ``str``; a tuple or a
        1-D object array of messages becomes a list of (copied) dicts.
    name : str, default="input"
        How the row is named in error messages (e.g. ``"X[3]"`` or
        ``"data.jsonl, line 4: field 'inputs'"``).

    Returns
    -------
    row : str or list of dict

    Raises
    ------
    ValueError
        For a missing value, an empty or whitespace-only string, an empty
        conversation or a malformed message.
    TypeError
        For a row that is neither a string nor a list of messages.

    Examples
    --------
    >>> from skctd.utils import check_input
    >>> check_input("[INST] hello [/INST]")
    '[INST] hello [/INST]'
    >>> check_input("   ", name="X[2]")
    Traceback (most recent call last):
    ...
    ValueError: X[2] is an empty or whitespace-only string; every input must be a text with some content or a conversation.
    """
    if _is_missing(row):
        raise ValueError(f"{name} is missing ({row!r}); drop or fill missing inputs.")
    if isinstance(row, str):
        if not row.strip():
            raise ValueError(
                f"{name} is an empty or whitespace-only string; every input must be "
                "a text with some content or a conversation."
            )
        return str(row)  # numpy.str_ -> str
    if isinstance(row, np.ndarray) and row.ndim == 1 and row.dtype == object:
        row = row.tolist()
    if isinstance(row, (list, tuple)):
        if len(row) == 0:
            raise ValueError(
                f"{name} is an empty conversation; give at least one message "
                "{'role': ..., 'content': ...}."
            )
        for j, message in enumerate(row):
            if not _is_message(message):
                raise ValueError(
                    f"{name}: message {j} must be a dict with a string 'role' and a "
                    f"string 'content', got {_short(message)}."
                )
        return [dict(m) for m in row]
    raise TypeError(
        f"{name} is a {type(row).__name__} ({_short(row)}); each input must be a "
        "string or a conversation (a list of {'role', 'content'} dicts)."
    )


def _rows_of(X: Any, name: str) -> list[Any]:
    """The rows of a list, tuple, 1-D array, Series or one-column DataFrame."""
    if isinstance(X, (str, bytes, dict)):
        raise TypeError(
            f"{name} must be a list of texts or conversations, got a single "
            f"{type(X).__name__}; wrap it in a list: [{name}]."
        )
    if hasattr(X, "columns") and hasattr(X, "iloc"):  # DataFrame
        if X.shape[1] != 1:
            raise ValueError(
                f"{name} is a DataFrame with {X.shape[1]} columns; pass the one text "
                "column (a Series, e.g. df['text']) instead."
            )
        X = X.iloc[:, 0]
    if hasattr(X, "to_list") and not isinstance(X, np.ndarray):  # Series
        return list(X.to_list())
    if isinstance(X, np.ndarray):
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1:
            raise ValueError(
                f"{name} must be 1-D (one text or conversation per row), got an array "
                f"of shape {X.shape}."
            )
        return list(X)
    try:
        return list(X)
    except TypeError as exc:
        raise TypeError(
            f"{name} must be a list of texts or conversations, got {type(X).__name__}."
        ) from exc


def check_inputs(
    X: Any,
    *,
    name: str = "X",
    allow_mixed: bool = False,
    return_errors: bool = False,
) -> list[Any] | tuple[list[Any], dict[int, str]]:
    """Validate LLM inputs: texts or chat conversations (see :func:`check_input`).

    Parameters
    ----------
    X : list, tuple, numpy array or pandas Series
        One text or conversation per row. A 2-D array or DataFrame with a single
        column is accepted too.
    name : str, default="X"
        Name used in error messages; rows are named ``name[i]``.
    allow_mixed : bool, default=False
        Accept texts and conversations in the same call (e.g. for a judge that
        renders every row into its own prompt). By default a mix is an error.

    Returns
    -------
    rows : list
        The rows (strings, or lists of message dicts), validated.

    Examples
    --------
    >>> from skctd.utils import check_inputs
    >>> check_inputs(["hi", [{"role": "user", "content": "there"}]], allow_mixed=True)
    ['hi', [{'role': 'user', 'content': 'there'}]]
    >>> check_inputs(["hi", " "])
    Traceback (most recent call last):
    ...
    ValueError: X[1] is an empty or whitespace-only string; every input must be a text with some content or a conversation.
    """
    rows = _rows_of(X, name)
    first_of: dict[str, int] = {}
    errors: dict[int, str] = {}
    for i, row in enumerate(rows):
        try:
            row = rows[i] = check_input(row, name=f"{name}[{i}]")
        except (TypeError, ValueError) as exc:
            if not return_errors:
                raise
            rows[i] = None
            errors[i] = str(exc)
            continue
        kind = "text" if isinstance(row, str) else "conversation"
        first_of.setdefault(kind, i)
        if len(first_of) > 1 and not allow_mixed:
            other = "conversation" if kind == "text" else "text"
            raise ValueError(
                f"{name} mixes texts and conversations: {name}[{first_of[other]}] is "
                f"a {other} and {name}[{i}] is a {kind}. Use one kind for all rows "
                "(e.g. wrap texts as [{'role': 'user', 'content': text}]), or "
                "chat_template=True so that every row goes through the chat template."
            )
    return (rows, errors) if return_errors else rows

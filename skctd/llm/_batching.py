"""Batching helpers: length-sorted batches under a token budget, de-duplication of
inputs, and an optional progress bar."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import numpy as np

__all__ = ["dedupe", "length_sorted_batches", "progress_bar"]


def length_sorted_batches(
    lengths: Any,
    *,
    batch_size: int | None = None,
    max_tokens_per_batch: int | None = None,
) -> list[np.ndarray]:
    """Index batches of similar length (longest first) under a token budget.

    Parameters
    ----------
    lengths : array-like of int
        Token count of each input.
    batch_size : int, optional
        Most rows in a batch.
    max_tokens_per_batch : int, optional
        Most ``padded_length * n_rows`` in a batch (a single longer row still gets a
        batch of its own).

    Returns
    -------
    batches : list of ndarray of int
        Indices into ``lengths``; together a permutation of ``range(len(lengths))``.

    Examples
    --------
    >>> from skctd.llm import length_sorted_batches
    >>> [b.tolist() for b in length_sorted_batches([3, 9, 5, 1], batch_size=2)]
    [[1, 2], [0, 3]]
    >>> [b.tolist() for b in length_sorted_batches([3, 9, 5, 1], max_tokens_per_batch=10)]
    [[1], [2, 0], [3]]
    """
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    for pname, value in (
        ("batch_size", batch_size),
        ("max_tokens_per_batch", max_tokens_per_batch),
    ):
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, (int, np.integer))
            or value < 1
        ):
            raise ValueError(
                f"{pname} must be a positive integer or None, got {value!r}."
            )
    if lengths.size == 0:
        return []
    order = np.argsort(-lengths, kind="stable")
    if max_tokens_per_batch is None:
        size = int(batch_size) if batch_size is not None else lengths.size
        return [order[i : i + size] for i in range(0, order.size, size)]
    cap = int(batch_size) if batch_size is not None else order.size
    batches: list[np.ndarray] = []
    start = 0
    n = order.size
    while start < n:
        # rows are sorted by decreasing length: the first row sets the padded width
        width = max(int(lengths[order[start]]), 1)
        size = max(1, min(cap, int(max_tokens_per_batch) // width, n - start))
        batches.append(order[start : start + size])
        start += size
    return batches


def dedupe(
    keys: list[str], *, return_index: bool = False
) -> tuple[list[str], np.ndarray] | tuple[list[str], np.ndarray, np.ndarray]:
    """Unique keys (first-seen order) and the inverse index.

    Parameters
    ----------
    keys : list of str (or of any hashable)
    return_index : bool, default=False
        Also return, for each unique key, the position of its first occurrence.

    Returns
    -------
    unique : list
        The distinct keys, in the order they first appear.
    index : ndarray of int, shape (len(unique),)
        Only with ``return_index=True``: ``keys[index[j]] == unique[j]``.
    inverse : ndarray of int, shape (len(keys),)
        ``unique[inverse[i]] == keys[i]``.

    Examples
    --------
    >>> from skctd.llm import dedupe
    >>> unique, inverse = dedupe(["a", "b", "a"])
    >>> unique, inverse.tolist()
    (['a', 'b'], [0, 1, 0])
    >>> unique, index, inverse = dedupe(["a", "b", "a"], return_index=True)
    >>> index.tolist()
    [0, 1]
    """
    position: dict[Any, int] = {}
    inverse = np.empty(len(keys), dtype=np.intp)
    first: list[int] = []
    for i, key in enumerate(keys):
        j = position.setdefault(key, len(position))
        if j == len(first):
            first.append(i)
        inverse[i] = j
    if return_index:
        return list(position), np.asarray(first, dtype=np.intp), inverse
    return list(position), inverse


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


def progress_bar(total: int, *, enabled: Any = "auto", desc: str = "") -> Any:
    """A tqdm bar, or a silent stand-in.

    Parameters
    ----------
    total : int
        Number of steps.
    enabled : bool or "auto", default="auto"
        ``True`` forces a bar (if tqdm is installed); ``"auto"`` shows one only when
        stderr is a terminal; ``False`` never.
    desc : str
        Label of the bar.

    Returns
    -------
    bar
        Has ``update(n)`` and ``close()`` and is a context manager.
    """
    if enabled is False or enabled is None:
        return _NoBar()
    if enabled == "auto" and not (
        hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    ):
        return _NoBar()
    if importlib.util.find_spec("tqdm") is None:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)

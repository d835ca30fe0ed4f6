"""Conversion of results to JSON-serialisable Python objects."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """Recursively convert NumPy values and containers to plain JSON types.

    Dicts (keys become ``str``), lists, tuples and arrays become dicts and lists;
    NumPy integers, floats and booleans become Python ``int``, ``float`` and
    ``bool``; non-finite floats (NaN, ``inf``) become ``None``, which JSON can
    represent. Other values (``str``, ``None``, Python ints and bools) pass through.

    Parameters
    ----------
    value : object
        A result, e.g. a dict of NumPy arrays.

    Returns
    -------
    value : object
        The same structure, ready for :func:`json.dumps`.

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.utils import to_jsonable
    >>> to_jsonable({"rate": np.array([0.25, np.nan]), 1: np.int64(3), "ok": np.True_})
    {'rate': [0.25, None], '1': 3, 'ok': True}
    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value

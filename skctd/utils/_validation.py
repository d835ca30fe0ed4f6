"""One home for the checks of numbers and arrays that every layer shares.

Each function validates one kind of argument and returns it in canonical form, or
raises a ``ValueError`` that names the parameter, says what was wrong (with the
first offending rows) and how to fix it. The statistics (``calibration``,
``delegation``, ``evaluation``) and the estimators call these instead of writing
their own; the rules are therefore the same everywhere.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = [
    "check_binary_labels",
    "check_budgets",
    "check_cascade_arrays",
    "check_fraction",
    "check_known_labels",
    "check_positive_int",
    "check_same_length",
    "check_scores",
]

# rows named in an error message
_MAX_ROWS = 10


def check_fraction(value: Any, name: str, *, closed: bool = False) -> float:
    """A real number strictly between 0 and 1 (``alpha``, ``delta``, ``opt_fraction``).

    Parameters
    ----------
    value : object
        The value to check; booleans, NaN, strings and other non-numbers are
        rejected.
    name : str
        Parameter name used in the error message.
    closed : bool, default=False
        Accept the closed interval [0, 1] instead (e.g. the share of a batch that
        top-k delegation sends, where 0 and 1 are meaningful).

    Returns
    -------
    value : float

    Examples
    --------
    >>> from skctd.utils import check_fraction
    >>> check_fraction(0.2, "alpha")
    0.2
    >>> check_fraction(1, "alpha")
    Traceback (most recent call last):
    ...
    ValueError: alpha must be a number strictly between 0 and 1, got 1.
    >>> check_fraction(1, "alpha", closed=True)
    1.0
    """
    ok = (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and bool(np.isfinite(value))
    )
    if closed:
        if not ok or not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{name} must be a number in [0, 1], got {value!r}.")
    elif not ok or not 0.0 < float(value) < 1.0:
        raise ValueError(
            f"{name} must be a number strictly between 0 and 1, got {value!r}."
        )
    return float(value)


def check_budgets(values: Any, name: str = "alphas") -> np.ndarray:
    """A non-empty 1-D array of numbers strictly between 0 and 1.

    Parameters
    ----------
    values : float or array-like of float
        One budget or several; a scalar becomes a length-1 array.
    name : str, default="alphas"
        Parameter name used in the error message.

    Returns
    -------
    values : ndarray of float, shape (m,)
    """
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be numbers strictly between 0 and 1, got {values!r}."
        ) from exc
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got {values!r}.")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0) or np.any(arr >= 1):
        raise ValueError(
            f"every value of {name} must lie strictly between 0 and 1, got {arr!r}."
        )
    return arr


def check_positive_int(value: Any, name: str) -> int:
    """A positive integer (booleans rejected).

    Parameters
    ----------
    value : object
    name : str
        Parameter name used in the error message.

    Returns
    -------
    value : int
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def check_scores(x: Any, name: str, *, unit: bool = False) -> np.ndarray:
    """A 1-D array of finite floats; with ``unit=True``, probabilities in [0, 1].

    Parameters
    ----------
    x : array-like of shape (n,)
    name : str
        Parameter name used in the error message.
    unit : bool, default=False
        Also require every value to lie in [0, 1].

    Returns
    -------
    x : ndarray of float, shape (n,)

    Examples
    --------
    >>> from skctd.utils import check_scores
    >>> check_scores([0.1, 0.9], "probe_scores", unit=True)
    array([0.1, 0.9])
    >>> check_scores([0.1, 1.5], "probe_scores", unit=True)
    Traceback (most recent call last):
    ...
    ValueError: probe_scores must be probabilities in [0, 1]; rows [1] are outside.
    """
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of numbers.") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got an array of shape {arr.shape}.")
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.flatnonzero(bad)[:_MAX_ROWS].tolist()
        raise ValueError(
            f"{name} contains NaN or infinite values (rows {rows}); remove or impute "
            "them first."
        )
    if unit and arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        rows = np.flatnonzero((arr < 0.0) | (arr > 1.0))[:_MAX_ROWS].tolist()
        raise ValueError(
            f"{name} must be probabilities in [0, 1]; rows {rows} are outside."
        )
    return arr


def check_binary_labels(y: Any, name: str = "y") -> np.ndarray:
    """0/1 labels (or booleans) as a boolean array, ``True`` = positive class.

    Parameters
    ----------
    y : array-like of shape (n,)
        Labels encoded as 0/1 or bool (1 = positive / unsafe class).
    name : str, default="y"
        Parameter name used in the error message.

    Returns
    -------
    y : ndarray of bool, shape (n,)

    Examples
    --------
    >>> from skctd.utils import check_binary_labels
    >>> check_binary_labels([0, 1, 1])
    array([False,  True,  True])
    """
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got an array of shape {arr.shape}.")
    if arr.dtype == bool:
        return arr
    try:
        num = arr.astype(float)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must hold 0/1 labels (1 = positive class); encode string labels "
            "first, e.g. with sklearn.preprocessing.LabelEncoder."
        ) from exc
    if not np.all((num == 0) | (num == 1)):
        raise ValueError(
            f"{name} must hold only 0/1 labels (1 = positive class), got values "
            f"{np.unique(arr)[:_MAX_ROWS].tolist()}; encode the labels first."
        )
    return num == 1


def check_same_length(**arrays: Any) -> int:
    """Check that every array has the same number of rows; return it.

    Parameters
    ----------
    **arrays : array-like
        Named arrays (the names are used in the error message).

    Returns
    -------
    n : int
        The common number of rows.
    """
    sizes = {k: np.shape(v)[0] for k, v in arrays.items()}
    first = next(iter(sizes))
    n = sizes[first]
    for k, size in sizes.items():
        if size != n:
            raise ValueError(
                f"{k} has {size} rows but {first} has {n}; all arrays must have the "
                "same length (one entry per row)."
            )
    return int(n)


def check_cascade_arrays(
    y: Any, probe_scores: Any, expert_scores: Any, **signals: Any
) -> tuple[np.ndarray, ...]:
    """Labels, probe and expert probabilities, and signals that describe the same rows.

    The arrays every statistic of the cascade takes: :func:`check_binary_labels`
    for ``y``, :func:`check_scores` with ``unit=True`` for the two models' scores,
    :func:`check_scores` for each named signal (e.g. the delegation signal), and
    :func:`check_same_length` over all of them (signals named first).

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels (1 = positive / unsafe class).
    probe_scores, expert_scores : array-like of shape (n,)
        ``P(y = 1 | x)`` of the probe and of the expert, in [0, 1].
    **signals : array-like of shape (n,)
        Finite scores of the same rows, by parameter name.

    Returns
    -------
    arrays : tuple of ndarray
        ``(y, probe_scores, expert_scores, *signals)``, ``y`` as bool, the others as
        float, signals in the order given.

    Examples
    --------
    >>> from skctd.utils import check_cascade_arrays
    >>> y, p, e, s = check_cascade_arrays([0, 1], [0.2, 0.6], [0.1, 0.9], signal=[3, -1])
    >>> y, s
    (array([False,  True]), array([ 3., -1.]))
    """
    y = check_binary_labels(y)
    p = check_scores(probe_scores, "probe_scores", unit=True)
    e = check_scores(expert_scores, "expert_scores", unit=True)
    extra = {name: check_scores(value, name) for name, value in signals.items()}
    check_same_length(**extra, y=y, probe_scores=p, expert_scores=e)
    return (y, p, e, *extra.values())


def check_known_labels(y: Any, classes: Any, name: str = "y") -> np.ndarray:
    """Codes of labels among known ``classes``: the position of each label in ``classes``.

    For a fitted binary classifier, ``check_known_labels(y, clf.classes_)`` is the 0/1
    encoding of ``y`` (1 = ``classes_[1]``, the positive class).

    Parameters
    ----------
    y : array-like of shape (n,)
        Labels, each one of ``classes``.
    classes : array-like of shape (k,)
        The known labels, sorted (as ``classes_`` of a fitted classifier).
    name : str, default="y"
        Parameter name used in the error message.

    Returns
    -------
    codes : ndarray of int, shape (n,)

    Examples
    --------
    >>> from skctd.utils import check_known_labels
    >>> check_known_labels(["safe", "unsafe", "safe"], ["safe", "unsafe"])
    array([0, 1, 0])
    >>> check_known_labels([0, 7], [0, 1])
    Traceback (most recent call last):
    ...
    ValueError: y contains labels [7] that are not among the known classes [0, 1].
    """
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got an array of shape {arr.shape}.")
    classes = np.asarray(classes)
    unknown = np.setdiff1d(np.unique(arr), classes)
    if unknown.size:
        raise ValueError(
            f"{name} contains labels {unknown[:_MAX_ROWS].tolist()} that are not among "
            f"the known classes {classes.tolist()}."
        )
    return np.searchsorted(classes, arr)

"""The optimisation/testing split of the calibration rows."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from skctd.utils import check_fraction

__all__ = ["n_opt_rows", "opt_test_split"]


def n_opt_rows(n: int, opt_fraction: float = 0.3) -> int:
    """Number of calibration rows that go to the optimisation split.

    ``max(1, floor(opt_fraction * n + 0.5))`` (``opt_fraction * n`` rounded half
    up); the other ``n - n_opt`` rows form the testing split, whose size decides
    what can be certified (see :func:`min_test_size`).

    Parameters
    ----------
    n : int
        Number of calibration rows.
    opt_fraction : float, default=0.3
        Share of the rows in the optimisation split, in (0, 1).

    Returns
    -------
    n_opt : int
        In ``[1, n - 1]``.

    Raises
    ------
    ValueError
        If either split would be empty (fewer than 2 rows, or ``opt_fraction`` so
        close to 1 that no row is left for testing).

    Examples
    --------
    >>> from skctd.calibration import n_opt_rows
    >>> n_opt_rows(1000)
    300
    >>> n_opt_rows(5, opt_fraction=0.3)  # 1.5 rounds up
    2
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise ValueError(f"n must be an integer number of rows, got {n!r}.")
    opt_fraction = check_fraction(opt_fraction, "opt_fraction")
    n_opt = max(1, int(math.floor(opt_fraction * n + 0.5)))
    if n < 2 or n_opt > n - 1:
        raise ValueError(
            f"Too few calibration rows: got {n} rows with opt_fraction={opt_fraction}, "
            "but both the optimisation split and the testing split need at least one "
            "row. Give more calibration data (hundreds of rows in practice)."
        )
    return n_opt


def opt_test_split(
    n: int, *, opt_fraction: float = 0.3, random_state: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """A uniformly random split of ``n`` calibration rows into optimisation and testing.

    This is the split :func:`calibrate_threshold` and
    :func:`calibrate_budget_sweep` draw: ``n_opt_rows(n, opt_fraction)`` rows taken
    by ``random_state.permutation(n)``, the rest for testing. Use it to build the
    ``splits`` of :func:`calibrate_budget_sweep` by hand (e.g. the split of each
    calibration part of an evaluation protocol).

    Parameters
    ----------
    n : int
        Number of calibration rows.
    opt_fraction : float, default=0.3
        Share of the rows in the optimisation split, in (0, 1).
    random_state : int, RandomState instance or None, default=None
        A ``RandomState`` instance is advanced (successive calls give different
        splits).

    Returns
    -------
    opt_indices, test_indices : ndarray of int
        Sorted, disjoint, together ``0 .. n - 1``.

    Examples
    --------
    >>> from skctd.calibration import opt_test_split
    >>> opt, test = opt_test_split(10, random_state=0)
    >>> opt, test
    (array([2, 4, 8]), array([0, 1, 3, 5, 6, 7, 9]))
    """
    n_opt = n_opt_rows(n, opt_fraction)
    rng = check_random_state(random_state)
    in_opt = np.zeros(n, dtype=bool)
    in_opt[rng.permutation(n)[:n_opt]] = True
    return np.flatnonzero(in_opt), np.flatnonzero(~in_opt)

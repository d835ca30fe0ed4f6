"""Family-wise error control over an ordered family of hypotheses."""

from __future__ import annotations

from typing import Any

import numpy as np

from skctd.utils import check_fraction

__all__ = ["bonferroni_test", "fixed_sequence_test"]


def fixed_sequence_test(pvalues: Any, delta: float) -> int:
    """Fixed-sequence testing: how many leading hypotheses are certified.

    The hypotheses are tested in the given order, each at the full level ``delta``;
    testing stops at the first p-value above ``delta`` (a NaN p-value also stops
    it). This controls the family-wise error rate at ``delta`` when the order is
    fixed before the data are seen (Bauer, 1991).

    Parameters
    ----------
    pvalues : array-like of float, shape (m,)
        P-values in testing order (most conservative first).
    delta : float
        FWER level in (0, 1).

    Returns
    -------
    n_certified : int
        The hypotheses ``0 .. n_certified - 1`` are certified (rejected nulls).

    Examples
    --------
    >>> from skctd import fixed_sequence_test
    >>> fixed_sequence_test([0.01, 0.05, 0.2, 0.01], delta=0.1)
    2
    """
    delta = check_fraction(delta, "delta")
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be 1-D, got shape {p.shape}.")
    fail = ~(p <= delta)
    return int(np.argmax(fail)) if fail.any() else int(p.size)


def bonferroni_test(pvalues: Any, delta: float) -> np.ndarray:
    """Bonferroni correction: certify each hypothesis with ``p <= delta / m``.

    Parameters
    ----------
    pvalues : array-like of float, shape (m,)
        P-values (NaN is never certified).
    delta : float
        FWER level in (0, 1).

    Returns
    -------
    certified : ndarray of bool, shape (m,)

    Examples
    --------
    >>> from skctd import bonferroni_test
    >>> bonferroni_test([0.01, 0.05, 0.03], delta=0.1)
    array([ True, False,  True])
    """
    delta = check_fraction(delta, "delta")
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be 1-D, got shape {p.shape}.")
    if p.size == 0:
        return np.zeros(0, dtype=bool)
    return p <= delta / p.size

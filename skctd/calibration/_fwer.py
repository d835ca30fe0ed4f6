"""Family-wise error control over an ordered family of hypotheses.

Both procedures take one family of p-values (1-D) or several families tested in
the same order (2-D, one family per column, e.g. the thresholds of one grid tested
at several budgets), so the calibration of many budgets is one call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skctd.utils import check_fraction

__all__ = ["bonferroni_test", "fixed_sequence_test"]


def _check_pvalues(pvalues: Any) -> np.ndarray:
    p = np.asarray(pvalues, dtype=float)
    if p.ndim not in (1, 2):
        raise ValueError(
            "pvalues must be 1-D (one family of hypotheses) or 2-D (one family per "
            f"column), got shape {p.shape}."
        )
    return p


def fixed_sequence_test(pvalues: Any, delta: float) -> int | np.ndarray:
    """Fixed-sequence testing: how many leading hypotheses are certified.

    The hypotheses are tested in the given order, each at the full level ``delta``;
    testing stops at the first p-value above ``delta`` (a NaN p-value also stops
    it). This controls the family-wise error rate at ``delta`` when the order is
    fixed before the data are seen (Bauer, 1991).

    Parameters
    ----------
    pvalues : array-like of float, shape (m,) or (m, b)
        P-values in testing order (most conservative first). A 2-D array holds
        ``b`` families tested in the same order, one per column (e.g. one column
        per budget); each column is tested on its own.
    delta : float
        FWER level in (0, 1).

    Returns
    -------
    n_certified : int, or ndarray of int of shape (b,) for 2-D ``pvalues``
        The hypotheses ``0 .. n_certified - 1`` (of each column) are certified
        (rejected nulls).

    Examples
    --------
    >>> from skctd import fixed_sequence_test
    >>> fixed_sequence_test([0.01, 0.05, 0.2, 0.01], delta=0.1)
    2
    >>> fixed_sequence_test([[0.01, 0.2], [0.05, 0.01]], delta=0.1)
    array([2, 0])
    """
    delta = check_fraction(delta, "delta")
    p = _check_pvalues(pvalues)
    if p.shape[0] == 0:
        return 0 if p.ndim == 1 else np.zeros(p.shape[1], dtype=np.int64)
    fail = ~(p <= delta)
    n_certified = np.where(fail.any(axis=0), np.argmax(fail, axis=0), p.shape[0])
    return int(n_certified) if p.ndim == 1 else n_certified.astype(np.int64)


def bonferroni_test(pvalues: Any, delta: float) -> np.ndarray:
    """Bonferroni correction: certify each hypothesis with ``p <= delta / m``.

    Parameters
    ----------
    pvalues : array-like of float, shape (m,) or (m, b)
        P-values (NaN is never certified). A 2-D array holds ``b`` families of
        ``m`` hypotheses, one per column, each corrected on its own.
    delta : float
        FWER level in (0, 1).

    Returns
    -------
    certified : ndarray of bool, same shape as ``pvalues``

    Examples
    --------
    >>> from skctd import bonferroni_test
    >>> bonferroni_test([0.01, 0.05, 0.03], delta=0.1)
    array([ True, False,  True])
    """
    delta = check_fraction(delta, "delta")
    p = _check_pvalues(pvalues)
    if p.shape[0] == 0:
        return np.zeros(p.shape, dtype=bool)
    return p <= delta / p.shape[0]

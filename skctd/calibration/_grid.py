"""The candidate thresholds and the counting of rows above each of them.

The grid is ``+inf`` followed by descending quantiles of the signal. Each row is
placed between two consecutive thresholds once (:func:`threshold_bins`, a
``searchsorted`` into the short grid); a ``bincount`` and suffix sums then give,
for every threshold at once, the number of rows above it (:func:`count_above`).
That is O(n log m) for n rows and m thresholds, with no sort of the data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skctd.utils import check_positive_int, check_scores

__all__ = ["candidate_thresholds", "count_above", "threshold_bins"]


def candidate_thresholds(signal: Any, n_thresholds: int = 100) -> np.ndarray:
    """Candidate thresholds: ``+inf`` then descending quantiles of the signal.

    The policy of a threshold ``lam`` delegates the rows with ``signal > lam``, so
    ``+inf`` (first) never delegates and later thresholds delegate more and more.
    The quantiles are taken at ``n_thresholds`` evenly spaced levels in [0, 1] with
    ``method="lower"``, so each one is an observed signal value; duplicates (from
    ties in the signal) are dropped, so no two thresholds select the same rows of
    ``signal`` and the grid may hold fewer than ``n_thresholds + 1`` values.

    Parameters
    ----------
    signal : array-like of float, shape (n,)
        Delegation signal (higher = more worth delegating). Finite values.
    n_thresholds : int, default=100
        Number of quantile levels.

    Returns
    -------
    thresholds : ndarray of float, shape (<= n_thresholds + 1,)
        Strictly decreasing, ``thresholds[0] == inf``.

    Examples
    --------
    >>> from skctd import candidate_thresholds
    >>> candidate_thresholds([0.1, 0.1, 0.1, 0.5, 0.9], n_thresholds=5)
    array([inf, 0.9, 0.5, 0.1])
    """
    signal = check_scores(signal, "signal")
    n_thresholds = check_positive_int(n_thresholds, "n_thresholds")
    if signal.size == 0:
        raise ValueError("signal is empty; candidate thresholds need at least one row.")
    levels = np.linspace(0.0, 1.0, n_thresholds)
    q = np.quantile(signal, levels, method="lower")
    return np.concatenate(([np.inf], np.unique(q)[::-1]))


def threshold_bins(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Number of finite thresholds of ``grid`` strictly below each value.

    ``grid`` is +inf first, then strictly decreasing; ``searchsorted`` into this
    short grid costs O(n log m) and needs no sort of the data.
    """
    return np.searchsorted(grid[:0:-1], values, side="left")


def count_above(bins: np.ndarray, grid: np.ndarray, weights=None) -> np.ndarray:
    """For every threshold of ``grid``, the number (or the sum of ``weights``) of
    the values strictly above it, from their :func:`threshold_bins`: a
    ``bincount`` and suffix sums.
    """
    m = grid.shape[0]
    hist = np.bincount(bins, weights=weights, minlength=m)
    suffix = np.cumsum(hist[::-1])[::-1]  # suffix[i] = hist[i:].sum()
    # value > i-th smallest finite threshold  <=>  bins >= i + 1
    above = np.zeros(m, dtype=suffix.dtype)
    above[1:] = suffix[1:][::-1]
    return above

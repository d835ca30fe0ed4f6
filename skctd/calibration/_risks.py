"""Performance risk of the cascade at every candidate threshold.

The cascade scores a row with the expert (``d``) when it is delegated and with the
probe (``p``) otherwise. These functions return the risk of that score for every
threshold of the grid at once, from the rows' :func:`threshold_bins`.
"""

from __future__ import annotations

import warnings

import numpy as np

from skctd.calibration._grid import count_above

__all__ = ["accuracy_risks", "auroc_risks", "callable_risks", "risk_name"]

# Block size (thresholds x candidate scores) of the matrices built at once.
_MATRIX_BLOCK = 2_000_000


def accuracy_risks(bins, grid, y, p, d) -> np.ndarray:
    """1 - accuracy at 0.5 of the cascade of every threshold of ``grid``.

    A row's prediction is right with the probe or with ``d``; the accuracy of a
    threshold is the probe's plus the gain (``+1``, ``0`` or ``-1``) of every row it
    delegates, summed by :func:`count_above`.
    """
    n = y.shape[0]
    correct_p = (p >= 0.5) == y
    correct_d = (d >= 0.5) == y
    gain = correct_d.astype(np.int64) - correct_p
    # gains are small integers: the float sums are exact
    n_correct = int(correct_p.sum()) + np.rint(count_above(bins, grid, gain))
    return (n - n_correct) / n


def auroc_risks(bins, n_grid, y, p, d) -> np.ndarray:
    """1 - AUROC of the cascade of every threshold, without a sort per threshold.

    Each row has two candidate scores, ``p`` (kept) and ``d`` (delegated); at the
    threshold of index ``j`` exactly one is *active*: ``d`` when the row is
    delegated (``bins >= n_grid - j``), else ``p``. All 2n candidates are sorted
    once; the Mann-Whitney statistic of threshold ``j`` is then, over the active
    positive candidates, the number of active negative candidates below their tie
    group plus half of those inside it -- a cumulative count along the sorted
    order, O(n) per threshold (blocks of thresholds at a time).
    """
    n = y.shape[0]
    n1 = int(y.sum())
    n0 = n - n1
    if n1 == 0 or n0 == 0:
        warnings.warn(
            "The optimisation split holds a single class, so AUROC is undefined; "
            "every threshold gets performance risk 0.5 (chance). The Pareto filter "
            "then keeps only the thresholds that delegate nothing on that split, so "
            "the cascade will not delegate. Use more calibration data or "
            "performance_risk='accuracy'.",
            UserWarning,
            stacklevel=4,
        )
        return np.full(n_grid, 0.5)
    values = np.concatenate([p, d])
    order = np.argsort(values, kind="stable")
    v = values[order]
    entry_bin = np.concatenate([bins, bins])[order]
    entry_is_d = order >= n
    entry_pos = np.concatenate([y, y])[order]
    new_group = np.empty(2 * n, dtype=bool)
    new_group[0] = True
    new_group[1:] = v[1:] != v[:-1]
    starts = np.flatnonzero(new_group)
    ends = np.append(starts[1:], 2 * n)
    group = np.cumsum(new_group) - 1
    pos = np.flatnonzero(entry_pos)  # the positive candidates
    lo_pos, hi_pos = starts[group[pos]], ends[group[pos]]
    neg = ~entry_pos
    cut = n_grid - np.arange(n_grid)  # delegated at threshold j iff bin >= cut[j]
    risks = np.empty(n_grid)
    block = max(1, _MATRIX_BLOCK // (2 * n))
    for lo in range(0, n_grid, block):  # blocks of thresholds
        c = cut[lo : lo + block, None]
        active = np.where(entry_is_d, entry_bin >= c, entry_bin < c)
        below = np.zeros((c.shape[0], 2 * n + 1), dtype=np.int64)
        np.cumsum(active & neg, axis=1, out=below[:, 1:])
        # twice the contribution of each positive candidate, zero when inactive
        twice = (below[:, lo_pos] + below[:, hi_pos]) * active[:, pos]
        auc = 0.5 * twice.sum(axis=1) / (n1 * n0)
        risks[lo : lo + block] = 1.0 - auc
    return risks


def callable_risks(func, start, y_s, p_s, d_s) -> np.ndarray:
    n = y_s.shape[0]
    cols = np.arange(n)
    y_int = y_s.astype(int)
    out = np.empty(start.shape[0])
    for j, st in enumerate(start):  # a user function: one call per threshold
        scores = np.where(cols >= st, d_s, p_s)
        value = float(func(y_int, scores))
        if not np.isfinite(value):
            raise ValueError(
                f"performance_risk returned {value!r}; it must return a finite risk "
                "(lower is better, ideally in [0, 1])."
            )
        out[j] = value
    return out


def risk_name(performance_risk) -> str:
    """Name of a performance risk for results and reports (a callable's name)."""
    if callable(performance_risk):
        return getattr(performance_risk, "__name__", type(performance_risk).__name__)
    return str(performance_risk)

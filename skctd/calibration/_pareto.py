"""The Pareto filter of Pareto testing (Laufer-Goldshtein et al., 2023)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["pareto_efficient"]

# Block size (candidates x candidates) of the pairwise comparison for r > 2.
_MATRIX_BLOCK = 2_000_000


def pareto_efficient(risks: Any) -> np.ndarray:
    """Pareto-efficient rows of a risk matrix (every column is minimised).

    A row is efficient when no other row is ``<=`` in every column and ``<`` in at
    least one. Exact duplicates do not dominate each other, so every copy of an
    efficient point is kept (and every copy of a dominated point is dropped): the
    filter never has to break a tie between hypotheses that look the same on the
    optimisation split.

    Columns that order the rows the same way (equal dense ranks, e.g. a risk that
    is an increasing affine function of another) are merged first, as they do
    not change dominance. Two columns then take ``O(m log m)`` (lexicographic sort
    and a running minimum); more columns use a blocked ``O(m^2 r)`` pairwise
    comparison.

    Parameters
    ----------
    risks : array-like of float, shape (m, r)
        One row per candidate, one column per risk. No NaN.

    Returns
    -------
    efficient : ndarray of bool, shape (m,)

    Examples
    --------
    >>> from skctd import pareto_efficient
    >>> pareto_efficient([[0.0, 0.3], [0.1, 0.2], [0.2, 0.2], [0.1, 0.2], [0.3, 0.1]])
    array([ True,  True, False,  True,  True])
    """
    x = np.asarray(risks, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"risks must be a 2-D array (m, r), got shape {x.shape}.")
    if np.isnan(x).any():
        raise ValueError("risks contains NaN; Pareto dominance is undefined for NaN.")
    m, r = x.shape
    if m == 0:
        return np.zeros(0, dtype=bool)
    if r > 2:
        ranks: list = []
        for j in range(r):  # a few columns: their dense ranks, without repeats
            rank = np.unique(x[:, j], return_inverse=True)[1].ravel()
            if not any(np.array_equal(rank, q) for q in ranks):
                ranks.append(rank)
        x = np.column_stack(ranks).astype(float)
        r = x.shape[1]
    if r == 1:
        return x[:, 0] == x[:, 0].min()
    if r == 2:
        order = np.lexsort((x[:, 1], x[:, 0]))  # by first column, then second
        a, b = x[order, 0], x[order, 1]
        new_group = np.empty(m, dtype=bool)
        new_group[0] = True
        new_group[1:] = a[1:] != a[:-1]
        group_start = np.maximum.accumulate(np.where(new_group, np.arange(m), 0))
        group_min_b = b[group_start]  # smallest second risk among equal first risks
        running_min = np.minimum.accumulate(b)
        # smallest second risk among rows with a strictly smaller first risk
        before = np.where(
            group_start > 0, running_min[np.maximum(group_start - 1, 0)], np.inf
        )
        eff_sorted = (b == group_min_b) & (b < before)
        efficient = np.empty(m, dtype=bool)
        efficient[order] = eff_sorted
        return efficient
    dominated = np.zeros(m, dtype=bool)
    block = max(1, _MATRIX_BLOCK // max(1, m))
    for start in range(0, m, block):  # blocks of rows, not a per-row loop
        xi = x[start : start + block]  # (b, r): candidates
        le = np.ones((xi.shape[0], m), dtype=bool)  # j <= i in every column
        eq = np.ones((xi.shape[0], m), dtype=bool)  # j == i in every column
        for c in range(r):  # a few columns
            col = x[:, c][None, :]
            le &= col <= xi[:, c, None]
            eq &= col == xi[:, c, None]
        dominated[start : start + block] = np.any(le & ~eq, axis=1)
    return ~dominated

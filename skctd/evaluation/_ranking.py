"""Mean delegation value of the top-k rows by each signal (Figure 5)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from skctd.evaluation._results import TableMixin
from skctd.utils import check_scores

__all__ = ["RankingCurveResult", "dv_ranking_curve"]


@dataclass(repr=False, eq=False)
class RankingCurveResult(TableMixin):
    """Result of :func:`dv_ranking_curve`.

    Attributes
    ----------
    fractions : ndarray of shape (m,)
        Selection fractions ``k / N``.
    k : ndarray of int, shape (m,)
        Number of rows selected at each fraction.
    curves : dict of str to ndarray of shape (m,)
        Mean delegation value of the top-k rows by each signal, plus ``"random"``
        and ``"oracle"``.
    table : dict of str to ndarray
        Tidy version: ``signal``, ``fraction``, ``k``, ``mean_v``.
    """

    fractions: np.ndarray
    k: np.ndarray
    curves: dict
    table: dict

    def __repr__(self) -> str:
        return f"RankingCurveResult(signals={list(self.curves)}, points={self.k.size})"


def dv_ranking_curve(
    v: Any,
    signals: Mapping[str, Any],
    *,
    fractions: Any = None,
    n_permutations: int = 0,
    random_state: Any = 0,
) -> RankingCurveResult:
    """Mean delegation value of the top-k rows by each signal, against k/N.

    Parameters
    ----------
    v : array-like of shape (n,)
        True delegation values.
    signals : mapping of str to array-like of shape (n,)
        Ranking signals (higher = delegate first), e.g.
        ``{"DV probe": d, "Uncertainty": u}``. Ties go to the earlier row.
    fractions : array-like of float, optional
        Selection fractions in (0, 1]; default 100 points from 0.01 to 1.
        ``k = max(1, round(fraction * n))``.
    n_permutations : int, default=0
        ``0``: the ``"random"`` curve is its exact expectation, ``mean(v)`` at every
        k. Otherwise the mean over that many random orderings.
    random_state : int, RandomState instance or None, default=0
        Used when ``n_permutations > 0``.

    Returns
    -------
    result : RankingCurveResult
        Curves for every signal given, ``"random"`` and ``"oracle"`` (ranking by
        ``v`` itself, an upper bound at every k).

    Examples
    --------
    >>> from skctd.evaluation import dv_ranking_curve
    >>> res = dv_ranking_curve([1.0, -1.0, 0.5, 0.0], {"dv": [0.9, 0.1, 0.2, 0.8]},
    ...                        fractions=[0.25, 0.5, 1.0])
    >>> res.curves["dv"], res.curves["oracle"], res.curves["random"]
    (array([1.  , 0.5 , 0.125]), array([1.   , 0.75 , 0.125]), array([0.125, 0.125, 0.125]))
    """
    v = check_scores(v, "v")
    n = v.size
    if n == 0:
        raise ValueError("v is empty.")
    if fractions is None:
        fractions = np.linspace(0.01, 1.0, 100)
    fr = np.atleast_1d(np.asarray(fractions, dtype=float))
    if fr.ndim != 1 or not np.all((fr > 0) & (fr <= 1)):
        raise ValueError(f"fractions must lie in (0, 1], got {fractions!r}.")
    k = np.maximum(1, np.rint(fr * n).astype(np.int64))

    def top_mean(order: np.ndarray) -> np.ndarray:
        return np.cumsum(v[order])[k - 1] / k

    curves: dict[str, np.ndarray] = {}
    for name, sig in signals.items():
        s = check_scores(sig, f"signals[{name!r}]")
        if s.shape != v.shape:
            raise ValueError(
                f"signals[{name!r}] must have shape {v.shape}, got {s.shape}."
            )
        curves[str(name)] = top_mean(np.argsort(-s, kind="stable"))
    if int(n_permutations) > 0:
        rng = check_random_state(random_state)
        curves["random"] = np.mean(
            [top_mean(rng.permutation(n)) for _ in range(int(n_permutations))], axis=0
        )
    else:
        curves["random"] = np.full(k.size, v.mean())
    curves["oracle"] = top_mean(np.argsort(-v, kind="stable"))
    table = {
        "signal": np.repeat(np.array(list(curves), dtype=object), k.size),
        "fraction": np.tile(fr, len(curves)),
        "k": np.tile(k, len(curves)),
        "mean_v": np.concatenate(list(curves.values())),
    }
    return RankingCurveResult(fractions=fr, k=k, curves=curves, table=table)

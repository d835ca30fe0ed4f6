"""Mean delegation value of the top-k rows by each signal (Figure 5)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from skctd.evaluation._results import TableMixin
from skctd.utils import check_scores

__all__ = ["RankingCurveResult", "average_ranking_curves", "dv_ranking_curve"]


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
        and ``"oracle"`` (averaged over the splits for
        :func:`average_ranking_curves`).
    table : dict of str to ndarray
        Tidy version: ``signal``, ``fraction``, ``k``, ``mean_v`` (and ``se``).
    se : dict of str to ndarray of shape (m,)
        Standard error of each curve over the splits (NaN with one split).
    per_split : dict of str to ndarray of shape (n_repeats, m)
        Each curve on every split (one row for a single pool).
    n_repeats : int
        Number of splits averaged.
    """

    fractions: np.ndarray
    k: np.ndarray
    curves: dict
    table: dict
    se: dict = field(default_factory=dict)
    per_split: dict = field(default_factory=dict)
    n_repeats: int = 1

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
    return _result(fr, k, {name: c[None, :] for name, c in curves.items()})


def _result(fr: np.ndarray, k: np.ndarray, runs: dict) -> RankingCurveResult:
    """The result of the curves of one or several splits (``runs``: (R, m) each)."""
    curves, se = {}, {}
    for name, arr in runs.items():
        curves[name] = arr.mean(axis=0)
        if arr.shape[0] > 1:
            se[name] = arr.std(axis=0, ddof=1) / np.sqrt(arr.shape[0])
        else:
            se[name] = np.full(arr.shape[1], np.nan)
    table = {
        "signal": np.repeat(np.array(list(curves), dtype=object), k.size),
        "fraction": np.tile(fr, len(curves)),
        "k": np.tile(k, len(curves)),
        "mean_v": np.concatenate(list(curves.values())),
        "se": np.concatenate(list(se.values())),
    }
    n_repeats = next(iter(runs.values())).shape[0]
    return RankingCurveResult(
        fractions=fr, k=k, curves=curves, table=table, se=se, per_split=runs,
        n_repeats=n_repeats,
    )


def average_ranking_curves(results: Sequence[RankingCurveResult]) -> RankingCurveResult:
    """Average ranking curves measured on several splits (same fractions and k).

    Parameters
    ----------
    results : sequence of RankingCurveResult
        One :func:`dv_ranking_curve` per split, with the same signals, fractions
        and pool size.

    Returns
    -------
    result : RankingCurveResult
        Mean curves, their standard errors over the splits, and every split's
        curves in ``per_split``.

    Examples
    --------
    >>> from skctd.evaluation import average_ranking_curves, dv_ranking_curve
    >>> a = dv_ranking_curve([1.0, -1.0], {"dv": [0.9, 0.1]}, fractions=[0.5, 1.0])
    >>> b = dv_ranking_curve([0.0, 1.0], {"dv": [0.9, 0.1]}, fractions=[0.5, 1.0])
    >>> avg = average_ranking_curves([a, b])
    >>> avg.curves["dv"].tolist(), avg.se["dv"].tolist(), avg.n_repeats
    ([0.5, 0.25], [0.5, 0.25], 2)
    """
    results = list(results)
    if not results:
        raise ValueError("results is empty; give at least one ranking curve.")
    first = results[0]
    for i, res in enumerate(results[1:], start=1):
        if (
            not np.array_equal(res.k, first.k)
            or not np.array_equal(res.fractions, first.fractions)
            or list(res.per_split) != list(first.per_split)
        ):
            raise ValueError(
                f"results[{i}] has other fractions, k or signals than results[0]; "
                "rank pools of the same size with the same signals and fractions."
            )
    runs = {
        name: np.vstack([res.per_split[name] for res in results])
        for name in first.per_split
    }
    return _result(first.fractions, first.k, runs)

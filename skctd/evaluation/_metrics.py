"""Metrics of the cascade score for one or many delegation masks."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.stats import rankdata

from skctd.delegation import delegation_value
from skctd.evaluation._splits import check_pool
from skctd.utils import check_same_length, check_scores

__all__ = ["METRICS", "cascade_metrics"]


METRICS = ("auroc", "accuracy", "delegation_rate", "mean_v_delegated")


def _auroc_columns(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC of every column of ``scores`` (ties count one half), NaN for one class."""
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        warnings.warn(
            f"The evaluation rows hold a single class (y={int(y[0]) if y.size else '?'} "
            "only); AUROC is undefined and reported as NaN.",
            UserWarning,
            stacklevel=3,
        )
        return np.full(scores.shape[1], np.nan)
    ranks = rankdata(scores, axis=0)
    return (ranks[y].sum(axis=0) - n1 * (n1 + 1) / 2) / (n1 * n0)


def cascade_metrics(
    y: Any, probe_scores: Any, expert_scores: Any, delegated: Any, v: Any = None
) -> dict[str, np.ndarray]:
    """Metrics of the cascade score for one or many delegation masks.

    The cascade score of a row is the expert score when it is delegated and the
    probe score otherwise.

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels.
    probe_scores, expert_scores : array-like of shape (n,)
        ``P(y = 1 | x)`` of the probe and the expert.
    delegated : array-like of bool, shape (n,) or (n, m)
        One delegation mask per column.
    v : array-like of shape (n,), optional
        Delegation values; default: the continuous ones of ``y``, probe and expert.

    Returns
    -------
    metrics : dict of str to ndarray of shape (m,)
        ``auroc``, ``accuracy`` (at 0.5), ``delegation_rate`` and
        ``mean_v_delegated`` (NaN where nothing is delegated).

    Examples
    --------
    >>> from skctd.evaluation import cascade_metrics
    >>> m = cascade_metrics([1, 0, 1, 0], [0.4, 0.2, 0.9, 0.6], [0.9, 0.1, 0.8, 0.1],
    ...                     [True, False, False, True])
    >>> m["accuracy"], m["delegation_rate"], m["mean_v_delegated"]
    (array([1.]), array([0.5]), array([0.5]))
    """
    y, p, e = check_pool(y, probe_scores, expert_scores)
    d = np.asarray(delegated, dtype=bool)
    d = d.reshape(d.shape[0], -1)
    v = delegation_value(y, p, e) if v is None else check_scores(v, "v")
    check_same_length(y=y, delegated=d, v=v)
    s = np.where(d, e[:, None], p[:, None])
    n_del = d.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_v = np.where(n_del > 0, (v[:, None] * d).sum(axis=0) / n_del, np.nan)
    out = {
        "auroc": _auroc_columns(y, s),
        "accuracy": ((s >= 0.5) == y[:, None]).mean(axis=0),
        "delegation_rate": n_del / d.shape[0],
        "mean_v_delegated": mean_v,
    }
    return out

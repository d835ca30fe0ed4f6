"""Group-conditional delegation rates and delegation values (Table 1)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from skctd.delegation import delegation_value, topk_delegation_mask, uncertainty_signal
from skctd.evaluation._results import TableMixin
from skctd.evaluation._splits import calibration_masks, check_pool, protocol_splits
from skctd.evaluation._sweep import budget_sweep
from skctd.utils import check_fraction, check_scores

__all__ = ["GroupResult", "group_analysis", "group_table"]


@dataclass(repr=False, eq=False)
class GroupResult(TableMixin):
    """Result of :func:`group_table` / :func:`group_analysis`.

    Attributes
    ----------
    table : dict of str to ndarray
        One row per group: ``group``, ``n``, ``mean_v_all``, and for each method
        ``<method>``: ``mean_v_<method>`` (mean delegation value of its delegated
        rows in the group, NaN if none), ``rate_<method>`` (share of the group's
        rows delegated) and ``share_<method>`` (share of the method's delegations
        that fall in the group).
    methods : tuple of str
    alpha : float or None
        Budget (``group_analysis`` only).
    threshold : float or None
        CTD threshold (``group_analysis`` only).
    """

    table: dict
    methods: tuple
    alpha: float | None = None
    threshold: float | None = None

    def __repr__(self) -> str:
        return (
            f"GroupResult(groups={len(self.table['group'])}, methods={self.methods}, "
            f"alpha={self.alpha})"
        )


def group_table(v: Any, groups: Any, masks: Mapping[str, Any]) -> GroupResult:
    """Per-group delegation rates and mean delegation values.

    Parameters
    ----------
    v : array-like of shape (n,)
        Delegation values of the rows.
    groups : array-like of shape (n,)
        Group label of each row (any hashable values).
    masks : mapping of str to array-like of bool, shape (n,)
        Delegation mask of each method.

    Returns
    -------
    result : GroupResult

    Examples
    --------
    >>> from skctd.evaluation import group_table
    >>> res = group_table([0.5, -0.5, 1.0, 0.0], ["a", "a", "b", "b"],
    ...                   {"ctd": [True, False, True, True]})
    >>> res.table["mean_v_ctd"], res.table["rate_ctd"]
    (array([0.5, 0.5]), array([0.5, 1. ]))
    """
    v = check_scores(v, "v")
    g = np.asarray(groups)
    if g.shape != v.shape:
        raise ValueError(f"groups must have shape {v.shape}, got {g.shape}.")
    if not masks:
        raise ValueError("masks is empty; give at least one method's delegation mask.")
    names, inv = np.unique(g, return_inverse=True)
    counts = np.bincount(inv, minlength=names.size)
    table: dict[str, np.ndarray] = {
        "group": names.astype(object),
        "n": counts,
        "mean_v_all": np.bincount(inv, weights=v, minlength=names.size) / counts,
    }
    for m, mask in masks.items():
        d = np.asarray(mask, dtype=bool)
        if d.shape != v.shape:
            raise ValueError(f"masks[{m!r}] must have shape {v.shape}, got {d.shape}.")
        k = np.bincount(inv, weights=d, minlength=names.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            table[f"mean_v_{m}"] = np.where(
                k > 0, np.bincount(inv, weights=v * d, minlength=names.size) / k, np.nan
            )
            table[f"rate_{m}"] = k / counts
            table[f"share_{m}"] = (
                k / d.sum() if d.any() else np.full(names.size, np.nan)
            )
    return GroupResult(table=table, methods=tuple(masks))


def group_analysis(
    y: Any,
    probe_scores: Any,
    expert_scores: Any,
    dv_scores: Any,
    groups: Any,
    *,
    alpha: float = 0.2,
    delta: float = 0.1,
    batch_size: int = 128,
    calibration_mask: Any = None,
    calibration_size: float = 0.5,
    n_thresholds: int = 100,
    performance_risk: str = "accuracy",
    opt_fraction: float = 0.3,
    dv_kind: str = "continuous",
    shuffle: bool = True,
    random_state: Any = 0,
) -> GroupResult:
    """Group-conditional analysis at one budget (the paper's Table 1).

    On one calibration/evaluation split (the first split of :func:`budget_sweep`
    for the same ``random_state`` and ``calibration_mask``), calibrates CTD on the
    calibration half, runs Unc. top-k on the evaluation stream (shuffled as the
    sweep shuffles it, unless ``shuffle=False``), and
    tabulates per group of the evaluation half: the mean delegation value of all
    rows, of the CTD-delegated and of the Unc.-top-k-delegated rows, and the
    delegation rates (methods ``"ctd"`` and ``"unc_topk"``).

    Parameters
    ----------
    y, probe_scores, expert_scores, dv_scores : array-like of shape (n,)
        As in :func:`budget_sweep`.
    groups : array-like of shape (n,)
        Group label of each row (e.g. the source dataset).
    alpha : float, default=0.2
    delta : float, default=0.1
    batch_size : int, default=128
        Batch size of Unc. top-k.
    calibration_mask, calibration_size, n_thresholds, performance_risk, \
opt_fraction, dv_kind, shuffle, random_state
        As in :func:`budget_sweep`.

    Returns
    -------
    result : GroupResult

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.evaluation import group_analysis
    >>> rng = np.random.default_rng(0)
    >>> n = 2000
    >>> y = rng.integers(0, 2, n)
    >>> probe = rng.uniform(size=n)
    >>> expert = np.where(y == 1, 0.9, 0.1)
    >>> dv = np.where(y == 1, expert - probe, probe - expert)
    >>> groups = rng.choice(["hh", "tool"], n)
    >>> res = group_analysis(y, probe, expert, dv, groups)
    >>> list(res.table["group"])
    ['hh', 'tool']
    >>> bool(np.all(res.table["mean_v_ctd"] > res.table["mean_v_all"]))
    True
    """
    y, p, e, dv = check_pool(y, probe_scores, expert_scores, dv_scores=dv_scores)
    n = y.shape[0]
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups must have shape ({n},), got {g.shape}.")
    alpha = check_fraction(alpha, "alpha")
    # draw the split as budget_sweep does, so the same random_state gives the same one
    rng = check_random_state(random_state)
    cal = calibration_masks(
        n,
        calibration_mask=calibration_mask,
        calibration_size=calibration_size,
        random_state=rng,
    )[0]
    split = protocol_splits(
        n, calibration_mask=cal, opt_fraction=opt_fraction, shuffle=shuffle,
        random_state=copy.deepcopy(rng),
    )[0]
    sweep = budget_sweep(
        y,
        p,
        e,
        dv,
        calibration_mask=cal,
        alphas=[alpha],
        delta=delta,
        n_thresholds=n_thresholds,
        batch_sizes=[batch_size],
        performance_risk=performance_risk,
        opt_fraction=opt_fraction,
        dv_kind=dv_kind,
        methods=("ctd",),
        n_repeats=1,
        shuffle=shuffle,
        random_state=rng,
    )
    ev = split.evaluation  # the stream of the sweep's split, in its order
    thr = float(sweep.thresholds["ctd"][0, 0])
    u = uncertainty_signal(p[ev], np.sort(p[cal]))
    v = delegation_value(y[ev], p[ev], e[ev], kind=dv_kind)
    masks = {
        "ctd": dv[ev] > thr,
        "unc_topk": topk_delegation_mask(u, alpha, batch_size),
    }
    res = group_table(v, g[ev], masks)
    res.alpha = float(alpha)
    res.threshold = thr
    return res

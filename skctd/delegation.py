"""Delegation values, delegation signals and batched top-k delegation policies.

The *delegation value* of a row says how much the expert helps over the probe on
it; a DV probe is trained to predict it (Section 4.1 of the paper). The
*uncertainty signal* is the baseline of McKenzie et al. (2025). The batched top-k
policy is the uncalibrated baseline that delegates a fixed share of each batch.

All functions are pure numpy and vectorised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import rankdata

from skctd.calibration import candidate_thresholds
from skctd.utils import (
    check_budgets,
    check_cascade_arrays,
    check_fraction,
    check_positive_int,
    check_scores,
)

__all__ = [
    "choose_combine",
    "combined_scores",
    "delegation_value",
    "effective_delegation_capacity",
    "topk_delegation_mask",
    "uncertainty_signal",
]

_KINDS = ("continuous", "binary")
_COMBINE = ("replace", "average")
# entries (rows x thresholds) of the score matrices built at once
_BLOCK = 2_000_000
# tolerance for floor(alpha * B) computed in floating point (0.29 * 100 -> 29)
_EPS = 1e-9


def delegation_value(
    y: Any, probe_scores: Any, expert_scores: Any, kind: str = "continuous"
) -> np.ndarray:
    """Delegation value of each row: how much the expert helps over the probe.

    With ``P_m(y | x) = score`` if ``y = 1`` else ``1 - score``:

    - ``kind="continuous"`` (the paper's Eq. 6): ``v = P_e(y | x) - P_p(y | x)``,
      in [-1, 1];
    - ``kind="binary"``: ``v = 1`` if the probe is wrong and the expert right at the
      0.5 decision threshold, else ``0``. A model predicts the positive class when
      its score is ``>= 0.5`` (so a score of exactly 0.5 predicts 1), the same rule
      as the cascade's ``predict``.

    Parameters
    ----------
    y : array-like of shape (n,)
        Labels encoded as 0/1 (1 = positive / unsafe class).
    probe_scores, expert_scores : array-like of shape (n,)
        ``P(y = 1 | x)`` of the probe and of the expert, in [0, 1]. Use
        out-of-fold probe scores when the values train a DV model.
    kind : {"continuous", "binary"}, default="continuous"

    Returns
    -------
    v : ndarray of float, shape (n,)

    Examples
    --------
    >>> from skctd import delegation_value
    >>> y = [1, 0, 1, 0]
    >>> p = [0.3, 0.2, 0.5, 0.6]
    >>> e = [0.9, 0.4, 0.8, 0.7]
    >>> delegation_value(y, p, e)
    array([ 0.6, -0.2,  0.3, -0.1])
    >>> delegation_value(y, p, e, kind="binary")
    array([1., 0., 0., 0.])
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}.")
    y, p, e = check_cascade_arrays(y, probe_scores, expert_scores)
    if kind == "continuous":
        return np.where(y, e - p, p - e)
    probe_wrong = (p >= 0.5) != y
    expert_right = (e >= 0.5) == y
    return (probe_wrong & expert_right).astype(float)


def effective_delegation_capacity(
    y: Any, probe_scores: Any, expert_scores: Any, kind: str = "continuous"
) -> float:
    """Share of rows with a positive delegation value.

    Delegating more than this share necessarily includes rows where the expert is
    no better than the probe (Section 4.1 of the paper).

    Parameters
    ----------
    y, probe_scores, expert_scores, kind
        As in :func:`delegation_value`.

    Returns
    -------
    capacity : float
        ``mean(v > 0)``, in [0, 1].

    Examples
    --------
    >>> from skctd import effective_delegation_capacity
    >>> effective_delegation_capacity([1, 0, 1, 0], [0.3, 0.2, 0.5, 0.6],
    ...                               [0.9, 0.4, 0.8, 0.7])
    0.5
    """
    v = delegation_value(y, probe_scores, expert_scores, kind=kind)
    if v.size == 0:
        raise ValueError("y is empty; the capacity of no rows is undefined.")
    return float(np.mean(v > 0))


def uncertainty_signal(probe_scores: Any, reference_scores: Any) -> np.ndarray:
    """Uncertainty delegation signal ``u(x) = -|F(p(x)) - 0.5|``.

    ``F`` is the empirical CDF of ``reference_scores`` (the probe scores of the
    calibration data), ``F(t) = #{reference <= t} / m``. Rows whose probe score sits
    near the median of the reference get the highest signal (McKenzie et al., 2025).

    Parameters
    ----------
    probe_scores : array-like of shape (n,)
        Probe scores to turn into a signal.
    reference_scores : array-like of shape (m,)
        Reference probe scores defining ``F``; sorting them beforehand saves a sort.

    Returns
    -------
    u : ndarray of float, shape (n,)
        Values in [-0.5, 0]; higher = more uncertain = delegate first.

    Examples
    --------
    >>> from skctd import uncertainty_signal
    >>> uncertainty_signal([0.1, 0.45, 0.9], [0.2, 0.4, 0.5, 0.8])
    array([-0.5,  0. , -0.5])
    """
    p = check_scores(probe_scores, "probe_scores")
    ref = check_scores(reference_scores, "reference_scores")
    if ref.size == 0:
        raise ValueError("reference_scores is empty; the ECDF needs at least one row.")
    if ref.size > 1 and np.any(ref[1:] < ref[:-1]):
        ref = np.sort(ref)
    ecdf = np.searchsorted(ref, p, side="right") / ref.size
    return 0.0 - np.abs(ecdf - 0.5)  # 0.0 - x avoids a negative zero


def topk_delegation_mask(signal: Any, alpha: Any, batch_size: int) -> np.ndarray:
    """Batched top-k delegation over a stream (the paper's top-k baselines).

    The rows, in the given order, are cut into consecutive batches of
    ``batch_size``; in each batch the ``floor(alpha * B)`` rows with the highest
    signal are delegated. A last, partial batch of ``b`` rows delegates
    ``floor(alpha * b)``. Ties are broken deterministically: the earlier row wins.
    ``floor`` tolerates a relative rounding error of 1e-9 in ``alpha * B``.

    The rows are ranked within their batch once, whatever the number of budgets:
    with an array of budgets the masks of all of them cost one sort.

    Parameters
    ----------
    signal : array-like of shape (n,)
        Delegation signal (higher = delegate first).
    alpha : float or array-like of float of shape (m,)
        Share of each batch to delegate, in [0, 1]; several budgets give one
        column each.
    batch_size : int
        Batch size ``B`` >= 1.

    Returns
    -------
    mask : ndarray of bool, shape (n,), or (n, m) for an array of budgets
        True for delegated rows.

    Examples
    --------
    >>> from skctd import topk_delegation_mask
    >>> topk_delegation_mask([0.1, 0.9, 0.5, 0.5, 0.2, 0.7, 0.3], 0.5, 4)
    array([False,  True,  True, False, False,  True, False])
    >>> topk_delegation_mask([0.1, 0.9, 0.5, 0.5], [0.25, 0.5], 4).astype(int)
    array([[0, 0],
           [1, 1],
           [0, 1],
           [0, 0]])
    """
    s = check_scores(signal, "signal")
    scalar = np.ndim(alpha) == 0
    if scalar:
        alphas = np.array([check_fraction(alpha, "alpha", closed=True)])
    else:
        alphas = np.array(
            [
                check_fraction(a, f"alpha[{i}]", closed=True)
                for i, a in enumerate(np.asarray(alpha, dtype=object).ravel())
            ],
            dtype=float,
        )
    bsz = check_positive_int(batch_size, "batch_size")
    n = s.shape[0]
    rows = np.arange(n)
    batch = rows // bsz
    # within each batch: highest signal first, the earlier row first among ties
    order = np.lexsort((rows, -s, batch))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = rows - batch[order] * bsz
    sizes = np.minimum(bsz, n - np.arange(-(-n // bsz)) * bsz)  # rows of each batch
    k = np.floor(np.multiply.outer(sizes, alphas) * (1 + _EPS)).astype(np.int64)
    mask = rank[:, None] < k[batch]
    return mask[:, 0] if scalar else mask


def combined_scores(probe_scores: Any, expert_scores: Any, combine: str) -> np.ndarray:
    """The cascade's score of a row when it is delegated.

    ``combine="replace"``: the expert's score; ``"average"``: the mean of the
    expert's and the probe's (the paper's Section 2 mentions both).

    Parameters
    ----------
    probe_scores, expert_scores : array-like of shape (n,)
        ``P(y = 1 | x)`` of the probe and of the expert, in [0, 1].
    combine : {"replace", "average"}

    Returns
    -------
    scores : ndarray of float, shape (n,)

    Examples
    --------
    >>> from skctd import combined_scores
    >>> combined_scores([0.2, 0.6], [1.0, 0.0], "average")
    array([0.6, 0.3])
    """
    if combine not in _COMBINE:
        raise ValueError(f"combine must be one of {_COMBINE}, got {combine!r}.")
    p = check_scores(probe_scores, "probe_scores", unit=True)
    e = check_scores(expert_scores, "expert_scores", unit=True)
    if p.shape != e.shape:
        raise ValueError(
            f"probe_scores and expert_scores must have the same shape, got {p.shape} "
            f"and {e.shape}."
        )
    return e if combine == "replace" else 0.5 * (e + p)


def _auroc_risk_columns(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        return np.full(scores.shape[1], 0.5)  # AUROC undefined: chance
    ranks = rankdata(scores, axis=0)
    return 1.0 - (ranks[y].sum(axis=0) - n1 * (n1 + 1) / 2) / (n1 * n0)


def _risks(y, p, d, signal, grid, performance_risk) -> np.ndarray:
    """Risk of the cascade at every threshold of ``grid``, blocks of thresholds at
    a time (rows x thresholds matrices of at most ``_BLOCK`` entries)."""
    n, m = y.size, grid.size
    out = np.empty(m)
    step = max(1, _BLOCK // max(n, 1))
    for lo in range(0, m, step):
        delegated = signal[:, None] > grid[None, lo : lo + step]
        scores = np.where(delegated, d[:, None], p[:, None])
        if performance_risk == "accuracy":
            out[lo : lo + step] = 1.0 - ((scores >= 0.5) == y[:, None]).mean(axis=0)
        elif performance_risk == "auroc":
            out[lo : lo + step] = _auroc_risk_columns(y, scores)
        else:  # a user's callable: one call per threshold
            out[lo : lo + step] = [
                float(performance_risk(y.astype(int), col)) for col in scores.T
            ]
    return out


def choose_combine(
    signal: Any,
    y: Any,
    probe_scores: Any,
    expert_scores: Any,
    *,
    alpha: Any,
    performance_risk: str | Callable[[np.ndarray, np.ndarray], float] = "accuracy",
    n_thresholds: int = 100,
) -> Any:
    """Choose how delegated rows are scored (``"replace"`` or ``"average"``).

    For each way of combining, the cascade's performance risk is computed at every
    candidate threshold (:func:`skctd.calibration.candidate_thresholds` of
    ``signal``) whose delegation rate on these rows is at most ``alpha``; the way
    with the lower *mean* risk over those thresholds wins. Ties are broken by the
    mean of the other built-in risk (AUROC for ``performance_risk="accuracy"`` and
    accuracy for ``"auroc"``; not for a callable), then in favour of
    ``"replace"`` (the paper's rule). With a hard 0/1 expert both ways predict
    the same labels, so with the accuracy risk the AUROC decides.

    The mean over the thresholds in the budget, rather than the risk at the best
    one, because the optimisation rows are few: on XSTest (about 67 of them) the
    best single threshold's risk chose ``"average"`` for the weak experts in only
    40-50% of the splits for the two weakest refusal experts, for which averaging
    is clearly better on average; the mean in 86-88% (measured over 50 splits).

    Give it the *optimisation* rows of a calibration only. The
    :class:`~skctd.CalibratedDelegationCascade` with ``combine="auto"`` does so:
    the choice is then fixed before the testing rows are looked at, like the
    candidate thresholds and their order, and the finite-sample guarantee of the
    calibration is exact whatever is chosen.

    Why it matters: a hard 0/1 expert that replaces a graded probe score throws
    away the probe's ranking on the delegated rows, which can cost AUROC even when
    accuracy rises; averaging keeps the probe's ordering among rows with the same
    verdict.

    Parameters
    ----------
    signal : array-like of shape (n,)
        Delegation signal (higher = delegate first).
    y : array-like of shape (n,)
        0/1 labels.
    probe_scores, expert_scores : array-like of shape (n,)
        ``P(y = 1 | x)`` of the probe and of the expert, in [0, 1].
    alpha : float or array-like of float
        Budget(s) in (0, 1): only thresholds delegating at most this share of the
        rows compete (never delegating always does).
    performance_risk : {"accuracy", "auroc"} or callable, default="accuracy"
        ``1 - accuracy`` at 0.5, ``1 - AUROC``, or ``f(y, scores) -> risk``.
    n_thresholds : int, default=100
        Number of quantile levels of the candidate grid.

    Returns
    -------
    combine : str, or ndarray of str with one choice per budget

    Examples
    --------
    A hard 0/1 expert, right on 70% of the rows the signal ranks first: replacing
    and averaging are equally accurate (a 0/1 verdict decides either way), and
    averaging keeps more AUROC.

    >>> import numpy as np
    >>> from skctd import choose_combine
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400)
    >>> probe = np.clip(0.5 + (2 * y - 1) * rng.normal(0.1, 0.3, 400), 0.01, 0.99)
    >>> signal = rng.uniform(size=400)
    >>> right = rng.uniform(size=400) < np.where(signal > 0.7, 0.7, 0.3)
    >>> expert = np.where(right, y, 1 - y).astype(float)
    >>> choose_combine(signal, y, probe, expert, alpha=0.3)
    'average'
    >>> choose_combine(signal, y, probe, expert, alpha=[0.1, 0.3], performance_risk="auroc")
    array(['average', 'average'], dtype='<U7')
    """
    y, p, e, s = check_cascade_arrays(y, probe_scores, expert_scores, signal=signal)
    if s.size == 0:
        raise ValueError("signal is empty; choosing a combine rule needs rows.")
    scalar = np.ndim(alpha) == 0
    alphas = check_budgets(np.atleast_1d(alpha) if scalar else alpha)
    if not callable(performance_risk) and performance_risk not in ("accuracy", "auroc"):
        raise ValueError(
            "performance_risk must be 'accuracy', 'auroc' or a callable "
            f"(y, scores) -> risk, got {performance_risk!r}."
        )
    grid = candidate_thresholds(s, n_thresholds)
    # share of the rows above each threshold: a searchsorted into the sorted signal
    budget = 1.0 - np.searchsorted(np.sort(s), grid, side="right") / s.size
    allowed = budget[:, None] <= alphas[None, :]  # (thresholds, budgets)
    risks = [performance_risk]
    if performance_risk == "accuracy":
        risks.append("auroc")
    elif performance_risk == "auroc":
        risks.append("accuracy")
    cols = np.arange(alphas.size)
    n_allowed = allowed.sum(axis=0)  # >= 1: never delegating is always allowed
    mean = {}
    for c in _COMBINE:
        d = e if c == "replace" else 0.5 * (e + p)
        r = np.stack([_risks(y, p, d, s, grid, name) for name in risks])  # (k, m)
        # mean risk over the thresholds within the budget: (k, n_budgets)
        mean[c] = (r @ allowed) / n_allowed
    rep, avg = mean["replace"], mean["average"]
    # lexicographic: the first risk that differs decides; all equal -> replace
    differs = np.abs(rep - avg) > 1e-12
    first = np.argmax(differs, axis=0)
    decided = differs.any(axis=0)
    pick_avg = decided & (avg[first, cols] < rep[first, cols])
    out = np.where(pick_avg, "average", "replace")
    return str(out[0]) if scalar else out

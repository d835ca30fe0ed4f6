"""Delegation values, delegation signals and batched top-k delegation policies.

The *delegation value* of a row says how much the expert helps over the probe on
it; a DV probe is trained to predict it (Section 4.1 of the paper). The
*uncertainty signal* is the baseline of McKenzie et al. (2025). The batched top-k
policy is the uncalibrated baseline that delegates a fixed share of each batch.

All functions are pure numpy and vectorised.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skctd.utils import (
    check_cascade_arrays,
    check_fraction,
    check_positive_int,
    check_scores,
)

__all__ = [
    "delegation_value",
    "effective_delegation_capacity",
    "topk_delegation_mask",
    "uncertainty_signal",
]

_KINDS = ("continuous", "binary")
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


def topk_delegation_mask(signal: Any, alpha: float, batch_size: int) -> np.ndarray:
    """Batched top-k delegation over a stream (the paper's top-k baselines).

    The rows, in the given order, are cut into consecutive batches of
    ``batch_size``; in each batch the ``floor(alpha * B)`` rows with the highest
    signal are delegated. A last, partial batch of ``b`` rows delegates
    ``floor(alpha * b)``. Ties are broken deterministically: the earlier row wins.
    ``floor`` tolerates a relative rounding error of 1e-9 in ``alpha * B``.

    Parameters
    ----------
    signal : array-like of shape (n,)
        Delegation signal (higher = delegate first).
    alpha : float
        Share of each batch to delegate, in [0, 1].
    batch_size : int
        Batch size ``B`` >= 1.

    Returns
    -------
    mask : ndarray of bool, shape (n,)
        True for delegated rows.

    Examples
    --------
    >>> from skctd import topk_delegation_mask
    >>> topk_delegation_mask([0.1, 0.9, 0.5, 0.5, 0.2, 0.7, 0.3], 0.5, 4)
    array([False,  True,  True, False, False,  True, False])
    """
    s = check_scores(signal, "signal")
    alpha = check_fraction(alpha, "alpha", closed=True)
    bsz = check_positive_int(batch_size, "batch_size")
    n = s.shape[0]
    mask = np.zeros(n, dtype=bool)
    n_full = n // bsz

    def _top(block: np.ndarray, k: int) -> np.ndarray:
        # stable sort of -signal: highest first, earlier row first among ties
        order = np.argsort(-block, axis=1, kind="stable")[:, :k]
        out = np.zeros(block.shape, dtype=bool)
        np.put_along_axis(out, order, True, axis=1)
        return out

    k_full = int(np.floor(alpha * bsz * (1 + _EPS)))
    if n_full and k_full:
        mask[: n_full * bsz] = _top(
            s[: n_full * bsz].reshape(n_full, bsz), k_full
        ).ravel()
    tail = n - n_full * bsz
    k_tail = int(np.floor(alpha * tail * (1 + _EPS)))
    if tail and k_tail:
        mask[n_full * bsz :] = _top(s[None, n_full * bsz :], k_tail)[0]
    return mask

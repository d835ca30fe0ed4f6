"""The test pool and its splits.

The protocol calibrates on one part of the pool (the calibration half, drawn by
:func:`calibration_masks`) and evaluates on the rest; the calibration half is split
again into optimisation and testing rows, as :func:`skctd.calibrate_threshold`
does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from skctd.calibration import opt_test_split
from skctd.utils import check_cascade_arrays, check_fraction, check_positive_int

__all__ = [
    "ProtocolSplit",
    "calibration_masks",
    "check_pool",
    "protocol_splits",
    "split_calibration_half",
]


def check_pool(y, probe_scores, expert_scores, **signals) -> tuple[np.ndarray, ...]:
    """The arrays of a test pool, checked as by ``skctd.utils.check_cascade_arrays``.

    The protocol also needs at least 4 rows.
    """
    arrays = check_cascade_arrays(y, probe_scores, expert_scores, **signals)
    n = arrays[0].shape[0]
    if n < 4:
        raise ValueError(f"Need at least 4 rows for the protocol, got {n}.")
    return arrays


def calibration_masks(
    n: int,
    *,
    calibration_mask: Any = None,
    calibration_size: float = 0.5,
    n_splits: int = 1,
    random_state: Any = None,
) -> list[np.ndarray]:
    """Boolean masks of the calibration half of a test pool, one per split.

    The protocol calibrates on the rows of a mask and evaluates on the others.
    Either the mask is given (one split), or ``n_splits`` random masks of
    ``floor(calibration_size * n + 0.5)`` rows are drawn one after the other, each
    by ``random_state.permutation(n)`` -- the splits :func:`budget_sweep`,
    :func:`validate_guarantee`, :func:`group_analysis` and
    :func:`skctd.evaluate_cascade` draw for the same ``random_state``.

    Parameters
    ----------
    n : int
        Number of rows of the pool.
    calibration_mask : array-like of bool, shape (n,), optional
        A fixed calibration half (at least 2 calibration and 1 evaluation row);
        returned as the only mask.
    calibration_size : float, default=0.5
        Share of the rows drawn for calibration when ``calibration_mask`` is None,
        in (0, 1).
    n_splits : int, default=1
        Number of random masks (1 with a fixed ``calibration_mask``).
    random_state : int, RandomState instance or None, default=None
        A ``RandomState`` instance is advanced, so the draws that follow (e.g. the
        optimisation/testing split of each calibration half) continue its stream.

    Returns
    -------
    masks : list of ndarray of bool, shape (n,)
        ``True`` for the calibration rows of each split.

    Examples
    --------
    >>> from skctd.evaluation import calibration_masks
    >>> masks = calibration_masks(6, n_splits=2, random_state=0)
    >>> [m.astype(int).tolist() for m in masks]
    [[0, 1, 1, 0, 0, 1], [0, 1, 0, 1, 1, 0]]
    """
    n_splits = check_positive_int(n_splits, "n_splits")
    if calibration_mask is not None:
        m = np.asarray(calibration_mask)
        if m.dtype != bool or m.shape != (n,):
            raise ValueError(
                f"calibration_mask must be a boolean array of shape ({n},), got "
                f"dtype {m.dtype} and shape {m.shape}."
            )
        if m.sum() < 2 or (~m).sum() < 1:
            raise ValueError(
                "calibration_mask must leave at least 2 calibration rows and 1 "
                "evaluation row."
            )
        if n_splits != 1:
            raise ValueError(
                "n_splits > 1 draws random splits; it cannot be combined with a "
                "fixed calibration_mask."
            )
        return [m]
    size = check_fraction(calibration_size, "calibration_size")
    n_cal = int(math.floor(size * n + 0.5))
    if n_cal < 2 or n_cal > n - 1:
        raise ValueError(
            f"calibration_size={calibration_size} leaves {n_cal} of {n} rows for "
            "calibration; both halves need rows."
        )
    rng = check_random_state(random_state)
    masks = []
    for _ in range(n_splits):
        m = np.zeros(n, dtype=bool)
        m[rng.permutation(n)[:n_cal]] = True
        masks.append(m)
    return masks


def split_calibration_half(
    cal_idx: np.ndarray, opt_fraction: float, rng: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """Optimisation and testing rows (pool indices) of one calibration half.

    The split :func:`skctd.calibration.opt_test_split` draws, applied to the pool
    rows ``cal_idx``; ``rng`` is advanced.
    """
    opt, test = opt_test_split(
        cal_idx.size, opt_fraction=opt_fraction, random_state=rng
    )
    return cal_idx[opt], cal_idx[test]


@dataclass(frozen=True)
class ProtocolSplit:
    """One calibration/evaluation split of the protocol (pool row indices).

    ``calibration`` is the boolean mask of the calibration half, ``opt`` and
    ``test`` its optimisation and testing rows, ``evaluation`` the evaluation rows
    in the order of the stream that the batched top-k baselines read (shuffled
    when the protocol shuffles).
    """

    calibration: np.ndarray
    opt: np.ndarray
    test: np.ndarray
    evaluation: np.ndarray


def protocol_splits(
    n: int,
    *,
    calibration_mask: Any = None,
    calibration_size: float = 0.5,
    n_repeats: int = 1,
    opt_fraction: float = 0.3,
    shuffle: bool = True,
    random_state: Any = None,
) -> list[ProtocolSplit]:
    """The ``n_repeats`` splits of the many-split protocol.

    Split after split, from ``random_state``: the calibration half (a random
    ``calibration_size`` share drawn as :func:`calibration_masks` draws it, or the
    given ``calibration_mask`` for the first split and random halves of the same
    size for the others), the optimisation/testing split of that half
    (:func:`split_calibration_half`) and, with ``shuffle``, a random order of the
    evaluation rows (``random_state.permutation``). Without ``shuffle`` the
    evaluation rows keep the pool's order. The first split is the same for every
    ``n_repeats``.
    """
    n_repeats = check_positive_int(n_repeats, "n_repeats")
    opt_fraction = check_fraction(opt_fraction, "opt_fraction")
    rng = check_random_state(random_state)
    size = calibration_size
    if calibration_mask is not None:
        first = calibration_masks(n, calibration_mask=calibration_mask)[0]
        size = float(first.sum()) / n
    out = []
    for r in range(n_repeats):
        if r == 0 and calibration_mask is not None:
            cal = first
        else:
            cal = calibration_masks(n, calibration_size=size, random_state=rng)[0]
        opt, test = split_calibration_half(np.flatnonzero(cal), opt_fraction, rng)
        ev = np.flatnonzero(~cal)
        if shuffle:
            ev = ev[rng.permutation(ev.size)]
        out.append(ProtocolSplit(cal, opt, test, ev))
    return out

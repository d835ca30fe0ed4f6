"""Anytime-valid confidence sequences for a bounded mean, in pure numpy.

:class:`ConfidenceSequence` combines two confidence sequences for observations
``x_i`` in [0, 1] with conditional means ``mu_i`` (given the past):

- the **running** bound of Howard, Ramdas, McAuliffe & Sekhon (2021): by their
  Theorem 4 (empirical Bernstein), ``S_t = sum_i (x_i - mu_i)`` is
  sub-exponential with variance process ``V_t = sum_i (x_i - xhat_{i-1})^2`` for
  any predictable ``xhat`` in [0, 1] and scale ``c = 1``, so with their
  polynomial stitching boundary (eq. 10, :func:`stitching_boundary`)

      P( exists t: |sum x_i / t - mean_t(mu)| > B_a(V_t) / t ) <= 2a ,

  a band around the running mean that holds at every ``t`` at once and shrinks
  like ``sqrt(V_t log log V_t) / t``;
- a **reactive** lower bound, present when a ``limit`` is monitored: the
  predictable-plug-in empirical-Bernstein supermartingale of Waudby-Smith &
  Ramdas (2023, Theorem 2),

      M_t(m) = prod_i exp( l_i (x_i - m) - (x_i - e_{i-1})^2 psi(l_i) ),
      psi(l) = -log(1 - l) - l ,

  which is a nonnegative supermartingale with ``M_0 = 1`` whenever every
  ``mu_i <= m``, for any predictable bets ``l_i`` in [0, 1) and centres
  ``e_{i-1}`` in [0, 1] (Fan, Grama & Liu, 2015: ``exp(l y - psi(l) y^2) <= 1 +
  l y`` for ``y >= -1``). Its bets are placed only while an exponentially
  weighted (EW) mean ``e`` of the last ~``window`` rows is above the limit, with
  the growth-optimal size ``l = D / (D + s^2)`` (``D`` = EW mean - limit, ``s^2``
  its EW squared deviation). By Ville's inequality the bound
  ``(sum l_i x_i - log(1/a) - sum (x_i - e_{i-1})^2 psi(l_i)) / sum l_i`` is
  below the largest ``mu_i`` at every ``t`` with probability ``>= 1 - a``. A
  rise of the mean after a long quiet period is then detected within a few
  ``window``-s of rows, instead of when the running mean has caught up.

With a limit, the lower bound is the larger of the two, each at half the level
(a union bound): the alarm ``lower > limit`` has probability at most ``level``
over the whole stream when every row's mean is at most ``limit``. Everything is
a running sum: an update costs O(1) per row, the state is a few floats whatever
the length of the stream, and a batch is processed with cumulative sums (no
Python loop per row).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from sklearn.utils import Bunch

from skctd.utils import check_fraction, check_positive_int

__all__ = ["ConfidenceSequence", "ew_filter", "stitching_boundary"]

# Largest exponent used when an EW filter is evaluated with cumulative sums.
_MAX_EXPONENT = 40.0
# Batches up to this size are updated row by row on Python floats.
_FEW = 16
# The stitching boundary's parameters (Howard et al. 2021, eq. 10): the smallest
# intrinsic time it is tuned for, the spacing of its epochs and the exponent that
# spreads the error over them (their defaults), and the sub-exponential scale of a
# [0, 1] observation minus a predictable value in [0, 1].
_V_MIN, _ETA, _S, _SCALE = 10.0, 2.0, 1.4, 1.0
_K1 = (_ETA**0.25 + _ETA**-0.25) / math.sqrt(2.0)
_K2 = (math.sqrt(_ETA) + 1.0) / 2.0


def stitching_boundary(
    v: Any,
    level: float,
    *,
    v_min: float = _V_MIN,
    scale: float = _SCALE,
    s: float = _S,
    eta: float = _ETA,
) -> np.ndarray:
    """The polynomial stitching boundary of Howard et al. (2021, eq. 10).

    For a process ``S_t`` that is sub-gamma (or sub-exponential) with variance
    process ``V_t`` and scale ``c``, ``P(exists t: S_t >= B(max(V_t, v_min))) <=
    level`` where

        B(v) = sqrt(k1^2 v l(v) + (k2 c l(v))^2) + k2 c l(v),
        l(v) = s log log(eta v / v_min) + log(zeta(s) / (level log(eta)^s)),
        k1 = (eta^(1/4) + eta^(-1/4)) / sqrt(2),  k2 = (sqrt(eta) + 1) / 2.

    Parameters
    ----------
    v : float or array-like
        Intrinsic time (the variance process); values below ``v_min`` count as
        ``v_min``.
    level : float in (0, 1)
        Crossing probability.
    v_min : float, default=10
        Intrinsic time from which the boundary is tight.
    scale : float, default=1
        Sub-exponential scale ``c`` (1 for a [0, 1] observation minus a
        predictable value in [0, 1]).
    s : float > 1, default=1.4
    eta : float > 1, default=2
        How the error is spread over the epochs and their geometric spacing.

    Returns
    -------
    boundary : ndarray

    Examples
    --------
    The values of the reference implementation's tests (confseq):

    >>> from skctd.monitor import stitching_boundary
    >>> round(float(stitching_boundary(100, 0.05, v_min=10, scale=3)), 5)
    64.48755
    >>> round(float(stitching_boundary(100, 0.05, v_min=10, scale=-1)), 5)
    28.99389
    """
    from scipy.special import zeta

    v = np.maximum(np.asarray(v, dtype=float), v_min)
    k1 = (eta**0.25 + eta**-0.25) / math.sqrt(2.0)
    k2 = (math.sqrt(eta) + 1.0) / 2.0
    ell = (
        s * np.log(np.log(eta * v / v_min))
        + math.log(float(zeta(s)) / math.log(eta) ** s)
        + math.log(1.0 / level)
    )
    term = k2 * scale * ell
    return np.sqrt(k1 * k1 * v * ell + term * term) + term


def ew_filter(u: np.ndarray, decay: float, init: np.ndarray | float) -> np.ndarray:
    """Exponentially weighted recursion ``y_i = decay * y_{i-1} + (1 - decay) * u_i``.

    Vectorised along the first axis with cumulative sums, in chunks short enough
    that ``decay ** -chunk`` stays far from overflow.

    Parameters
    ----------
    u : ndarray of shape (n,) or (n, k)
        Inputs, one row per time step.
    decay : float in [0, 1)
        Weight of the previous value.
    init : float or ndarray of shape (k,)
        ``y_0``, the value before the first row.

    Returns
    -------
    y : ndarray, same shape as ``u``
        ``y_1, ..., y_n``.

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.monitor._sequences import ew_filter
    >>> ew_filter(np.array([1.0, 1.0, 0.0]), 0.5, 0.0)
    array([0.5  , 0.75 , 0.375])
    """
    u = np.asarray(u, dtype=float)
    n = u.shape[0]
    out = np.empty_like(u)
    prev = np.asarray(init, dtype=float)
    if n == 0:
        return out
    if decay == 0.0:
        out[...] = u
        return out
    log_decay = math.log(decay)
    chunk = max(1, int(_MAX_EXPONENT / -log_decay))
    for start in range(0, n, chunk):  # one pass per chunk of ~40 windows
        block = u[start : start + chunk]
        k = np.arange(1, block.shape[0] + 1, dtype=float)
        grow = np.exp(-log_decay * k)  # decay ** -k
        if block.ndim > 1:
            grow = grow.reshape((-1,) + (1,) * (block.ndim - 1))
        acc = np.cumsum(block * grow, axis=0) * (1.0 - decay)
        out[start : start + block.shape[0]] = (prev + acc) / grow
        prev = out[start + block.shape[0] - 1]
    return out


def _check_unit(x: Any, name: str) -> np.ndarray:
    if isinstance(x, (float, int, np.floating, np.integer, np.bool_)):  # one row
        v = float(x)
        if not 0.0 <= v <= 1.0:  # also rejects NaN
            raise ValueError(f"{name} must lie in [0, 1], got {x!r}.")
        return np.array([v])
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numbers in [0, 1].") from exc
    arr = arr.reshape(-1) if arr.ndim == 0 else arr
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got an array of shape {arr.shape}.")
    bad = ~np.isfinite(arr) | (arr < 0.0) | (arr > 1.0)
    if bad.any():
        rows = np.flatnonzero(bad)[:10].tolist()
        raise ValueError(
            f"{name} must lie in [0, 1] (scale costs by their maximum first); "
            f"rows {rows} do not."
        )
    return arr


def _psi(lam: np.ndarray) -> np.ndarray:
    return -np.log1p(-lam) - lam


class ConfidenceSequence:
    """Anytime-valid confidence sequence for the mean of a stream in [0, 1].

    The running empirical-Bernstein bound of Howard et al. (2021) around the
    running mean, plus, when a ``limit`` is monitored, the reactive
    predictable-plug-in bound of Waudby-Smith & Ramdas (2023) that detects
    quickly when the mean rises above it (see the module description). Each
    bound is valid simultaneously over all times, so it may be checked after
    every row: ``P(exists t: lower_t > mean) <= level`` and
    ``P(exists t: upper_t < mean) <= level``, where *mean* is the average of the
    rows' conditional means so far; ``lower_`` is moreover below the largest of
    them. Under drift the reactive bound follows the recent rows while the band
    ``[lower_running_, upper_]`` describes the average since the start.

    The state is a few running sums: an update costs O(1) per row and the
    memory does not grow with the stream.

    Parameters
    ----------
    level : float in (0, 1), default=0.05
        Error probability of each bound, over the whole stream.
    limit : float in (0, 1), optional
        The value the mean must not exceed (e.g. the delegation budget).
        When given, the lower bound also uses reactive bets and ``alarm_row_``
        records the first row at which ``lower > limit``.
    window : int, default=250
        Effective number of recent rows of the reactive bets' EW estimates.
    truncation : float in (0, 1), default=0.5
        Largest reactive bet (WSR's ``c``).

    Attributes
    ----------
    n_ : int
        Rows seen.
    estimate_ : float
        Running mean of the rows seen (0.5 before any row).
    recent_ : float
        EW mean of the last ~``window`` rows.
    lower_ : float
        Current lower bound: the larger of the running and reactive bounds
        (0 before any row). After a rise it may exceed ``upper_``, which
        bounds the average since the start.
    lower_running_, upper_ : float
        Current band around the running mean (0 and 1 before any row).
    alarm_row_ : int or None
        1-based row at which ``lower > limit`` first held (None if never).

    See Also
    --------
    stitching_boundary : The running bound's boundary.
    reference_confidence_sequence : The same computation as a plain loop.

    References
    ----------
    Howard, S. R., Ramdas, A., McAuliffe, J. & Sekhon, J. (2021). Time-uniform,
    nonparametric, nonasymptotic confidence sequences. Annals of Statistics.
    Waudby-Smith, I. & Ramdas, A. (2023). Estimating means of bounded random
    variables by betting. JRSS B.

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.monitor import ConfidenceSequence
    >>> rng = np.random.default_rng(0)
    >>> cs = ConfidenceSequence(level=0.05, limit=0.2)
    >>> out = cs.update(rng.random(5000) < 0.15)    # below the limit: quiet
    >>> cs.alarm_row_ is None, bool(cs.lower_running_ < 0.15 < cs.upper_)
    (True, True)
    >>> out = cs.update(rng.random(3000) < 0.35)    # the rate rises
    >>> 5000 < cs.alarm_row_ < 5600
    True
    """

    def __init__(
        self,
        level: float = 0.05,
        *,
        limit: float | None = None,
        window: int = 250,
        truncation: float = 0.5,
    ) -> None:
        self.level = check_fraction(level, "level")
        self.limit = None if limit is None else check_fraction(limit, "limit")
        self.window = check_positive_int(window, "window")
        if (
            isinstance(truncation, bool)
            or not isinstance(truncation, numbers.Real)
            or not 0.0 < truncation < 1.0
        ):
            raise ValueError(
                f"truncation must be a number strictly between 0 and 1, got "
                f"{truncation!r}."
            )
        self.truncation = float(truncation)
        from scipy.special import zeta

        # l(v) = s log log(eta v / v_min) + const(level) of the stitching boundary
        base = math.log(float(zeta(_S)) / math.log(_ETA) ** _S)
        self._const_lo = base + self._log_lower
        self._const_up = base + math.log(1.0 / self.level)
        self.reset()

    # ----------------------------------------------------------------- state
    def reset(self) -> None:
        """Forget every row: start a new sequence (and a new test) from here."""
        self.n_ = 0
        self._sum = 0.0  # sum of x
        self._var = 0.0  # V_t = sum (x - xhat_{t-1})^2, xhat = (1/2 + sum x) / (t + 1)
        # reactive bets: EW mean and squared deviation, sums of the bound
        self._ew_mean = 0.5 if self.limit is None else self.limit
        self._ew_var = 0.25
        self._rlam = 0.0
        self._rlam_x = 0.0
        self._rpen = 0.0
        self.lower_ = 0.0
        self.lower_running_ = 0.0
        self.upper_ = 1.0
        self.alarm_row_: int | None = None

    @property
    def estimate_(self) -> float:
        return self._sum / self.n_ if self.n_ else 0.5

    @property
    def recent_(self) -> float:
        return float(self._ew_mean)

    @property
    def alarm(self) -> bool:
        """Whether ``lower > limit`` has held at some row."""
        return self.alarm_row_ is not None

    def e_value(self, m: float | None = None) -> float:
        """The reactive e-process of the null "every row's mean is at most ``m``".

        ``M_t(m)`` of the module description: a nonnegative supermartingale with
        initial value 1 under that null, so ``P(exists t: e_value >= 1 / a) <=
        a`` for every ``a``. The reactive lower bound exceeds ``m`` exactly when
        ``e_value(m) > 2 / level``.

        Parameters
        ----------
        m : float in [0, 1], optional
            Default: ``limit``.

        Returns
        -------
        e : float
        """
        if self.limit is None:
            raise ValueError("Only a sequence with a limit has reactive bets.")
        m = self.limit if m is None else m
        return math.exp(min(self._rlam_x - m * self._rlam - self._rpen, 700.0))

    @property
    def _log_lower(self) -> float:
        # the lower bound is split between running and reactive bounds
        split = 2.0 if self.limit is not None else 1.0
        return math.log(split / self.level)

    def _boundary(self, v, const):
        v = np.maximum(v, _V_MIN)
        ell = _S * np.log(np.log(_ETA * v / _V_MIN)) + const
        term = _K2 * _SCALE * ell
        return np.sqrt(_K1 * _K1 * v * ell + term * term) + term

    # ---------------------------------------------------------------- update
    def update(self, x: Any) -> Bunch:
        """Add one row or a batch of rows, in order.

        Parameters
        ----------
        x : float or array-like of shape (n,)
            Observations in [0, 1] (e.g. 1 = delegated).

        Returns
        -------
        bounds : Bunch
            Per row of the batch: ``lower`` (the alarm bound: the larger of the
            running and the reactive lower bounds), ``lower_running`` and
            ``upper`` (the band around the running mean), ``estimate``
            (running mean), ``recent`` (EW mean) and ``row`` (1-based position
            in the stream). ``alarm_row`` is the row of the batch where
            ``lower > limit`` held for the first time (None if not in this
            batch).
        """
        if isinstance(x, (float, int, np.floating, np.integer, np.bool_)):
            v = float(x)  # one row: no array at all until the result
            if not 0.0 <= v <= 1.0:  # also rejects NaN
                raise ValueError(f"x must lie in [0, 1], got {x!r}.")
            return self._update_few([v])
        if (
            isinstance(x, np.ndarray)
            and x.ndim == 1
            and x.size <= _FEW
            and x.dtype.kind in "biuf"
        ):  # a few rows: plain floats beat numpy's per-call overhead
            vals = x.astype(float, copy=False).tolist()
            if all(0.0 <= v <= 1.0 for v in vals):  # also rejects NaN
                return self._update_few(vals)
        x = _check_unit(x, "x")
        if x.size <= _FEW:
            return self._update_few(x.tolist())
        out = self._update_many(x)
        out.alarm_row = None
        if self.limit is not None and self.alarm_row_ is None:
            above = out.lower > self.limit
            if above.any():
                out.alarm_row = self.alarm_row_ = int(out.row[above.argmax()])
        return out

    def _update_many(self, x: np.ndarray) -> Bunch:
        """The update with cumulative sums: O(1) per row, no Python loop per row."""
        n = x.size
        rows = self.n_ + np.arange(1, n + 1, dtype=np.int64)
        i = rows.astype(float)

        # running bound: S_t / t -+ B(V_t) / t
        total = self._sum + np.cumsum(x)
        total_prev = np.concatenate(([self._sum], total[:-1]))
        xhat_prev = (0.5 + total_prev) / i  # predictable running mean
        var = self._var + np.cumsum((x - xhat_prev) ** 2)
        mean = total / i
        lower_running = np.clip(mean - self._boundary(var, self._const_lo) / i, 0, 1)
        upper = np.clip(mean + self._boundary(var, self._const_up) / i, 0.0, 1.0)
        lower = lower_running

        # reactive bets: EW mean / variance of the recent rows, lagged by one
        decay = 1.0 - 1.0 / self.window
        ew_mean = ew_filter(x, decay, self._ew_mean)
        ew_mean_prev = np.concatenate(([self._ew_mean], ew_mean[:-1]))
        dev2 = (x - ew_mean_prev) ** 2
        ew_var = ew_filter(dev2, decay, self._ew_var)
        ew_var_prev = np.concatenate(([self._ew_var], ew_var[:-1]))
        if self.limit is not None:
            gap = np.maximum(ew_mean_prev - self.limit, 0.0)
            rlam = np.minimum(gap / (gap + ew_var_prev + 1e-12), self.truncation)
            rlam_cum = self._rlam + np.cumsum(rlam)
            rlam_x_cum = self._rlam_x + np.cumsum(rlam * x)
            rpen_cum = self._rpen + np.cumsum(dev2 * _psi(rlam))
            with np.errstate(divide="ignore", invalid="ignore"):
                rlower = (rlam_x_cum - self._log_lower - rpen_cum) / rlam_cum
            rlower[rlam_cum <= 0.0] = -np.inf
            lower = np.clip(np.maximum(lower, rlower), 0.0, 1.0)
            self._rlam = float(rlam_cum[-1])
            self._rlam_x = float(rlam_x_cum[-1])
            self._rpen = float(rpen_cum[-1])

        self.n_ = int(rows[-1])
        self._sum = float(total[-1])
        self._var = float(var[-1])
        self._ew_mean = float(ew_mean[-1])
        self._ew_var = float(ew_var[-1])
        self.lower_ = float(lower[-1])
        self.lower_running_ = float(lower_running[-1])
        self.upper_ = float(upper[-1])
        return Bunch(
            lower=lower,
            lower_running=lower_running,
            upper=upper,
            estimate=mean,
            recent=ew_mean,
            row=rows,
        )

    def _update_few(self, x: list[float]) -> Bunch:
        """The same update, row by row on Python floats (for a few rows)."""
        n = len(x)
        log_lo = self._log_lower
        c, limit = self.truncation, self.limit
        w = 1.0 / self.window
        k1sq, k2 = _K1 * _K1, _K2 * _SCALE
        cols: list[tuple[float, ...]] = []
        for xt in x:
            t = self.n_ + 1
            xhat = (0.5 + self._sum) / t
            self._sum += xt
            self._var += (xt - xhat) ** 2
            v = max(self._var, _V_MIN)
            loglog = _S * math.log(math.log(_ETA * v / _V_MIN))
            ell_lo, ell_up = loglog + self._const_lo, loglog + self._const_up
            b_lo = math.sqrt(k1sq * v * ell_lo + (k2 * ell_lo) ** 2) + k2 * ell_lo
            b_up = math.sqrt(k1sq * v * ell_up + (k2 * ell_up) ** 2) + k2 * ell_up
            mean = self._sum / t
            lower_running = min(max(mean - b_lo / t, 0.0), 1.0)
            upper = min(max(mean + b_up / t, 0.0), 1.0)
            lower = lower_running
            dev2 = (xt - self._ew_mean) ** 2
            if limit is not None:
                gap = max(self._ew_mean - limit, 0.0)
                r = min(gap / (gap + self._ew_var + 1e-12), c)
                self._rlam += r
                self._rlam_x += r * xt
                self._rpen += dev2 * (-math.log1p(-r) - r)
                if self._rlam > 0.0:
                    reactive = (self._rlam_x - log_lo - self._rpen) / self._rlam
                    lower = min(max(lower, reactive), 1.0)
            self._ew_mean = (1.0 - w) * self._ew_mean + w * xt
            self._ew_var = (1.0 - w) * self._ew_var + w * dev2
            self.n_ = t
            cols.append((lower, lower_running, upper, mean, self._ew_mean, t))
        alarm_row = None
        if limit is not None and self.alarm_row_ is None:
            for col in cols:
                if col[0] > limit:
                    alarm_row = self.alarm_row_ = int(col[5])
                    break
        out = np.array(cols, dtype=float).reshape(n, 6)
        if n:
            self.lower_, self.lower_running_, self.upper_ = cols[-1][:3]
        return Bunch(
            alarm_row=alarm_row,
            lower=out[:, 0],
            lower_running=out[:, 1],
            upper=out[:, 2],
            estimate=out[:, 3],
            recent=out[:, 4],
            row=np.arange(self.n_ - n + 1, self.n_ + 1, dtype=np.int64),
        )

    def __repr__(self) -> str:
        lim = "" if self.limit is None else f", limit={self.limit:g}"
        return (
            f"ConfidenceSequence(level={self.level:g}{lim}, n={self.n_}, "
            f"estimate={self.estimate_:.4g}, interval=[{self.lower_running_:.4g}, "
            f"{self.upper_:.4g}])"
        )

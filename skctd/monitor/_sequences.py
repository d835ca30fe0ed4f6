"""Anytime-valid confidence sequences for a bounded mean, in pure numpy.

:class:`ConfidenceSequence` is the predictable-plug-in empirical-Bernstein
confidence sequence of Waudby-Smith & Ramdas (2023, Theorem 2), built on the
supermartingale of Howard et al. (2021): for observations ``x_i`` in [0, 1] with
conditional means ``mu_i``, any predictable bets ``lambda_i`` in [0, 1) and any
predictable centres ``c_i`` in [0, 1],

    M_t(m) = prod_i exp( lambda_i (x_i - m) - (x_i - c_i)^2 psi(lambda_i) ),
    psi(l) = -log(1 - l) - l,

is a nonnegative supermartingale with ``M_0 = 1`` whenever every ``mu_i <= m``
(Fan et al., 2015, eq. 4.11: ``exp(l y - psi(l) y^2) <= 1 + l y`` for ``y >= -1``).
By Ville's inequality ``P(exists t: M_t(m) >= 1/a) <= a``, so

    L_t = (sum l_i x_i - log(1/a) - sum (x_i - c_i)^2 psi(l_i)) / sum l_i

is a lower confidence bound that is valid at every ``t`` at once: checking it
after every row does not inflate the error. Everything is a running sum, so an
update costs O(1) per row and the state is a dozen floats, whatever the length of
the stream; a batch is processed with cumulative sums (no Python loop per row).

Two bet sequences are combined (each at half the level, a union bound):

- *running* bets (WSR's ``lambda_i = sqrt(2 log(1/a) / (s^2_{i-1} i log(1+i)))``):
  the interval around the running mean, shrinking like ``sqrt(log log t / t)``;
- *reactive* bets, present when a ``limit`` is monitored: they bet only while an
  exponentially weighted (EW) mean of the last ~``window`` rows is above the
  limit, with the growth-optimal size ``lambda = D / (D + s^2)`` of the
  empirical-Bernstein supermartingale (``D`` = EW mean - limit). A rise of the
  mean after a long quiet period is then detected within a few ``window``-s of
  rows instead of after the running mean has caught up.

The alarm ``L_t > limit`` has probability at most ``level`` over the whole stream
when every row's mean is at most ``limit``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from sklearn.utils import Bunch

from skctd.utils import check_fraction, check_positive_int

__all__ = ["ConfidenceSequence", "ew_filter"]

# Largest exponent used when an EW filter is evaluated with cumulative sums.
_MAX_EXPONENT = 40.0
# Batches up to this size are updated row by row on Python floats.
_FEW = 16


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

    A predictable-plug-in empirical-Bernstein confidence sequence (Waudby-Smith &
    Ramdas, 2023), with optional *reactive* bets that detect quickly when the mean
    rises above a ``limit`` (see the module description). Each bound is valid
    simultaneously over all times: ``P(exists t: lower_t > mean) <= level`` and
    ``P(exists t: upper_t < mean) <= level``, so it may be checked after every row.
    When the rows' means vary (drift), ``lower_t`` is below the largest of them
    and ``upper_t`` above the smallest, with the same probability.

    The state is a few running sums: an update costs O(1) per row and the memory
    does not grow with the stream.

    Parameters
    ----------
    level : float in (0, 1), default=0.05
        Error probability of each bound, over the whole stream.
    limit : float in (0, 1), optional
        The value the mean must not exceed (e.g. the delegation budget).
        When given, the lower bound also uses reactive bets and ``alarm_row``
        records the first row at which ``lower > limit``.
    window : int, default=500
        Effective number of recent rows of the reactive bets' EW estimates.
    truncation : float in (0, 1), default=0.5
        Largest bet (WSR's ``c``); smaller is more robust, larger more aggressive.

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
        (0 before any row). It bounds the *largest* recent mean, so after a
        rise it may exceed ``upper_``, which bounds the average since the start.
    lower_running_, upper_ : float
        Current interval around the running mean (0 and 1 before any row).
    alarm_row_ : int or None
        1-based row at which ``lower > limit`` first held (None if never).

    References
    ----------
    Waudby-Smith, I. & Ramdas, A. (2023). Estimating means of bounded random
    variables by betting. JRSS B. Howard, S. R., Ramdas, A., McAuliffe, J. &
    Sekhon, J. (2021). Time-uniform, nonparametric, nonasymptotic confidence
    sequences. Annals of Statistics.

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.monitor import ConfidenceSequence
    >>> rng = np.random.default_rng(0)
    >>> cs = ConfidenceSequence(level=0.05, limit=0.2)
    >>> out = cs.update(rng.random(5000) < 0.15)    # below the limit: quiet
    >>> cs.alarm_row_ is None, round(cs.lower_, 3) < 0.15 < round(cs.upper_, 3)
    (True, True)
    >>> out = cs.update(rng.random(3000) < 0.35)    # the rate rises
    >>> 5000 < cs.alarm_row_ < 6000
    True
    """

    def __init__(
        self,
        level: float = 0.05,
        *,
        limit: float | None = None,
        window: int = 500,
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
        self.reset()

    # ----------------------------------------------------------------- state
    def reset(self) -> None:
        """Forget every row: start a new sequence (and a new test) from here."""
        self.n_ = 0
        # running mean / variance estimates (one pseudo-observation at 1/2, 1/4)
        self._sum = 0.0
        self._sqdev = 0.0
        self._mean_prev = 0.5
        self._var_prev = 0.25
        # running bets: sum of lambda, lambda * x, psi-weighted squared deviations
        self._lam = 0.0
        self._lam_x = 0.0
        self._pen = 0.0
        # reactive bets
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
        """The e-process of the null "every row's mean is at most ``m``" now.

        The average of the running and (with a limit) reactive
        supermartingales ``M_t(m)`` of the module description: a nonnegative
        supermartingale with initial value 1 under that null, so
        ``P(exists t: e_value >= 1 / a) <= a`` for every ``a``. With a limit,
        ``lower_ > m`` implies ``e_value(m) >= 1 / level``.

        Parameters
        ----------
        m : float in [0, 1], optional
            Default: ``limit`` (required when no limit was set).

        Returns
        -------
        e : float
        """
        if m is None:
            if self.limit is None:
                raise ValueError("Give m: this sequence has no limit.")
            m = self.limit
        log_run = self._lam_x - m * self._lam - self._pen
        if self.limit is None:
            return math.exp(min(log_run, 700.0))
        log_react = self._rlam_x - m * self._rlam - self._rpen
        return 0.5 * (math.exp(min(log_run, 700.0)) + math.exp(min(log_react, 700.0)))

    @property
    def _log_lower(self) -> float:
        # the lower bound is split between running and reactive bets
        split = 2.0 if self.limit is not None else 1.0
        return math.log(split / self.level)

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
            ``upper`` (the interval around the running mean), ``estimate``
            (running mean), ``recent`` (EW mean) and ``row`` (1-based position
            in the stream). ``alarm_row`` is the first row of
            the batch where ``lower > limit`` held for the first time (None if
            not in this batch).
        """
        x = _check_unit(x, "x")
        n = x.size
        if n <= _FEW:  # plain floats beat numpy's per-call overhead
            out = self._update_few(x)
        else:
            out = self._update_many(x)
        alarm_row = None
        if self.limit is not None and self.alarm_row_ is None and n:
            above = out.lower > self.limit
            if above.any():
                alarm_row = int(out.row[above.argmax()])
                self.alarm_row_ = alarm_row
        out.alarm_row = alarm_row
        return out

    def _update_many(self, x: np.ndarray) -> Bunch:
        """The update with cumulative sums: O(1) per row, no Python loop per row."""
        n = x.size
        rows = self.n_ + np.arange(1, n + 1, dtype=np.int64)
        i = rows.astype(float)

        # running plug-ins mu_i, s2_i (one pseudo-observation), and their lags
        total = self._sum + np.cumsum(x)
        mean = (0.5 + total) / (i + 1.0)
        mean_prev = np.concatenate(([self._mean_prev], mean[:-1]))
        sqdev = self._sqdev + np.cumsum((x - mean) ** 2)
        var = (0.25 + sqdev) / (i + 1.0)
        var_prev = np.concatenate(([self._var_prev], var[:-1]))

        log_lo = self._log_lower
        lam = np.minimum(
            np.sqrt(2.0 * log_lo / (var_prev * i * np.log1p(i))), self.truncation
        )
        pen = (x - mean_prev) ** 2 * _psi(lam)
        lam_cum = self._lam + np.cumsum(lam)
        lam_x_cum = self._lam_x + np.cumsum(lam * x)
        pen_cum = self._pen + np.cumsum(pen)
        centre = lam_x_cum / lam_cum
        lower_running = np.clip(centre - (log_lo + pen_cum) / lam_cum, 0.0, 1.0)
        lower = lower_running
        upper = centre + (math.log(1.0 / self.level) + pen_cum) / lam_cum

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
                rlower = (rlam_x_cum - log_lo - rpen_cum) / rlam_cum
            rlower[rlam_cum <= 0.0] = -np.inf
            lower = np.clip(np.maximum(lower, rlower), 0.0, 1.0)
            self._rlam = float(rlam_cum[-1])
            self._rlam_x = float(rlam_x_cum[-1])
            self._rpen = float(rpen_cum[-1])
        upper = np.clip(upper, 0.0, 1.0)

        self.n_ = int(rows[-1])
        self._sum = float(total[-1])
        self._sqdev = float(sqdev[-1])
        self._mean_prev = float(mean[-1])
        self._var_prev = float(var[-1])
        self._lam = float(lam_cum[-1])
        self._lam_x = float(lam_x_cum[-1])
        self._pen = float(pen_cum[-1])
        self._ew_mean = float(ew_mean[-1])
        self._ew_var = float(ew_var[-1])
        self.lower_ = float(lower[-1])
        self.lower_running_ = float(lower_running[-1])
        self.upper_ = float(upper[-1])
        return Bunch(
            lower=lower,
            lower_running=lower_running,
            upper=upper,
            estimate=total / i,
            recent=ew_mean,
            row=rows,
        )

    def _update_few(self, x: np.ndarray) -> Bunch:
        """The same update, row by row on Python floats (for a few rows)."""
        n = x.size
        log_lo, log_up = self._log_lower, math.log(1.0 / self.level)
        c, limit = self.truncation, self.limit
        w = 1.0 / self.window
        out = np.empty((6, n))
        for j, xt in enumerate(x.tolist()):
            t = self.n_ + 1
            lam = min(math.sqrt(2.0 * log_lo / (self._var_prev * t * math.log1p(t))), c)
            self._lam += lam
            self._lam_x += lam * xt
            self._pen += (xt - self._mean_prev) ** 2 * (-math.log1p(-lam) - lam)
            centre = self._lam_x / self._lam
            lower_running = min(
                max(centre - (log_lo + self._pen) / self._lam, 0.0), 1.0
            )
            upper = min(max(centre + (log_up + self._pen) / self._lam, 0.0), 1.0)
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
            self._sum += xt
            mean = (0.5 + self._sum) / (t + 1.0)
            self._sqdev += (xt - mean) ** 2
            self._mean_prev, self._var_prev = mean, (0.25 + self._sqdev) / (t + 1.0)
            self._ew_mean = (1.0 - w) * self._ew_mean + w * xt
            self._ew_var = (1.0 - w) * self._ew_var + w * dev2
            self.n_ = t
            out[:, j] = (lower, lower_running, upper, self._sum / t, self._ew_mean, t)
        if n:
            self.lower_, self.lower_running_, self.upper_ = (
                float(out[0, -1]),
                float(out[1, -1]),
                float(out[2, -1]),
            )
        return Bunch(
            lower=out[0],
            lower_running=out[1],
            upper=out[2],
            estimate=out[3],
            recent=out[4],
            row=out[5].astype(np.int64),
        )

    def __repr__(self) -> str:
        lim = "" if self.limit is None else f", limit={self.limit:g}"
        return (
            f"ConfidenceSequence(level={self.level:g}{lim}, n={self.n_}, "
            f"estimate={self.estimate_:.4g}, interval=[{self.lower_:.4g}, "
            f"{self.upper_:.4g}])"
        )

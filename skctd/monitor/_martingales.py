"""Conformal test martingales: is the stream still exchangeable with the reference?

For each monitored channel (the delegation signal ``d(x)``, the probe score
``p(x)``), every new value gets a *smoothed conformal p-value*: its rank among all
the values seen before it -- the reference (calibration) rows and every earlier
row of the stream -- with ties broken by an independent uniform draw,

    u_t = ( #{j < t: z_j > z_t} + U_t (#{j < t: z_j = z_t} + 1) ) / (N_t + 1).

If the reference rows and the stream are exchangeable, ``u_1, u_2, ...`` are
independent and uniform on [0, 1] (Vovk, Gammerman & Shafer, 2005, Thm 8.2),
jointly over the channels' past. A *test martingale* bets on them,

    E_t = prod_i (1 + theta_i . g(u_i)),

with ``g`` the location ``u - 1/2`` and the spread ``2|u - 1/2| - 1/2`` of every
channel (each of mean 0 under uniformity) and bets ``theta_i`` that depend only
on the past. Under exchangeability ``E_t`` is a nonnegative martingale with
``E_0 = 1``, so by Ville's inequality ``P(exists t: E_t >= 1/level) <= level``:
the alarm may be checked after every row.

Ranks against the *fixed* reference alone would not do: given the reference, the
ranks of new rows are independent but not uniform (the reference's empirical
distribution is not the true one), and a betting martingale learns that
difference over a long stream -- false alarms far above the level (the benchmark
shows it). Ranking among *all* earlier values is what makes the p-values exactly
uniform; to keep the memory constant, values are counted in ``n_bins`` bins
whose edges are quantiles of a random part of the reference (``edge_fraction``)
that is not counted itself, so the binned values of the rest of the reference
and of the stream stay exchangeable and ties are handled exactly by the random
tie-break. The state is ``n_bins`` counts per channel.

The bets are the growth-optimal ``theta = M^-1 mu`` of exponentially weighted
estimates of the mean ``mu`` and second moment ``M`` of ``g`` over the last
~``window`` rows, shrunk to 0 while ``mu`` is within its noise (so the
martingale does not lose wealth before a change) and capped so every factor
stays above ``1 - truncation``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from sklearn.utils import Bunch, check_random_state

from skctd.monitor._sequences import ew_filter
from skctd.utils import check_fraction, check_positive_int

__all__ = ["ConformalTestMartingale"]

# rows processed at once (the within-batch rank counts are n x n_bins)
_CHUNK = 4096
# variance of u - 1/2 and of 2|u - 1/2| - 1/2 under uniformity
_VAR_UNIFORM = 1.0 / 12.0


class ConformalTestMartingale:
    """Online test of exchangeability between a reference sample and a stream.

    See the module description for the construction. Fit it on the reference
    values (e.g. the delegation signal and probe scores of the calibration rows),
    then :meth:`update` it with the stream's values, one row or one batch at a
    time.

    Parameters
    ----------
    level : float in (0, 1), default=0.05
        Alarm when the martingale reaches ``1 / level``; the probability of any
        alarm over the whole stream is at most ``level`` under exchangeability.
    n_bins : int, default=32
        Bins per channel (the memory); more bins resolve finer changes.
    edge_fraction : float in (0, 1), default=0.25
        Share of the reference rows used only to place the bin edges.
    window : int, default=250
        Effective number of recent rows behind the bets.
    shrinkage : float >= 0, default=1.0
        How many times its noise level the EW mean must exceed before the
        martingale bets at full size (0 = plain plug-in bets).
    truncation : float in (0, 1), default=0.5
        Each factor of the martingale stays in ``[1 - truncation, 1 + truncation]``.
    random_state : int, RandomState instance or None, default=None
        The split of the reference and the tie-breaking draws.

    Attributes
    ----------
    n_channels_ : int
    edges_ : list of ndarray
        Bin edges of each channel.
    counts_ : ndarray of shape (n_channels, n_bins)
        Values counted so far (reference rows, then stream rows).
    n_ : int
        Stream rows seen.
    log_e_ : float
        Natural log of the martingale now.
    log_e_max_ : float
        Its largest value so far.
    recent_ : ndarray of shape (n_channels,)
        EW mean of recent p-values per channel (0.5 = like the reference; small =
        values above the reference's, large = below).
    alarm_row_ : int or None
        1-based stream row at which the martingale first reached ``1 / level``.

    References
    ----------
    Vovk, V., Gammerman, A. & Shafer, G. (2005). Algorithmic Learning in a Random
    World, ch. 7-8. Vovk, V. (2021). Testing randomness online. Statistical
    Science. Ville, J. (1939). Etude critique de la notion de collectif.

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.monitor import ConformalTestMartingale
    >>> rng = np.random.default_rng(0)
    >>> ctm = ConformalTestMartingale(level=0.05, random_state=0)
    >>> ctm = ctm.fit(rng.normal(size=(1000, 1)))
    >>> out = ctm.update(rng.normal(size=(3000, 1)))          # same distribution
    >>> ctm.alarm_row_ is None
    True
    >>> out = ctm.update(rng.normal(0.5, 1, size=(2000, 1)))  # shifted by 0.5 SD
    >>> 3000 < ctm.alarm_row_ < 3500
    True
    """

    def __init__(
        self,
        level: float = 0.05,
        *,
        n_bins: int = 32,
        edge_fraction: float = 0.25,
        window: int = 250,
        shrinkage: float = 1.0,
        truncation: float = 0.5,
        random_state: Any = None,
    ) -> None:
        self.level = level
        self.n_bins = n_bins
        self.edge_fraction = edge_fraction
        self.window = window
        self.shrinkage = shrinkage
        self.truncation = truncation
        self.random_state = random_state

    # ------------------------------------------------------------------- fit
    def fit(self, reference: Any) -> ConformalTestMartingale:
        """Set the bins and the initial counts from the reference values.

        Parameters
        ----------
        reference : array-like of shape (n, n_channels) or (n,)
            Values of the reference rows (e.g. the calibration data), one column
            per channel. At least ``2 * n_bins`` rows are needed... for the
            edges to be meaningful; a clear error below 8 rows.

        Returns
        -------
        self : ConformalTestMartingale
        """
        self._check_params()
        ref = self._check_values(reference, "reference", fitting=True)
        n = ref.shape[0]
        if n < 8:
            raise ValueError(
                f"reference has {n} rows; the exchangeability test needs at least 8 "
                "(a few hundred calibration rows give it power)."
            )
        self._rng = check_random_state(self.random_state)
        perm = self._rng.permutation(n)
        n_edge = min(n - 1, max(1, int(round(self.edge_fraction * n))))
        edge_rows, count_rows = ref[perm[:n_edge]], ref[perm[n_edge:]]
        self.n_channels_ = ref.shape[1]
        qs = np.arange(1, self.n_bins) / self.n_bins
        self.edges_ = [
            np.unique(np.quantile(edge_rows[:, c], qs)) for c in range(self.n_channels_)
        ]
        width = max(e.size for e in self.edges_) + 1
        self.counts_ = np.zeros((self.n_channels_, width), dtype=np.int64)
        bins = self._bin(count_rows)
        for c in range(self.n_channels_):
            self.counts_[c] += np.bincount(bins[:, c], minlength=width)
        self.n_reference_ = int(count_rows.shape[0])
        d = 2 * self.n_channels_
        self.n_ = 0
        self.log_e_ = 0.0
        self.log_e_max_ = 0.0
        self._mu = np.zeros(d)
        self._m2 = np.eye(d) * _VAR_UNIFORM
        self.recent_ = np.full(self.n_channels_, 0.5)
        self.alarm_row_: int | None = None
        return self

    def _check_params(self) -> None:
        check_fraction(self.level, "level")
        check_positive_int(self.n_bins, "n_bins")
        if self.n_bins < 2:
            raise ValueError(f"n_bins must be at least 2, got {self.n_bins}.")
        check_fraction(self.edge_fraction, "edge_fraction")
        check_positive_int(self.window, "window")
        check_fraction(self.truncation, "truncation")
        if (
            isinstance(self.shrinkage, bool)
            or not isinstance(self.shrinkage, numbers.Real)
            or not math.isfinite(self.shrinkage)
            or self.shrinkage < 0
        ):
            raise ValueError(
                f"shrinkage must be a number >= 0, got {self.shrinkage!r}."
            )

    def _check_values(self, values: Any, name: str, *, fitting=False) -> np.ndarray:
        try:
            arr = np.asarray(values, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be an array of numbers.") from exc
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2:
            raise ValueError(
                f"{name} must have shape (n_rows, n_channels), got {arr.shape}."
            )
        if not fitting and arr.shape[1] != self.n_channels_:
            raise ValueError(
                f"{name} has {arr.shape[1]} channels but the reference had "
                f"{self.n_channels_}."
            )
        bad = ~np.isfinite(arr)
        if bad.any():
            rows = np.flatnonzero(bad.any(axis=1))[:10].tolist()
            raise ValueError(f"{name} has NaN or infinite values in rows {rows}.")
        return arr

    def _bin(self, values: np.ndarray) -> np.ndarray:
        return np.column_stack(
            [
                np.searchsorted(self.edges_[c], values[:, c], side="right")
                for c in range(self.n_channels_)
            ]
        )

    # ---------------------------------------------------------------- update
    def update(self, values: Any) -> Bunch:
        """Add one row or a batch of rows of the stream, in order.

        Parameters
        ----------
        values : array-like of shape (n, n_channels), or (n_channels,) for one row
            The channels' values of the new rows.

        Returns
        -------
        result : Bunch
            ``pvalues`` (n, n_channels), ``log_e`` (n,) the log-martingale after
            each row, ``recent`` (n, n_channels) the EW mean p-value after each
            row (see ``recent_``), ``row`` (n,) the 1-based stream positions, and
            ``alarm_row`` (the row of this batch where ``1 / level`` was first
            reached, or None).
        """
        if not hasattr(self, "counts_"):
            raise ValueError(
                "This ConformalTestMartingale is not fitted yet; call fit(reference) "
                "first."
            )
        arr = np.asarray(values, dtype=float)
        if arr.ndim == 1 and self.n_channels_ > 1 and arr.size == self.n_channels_:
            arr = arr.reshape(1, -1)
        arr = self._check_values(arr, "values")
        parts = [
            self._update_chunk(arr[s : s + _CHUNK])
            for s in range(0, arr.shape[0], _CHUNK)
        ]
        if not parts:
            parts = [self._update_chunk(arr)]
        alarm = next((p.alarm_row for p in parts if p.alarm_row is not None), None)
        return Bunch(
            pvalues=np.concatenate([p.pvalues for p in parts]),
            log_e=np.concatenate([p.log_e for p in parts]),
            recent=np.concatenate([p.recent for p in parts]),
            row=np.concatenate([p.row for p in parts]),
            alarm_row=alarm,
        )

    def _pvalues(self, bins: np.ndarray) -> np.ndarray:
        """Smoothed conformal p-values of a chunk, updating the counts."""
        n, k = bins.shape
        width = self.counts_.shape[1]
        total_prev = self.counts_[0].sum() + np.arange(n)
        out = np.empty((n, k))
        ties = self._rng.random_sample((n, k))  # row by row: batching does not matter
        for c in range(k):  # one pass per channel (two channels)
            onehot = np.zeros((n, width), dtype=np.int64)
            onehot[np.arange(n), bins[:, c]] = 1
            # counts before each row: the stored counts plus the earlier rows
            before = np.cumsum(onehot, axis=0) - onehot + self.counts_[c]
            above = np.cumsum(before[:, ::-1], axis=1)[:, ::-1]  # >= bin
            b = bins[:, c]
            rows = np.arange(n)
            equal = before[rows, b]
            greater = above[rows, b] - equal
            out[:, c] = (greater + ties[:, c] * (equal + 1)) / (total_prev + 1)
            self.counts_[c] += onehot.sum(axis=0)
        return out

    def _update_chunk(self, values: np.ndarray) -> Bunch:
        n = values.shape[0]
        rows = self.n_ + np.arange(1, n + 1, dtype=np.int64)
        if n == 0:
            return Bunch(
                pvalues=np.empty((0, self.n_channels_)),
                log_e=np.empty(0),
                recent=np.empty((0, self.n_channels_)),
                row=rows,
                alarm_row=None,
            )
        u = self._pvalues(self._bin(values))
        g = np.concatenate([u - 0.5, 2.0 * np.abs(u - 0.5) - 0.5], axis=1)
        d = g.shape[1]
        decay = 1.0 - 1.0 / self.window
        mu = ew_filter(g, decay, self._mu)
        outer = (g[:, :, None] * g[:, None, :]).reshape(n, d * d)
        m2 = ew_filter(outer, decay, self._m2.reshape(-1)).reshape(n, d, d)
        mu_prev = np.concatenate([self._mu[None], mu[:-1]])
        m2_prev = np.concatenate([self._m2[None], m2[:-1]])
        theta = self._bets(mu_prev, m2_prev)
        factor = 1.0 + np.einsum("ij,ij->i", theta, g)
        log_e = self.log_e_ + np.cumsum(np.log(factor))

        alarm_row = None
        threshold = math.log(1.0 / self.level)
        if self.alarm_row_ is None:
            hit = np.flatnonzero(log_e >= threshold)
            if hit.size:
                alarm_row = int(rows[hit[0]])
                self.alarm_row_ = alarm_row
        self.n_ = int(rows[-1])
        self.log_e_ = float(log_e[-1])
        self.log_e_max_ = max(self.log_e_max_, float(log_e.max()))
        self._mu = mu[-1].copy()
        self._m2 = m2[-1].copy()
        self.recent_ = 0.5 + self._mu[: self.n_channels_]
        return Bunch(
            pvalues=u,
            log_e=log_e,
            recent=0.5 + mu[:, : self.n_channels_],
            row=rows,
            alarm_row=alarm_row,
        )

    def _bets(self, mu: np.ndarray, m2: np.ndarray) -> np.ndarray:
        """Growth-optimal bets ``M^-1 mu``, shrunk within the noise and capped."""
        d = mu.shape[1]
        ridge = 1e-6 * np.eye(d)
        theta = np.linalg.solve(m2 + ridge, mu[:, :, None])[:, :, 0]
        # mu' M^-1 mu is about d / (2 window) when nothing changed
        signal = np.einsum("ij,ij->i", mu, theta) * (2.0 * self.window - 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            shrink = np.clip(1.0 - self.shrinkage * d / signal, 0.0, 1.0)
        shrink[~np.isfinite(shrink)] = 0.0
        theta *= shrink[:, None]
        size = 0.5 * np.abs(theta).sum(axis=1)  # max |theta . g| since |g| <= 1/2
        over = size > self.truncation
        theta[over] *= (self.truncation / size[over])[:, None]
        return theta

    def __repr__(self) -> str:
        if not hasattr(self, "counts_"):
            return f"ConformalTestMartingale(level={self.level!r}, unfitted)"
        return (
            f"ConformalTestMartingale(level={self.level:g}, n={self.n_}, "
            f"e_value={math.exp(min(self.log_e_, 700)):.3g}, "
            f"channels={self.n_channels_})"
        )

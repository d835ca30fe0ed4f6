"""A slow, readable reference of :class:`~skctd.monitor.ConfidenceSequence`.

One plain-Python loop over the rows with the ``math`` module, written from the
formulas of Howard et al. (2021, Theorem 4 and eq. 10) and Waudby-Smith & Ramdas
(2023, Theorem 2) and sharing no code with the vectorised class: the tests
compare the two row by row and
``benchmarks/bench_monitor.py`` times one against the other. Nothing else should
call it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["reference_confidence_sequence"]


def reference_confidence_sequence(
    x: Any,
    *,
    level: float = 0.05,
    limit: float | None = None,
    window: int = 250,
    truncation: float = 0.5,
) -> dict[str, np.ndarray]:
    """The confidence sequence of :class:`~skctd.monitor.ConfidenceSequence`, by row.

    For each row ``t = 1, 2, ...`` with ``x_t`` in [0, 1]:

    - running bound (Howard et al. 2021, Theorem 4 and eq. 10): with the
      predictable mean ``xhat_{t-1} = (1/2 + x_1 + ... + x_{t-1}) / t`` and
      ``V_t = sum (x_i - xhat_{i-1})^2``, the band is
      ``mean_t -+ B(max(V_t, 10)) / t`` where ``B(v) = sqrt(k1^2 v l + (k2 l)^2)
      + k2 l``, ``l = 1.4 log log(2 v / 10) + log(zeta(1.4) / (a log(2)^1.4))``,
      ``k1 = (2^(1/4) + 2^(-1/4)) / sqrt(2)``, ``k2 = (sqrt(2) + 1) / 2``, with
      ``a = level / 2`` for the lower side when a limit is monitored (the lower
      bound's level is split between two bounds) and ``a = level`` otherwise;
    - with a limit ``m``: EW mean ``e_t = (1 - 1/w) e_{t-1} + x_t / w`` (from
      ``e_0 = m``) and EW squared deviation ``v_t`` of ``x_t - e_{t-1}`` (from
      ``v_0 = 1/4``); reactive bet ``r_t = min(D / (D + v_{t-1}), c)`` with
      ``D = max(e_{t-1} - m, 0)``; reactive bound
      ``(sum r x - log(2 / level) - sum (x - e_{t-1})^2 psi(r)) / sum r`` with
      ``psi(r) = -log(1 - r) - r``; the lower bound is the larger of the two.

    Bounds are clipped to [0, 1].

    Parameters
    ----------
    x : array-like of shape (n,)
        Observations in [0, 1].
    level, limit, window, truncation
        As in :class:`ConfidenceSequence`.

    Returns
    -------
    bounds : dict of str to ndarray of shape (n,)
        ``lower``, ``lower_running``, ``upper``, ``estimate``, ``recent``.
    """
    from scipy.special import zeta

    xs = [float(v) for v in np.asarray(x, dtype=float).ravel()]
    split = 2.0 if limit is not None else 1.0
    log_lo = math.log(split / level)
    k1 = (2.0**0.25 + 2.0**-0.25) / math.sqrt(2.0)
    k2 = (math.sqrt(2.0) + 1.0) / 2.0
    zeta_term = math.log(float(zeta(1.4)) / math.log(2.0) ** 1.4)

    def boundary(v: float, a: float) -> float:
        v = max(v, 10.0)
        ell = 1.4 * math.log(math.log(2.0 * v / 10.0)) + zeta_term + math.log(1.0 / a)
        return math.sqrt(k1 * k1 * v * ell + (k2 * ell) ** 2) + k2 * ell

    decay = 1.0 - 1.0 / window
    total = var = 0.0
    ew = 0.5 if limit is None else limit
    ew_var = 0.25
    r_lam = r_lam_x = r_pen = 0.0
    out: dict[str, list[float]] = {
        k_: [] for k_ in ("lower", "lower_running", "upper", "estimate", "recent")
    }
    for t, xt in enumerate(xs, start=1):
        xhat = (0.5 + total) / t
        total += xt
        var += (xt - xhat) ** 2
        mean = total / t
        lower_running = mean - boundary(var, level / split) / t
        upper = mean + boundary(var, level) / t
        lower = lower_running
        if limit is not None:
            gap = max(ew - limit, 0.0)
            r = min(gap / (gap + ew_var + 1e-12), truncation)
            r_lam += r
            r_lam_x += r * xt
            r_pen += (xt - ew) ** 2 * (-math.log(1.0 - r) - r)
            if r_lam > 0:
                lower = max(lower, (r_lam_x - log_lo - r_pen) / r_lam)
        dev2 = (xt - ew) ** 2
        ew = decay * ew + (1.0 - decay) * xt
        ew_var = decay * ew_var + (1.0 - decay) * dev2
        out["lower"].append(min(max(lower, 0.0), 1.0))
        out["lower_running"].append(min(max(lower_running, 0.0), 1.0))
        out["upper"].append(min(max(upper, 0.0), 1.0))
        out["estimate"].append(mean)
        out["recent"].append(ew)
    return {key: np.asarray(v) for key, v in out.items()}

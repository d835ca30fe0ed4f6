"""A slow, readable reference of :class:`~skctd.monitor.ConfidenceSequence`.

One plain-Python loop over the rows with the ``math`` module, written from the
formulas of Waudby-Smith & Ramdas (2023, Theorem 2) and sharing no code with the
vectorised class beyond nothing at all: the tests compare the two row by row and
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
    window: int = 500,
    truncation: float = 0.5,
) -> dict[str, np.ndarray]:
    """The confidence sequence of :class:`ConfidenceSequence`, one row at a time.

    For each row ``t = 1, 2, ...`` with ``x_t`` in [0, 1]:

    - running plug-ins ``mu_t = (1/2 + sum x) / (t + 1)`` and
      ``s2_t = (1/4 + sum (x_i - mu_i)^2) / (t + 1)``;
    - running bet ``l_t = min(sqrt(2 log(k / level) / (s2_{t-1} t log(1 + t))), c)``
      with ``k = 2`` when a limit is monitored (the lower bound's level is then
      split between two bet sequences) and ``k = 1`` otherwise;
    - ``lower_t = (sum l x - log(k / level) - sum (x - mu_{t-1})^2 psi(l)) / sum l``
      and ``upper_t = (sum l x + log(1 / level) + sum (...) psi(l)) / sum l``,
      with ``psi(l) = -log(1 - l) - l``;
    - with a limit ``m``: EW mean ``e_t = (1 - 1/w) e_{t-1} + x_t / w`` (from
      ``e_0 = m``) and EW squared deviation ``v_t`` of ``x_t - e_{t-1}`` (from
      ``v_0 = 1/4``); reactive bet ``r_t = min(D / (D + v_{t-1}), c)`` with
      ``D = max(e_{t-1} - m, 0)``; reactive bound
      ``(sum r x - log(2 / level) - sum (x - e_{t-1})^2 psi(r)) / sum r``; the
      lower bound is the larger of the two.

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
    xs = [float(v) for v in np.asarray(x, dtype=float).ravel()]
    k = 2.0 if limit is not None else 1.0
    log_lo, log_up = math.log(k / level), math.log(1.0 / level)
    decay = 1.0 - 1.0 / window
    total = sqdev = 0.0
    mean_prev, var_prev = 0.5, 0.25
    s_lam = s_lam_x = s_pen = 0.0
    ew = 0.5 if limit is None else limit
    ew_var = 0.25
    r_lam = r_lam_x = r_pen = 0.0
    out: dict[str, list[float]] = {
        k_: [] for k_ in ("lower", "lower_running", "upper", "estimate", "recent")
    }
    for t, xt in enumerate(xs, start=1):
        lam = min(
            math.sqrt(2.0 * log_lo / (var_prev * t * math.log(1.0 + t))), truncation
        )
        psi = -math.log(1.0 - lam) - lam
        s_lam += lam
        s_lam_x += lam * xt
        s_pen += (xt - mean_prev) ** 2 * psi
        lower_running = s_lam_x / s_lam - (log_lo + s_pen) / s_lam
        upper = s_lam_x / s_lam + (log_up + s_pen) / s_lam
        lower = lower_running
        if limit is not None:
            gap = max(ew - limit, 0.0)
            r = min(gap / (gap + ew_var + 1e-12), truncation)
            r_psi = -math.log(1.0 - r) - r
            r_lam += r
            r_lam_x += r * xt
            r_pen += (xt - ew) ** 2 * r_psi
            if r_lam > 0:
                lower = max(lower, (r_lam_x - log_lo - r_pen) / r_lam)
        # plug-ins for the next row
        total += xt
        mean = (0.5 + total) / (t + 1.0)
        sqdev += (xt - mean) ** 2
        mean_prev, var_prev = mean, (0.25 + sqdev) / (t + 1.0)
        dev2 = (xt - ew) ** 2
        ew = decay * ew + (1.0 - decay) * xt
        ew_var = decay * ew_var + (1.0 - decay) * dev2
        out["lower"].append(min(max(lower, 0.0), 1.0))
        out["lower_running"].append(min(max(lower_running, 0.0), 1.0))
        out["upper"].append(min(max(upper, 0.0), 1.0))
        out["estimate"].append(total / t)
        out["recent"].append(ew)
    return {key: np.asarray(v) for key, v in out.items()}

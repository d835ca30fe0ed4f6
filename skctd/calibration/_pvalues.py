"""P-values of the null hypotheses ``R > alpha`` of a bounded risk.

:func:`binomial_pvalues` is exact for the 0/1 delegation loss (is the row
delegated?); :func:`hoeffding_bentkus_pvalues` covers losses bounded in [0, 1];
:func:`min_test_size` is the smallest test split on which anything can be certified.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

from skctd.utils import check_fraction, check_positive_int

__all__ = ["binomial_pvalues", "hoeffding_bentkus_pvalues", "min_test_size"]

# Tolerance for ceil of products such as n * r computed in floating point.
_EPS = 1e-9


def min_test_size(alpha: float, delta: float) -> int:
    """Smallest test-split size ``n`` with ``(1 - alpha) ** n <= delta``.

    Below it, not even "never delegate" can be certified: the binomial p-value of a
    threshold that delegates nothing on the test split is ``(1 - alpha) ** n``.

    Parameters
    ----------
    alpha : float
        Budget, in (0, 1).
    delta : float
        Confidence parameter, in (0, 1).

    Returns
    -------
    n : int
        ``ceil(log(delta) / log(1 - alpha))``, corrected for rounding.

    Examples
    --------
    >>> from skctd import min_test_size
    >>> min_test_size(0.1, 0.1)
    22
    """
    alpha = check_fraction(alpha, "alpha")
    delta = check_fraction(delta, "delta")
    n = max(1, math.ceil(math.log(delta) / math.log1p(-alpha)))
    # guard against rounding of the logarithms in either direction
    while n > 1 and (1.0 - alpha) ** (n - 1) <= delta:
        n -= 1
    while (1.0 - alpha) ** n > delta:
        n += 1
    return n


def binomial_pvalues(k: Any, n: int, alpha: Any) -> np.ndarray:
    """Binomial p-values ``P(Binomial(n, alpha) <= k)`` of the nulls ``R > alpha``.

    For a Bernoulli loss (here: "the row is delegated") with ``k`` losses among ``n``
    exchangeable rows, this is a valid p-value for the null hypothesis that the
    expected loss exceeds ``alpha``; the one-sided binomial test is uniformly most
    powerful (Angelopoulos et al., 2022).

    Parameters
    ----------
    k : array-like of int
        Number of losses (delegated rows) per hypothesis, each in ``[0, n]``.
    n : int
        Number of rows the losses were counted on.
    alpha : float or array-like of float
        Risk level(s) in (0, 1); broadcast against ``k``.

    Returns
    -------
    pvalues : ndarray of float
        ``scipy.stats.binom.cdf(k, n, alpha)``, with the broadcast shape.

    Examples
    --------
    >>> from skctd import binomial_pvalues
    >>> binomial_pvalues([0, 1, 5], 5, 0.2)
    array([0.32768, 0.73728, 1.     ])
    """
    n = check_positive_int(n, "n")
    k_arr = np.asarray(k)
    k_float = k_arr.astype(float)
    if k_arr.size and (
        not (
            np.issubdtype(k_arr.dtype, np.integer)  # integral: skip the float checks
            or (np.all(np.isfinite(k_float)) and np.all(k_float == np.floor(k_float)))
        )
        or k_float.min() < 0
        or k_float.max() > n
    ):
        raise ValueError(f"k must hold integer counts in [0, n={n}], got {k!r}.")
    alpha_arr = np.asarray(alpha, dtype=float)
    if not np.all(np.isfinite(alpha_arr)) or np.any(
        (alpha_arr <= 0) | (alpha_arr >= 1)
    ):
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha!r}.")
    # bdtr is what scipy.stats.binom.cdf evaluates, without the distribution overhead
    return special.bdtr(k_float, n, alpha_arr)


def hoeffding_bentkus_pvalues(risk_hat: Any, n: int, alpha: float) -> np.ndarray:
    """Hoeffding-Bentkus p-values for losses bounded in [0, 1].

    For the null ``R > alpha`` and an empirical risk ``r`` on ``n`` rows (Angelopoulos
    et al., 2022, Prop. 3 / Bates et al., 2021)::

        p = min(exp(-n h1(min(r, alpha), alpha)),
                e * P(Binomial(n, alpha) <= ceil(n r)))

    with ``h1(a, b) = a log(a / b) + (1 - a) log((1 - a) / (1 - b))``, capped at 1.
    Edges: ``r = 0`` gives ``h1 = -log(1 - alpha)`` (``0 log 0 = 0``), and
    ``r >= alpha`` gives ``p = 1``. ``ceil(n r)`` tolerates a relative rounding error
    of 1e-9 in ``n r`` (so ``r = 3 / 10`` with ``n = 10`` counts 3 losses, not 4).
    Use it for non-binary losses; for the 0/1 delegation loss the binomial p-value
    (:func:`binomial_pvalues`) is exact and more powerful.

    Parameters
    ----------
    risk_hat : array-like of float
        Empirical risks in [0, 1].
    n : int
        Number of rows each empirical risk was computed on.
    alpha : float
        Risk level in (0, 1).

    Returns
    -------
    pvalues : ndarray of float
        Valid p-values in (0, 1], same shape as ``risk_hat``.

    Examples
    --------
    >>> from skctd import hoeffding_bentkus_pvalues
    >>> p = hoeffding_bentkus_pvalues([0.0, 0.05, 0.1, 0.3], 100, 0.2)
    >>> [f"{v:.3g}" for v in p]
    ['2.04e-10', '5.08e-05', '0.0155', '1']
    """
    n = check_positive_int(n, "n")
    alpha = check_fraction(alpha, "alpha")
    r = np.asarray(risk_hat, dtype=float)
    if not np.all(np.isfinite(r)) or np.any((r < 0) | (r > 1)):
        raise ValueError(
            f"risk_hat must hold finite values in [0, 1], got {risk_hat!r}."
        )
    a = np.minimum(r, alpha)
    h1 = special.xlogy(a, a / alpha) + special.xlogy(1 - a, (1 - a) / (1 - alpha))
    p_hoeffding = np.exp(-n * h1)
    k = np.ceil(n * r * (1 - _EPS))
    p_bentkus = np.e * special.bdtr(k, n, alpha)
    p = np.minimum(np.minimum(p_hoeffding, p_bentkus), 1.0)
    return np.where(r >= alpha, 1.0, p)

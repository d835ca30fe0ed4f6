"""P-values of the null hypotheses ``R > alpha`` of a bounded risk.

:func:`binomial_pvalues` is exact for 0/1 losses (is the row delegated? is the
cascade wrong?); :func:`hoeffding_bentkus_pvalues` covers losses bounded in
[0, 1] using only their range; :func:`betting_pvalues` (Waudby-Smith & Ramdas)
adapts to the losses' variance, which matters for losses that sit near their
level with a small spread (the no-harm loss); :func:`sign_test_pvalues` is the
exact conditional sign (McNemar) test of a loss in {0, 1/2, 1} at level 1/2.
:func:`min_test_size` is the smallest test split on which anything can be
certified for the budget.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

from skctd.utils import check_fraction, check_positive_int

__all__ = [
    "betting_pvalues",
    "binomial_pvalues",
    "hoeffding_bentkus_pvalues",
    "min_test_size",
    "sign_test_pvalues",
]

# Tolerance for ceil of products such as n * r computed in floating point.
_EPS = 1e-9
# Elements (rows x thresholds) of the loss matrices built at once by betting_pvalues.
_MATRIX_BLOCK = 2_000_000


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


def betting_pvalues(losses: Any, alpha: float, delta: float) -> np.ndarray:
    """Betting (Waudby-Smith & Ramdas) p-values of the nulls ``E[loss] > alpha``.

    For losses in [0, 1] taken in a random order (exchangeable rows), bet against
    each null with the wealth process

    ``K_t = prod_{i <= t} (1 - nu_i (L_i - alpha))``,

    a nonnegative supermartingale under the null (Ville's inequality gives
    ``P(max_t K_t >= 1 / delta) <= delta``), so ``p = min(1, 1 / max_t K_t)`` is a
    valid p-value. The bets are the predictable plug-in of Waudby-Smith & Ramdas
    (2024) as Learn-then-Test uses them (Angelopoulos et al., 2022)::

        mu_t     = (1/2 + sum_{i <= t} L_i) / (t + 1)
        sigma2_t = (1/4 + sum_{i <= t} (L_i - mu_i)^2) / (t + 1)
        nu_t     = min(1, sqrt(2 log(1 / delta) / (n sigma2_{t-1})))

    (``sigma2_0 = 1/4``). Unlike :func:`hoeffding_bentkus_pvalues`, which only uses
    the range [0, 1], the bets grow with a small spread of the losses: a loss that
    is 1/2 on most rows (the no-harm loss) gets far more power.

    The order of the rows matters (the p-value is a function of the sequence):
    give them in an order drawn at random independently of their values.

    Parameters
    ----------
    losses : array-like of float, shape (n,) or (n, m)
        Losses in [0, 1], rows in testing order; a 2-D array holds one column per
        hypothesis (e.g. per threshold), each tested on its own. Columns are
        processed in blocks (no loop per row or per column).
    alpha : float
        Level of the null, in (0, 1).
    delta : float
        Confidence parameter the bets are tuned for, in (0, 1) (any value gives a
        valid p-value; the test at ``delta`` is most powerful near it).

    Returns
    -------
    pvalues : ndarray of float, shape () or (m,)

    References
    ----------
    Waudby-Smith, Ramdas (2024). Estimating means of bounded random variables by
    betting. JRSS-B. Angelopoulos, Bates, Candès, Jordan, Lei (2022). Learn then
    Test, Appendix (the WSR p-value).

    Examples
    --------
    >>> from skctd.calibration import betting_pvalues
    >>> float(betting_pvalues([0.0, 0.0, 0.0, 0.0], alpha=0.5, delta=0.1))
    0.19753...
    >>> losses = np.full(400, 0.45)  # mean 0.45, no spread
    >>> bool(betting_pvalues(losses, alpha=0.5, delta=0.1) < 1e-6)
    True
    """
    alpha = check_fraction(alpha, "alpha")
    delta = check_fraction(delta, "delta")
    x = np.asarray(losses, dtype=float)
    one_d = x.ndim == 1
    if x.ndim not in (1, 2):
        raise ValueError(
            "losses must be 1-D (one sequence) or 2-D (rows x hypotheses), got "
            f"shape {x.shape}."
        )
    if x.shape[0] == 0:
        raise ValueError("losses is empty; the betting p-value needs at least a row.")
    if not np.all(np.isfinite(x)) or np.any((x < 0) | (x > 1)):
        raise ValueError("losses must hold finite values in [0, 1].")
    if one_d:
        x = x[:, None]
    n, m = x.shape
    out = np.empty(m)
    block = max(1, _MATRIX_BLOCK // n)
    for lo in range(0, m, block):  # blocks of hypotheses, not a loop per column
        out[lo : lo + block] = _betting_block(x[:, lo : lo + block], alpha, delta)
    return out[0] if one_d else out


def _betting_block(x: np.ndarray, alpha: float, delta: float) -> np.ndarray:
    n = x.shape[0]
    t = np.arange(1, n + 1, dtype=float)[:, None]
    mu = (0.5 + np.cumsum(x, axis=0)) / (t + 1)
    sigma2 = (0.25 + np.cumsum((x - mu) ** 2, axis=0)) / (t + 1)
    prev = np.empty_like(sigma2)  # predictable: the estimate before row t
    prev[0] = 0.25
    prev[1:] = sigma2[:-1]
    nu = np.minimum(1.0, np.sqrt(2.0 * math.log(1.0 / delta) / (n * prev)))
    # 1 - nu (L - alpha) >= alpha > 0 for nu <= 1 and L <= 1: the log is finite
    log_wealth = np.cumsum(np.log1p(-nu * (x - alpha)), axis=0)
    best = np.maximum(log_wealth.max(axis=0), 0.0)
    return np.exp(-best)


def sign_test_pvalues(n_worse: Any, n_better: Any) -> np.ndarray:
    """Exact conditional sign (McNemar) p-values ``P(Binomial(N, 1/2) <= n_worse)``.

    For a loss taking values in {0, 1/2, 1}, the null ``E[loss] > 1/2`` holds
    exactly when ``P(loss = 1) > P(loss = 0)``. Given the number
    ``N = n_worse + n_better`` of rows with loss 1 (``n_worse``) or 0
    (``n_better``), ``n_worse`` is binomial ``(N, q)`` with ``q > 1/2`` under the
    null, so this is a valid p-value, conditionally on ``N`` and hence marginally.
    ``N = 0`` gives 1.

    The no-harm loss ``(1[cascade wrong] - 1[probe wrong] + 1) / 2`` at
    ``epsilon = 0`` is such a loss: ``n_worse`` counts the delegated rows where the
    expert is wrong and the probe right, ``n_better`` the reverse.

    Parameters
    ----------
    n_worse, n_better : array-like of int
        Counts (broadcast together).

    Returns
    -------
    pvalues : ndarray of float

    Examples
    --------
    >>> from skctd.calibration import sign_test_pvalues
    >>> sign_test_pvalues([0, 1, 0], [5, 9, 0])
    array([0.03125   , 0.01074219, 1.        ])
    """
    a = np.asarray(n_worse, dtype=float)
    b = np.asarray(n_better, dtype=float)
    for name, v in (("n_worse", a), ("n_better", b)):
        if v.size and (
            not np.all(np.isfinite(v)) or np.any(v < 0) or np.any(v != np.floor(v))
        ):
            raise ValueError(f"{name} must hold non-negative integer counts.")
    a, b = np.broadcast_arrays(a, b)
    n = a + b
    n_int = np.maximum(n, 1).astype(np.int64)
    return np.where(n > 0, special.bdtr(a, n_int, 0.5), 1.0)

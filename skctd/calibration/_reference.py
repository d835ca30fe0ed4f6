"""A slow, readable reference implementation of (Pareto-filtered) Learn-then-Test.

It follows the steps of the paper one threshold at a time -- a Python loop over
the thresholds, a pass over the data for each, ``scipy.stats.binom.cdf`` per
threshold, a double loop for the Pareto filter and a loop for the fixed sequence --
and shares no code with the vectorised :func:`calibrate_threshold` beyond the
input checks and the result class. The tests compare the two field by field and
``benchmarks/bench_calibration.py`` times one against the other; nothing else
should call it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from skctd.calibration._results import CalibrationResult
from skctd.calibration._risks import risk_name
from skctd.utils import check_cascade_arrays, check_fraction, check_positive_int

__all__ = ["reference_calibrate_threshold"]


def reference_calibrate_threshold(
    signal: Any,
    y: Any,
    probe_scores: Any,
    expert_scores: Any,
    *,
    alpha: float,
    delta: float,
    opt_indices: Any,
    test_indices: Any,
    n_thresholds: int = 100,
    performance_risk: str | Callable[[np.ndarray, np.ndarray], float] = "accuracy",
    pareto: bool = True,
    fwer: str = "fixed_sequence",
    combine: str = "replace",
) -> CalibrationResult:
    """The Learn-then-Test calibration written plainly, one threshold at a time.

    The slow, readable reference of the algorithm that :func:`calibrate_threshold`
    implements with sorted arrays: same inputs (with the optimisation/testing split
    given instead of drawn), same result. It exists to check the fast path and to
    time it; use :func:`calibrate_threshold` for real work (it is much faster, see
    ``benchmarks/bench_calibration.py``, and warns when nothing is certified).

    The steps, on the rows ``opt_indices`` (``D_opt``) and ``test_indices``
    (``D_test``):

    1. Grid: ``+inf``, then the quantiles of the signal on ``D_opt`` at
       ``n_thresholds`` levels from 1 down to 0 (``method="lower"``), skipping
       repeats.
    2. For every threshold ``lam``: the share of ``D_opt`` with ``signal > lam``
       and the performance risk of the cascade score (the expert's score, or the
       mean of expert and probe with ``combine="average"``, on those rows; the
       probe's elsewhere).
    3. Pareto filter: drop every threshold that another one beats on both risks
       (``<=`` on both, ``<`` on one); ``pareto=False`` keeps them all.
    4. For every kept threshold: ``k`` = rows of ``D_test`` with ``signal > lam``
       and the p-value ``P(Binomial(n_test, alpha) <= k)``.
    5. Fixed sequence: certify the kept thresholds in order while the p-value is
       ``<= delta``; or Bonferroni: every one with p-value ``<= delta / m``.
    6. Choose the certified threshold with the lowest performance risk (ties: the
       larger threshold), or the most aggressive one with ``pareto=False``;
       ``+inf`` when nothing is certified.

    Parameters
    ----------
    signal, y, probe_scores, expert_scores : array-like of shape (n,)
        As in :func:`calibrate_threshold`.
    alpha, delta : float
        Budget and confidence parameter, in (0, 1).
    opt_indices, test_indices : array-like of int
        Rows of the optimisation and of the testing split, e.g. the
        ``opt_indices`` / ``test_indices`` of a :class:`CalibrationResult`, or
        :func:`~skctd.calibration.opt_test_split`.
    n_thresholds, performance_risk, pareto, fwer, combine
        As in :func:`calibrate_threshold`. With ``performance_risk="auroc"`` and a
        single class on ``D_opt`` every threshold gets risk 0.5, as there.

    Returns
    -------
    result : CalibrationResult
        Equal to what :func:`calibrate_threshold` returns on the same split, up to
        floating-point rounding of the risks.

    See Also
    --------
    calibrate_threshold : The vectorised implementation to use.

    Examples
    --------
    >>> import numpy as np
    >>> from skctd import calibrate_threshold
    >>> from skctd.calibration import reference_calibrate_threshold
    >>> rng = np.random.default_rng(0)
    >>> n = 1000
    >>> y = rng.integers(0, 2, n)
    >>> signal = rng.uniform(size=n)
    >>> probe = np.clip(y + rng.normal(0, 0.6, n), 0, 1)
    >>> expert = np.where(rng.uniform(size=n) < 0.95, y, 1 - y).astype(float)
    >>> fast = calibrate_threshold(signal, y, probe, expert, alpha=0.2, delta=0.1,
    ...                            random_state=0)
    >>> slow = reference_calibrate_threshold(
    ...     signal, y, probe, expert, alpha=0.2, delta=0.1,
    ...     opt_indices=fast.opt_indices, test_indices=fast.test_indices)
    >>> slow.threshold == fast.threshold, slow.n_certified == fast.n_certified
    (True, True)
    """
    from scipy import stats  # imported here: only this slow reference needs them
    from sklearn.metrics import roc_auc_score

    y, p, e, signal = check_cascade_arrays(
        y, probe_scores, expert_scores, signal=signal
    )
    alpha = check_fraction(alpha, "alpha")
    delta = check_fraction(delta, "delta")
    n_thresholds = check_positive_int(n_thresholds, "n_thresholds")
    opt = np.asarray(opt_indices)
    test = np.asarray(test_indices)

    s_opt, y_opt, p_opt, e_opt = signal[opt], y[opt], p[opt], e[opt]
    s_test = signal[test]
    n_test = len(test)
    d_opt = e_opt if combine == "replace" else (e_opt + p_opt) / 2

    # 1. the grid: +inf, then descending quantiles of the optimisation split
    grid = [math.inf]
    for level in np.linspace(0.0, 1.0, n_thresholds)[::-1]:
        lam = float(np.quantile(s_opt, level, method="lower"))
        if lam != grid[-1]:
            grid.append(lam)
    m = len(grid)

    # 2. the two empirical risks of every threshold on the optimisation split
    budget, perf = [], []
    for lam in grid:
        delegated = s_opt > lam
        scores = np.where(delegated, d_opt, p_opt)
        budget.append(float(np.mean(delegated)))
        if performance_risk == "accuracy":
            perf.append(float(1.0 - np.mean((scores >= 0.5) == y_opt)))
        elif performance_risk == "auroc":
            single_class = y_opt.all() or not y_opt.any()
            perf.append(0.5 if single_class else 1.0 - roc_auc_score(y_opt, scores))
        else:
            perf.append(float(performance_risk(y_opt.astype(int), scores)))

    # 3. the Pareto filter
    tested = []
    for i in range(m):
        dominated = False
        for j in range(m):
            if (
                budget[j] <= budget[i]
                and perf[j] <= perf[i]
                and (budget[j] < budget[i] or perf[j] < perf[i])
            ):
                dominated = True
                break
        if not pareto or not dominated:
            tested.append(i)

    # 4. binomial p-values on the testing split
    k = [int(np.sum(s_test > lam)) for lam in grid]
    pvalues = [math.nan] * m
    for i in tested:
        pvalues[i] = float(stats.binom.cdf(k[i], n_test, alpha))

    # 5. family-wise error control
    certified = []
    if fwer == "fixed_sequence":
        for i in tested:
            if pvalues[i] > delta:
                break
            certified.append(i)
    else:
        certified = [i for i in tested if pvalues[i] <= delta / len(tested)]

    # 6. the choice
    if not certified:
        chosen = 0
    elif pareto:
        chosen = certified[0]
        for i in certified:  # strictly lower only: ties keep the larger threshold
            if perf[i] < perf[chosen]:
                chosen = i
    else:
        chosen = certified[-1]

    return CalibrationResult(
        threshold=grid[chosen],
        selected_index=chosen,
        thresholds=np.array(grid),
        certified=np.isin(np.arange(m), certified),
        pvalues=np.array(pvalues),
        budget_risk_opt=np.array(budget),
        performance_risk_opt=np.array(perf),
        budget_risk_test=np.array(k) / n_test,
        pareto_mask=np.isin(np.arange(m), tested),
        opt_indices=opt,
        test_indices=test,
        alpha=alpha,
        delta=delta,
        n_opt=len(opt),
        n_test=n_test,
        pareto=bool(pareto),
        fwer=fwer,
        performance_risk=risk_name(performance_risk),
    )

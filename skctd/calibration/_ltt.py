"""Learn-then-Test calibration of a delegation threshold (pure numpy / scipy).

The cascade delegates a row to the expert when its delegation signal exceeds a
threshold ``lam``. This module picks ``lam`` so that the expected share of delegated
rows (the *budget risk*) is at most ``alpha`` with probability at least ``1 - delta``
over the draw of the calibration data (Angelopoulos et al., 2022, "Learn then
Test"), optionally restricting the tested thresholds to the Pareto front of budget
and performance (Laufer-Goldshtein et al., 2023, "Pareto testing").

Everything is vectorised and O(n log m) for n rows and m thresholds: each row is
placed between two consecutive thresholds (``np.searchsorted`` into the short
grid), ``np.bincount`` and suffix sums then give the number of delegated rows and
the accuracy of the cascade of every threshold, and the binomial tail of every
(threshold, budget) pair is one broadcast call. The AUROC performance risk sorts
the 2n candidate scores (probe and expert) once and then costs O(n) per threshold.
There is no Python loop over thresholds or rows, except around a user-supplied
``performance_risk`` callable.

The building blocks live in sibling modules (p-values, FWER procedures, the Pareto
filter, the grid, the performance risks, the results); this module is the
procedure: :func:`calibrate_threshold` runs it once and
:func:`calibrate_budget_sweep` runs it for many budgets and many random splits at
once (the evaluation protocol of the paper).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from skctd.calibration._fwer import bonferroni_test, fixed_sequence_test
from skctd.calibration._grid import candidate_thresholds, count_above, threshold_bins
from skctd.calibration._pareto import pareto_efficient
from skctd.calibration._pvalues import binomial_pvalues, min_test_size
from skctd.calibration._results import BudgetSweepResult, CalibrationResult
from skctd.calibration._risks import (
    accuracy_risks,
    auroc_risks,
    callable_risks,
    risk_name,
)
from skctd.calibration._splits import opt_test_split
from skctd.utils import (
    check_budgets,
    check_cascade_arrays,
    check_fraction,
    check_positive_int,
)

__all__ = ["calibrate_budget_sweep", "calibrate_threshold"]

_PERFORMANCE_RISKS = ("accuracy", "auroc")
_FWER = ("fixed_sequence", "bonferroni")
_COMBINE = ("replace", "average")


# --------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------
def _check_options(n_thresholds, performance_risk, fwer, combine, opt_fraction):
    n_thresholds = check_positive_int(n_thresholds, "n_thresholds")
    if not callable(performance_risk) and performance_risk not in _PERFORMANCE_RISKS:
        raise ValueError(
            f"performance_risk must be one of {_PERFORMANCE_RISKS} or a callable "
            f"(y, scores) -> risk, got {performance_risk!r}."
        )
    if fwer not in _FWER:
        raise ValueError(f"fwer must be one of {_FWER}, got {fwer!r}.")
    if combine not in _COMBINE:
        raise ValueError(f"combine must be one of {_COMBINE}, got {combine!r}.")
    opt_fraction = check_fraction(opt_fraction, "opt_fraction")
    return n_thresholds, opt_fraction


@dataclass
class _OptStage:
    thresholds: np.ndarray
    budget: np.ndarray
    performance: np.ndarray
    tested: np.ndarray


def _opt_stage(
    sig,
    y,
    p,
    e,
    *,
    n_thresholds,
    performance_risk,
    pareto,
    combine,
    need_performance=True,
) -> _OptStage:
    """Grid, empirical risks and Pareto filter on the optimisation split."""
    n = sig.shape[0]
    grid = candidate_thresholds(sig, n_thresholds)
    bins = threshold_bins(sig, grid)
    k = count_above(bins, grid)
    budget = k / n
    d = e if combine == "replace" else 0.5 * (e + p)
    if not need_performance:
        perf = np.full(grid.shape[0], np.nan)
    elif performance_risk == "accuracy":
        perf = accuracy_risks(bins, grid, y, p, d)
    elif performance_risk == "auroc":
        perf = auroc_risks(bins, grid.shape[0], y, p, d)
    else:
        order = np.argsort(sig, kind="stable")
        start = n - k  # rows order[start:] have signal > threshold
        perf = callable_risks(performance_risk, start, y[order], p[order], d[order])
    if pareto:
        tested = pareto_efficient(np.column_stack([budget, perf]))
    else:
        tested = np.ones(grid.shape[0], dtype=bool)
    return _OptStage(grid, budget, perf, tested)


def _test_stage(test_signal, opt: _OptStage, alphas, delta, *, fwer, pareto):
    """Binomial tests on the test split for every budget at once.

    Returns k (per threshold), p-values and certified masks of shape
    (n_thresholds, n_alphas) (NaN / False off the tested set), and the index of the
    chosen threshold per budget (0, i.e. +inf, when nothing is certified).
    """
    n_test = test_signal.shape[0]
    grid = opt.thresholds
    k = count_above(threshold_bins(test_signal, grid), grid)
    idx = np.flatnonzero(opt.tested)  # already ordered conservative -> aggressive
    pv_t = binomial_pvalues(k[idx, None], n_test, alphas[None, :])
    if fwer == "fixed_sequence":
        n_cert = fixed_sequence_test(pv_t, delta)  # per budget: a prefix of idx
        cert_t = np.arange(idx.size)[:, None] < n_cert[None, :]
    else:
        cert_t = bonferroni_test(pv_t, delta)
    any_cert = cert_t.any(axis=0)
    if pareto:
        # lowest optimisation-split performance risk; argmin returns the first
        # minimum, i.e. the largest threshold among ties
        masked = np.where(cert_t, opt.performance[idx, None], np.inf)
        choice_t = np.argmin(masked, axis=0)
    else:
        # most aggressive certified = last certified in the descending order
        choice_t = idx.size - 1 - np.argmax(cert_t[::-1], axis=0)
    chosen = np.where(any_cert, idx[choice_t], 0)
    pvalues = np.full((grid.shape[0], alphas.shape[0]), np.nan)
    pvalues[idx] = pv_t
    certified = np.zeros((grid.shape[0], alphas.shape[0]), dtype=bool)
    certified[idx] = cert_t
    return k, pvalues, certified, chosen, any_cert


def _no_certification_message(n_test, alpha, delta, n_tested=1) -> str:
    level, rule = delta, "(1 - alpha)^n <= delta"
    if n_tested > 1:  # Bonferroni tests every hypothesis at delta / m
        level, rule = delta / n_tested, f"(1 - alpha)^n <= delta/{n_tested}"
    return (
        f"No threshold could be certified with n={n_test} test-split rows at "
        f"alpha={alpha:g} and delta={delta:g}, so the cascade never delegates "
        f"(threshold=+inf, probe only). Certifying even 'never delegate' needs at "
        f"least n={min_test_size(alpha, level)} test-split rows ({rule}); give "
        "more calibration data, or raise alpha or delta."
    )


# --------------------------------------------------------------------------------------
# public entry points
# --------------------------------------------------------------------------------------
def calibrate_threshold(
    signal: Any,
    y: Any,
    probe_scores: Any,
    expert_scores: Any,
    *,
    alpha: float,
    delta: float,
    n_thresholds: int = 100,
    performance_risk: str | Callable[[np.ndarray, np.ndarray], float] = "accuracy",
    pareto: bool = True,
    fwer: str = "fixed_sequence",
    opt_fraction: float = 0.3,
    combine: str = "replace",
    random_state: Any = None,
) -> CalibrationResult:
    """Calibrate a delegation threshold by (Pareto-filtered) Learn-then-Test.

    1. Split the rows at random into an optimisation part ``D_opt``
       (``opt_fraction``) and a testing part ``D_test``.
    2. Candidate thresholds: ``+inf`` and quantiles of the signal on ``D_opt`` only
       (:func:`candidate_thresholds`), so the hypotheses and their order are fixed
       before ``D_test`` is looked at.
    3. On ``D_opt``, for every threshold ``lam``: the delegation rate ``R_B`` and the
       performance risk ``R_P`` of the cascade score ``s = expert if signal > lam
       else probe``.
    4. Keep the Pareto-efficient thresholds in ``(R_B, R_P)`` (all of them with
       ``pareto=False``), ordered from conservative (large ``lam``) to aggressive.
    5. On ``D_test`` (``n`` rows): binomial p-value ``P(Bin(n, alpha) <= k(lam))``
       with ``k(lam) = #{signal > lam}``, then fixed-sequence testing at ``delta``
       (or Bonferroni).
    6. ``lam*`` = the certified threshold with the lowest ``R_P`` on ``D_opt`` (ties:
       the larger threshold); with ``pareto=False`` (the paper's budget-only LTT)
       the most aggressive certified threshold. Nothing certified: ``+inf`` and a
       ``UserWarning``.

    Guarantee: ``P(R_B(lam*) <= alpha) >= 1 - delta`` over the draw of the
    calibration rows, when they are exchangeable with future inputs.

    This is the one-split, one-budget case of :func:`calibrate_budget_sweep`: the
    result is ``calibrate_budget_sweep(..., alphas=[alpha], n_splits=1,
    random_state=random_state, return_details=True).details[0]`` (same code path;
    the split is :func:`~skctd.calibration.opt_test_split`).

    Parameters
    ----------
    signal : array-like of shape (n,)
        Delegation signal of the calibration rows (higher = delegate first);
        finite values (NaN or inf raise ``ValueError``).
    y : array-like of shape (n,)
        Labels encoded as 0/1 (1 = positive / unsafe class).
    probe_scores, expert_scores : array-like of shape (n,)
        ``P(y = 1 | x)`` of the probe and of the expert, in [0, 1].
    alpha : float
        Budget: the largest acceptable expected delegation rate, in (0, 1).
    delta : float
        Allowed probability of exceeding the budget, in (0, 1).
    n_thresholds : int, default=100
        Number of quantile levels of the grid (``+inf`` comes on top).
    performance_risk : {"accuracy", "auroc"} or callable, default="accuracy"
        ``"accuracy"``: 1 - accuracy of ``s`` at 0.5 (predict 1 when ``s >= 0.5``).
        ``"auroc"``: 1 - AUROC of ``s``; if ``D_opt`` holds a single class, AUROC is
        undefined, every threshold gets risk 0.5 and a warning is raised (the
        Pareto filter then keeps only thresholds that delegate nothing on
        ``D_opt``). A callable ``f(y, scores) -> float`` (lower is better) is called
        once per threshold.
    pareto : bool, default=True
        Pareto-filter the thresholds before testing and choose by performance.
        ``False``: test all thresholds, choose the most aggressive certified.
    fwer : {"fixed_sequence", "bonferroni"}, default="fixed_sequence"
        Family-wise error control over the tested thresholds.
    opt_fraction : float, default=0.3
        Share of the rows in ``D_opt``, in (0, 1).
    combine : {"replace", "average"}, default="replace"
        Score of delegated rows: the expert's, or the mean of expert and probe.
    random_state : int, RandomState instance or None, default=None
        Controls the optimisation/testing split.

    Returns
    -------
    result : CalibrationResult

    See Also
    --------
    calibrate_budget_sweep : Many budgets and splits at once.
    skctd.CalibratedDelegationCascade : The estimator that calls this function.

    References
    ----------
    Angelopoulos, Bates, Candès, Jordan, Lei (2022). Learn then Test: Calibrating
    predictive algorithms to achieve risk control. Laufer-Goldshtein, Fisch,
    Barzilay, Jaakkola (2023). Efficiently controlling multiple risks with Pareto
    testing.

    Examples
    --------
    >>> import numpy as np
    >>> from skctd import calibrate_threshold
    >>> rng = np.random.default_rng(0)
    >>> n = 2000
    >>> y = rng.integers(0, 2, n)
    >>> signal = rng.uniform(size=n)
    >>> probe = np.clip(y + rng.normal(0, 0.6, n), 0, 1)  # noisy probe
    >>> expert = np.where(rng.uniform(size=n) < 0.95, y, 1 - y).astype(float)
    >>> res = calibrate_threshold(signal, y, probe, expert, alpha=0.2, delta=0.1,
    ...                           random_state=0)
    >>> bool(0.75 < res.threshold < 0.9)
    True
    >>> bool(res.certified[res.selected_index])
    True
    """
    alpha = check_fraction(alpha, "alpha")
    run = _calibrate(
        signal,
        y,
        probe_scores,
        expert_scores,
        alphas=[alpha],
        delta=delta,
        n_splits=1,
        splits=None,
        n_thresholds=n_thresholds,
        performance_risk=performance_risk,
        pareto=pareto,
        fwer=fwer,
        opt_fraction=opt_fraction,
        combine=combine,
        random_state=random_state,
        return_details=True,
    )
    for message in run.warnings:
        warnings.warn(message, UserWarning, stacklevel=2)
    result = run.result.details[0]
    if not result.n_certified:
        warnings.warn(
            _no_certification_message(
                result.n_test, result.alpha, result.delta, run.n_tested_bonferroni[0]
            ),
            UserWarning,
            stacklevel=2,
        )
    return result


def _check_splits(splits, n) -> tuple[list, list]:
    opts, tests = [], []
    for i, pair in enumerate(splits):
        try:
            o, t = pair
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"splits[{i}] must be a pair (opt_indices, test_indices)."
            ) from exc
        o = np.asarray(o)
        t = np.asarray(t)
        for name, ix in (("opt", o), ("test", t)):
            if ix.ndim != 1 or ix.size == 0 or not np.issubdtype(ix.dtype, np.integer):
                raise ValueError(
                    f"splits[{i}] {name} indices must be a non-empty 1-D integer array."
                )
            if ix.min() < 0 or ix.max() >= n:
                raise ValueError(
                    f"splits[{i}] {name} indices must lie in [0, {n}), the rows of "
                    "the arrays given."
                )
        if np.intersect1d(o, t).size:
            raise ValueError(
                f"splits[{i}]: the optimisation and testing indices overlap; they must "
                "be disjoint or the guarantee is lost."
            )
        opts.append(o)
        tests.append(t)
    if not opts:
        raise ValueError("splits is empty.")
    return opts, tests


def calibrate_budget_sweep(
    signal: Any,
    y: Any,
    probe_scores: Any,
    expert_scores: Any,
    *,
    alphas: Any,
    delta: float,
    n_splits: int = 1,
    splits: Iterable[tuple[Any, Any]] | None = None,
    n_thresholds: int = 100,
    performance_risk: str | Callable[[np.ndarray, np.ndarray], float] = "accuracy",
    pareto: bool = True,
    fwer: str = "fixed_sequence",
    opt_fraction: float = 0.3,
    combine: str = "replace",
    random_state: Any = None,
    return_details: bool = False,
) -> BudgetSweepResult:
    """Run :func:`calibrate_threshold` for many budgets and many splits at once.

    The grid, the optimisation-split risks and the Pareto filter depend only on the
    optimisation split, not on the budget, so they are computed once per split;
    the binomial tests and the fixed sequence for all budgets are then one
    broadcast over ``(thresholds, alphas)``. For split ``i`` and budget ``alphas[j]``
    the result equals ``calibrate_threshold(...)`` on the same split.

    Two ways to give the splits:

    - ``splits=None``: ``n_splits`` random optimisation/testing splits of all the
      rows (``opt_fraction``, ``random_state``), drawn one after the other by
      :func:`~skctd.calibration.opt_test_split`, as ``calibrate_threshold`` draws
      its one split.
    - ``splits=[(opt_idx, test_idx), ...]``: precomputed index pairs into the arrays
      given. This is how to run the evaluation protocol of the paper in one call:
      pass the whole test pool, and for each of the 500 calibration/evaluation
      splits the optimisation/testing split *of its calibration part*. The
      evaluation part never enters, and :meth:`BudgetSweepResult.delegation_rate`
      measures the realised rates on it.

    Parameters
    ----------
    signal, y, probe_scores, expert_scores : array-like of shape (n,)
        As in :func:`calibrate_threshold`.
    alphas : array-like of float
        Budgets, each in (0, 1).
    delta : float
        Confidence parameter in (0, 1).
    n_splits : int, default=1
        Number of random splits when ``splits`` is None (must stay 1 or equal
        ``len(splits)`` otherwise).
    splits : iterable of (opt_indices, test_indices), optional
        Precomputed disjoint index pairs (overrides ``opt_fraction``).
    n_thresholds, performance_risk, pareto, fwer, opt_fraction, combine
        As in :func:`calibrate_threshold`.
    random_state : int, RandomState instance or None, default=None
        Controls the random splits (unused with ``splits``).
    return_details : bool, default=False
        Also return, per split, the full :class:`CalibrationResult` at ``alphas[0]``.

    Returns
    -------
    result : BudgetSweepResult
        ``result.thresholds[i, j]`` is the threshold of split ``i`` at
        ``alphas[j]``.

    Warns
    -----
    UserWarning
        Once, summarising the (split, budget) pairs where nothing was certified.

    Examples
    --------
    The paper's protocol: 20 budgets x 50 calibration/evaluation splits of a pool.

    >>> import numpy as np
    >>> from skctd import calibrate_budget_sweep
    >>> rng = np.random.default_rng(0)
    >>> n = 3000
    >>> y = rng.integers(0, 2, n)
    >>> signal = rng.uniform(size=n)
    >>> probe = np.clip(y + rng.normal(0, 0.6, n), 0, 1)
    >>> expert = np.where(rng.uniform(size=n) < 0.95, y, 1 - y).astype(float)
    >>> splits, evals = [], []
    >>> for _ in range(50):
    ...     perm = rng.permutation(n)
    ...     cal, ev = perm[: n // 2], perm[n // 2 :]
    ...     splits.append((cal[:450], cal[450:]))  # 30% opt / 70% test of cal
    ...     evals.append(ev)
    >>> alphas = np.linspace(0.05, 0.95, 20)
    >>> res = calibrate_budget_sweep(signal, y, probe, expert, alphas=alphas,
    ...                              delta=0.1, splits=splits)
    >>> res.thresholds.shape
    (50, 20)
    >>> rates = res.delegation_rate(signal, evals)
    >>> bool(np.mean(rates > alphas) < 0.1)
    True
    """
    run = _calibrate(
        signal,
        y,
        probe_scores,
        expert_scores,
        alphas=alphas,
        delta=delta,
        n_splits=n_splits,
        splits=splits,
        n_thresholds=n_thresholds,
        performance_risk=performance_risk,
        pareto=pareto,
        fwer=fwer,
        opt_fraction=opt_fraction,
        combine=combine,
        random_state=random_state,
        return_details=return_details,
    )
    # distinct warnings of the splits once (e.g. the single-class AUROC warning)
    for message in run.warnings:
        warnings.warn(message, UserWarning, stacklevel=2)
    res = run.result
    none = res.n_certified == 0
    if none.any():
        bad_alpha = res.alphas[none.any(axis=0)]
        worst = int(res.n_test.min())
        warnings.warn(
            f"Nothing was certified for {int(none.sum())} of {none.size} "
            f"(split, budget) pairs, which then never delegate (threshold=+inf). "
            f"Affected budgets: {np.round(bad_alpha, 4).tolist()}; "
            f"delta={res.delta:g}; smallest test split n={worst}. "
            + _no_certification_message(
                worst,
                float(bad_alpha.min()),
                res.delta,
                int(run.n_tested_bonferroni[none.any(axis=1)].max()),
            ),
            UserWarning,
            stacklevel=2,
        )
    return res


# --------------------------------------------------------------------------------------
# the one code path behind both entry points
# --------------------------------------------------------------------------------------
@dataclass
class _Run:
    result: BudgetSweepResult
    warnings: list  # distinct messages of the warnings raised while calibrating
    n_tested_bonferroni: np.ndarray  # per split: Bonferroni's m, or 1 (fixed sequence)


def _calibrate(
    signal,
    y,
    probe_scores,
    expert_scores,
    *,
    alphas,
    delta,
    n_splits,
    splits,
    n_thresholds,
    performance_risk,
    pareto,
    fwer,
    opt_fraction,
    combine,
    random_state,
    return_details,
) -> _Run:
    """Validate, draw or check the splits, and calibrate every (split, budget)."""
    alphas = check_budgets(alphas)
    delta = check_fraction(delta, "delta")
    n_thresholds, opt_fraction = _check_options(
        n_thresholds, performance_risk, fwer, combine, opt_fraction
    )
    y, p, e, signal = check_cascade_arrays(
        y, probe_scores, expert_scores, signal=signal
    )
    n = signal.shape[0]
    if splits is None:
        n_splits = check_positive_int(n_splits, "n_splits")
        rng = check_random_state(random_state)
        opts, tests = [], []
        for _ in range(n_splits):
            o, t = opt_test_split(n, opt_fraction=opt_fraction, random_state=rng)
            opts.append(o)
            tests.append(t)
    else:
        opts, tests = _check_splits(splits, n)
        if n_splits not in (1, len(opts)):
            raise ValueError(
                f"n_splits={n_splits} conflicts with the {len(opts)} splits given; "
                "leave n_splits at its default when passing splits."
            )
        n_splits = len(opts)

    pareto = bool(pareto)
    name = risk_name(performance_risk)
    n_alphas = alphas.shape[0]
    thresholds = np.empty((n_splits, n_alphas))
    n_certified = np.empty((n_splits, n_alphas), dtype=np.int64)
    n_test = np.empty(n_splits, dtype=np.int64)
    n_tested = np.ones(n_splits, dtype=np.int64)
    budget_opt = np.empty((n_splits, n_alphas))
    perf_opt = np.empty((n_splits, n_alphas))
    details = [] if return_details else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(n_splits):  # one vectorised calibration per split
            o, t = opts[i], tests[i]
            opt = _opt_stage(
                signal[o],
                y[o],
                p[o],
                e[o],
                n_thresholds=n_thresholds,
                performance_risk=performance_risk,
                pareto=pareto,
                combine=combine,
                need_performance=pareto or return_details,
            )
            k, pvalues, certified, chosen, _ = _test_stage(
                signal[t], opt, alphas, delta, fwer=fwer, pareto=pareto
            )
            thresholds[i] = opt.thresholds[chosen]
            n_certified[i] = certified.sum(axis=0)
            n_test[i] = t.size
            if fwer == "bonferroni":
                n_tested[i] = int(opt.tested.sum())
            budget_opt[i] = opt.budget[chosen]
            perf_opt[i] = opt.performance[chosen]
            if return_details:
                details.append(
                    CalibrationResult(
                        threshold=float(opt.thresholds[chosen[0]]),
                        selected_index=int(chosen[0]),
                        thresholds=opt.thresholds,
                        certified=certified[:, 0],
                        pvalues=pvalues[:, 0],
                        budget_risk_opt=opt.budget,
                        performance_risk_opt=opt.performance,
                        budget_risk_test=k / t.size,
                        pareto_mask=opt.tested,
                        opt_indices=o,
                        test_indices=t,
                        alpha=float(alphas[0]),
                        delta=delta,
                        n_opt=int(o.size),
                        n_test=int(t.size),
                        pareto=pareto,
                        fwer=fwer,
                        performance_risk=name,
                    )
                )
    result = BudgetSweepResult(
        thresholds=thresholds,
        alphas=alphas,
        delta=delta,
        n_certified=n_certified,
        n_test=n_test,
        budget_risk_opt=budget_opt,
        performance_risk_opt=perf_opt,
        opt_indices=opts,
        test_indices=tests,
        details=details,
    )
    messages = list(dict.fromkeys(str(w.message) for w in caught))
    return _Run(result, messages, n_tested)

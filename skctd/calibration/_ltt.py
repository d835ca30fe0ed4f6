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

With ``constraints`` each threshold also carries other risks (harm, error,
miss, cost, user losses; ``_constraints.py``), tested together with the budget
in an order fixed on the optimisation split (``_joint.py``).

The building blocks live in sibling modules (p-values, FWER procedures, the Pareto
filter, the grid, the performance risks, the constraints, the results); this
module is the procedure: :func:`calibrate_threshold` runs it once and
:func:`calibrate_budget_sweep` runs it for many budgets and many random splits at
once (the evaluation protocol of the paper).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from skctd.calibration._constraints import check_constraints, prepare_risks
from skctd.calibration._grid import candidate_thresholds, count_above, threshold_bins
from skctd.calibration._joint import SELECTIONS, TESTING_ORDERS, run_split
from skctd.calibration._pvalues import min_test_size
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
def _check_options(
    n_thresholds,
    performance_risk,
    fwer,
    combine,
    opt_fraction,
    testing_order="auto",
    selection="best",
):
    n_thresholds = check_positive_int(n_thresholds, "n_thresholds")
    if testing_order not in TESTING_ORDERS:
        raise ValueError(
            f"testing_order must be one of {TESTING_ORDERS}, got {testing_order!r}."
        )
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}.")
    if selection == "one_se" and performance_risk != "accuracy":
        raise ValueError(
            "selection='one_se' needs performance_risk='accuracy' (the standard "
            "error is that of a per-row loss); use selection='best' otherwise."
        )
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
    bins: np.ndarray
    correctness_change: np.ndarray | None = None


def _opt_stage(
    sig,
    y,
    p,
    d,
    *,
    n_thresholds,
    performance_risk,
    need_performance=True,
    need_change=False,
) -> _OptStage:
    """Grid and empirical budget / performance risks on the optimisation split.

    ``d`` is the score of a delegated row (expert, or expert-probe mean).
    ``correctness_change`` (with ``need_change``): per threshold, the number of
    delegated rows whose correctness at 0.5 differs between probe and ``d`` (the
    one-standard-error rule needs it).
    """
    n = sig.shape[0]
    grid = candidate_thresholds(sig, n_thresholds)
    bins = threshold_bins(sig, grid)
    k = count_above(bins, grid)
    budget = k / n
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
    change = None
    if need_change:
        yb = y.astype(bool)
        flips = ((p >= 0.5) != yb) != ((d >= 0.5) != yb)
        change = np.rint(count_above(bins, grid, flips.astype(float)))
    return _OptStage(grid, budget, perf, bins, change)


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


def _rows_phrase(rows_needed: float, n_opt: int, n_test: int, which: str) -> str:
    """'about N test-split rows (~M calibration rows)' for an estimate."""
    if np.isnan(rows_needed):
        return "no estimate of the rows needed"
    if not np.isfinite(rows_needed):
        return (
            f"on the optimisation split no {which} looks within the constraints at "
            "any sample size, so more calibration data is unlikely to change this"
        )
    cal = int(math.ceil(rows_needed * (n_opt + n_test) / max(n_test, 1)))
    if rows_needed <= n_test:
        return (
            f"the optimisation split's effect sizes suggested that {n_test:,} "
            f"test-split rows would certify the most promising threshold, but the "
            f"test split did not confirm it (the effect is smaller than it looked "
            f"there); more calibration data is the remedy"
        )
    return (
        f"an estimate from the optimisation split's effect sizes says about "
        f"{int(rows_needed):,} test-split rows (~{cal:,} calibration rows at this "
        f"opt/test ratio) would certify the most promising threshold"
    )


def _joint_messages(result: CalibrationResult, n_tested: int = 1) -> list[str]:
    """The warnings of a calibration with constraints besides the budget."""
    extra = [c for c in result.constraints if c != "budget"]
    if not extra:
        return []
    messages = []
    blocked = ", ".join(result.blocked_by) or "none"
    rows = _rows_phrase(
        result.rows_needed,
        result.n_opt,
        result.n_test,
        "threshold" if not result.n_certified else "threshold that delegates",
    )
    if not result.n_certified:
        untested_inf = [
            c for c in result.blocked_by if c in ("error", "miss", "miss_marginal")
        ] or [c for c in result.blocked_by if c != "budget"]
        if "budget" in result.blocked_by and result.testing_order.size and (
            result.blocked_index == 0
        ):
            messages.append(
                _no_certification_message(
                    result.n_test, result.alpha, result.delta, n_tested
                )
            )
        if untested_inf:
            described = "; ".join(
                result.risk_descriptions.get(c, c) for c in untested_inf
            )
            messages.append(
                f"No threshold could be certified for the constraints "
                f"{extra} (alpha={result.alpha:g}, delta={result.delta:g}, "
                f"n_test={result.n_test}); blocked by {blocked}. Not even the probe "
                f"alone (threshold=+inf) is certified to meet: {described}. The "
                "cascade falls back to never delegating, but NO guarantee holds for "
                f"these constraints: {rows}."
            )
    elif not result.certified[1:].any():
        where = (
            f" at threshold {result.thresholds[result.blocked_index]:.6g}"
            if result.blocked_index > 0
            else ""
        )
        messages.append(
            f"No threshold that delegates could be certified under the constraints "
            f"{extra} (alpha={result.alpha:g}, delta={result.delta:g}, "
            f"n_test={result.n_test}): the testing sequence stopped{where}, blocked "
            f"by {blocked}. The cascade never delegates (threshold=+inf, probe "
            f"only); {rows}."
        )
    for name, (c_max, n_capped) in result.cost_scale.items():
        if n_capped:
            messages.append(
                f"{n_capped} test-split row(s) cost more than c_max={c_max:g} (the "
                f"largest cost of the optimisation split); the {name!r} certificate "
                "bounds the mean of min(cost, c_max). Pass cost_max=<a hard bound on "
                "every cost> to certify the raw cost."
            )
    return messages


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
    constraints: Any = None,
    cost: Any = None,
    cost_max: float | None = None,
    testing_order: str = "auto",
    selection: str = "best",
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

    **Several risks** (``constraints``, Pareto Testing of Laufer-Goldshtein et
    al., 2023): every threshold also carries the risks of the constraints (see
    :class:`~skctd.calibration.Risk`: ``"harm"``, ``"error"``, ``"miss"``,
    ``"miss_marginal"``, ``"cost"``, ``"cost_share"`` or a user loss). Its null is
    "some risk exceeds its level", its p-value the largest of the risks' p-values
    on ``D_test``; the Pareto filter of step 4 uses every risk's empirical value on
    ``D_opt`` too. The hypotheses are then tested in the order of their p-values
    *estimated on* ``D_opt`` (as if ``D_opt`` had the test split's size; ``+inf``
    first when every constraint surely holds there), by fixed-sequence testing
    at ``delta``. Guarantee: with probability ``>= 1 - delta``, *every* certified
    risk of ``lam*`` is within its level. ``+inf`` (never delegate) surely meets
    the budget, cost and harm constraints, but its error and miss rates are the
    probe's own and are tested like any threshold: under such constraints the
    cascade may certify nothing, and then falls back to ``+inf`` *without* a
    guarantee (a warning says so). When no threshold that delegates is
    certified, the warning and ``CalibrationResult.blocked_by`` say which
    risk stopped the sequence, and ``CalibrationResult.rows_needed``
    estimates (from ``D_opt``) the test-split size that would certify one.
    Why this order: the harm risk is not monotone in ``lam`` and has no power
    where a threshold delegates a handful of rows, so the paper's walk from
    conservative to aggressive stops at once (``testing_order="lambda"``); see
    ``benchmarks/results/joint_guarantee_design.md`` for the measured designs.

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
        Controls the optimisation/testing split, and the random order of the
        test rows for betting p-values (drawn after the split).
    constraints : mapping or sequence of Risk, optional
        Risks to certify besides the budget: ``{name: level}`` for built-ins, e.g.
        ``{"harm": 0.0, "miss": 0.05}`` (see
        ``skctd.calibration.BUILTIN_RISKS`` for the names and units), or a
        list of :class:`~skctd.calibration.Risk` (user losses, another p-value).
        ``None`` or empty: the budget alone, exactly the procedure above.
    cost : array-like of shape (n,), optional
        Per-row expert costs of the calibration rows (tokens, money...), for the
        ``"cost"`` and ``"cost_share"`` constraints.
    cost_max : float, optional
        A bound on every cost (scales the cost loss into [0, 1]); default: the
        largest cost of ``D_opt`` (the certificate then bounds the mean of
        ``min(cost, cost_max)``).
    testing_order : {"auto", "pvalue", "lambda", "single"}, default="auto"
        Order of the fixed sequence: ``"pvalue"`` (estimated p-values on
        ``D_opt``, the default with constraints), ``"lambda"`` (conservative to
        aggressive, the default and the paper's order without constraints),
        ``"single"`` (``+inf`` then one candidate: the best ``D_opt``
        performance among thresholds whose estimated p-value is ``<= delta``).
    selection : {"best", "one_se"}, default="best"
        The pick among the certified thresholds (with ``pareto=True``): the best
        ``D_opt`` performance (the paper), or the most conservative certified
        threshold within one standard error of the paired difference to the best
        (``performance_risk="accuracy"`` only).

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

    Certify also that the cascade is never less accurate than the probe alone:

    >>> safe = calibrate_threshold(signal, y, probe, expert, alpha=0.2, delta=0.1,
    ...                            random_state=0, constraints={"harm": 0.0})
    >>> safe.constraints
    ('budget', 'harm')
    >>> print(safe.guarantee())  # doctest: +NORMALIZE_WHITESPACE
    With probability >= 0.9 over the calibration data: at most 20% of inputs are
    sent to the expert; the cascade is not less accurate than the probe alone.
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
        constraints=constraints,
        cost=cost,
        cost_max=cost_max,
        testing_order=testing_order,
        selection=selection,
    )
    for message in run.warnings:
        warnings.warn(message, UserWarning, stacklevel=2)
    result = run.result.details[0]
    if run.risks:
        messages = _joint_messages(result, int(run.n_tested_bonferroni[0]))
    elif not result.n_certified:
        messages = [
            _no_certification_message(
                result.n_test, result.alpha, result.delta, run.n_tested_bonferroni[0]
            )
        ]
    else:
        messages = []
    for message in messages:
        warnings.warn(message, UserWarning, stacklevel=2)
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
    constraints: Any = None,
    cost: Any = None,
    cost_max: float | None = None,
    testing_order: str = "auto",
    selection: str = "best",
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
        Also return, per split, the full :class:`CalibrationResult` at ``alphas[0]``
        (with constraints, the rows-needed estimates are computed only then).
    constraints, cost, cost_max, testing_order, selection
        As in :func:`calibrate_threshold`. With ``splits`` given, ``random_state``
        still draws the row order of betting p-values.

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
        constraints=constraints,
        cost=cost,
        cost_max=cost_max,
        testing_order=testing_order,
        selection=selection,
    )
    # distinct warnings of the splits once (e.g. the single-class AUROC warning)
    for message in run.warnings:
        warnings.warn(message, UserWarning, stacklevel=2)
    res = run.result
    none = res.n_certified == 0
    if run.risks:
        _warn_sweep_constraints(res)
    elif none.any():
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


def _warn_sweep_constraints(res: BudgetSweepResult) -> None:
    """One summary warning for the (split, budget) pairs that do not delegate."""
    none = res.n_certified == 0
    stuck = ~res.delegating_certified
    if not stuck.any():
        return
    counts: dict = {}
    for name in res.blocked_by[stuck]:
        counts[name or "nothing left"] = counts.get(name or "nothing left", 0) + 1
    need = res.rows_needed[stuck]
    need = need[~np.isnan(need)]  # estimated with return_details=True only
    finite = need[np.isfinite(need)]
    est = ""
    if finite.size:
        est += (
            f" Estimated test-split rows that would certify the most promising "
            f"threshold (from the optimisation split's effect sizes; an estimate): "
            f"median {int(np.median(finite)):,} over the {finite.size} pairs where "
            "one looks feasible."
        )
    if np.isinf(need).any():
        est += (
            f" In {int(np.isinf(need).sum())} pairs no delegating threshold looks "
            "within the constraints on the optimisation split at any size."
        )
    text = (
        f"{int(stuck.sum())} of {stuck.size} (split, budget) pairs never delegate "
        f"under the constraints {list(res.constraints)} (delta={res.delta:g}); "
        f"{int(none.sum())} of them certified nothing at all (not even threshold="
        f"+inf; then no guarantee holds). First risk blocking the testing sequence: "
        f"{counts}.{est}"
    )
    warnings.warn(text, UserWarning, stacklevel=3)


# --------------------------------------------------------------------------------------
# the one code path behind both entry points
# --------------------------------------------------------------------------------------
@dataclass
class _Run:
    result: BudgetSweepResult
    warnings: list  # distinct messages of the warnings raised while calibrating
    n_tested_bonferroni: np.ndarray  # per split: Bonferroni's m, or 1 (fixed sequence)
    risks: list = field(default_factory=list)  # the constraints (Risk objects)
    outcomes: list = field(default_factory=list)  # per split, with return_details


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
    constraints=None,
    cost=None,
    cost_max=None,
    testing_order="auto",
    selection="best",
) -> _Run:
    """Validate, draw or check the splits, and calibrate every (split, budget)."""
    alphas = check_budgets(alphas)
    delta = check_fraction(delta, "delta")
    n_thresholds, opt_fraction = _check_options(
        n_thresholds,
        performance_risk,
        fwer,
        combine,
        opt_fraction,
        testing_order,
        selection,
    )
    y, p, e, signal = check_cascade_arrays(
        y, probe_scores, expert_scores, signal=signal
    )
    n = signal.shape[0]
    risks = check_constraints(constraints, cost, cost_max)
    d = e if combine == "replace" else 0.5 * (e + p)
    prepared = prepare_risks(risks, y, p, e, d)
    rng = check_random_state(random_state)
    if splits is None:
        n_splits = check_positive_int(n_splits, "n_splits")
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
    # random order of the test rows for the betting p-values, drawn after (and
    # independently of) the splits, so the splits are those of the budget alone
    if any(pr.method == "wsr" for pr in prepared):
        perms = [rng.permutation(t.size) for t in tests]
    else:
        perms = [None] * n_splits

    pareto = bool(pareto)
    name = risk_name(performance_risk)
    n_alphas = alphas.shape[0]
    thresholds = np.empty((n_splits, n_alphas))
    n_certified = np.empty((n_splits, n_alphas), dtype=np.int64)
    n_test = np.empty(n_splits, dtype=np.int64)
    n_tested = np.ones(n_splits, dtype=np.int64)
    budget_opt = np.empty((n_splits, n_alphas))
    perf_opt = np.empty((n_splits, n_alphas))
    blocked = np.empty((n_splits, n_alphas), dtype=object)
    delegating = np.empty((n_splits, n_alphas), dtype=bool)
    rows_needed = np.full((n_splits, n_alphas), np.nan)
    need_perf = pareto or return_details or selection == "one_se"
    need_perf = need_perf or testing_order == "single"
    details = [] if return_details else None
    outcomes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(n_splits):  # one vectorised calibration per split
            o, t = opts[i], tests[i]
            opt = _opt_stage(
                signal[o],
                y[o],
                p[o],
                d[o],
                n_thresholds=n_thresholds,
                performance_risk=performance_risk,
                need_performance=need_perf,
                need_change=selection == "one_se",
            )
            grid = opt.thresholds
            bins_t = threshold_bins(signal[t], grid)
            out = run_split(
                grid,
                opt.bins,
                bins_t,
                opt.budget,
                opt.performance,
                prepared,
                o,
                t,
                alphas,
                delta,
                pareto=pareto,
                fwer=fwer,
                testing_order=testing_order,
                selection=selection,
                perf_change=opt.correctness_change,
                perm=perms[i],
                estimate_rows=return_details,
            )
            chosen = out.chosen
            thresholds[i] = grid[chosen]
            n_certified[i] = out.certified.sum(axis=0)
            n_test[i] = t.size
            if fwer == "bonferroni":
                n_tested[i] = int(out.tested.sum())
            budget_opt[i] = opt.budget[chosen]
            perf_opt[i] = opt.performance[chosen]
            blocked[i] = [bb[0] if bb else None for bb in out.blocked_by]
            rows_needed[i] = out.rows_needed
            delegating[i] = out.certified[1:].any(axis=0)
            if return_details:
                outcomes.append(out)
                details.append(
                    _detail(out, opt, o, t, alphas, delta, pareto, fwer, name, risks)
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
        constraints=tuple(r.name for r in risks),
        blocked_by=blocked,
        rows_needed=rows_needed,
        delegating_certified=delegating,
    )
    messages = list(dict.fromkeys(str(w.message) for w in caught))
    return _Run(result, messages, n_tested, risks, outcomes)


def _detail(out, opt, o, t, alphas, delta, pareto, fwer, name, risks):
    """The CalibrationResult of one split at the first budget."""
    chosen = int(out.chosen[0])
    names = ("budget",) + tuple(r.name for r in risks)
    risk_pvalues = {"budget": out.budget_pvalues[:, 0]}
    risks_opt = {"budget": opt.budget}
    risks_test = {"budget": out.k_test / t.size}
    levels = {"budget": float(alphas[0])}
    cost_scale = {}
    for r, st in zip(risks, out.stats, strict=True):
        risk_pvalues[r.name] = st.pvalues
        risks_opt[r.name] = st.user_opt
        risks_test[r.name] = st.user_test
        levels[r.name] = r.level
        if np.isfinite(st.c_max):
            cost_scale[r.name] = (st.c_max, st.n_capped)
    length = int(out.order_length[0])
    return CalibrationResult(
        threshold=float(opt.thresholds[chosen]),
        selected_index=chosen,
        thresholds=opt.thresholds,
        certified=out.certified[:, 0],
        pvalues=out.pvalues[:, 0],
        budget_risk_opt=opt.budget,
        performance_risk_opt=opt.performance,
        budget_risk_test=out.k_test / t.size,
        pareto_mask=out.tested,
        opt_indices=o,
        test_indices=t,
        alpha=float(alphas[0]),
        delta=delta,
        n_opt=int(o.size),
        n_test=int(t.size),
        pareto=pareto,
        fwer=fwer,
        performance_risk=name,
        constraints=names,
        levels=levels,
        risk_pvalues=risk_pvalues,
        risks_opt=risks_opt,
        risks_test=risks_test,
        testing_order=out.order[:length, 0].copy(),
        blocked_index=int(out.blocked_index[0]),
        blocked_by=tuple(out.blocked_by[0]),
        rows_needed=float(out.rows_needed[0]),
        rows_needed_index=int(out.rows_needed_index[0]),
        risk_descriptions={r.name: r.describe() for r in risks},
        cost_scale=cost_scale,
    )

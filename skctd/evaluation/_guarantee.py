"""Realised delegation rates over many random splits (Appendix D, Figure 11)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from skctd.calibration import calibrate_budget_sweep, check_constraints, empirical_risks
from skctd.evaluation._results import TableMixin
from skctd.evaluation._splits import (
    calibration_masks,
    check_pool,
    split_calibration_half,
)
from skctd.utils import check_fraction, check_positive_int

__all__ = ["GuaranteeResult", "validate_guarantee"]


_VARIANTS = ("budget_only", "pareto")


@dataclass(repr=False, eq=False)
class GuaranteeResult(TableMixin):
    """Result of :func:`validate_guarantee`.

    Attributes
    ----------
    alpha, delta : float
    n_splits : int
    rates : dict of str to ndarray of shape (n_splits,)
        Realised delegation rate on the evaluation half of each split, for
        ``"budget_only"`` and ``"pareto"`` LTT.
    thresholds : dict of str to ndarray of shape (n_splits,)
        Calibrated threshold of each split (``inf``: never delegate, either
        because nothing was certified or because never delegating was the
        certified threshold with the best performance).
    violation_rate : dict of str to float
        Share of splits whose realised rate exceeds ``alpha``.
    violation_se : dict of str to float
        Binomial standard error ``sqrt(r (1 - r) / n_splits)`` of the violation rate.
    n_uncertified : dict of str to int
        Splits where nothing was certified, not even "never delegate" (the
        calibration part was too small for ``alpha`` and ``delta``).
    n_never_delegate : dict of str to int
        Splits whose calibrated threshold is ``inf`` (rate 0), certified or not.
    table : dict of str to ndarray
        Tidy per-split table: ``split``, ``method``, ``rate``, ``threshold``,
        ``violated`` (the budget), and per constraint ``<name>`` (its realised
        value) and ``<name>_violated``.
    levels : dict of str to float
        The level of each constraint besides the budget (empty without).
    risk_values : dict of str to dict of str to ndarray of shape (n_splits,)
        Per LTT variant and constraint: its realised value on the evaluation
        part of each split, in the units of its level
        (:func:`skctd.calibration.empirical_risks`).
    risk_violation_rate, risk_violation_se : dict of str to dict of str to float
        Per LTT variant and constraint: share of splits whose realised value
        exceeds the level although the chosen threshold was certified, and its
        binomial standard error. (Where nothing was certified, see
        ``n_uncertified``, no guarantee holds and nothing is counted.)
    any_violation_rate, any_violation_se : dict of str to float
        Per LTT variant: share of splits where the budget or some certified
        constraint is exceeded on the evaluation part (equal to
        ``violation_rate`` without constraints).
    """

    alpha: float
    delta: float
    n_splits: int
    rates: dict
    thresholds: dict
    violation_rate: dict
    violation_se: dict
    n_uncertified: dict
    table: dict
    n_never_delegate: dict = field(default_factory=dict)
    levels: dict = field(default_factory=dict)
    risk_values: dict = field(default_factory=dict)
    risk_violation_rate: dict = field(default_factory=dict)
    risk_violation_se: dict = field(default_factory=dict)
    any_violation_rate: dict = field(default_factory=dict)
    any_violation_se: dict = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for logs and reports."""
        lines = [
            f"Budget guarantee over {self.n_splits} splits, alpha={self.alpha:g}, "
            f"delta={self.delta:g}"
        ]
        for m in _VARIANTS:
            lines.append(
                f"  {m:>11}: violation rate {self.violation_rate[m]:.3f} "
                f"(SE {self.violation_se[m]:.3f}), mean realised rate "
                f"{self.rates[m].mean():.4f}, never delegating "
                f"{self.n_never_delegate.get(m, 0)}, uncertified {self.n_uncertified[m]}"
            )
            for name, level in self.levels.items():
                lines.append(
                    f"  {'':>11}  {name} <= {level:g}: violation rate "
                    f"{self.risk_violation_rate[m][name]:.3f} (SE "
                    f"{self.risk_violation_se[m][name]:.3f}), mean realised "
                    f"{np.nanmean(self.risk_values[m][name]):.4f}"
                )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"GuaranteeResult(alpha={self.alpha:g}, delta={self.delta:g}, "
            f"n_splits={self.n_splits}, "
            f"violation_budget_only={self.violation_rate['budget_only']:.3f}, "
            f"violation_pareto={self.violation_rate['pareto']:.3f})"
        )


def validate_guarantee(
    y: Any,
    probe_scores: Any,
    expert_scores: Any,
    signal: Any,
    *,
    alpha: float = 0.3,
    delta: float = 0.1,
    n_splits: int = 500,
    calibration_size: float = 0.5,
    n_thresholds: int = 100,
    performance_risk: str = "accuracy",
    opt_fraction: float = 0.3,
    random_state: Any = 0,
    constraints: Any = None,
    cost: Any = None,
    cost_max: float | None = None,
    testing_order: str = "auto",
    selection: str = "best",
) -> GuaranteeResult:
    """Realised delegation rates over random calibration/evaluation splits.

    For each of ``n_splits`` random splits of the pool, calibrate a threshold on
    the calibration part (budget-only LTT and Pareto-filtered LTT, on the same
    optimisation/testing split) and measure the share of the evaluation part it
    delegates (the paper's Appendix D). With exchangeable rows, the share of
    splits whose realised rate exceeds ``alpha`` should be at most about
    ``delta``.

    Parameters
    ----------
    y, probe_scores, expert_scores : array-like of shape (n,)
        Labels and scores of the pool.
    signal : array-like of shape (n,)
        Delegation signal, normally the DV predictions ``d(x)``. (The uncertainty
        signal depends on the calibration half's ECDF and is not validated here.)
    alpha : float, default=0.3
    delta : float, default=0.1
    n_splits : int, default=500
    calibration_size : float, default=0.5
    n_thresholds, performance_risk, opt_fraction
        As in :func:`skctd.calibrate_threshold`.
    random_state : int, RandomState instance or None, default=0
    constraints : mapping or list of Risk, optional
        Extra risks certified with the budget (e.g. ``{"harm": 0.0}``), as in
        :func:`skctd.calibrate_threshold`. ``rates`` and ``violation_rate`` stay
        those of the budget; each constraint's realised values and violation
        rate are in ``risk_values`` and ``risk_violation_rate``. The realised
        value on a finite evaluation part is itself noisy: a threshold whose true
        risk sits exactly at the level exceeds it on about half of the splits.
    cost : array-like of shape (n,), optional
        Per-row costs of the pool, for cost constraints.
    cost_max, testing_order, selection
        As in :func:`skctd.calibrate_threshold`.

    Returns
    -------
    result : GuaranteeResult

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.evaluation import validate_guarantee
    >>> rng = np.random.default_rng(0)
    >>> n = 1000
    >>> y = rng.integers(0, 2, n)
    >>> probe = rng.uniform(size=n)
    >>> expert = np.where(y == 1, 0.9, 0.1)
    >>> res = validate_guarantee(y, probe, expert, rng.normal(size=n), n_splits=50)
    >>> res.rates["pareto"].shape
    (50,)
    >>> bool(res.violation_rate["budget_only"] <= 0.1 + 3 * 0.05)
    True
    """
    y, p, e, s = check_pool(y, probe_scores, expert_scores, signal=signal)
    n = y.shape[0]
    alpha = check_fraction(alpha, "alpha")
    delta = check_fraction(delta, "delta")
    opt_fraction = check_fraction(opt_fraction, "opt_fraction")
    n_splits = check_positive_int(n_splits, "n_splits")
    risks = check_constraints(constraints, cost, cost_max)
    rng = check_random_state(random_state)
    masks = calibration_masks(
        n, calibration_size=calibration_size, n_splits=n_splits, random_state=rng
    )
    splits, evals = [], []
    for cal in masks:
        splits.append(split_calibration_half(np.flatnonzero(cal), opt_fraction, rng))
        evals.append(np.flatnonzero(~cal))
    rates, thresholds, vr, se, unc, never = {}, {}, {}, {}, {}, {}
    certified = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*certif.*")
        warnings.filterwarnings("ignore", message=".*never delegate under.*")
        for m in _VARIANTS:
            res = calibrate_budget_sweep(
                s,
                y,
                p,
                e,
                alphas=[alpha],
                delta=delta,
                splits=splits,
                n_thresholds=n_thresholds,
                performance_risk=performance_risk,
                pareto=m == "pareto",
                constraints=risks or None,
                testing_order=testing_order,
                selection=selection,
                random_state=rng,  # drawn from only for betting p-values
            )
            thresholds[m] = res.thresholds[:, 0]
            rates[m] = res.delegation_rate(s, evals)[:, 0]
            r = float(np.mean(rates[m] > alpha))
            vr[m] = r
            se[m] = math.sqrt(r * (1 - r) / n_splits)
            unc[m] = int(np.sum(res.n_certified[:, 0] == 0))
            certified[m] = res.n_certified[:, 0] > 0
            never[m] = int(np.sum(~np.isfinite(thresholds[m])))
    levels = {r.name: r.level for r in risks}
    values, rvr, rse, avr, ase = {}, {}, {}, {}, {}
    evaluated = ~np.column_stack(masks)  # (n, n_splits): the evaluation parts
    for m in _VARIANTS:
        delegated = s[:, None] > thresholds[m][None, :]
        values[m] = (
            empirical_risks(risks, y, p, e, delegated, where=evaluated) if risks else {}
        )
        any_violated = rates[m] > alpha
        rvr[m], rse[m] = {}, {}
        for name, level in levels.items():
            # nothing certified (not even +inf): no guarantee, no violation of one
            violated = (values[m][name] > level) & certified[m]
            any_violated = any_violated | violated
            rvr[m][name] = float(np.mean(violated))
            rse[m][name] = _binomial_se(rvr[m][name], n_splits)
        avr[m] = float(np.mean(any_violated))
        ase[m] = _binomial_se(avr[m], n_splits)
    table = {
        "split": np.tile(np.arange(n_splits), len(_VARIANTS)),
        "method": np.repeat(np.array(_VARIANTS, dtype=object), n_splits),
        "rate": np.concatenate([rates[m] for m in _VARIANTS]),
        "threshold": np.concatenate([thresholds[m] for m in _VARIANTS]),
        "violated": np.concatenate([rates[m] > alpha for m in _VARIANTS]),
    }
    for name, level in levels.items():
        table[name] = np.concatenate([values[m][name] for m in _VARIANTS])
        table[f"{name}_violated"] = (table[name] > level) & np.concatenate(
            [certified[m] for m in _VARIANTS]
        )
    return GuaranteeResult(
        alpha=alpha,
        delta=delta,
        n_splits=n_splits,
        rates=rates,
        thresholds=thresholds,
        violation_rate=vr,
        violation_se=se,
        n_uncertified=unc,
        table=table,
        n_never_delegate=never,
        levels=levels,
        risk_values=values,
        risk_violation_rate=rvr,
        risk_violation_se=rse,
        any_violation_rate=avr,
        any_violation_se=ase,
    )


def _binomial_se(rate: float, n: int) -> float:
    return math.sqrt(rate * (1 - rate) / n)

"""The results of the calibration: one threshold, or a sweep of budgets and splits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skctd.utils import check_scores

__all__ = ["BudgetSweepResult", "CalibrationResult"]


@dataclass(frozen=True, repr=False, eq=False)
class CalibrationResult:
    """Everything :func:`calibrate_threshold` computed.

    Arrays named ``*_opt`` / ``*_test`` and the masks are indexed like
    ``thresholds`` (the grid: ``+inf`` first, then decreasing), which is also the
    testing order.

    Attributes
    ----------
    threshold : float
        The chosen threshold ``lam*``; delegate when ``signal > threshold``.
        ``+inf`` (never delegate) when nothing was certified.
    selected_index : int
        Position of ``threshold`` in ``thresholds``.
    thresholds : ndarray of shape (m,)
        Candidate grid (quantiles of the signal on the optimisation split).
    certified : ndarray of bool, shape (m,)
        Thresholds whose null (``R_B > alpha``, or with constraints "some risk
        exceeds its level") was rejected.
    pvalues : ndarray of shape (m,)
        P-values on the test split: the binomial p-value of the budget, or with
        constraints the largest of the risks' p-values (``risk_pvalues``); NaN
        for thresholds that were not tested (removed by the Pareto filter).
        Thresholds after the first failure of the fixed sequence keep their
        p-value but are not certified.
    budget_risk_opt, performance_risk_opt : ndarray of shape (m,)
        Empirical delegation rate and performance risk on the optimisation split.
    budget_risk_test : ndarray of shape (m,)
        Empirical delegation rate on the test split.
    pareto_mask : ndarray of bool, shape (m,)
        Thresholds kept by the Pareto filter (all True when ``pareto=False``).
    opt_indices, test_indices : ndarray of int
        Rows (positions in the arrays given) of the two splits, sorted.
    alpha, delta : float
        Budget and confidence parameter.
    n_opt, n_test : int
        Sizes of the two splits.
    pareto : bool
    fwer : str
    performance_risk : str
        Name of the performance risk (the function's name for a callable).
    constraints : tuple of str
        The risks tested for every threshold: ``"budget"`` first, then the
        constraints in the order given (``("budget",)`` without constraints).
    levels : dict of str to float
        Level of each risk, in its own units (``alpha`` for the budget, epsilon
        for ``"harm"``, cost units for ``"cost"``...).
    risk_pvalues : dict of str to ndarray of shape (m,)
        Each risk's p-value on the test split (NaN off the tested set; 0 at
        ``+inf`` for a risk that surely holds there and needs no test).
        ``pvalues`` is their maximum (the p-value of the union null).
    risks_opt, risks_test : dict of str to ndarray of shape (m,)
        Each risk's empirical value on the optimisation and test splits, in the
        units of its level (``"harm"``: cascade error minus probe error;
        ``"miss"``: among the unsafe rows of the split).
    testing_order : ndarray of int
        Grid indices in the order they were tested (the certified ones form a
        prefix of it under fixed-sequence testing).
    blocked_index : int
        Grid index of the first hypothesis of the sequence that was not
        certified (-1 when every tested one was): the next threshold the
        cascade could not have.
    blocked_by : tuple of str
        The risks whose p-value exceeded the level there, largest p-value first:
        *why* the cascade does not delegate more.
    rows_needed : float
        When no threshold that delegates was certified: an estimate, from the
        optimisation split's effect sizes, of the test-split size at which the
        most promising threshold (``rows_needed_index``) would be; ``inf`` when no
        delegating threshold looks within the constraints there; NaN otherwise.
    rows_needed_index : int
    risk_descriptions : dict of str to str
        One sentence per constraint saying what its certificate bounds.
    cost_scale : dict of str to (float, int)
        For cost risks: ``c_max`` used on this split and how many test rows cost
        more (their cost was capped at ``c_max``).
    """

    threshold: float
    selected_index: int
    thresholds: np.ndarray
    certified: np.ndarray
    pvalues: np.ndarray
    budget_risk_opt: np.ndarray
    performance_risk_opt: np.ndarray
    budget_risk_test: np.ndarray
    pareto_mask: np.ndarray
    opt_indices: np.ndarray
    test_indices: np.ndarray
    alpha: float
    delta: float
    n_opt: int
    n_test: int
    pareto: bool = True
    fwer: str = "fixed_sequence"
    performance_risk: str = "accuracy"
    constraints: tuple = ("budget",)
    levels: dict = field(default_factory=dict)
    risk_pvalues: dict = field(default_factory=dict)
    risks_opt: dict = field(default_factory=dict)
    risks_test: dict = field(default_factory=dict)
    testing_order: np.ndarray = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )
    blocked_index: int = -1
    blocked_by: tuple = ()
    rows_needed: float = float("nan")
    rows_needed_index: int = -1
    risk_descriptions: dict = field(default_factory=dict)
    cost_scale: dict = field(default_factory=dict)

    @property
    def n_certified(self) -> int:
        """Number of certified thresholds."""
        return int(self.certified.sum())

    @property
    def delegates(self) -> bool:
        """Whether the chosen threshold delegates anything (it is finite)."""
        return bool(np.isfinite(self.threshold))

    def __repr__(self) -> str:
        i = self.selected_index
        return (
            f"CalibrationResult(threshold={self.threshold:.6g}, alpha={self.alpha:g}, "
            f"delta={self.delta:g}, n_test={self.n_test}, "
            f"certified={self.n_certified}/{self.thresholds.size}, "
            f"pareto_front={int(self.pareto_mask.sum())}, "
            f"budget_opt={self.budget_risk_opt[i]:.4f}, "
            f"budget_test={self.budget_risk_test[i]:.4f}, "
            f"{self.performance_risk}_risk_opt={self.performance_risk_opt[i]:.4f})"
        )

    def summary(self) -> str:
        """A few lines describing the calibration, for logs and reports."""
        i = self.selected_index
        method = "Pareto-filtered LTT" if self.pareto else "budget-only LTT"
        lines = [
            f"{method} ({self.fwer}), alpha={self.alpha:g}, delta={self.delta:g}",
            f"  splits: n_opt={self.n_opt}, n_test={self.n_test}",
            f"  grid: {self.thresholds.size} thresholds, "
            f"{int(self.pareto_mask.sum())} tested, {self.n_certified} certified",
            f"  chosen threshold: {self.threshold:.6g} "
            f"(delegation rate opt={self.budget_risk_opt[i]:.4f}, "
            f"test={self.budget_risk_test[i]:.4f}; "
            f"{self.performance_risk} risk opt={self.performance_risk_opt[i]:.4f})",
        ]
        for name in self.constraints[1:]:
            pv = self.risk_pvalues[name][i]
            sure = i == 0 and pv == 0
            lines.append(
                f"  {name} <= {self.levels.get(name, float('nan')):g}: "
                f"opt={self.risks_opt[name][i]:.4f}, test={self.risks_test[name][i]:.4f}, "
                + ("holds surely (never delegating)" if sure else f"p={pv:.3g}")
            )
        if self.blocked_index >= 0:
            lines.append(
                f"  stopped at threshold {self.thresholds[self.blocked_index]:.6g}, "
                f"blocked by: {', '.join(self.blocked_by) or '-'}"
            )
        if np.isfinite(self.rows_needed):
            lines.append(
                f"  estimated test rows to certify a delegating threshold: "
                f"{int(self.rows_needed):,} (from the optimisation split)"
            )
        return "\n".join(lines)

    def guarantee(self) -> str:
        """The certified guarantee of the chosen threshold, in one sentence.

        Empty string when nothing was certified (no guarantee holds).
        """
        if not self.certified[self.selected_index]:
            return ""
        parts = [f"at most {self.alpha:.0%} of inputs are sent to the expert"]
        parts += [self.risk_descriptions.get(c, c) for c in self.constraints[1:]]
        return (
            f"With probability >= {1 - self.delta:g} over the calibration data: "
            + "; ".join(parts)
            + "."
        )


@dataclass(frozen=True, repr=False, eq=False)
class BudgetSweepResult:
    """Thresholds calibrated by :func:`calibrate_budget_sweep`.

    Attributes
    ----------
    thresholds : ndarray of shape (n_splits, n_alphas)
        Chosen threshold per split and budget (``+inf`` when nothing certified).
    alphas : ndarray of shape (n_alphas,)
    delta : float
    n_certified : ndarray of int, shape (n_splits, n_alphas)
        Number of certified thresholds.
    n_test : ndarray of int, shape (n_splits,)
        Test-split size of each split.
    budget_risk_opt, performance_risk_opt : ndarray of shape (n_splits, n_alphas)
        Optimisation-split risks of the chosen thresholds (performance is NaN
        with ``pareto=False``, where it plays no role and is not computed).
    opt_indices, test_indices : list of ndarray
        The splits used (positions in the arrays given).
    details : list of CalibrationResult or None
        Per split, the result at the first budget, when ``return_details=True``
        (the grid, Pareto mask and risks do not depend on the budget).
    constraints : tuple of str
        Names of the constraints tested besides the budget.
    blocked_by : ndarray of object, shape (n_splits, n_alphas), or None
        The risk with the largest p-value at the first uncertified hypothesis
        of each sequence (None when every tested one was certified).
    rows_needed : ndarray of shape (n_splits, n_alphas), or None
        Estimated test-split rows that would certify a delegating threshold,
        where none was (NaN elsewhere); see :class:`CalibrationResult`.
    delegating_certified : ndarray of bool, shape (n_splits, n_alphas), or None
        Whether some threshold that delegates was certified.
    """

    thresholds: np.ndarray
    alphas: np.ndarray
    delta: float
    n_certified: np.ndarray
    n_test: np.ndarray
    budget_risk_opt: np.ndarray
    performance_risk_opt: np.ndarray
    opt_indices: list = field(default_factory=list)
    test_indices: list = field(default_factory=list)
    details: list | None = None
    constraints: tuple = ()
    blocked_by: np.ndarray | None = None
    rows_needed: np.ndarray | None = None
    delegating_certified: np.ndarray | None = None

    def delegation_rate(
        self, signal: Any, indices: Sequence[Any] | None = None
    ) -> np.ndarray:
        """Share of rows each chosen threshold delegates.

        Parameters
        ----------
        signal : array-like of shape (n,)
            Delegation signal of the evaluation rows.
        indices : sequence of n_splits index arrays, optional
            Rows of ``signal`` to evaluate split ``i`` on (e.g. the evaluation part
            of the i-th calibration/evaluation split). Default: all rows, for every
            split.

        Returns
        -------
        rates : ndarray of shape (n_splits, n_alphas)
        """
        signal = check_scores(signal, "signal")
        n_splits = self.thresholds.shape[0]
        if indices is not None and len(indices) != n_splits:
            raise ValueError(
                f"indices has {len(indices)} entries but there are {n_splits} splits."
            )
        sorted_all = np.sort(signal) if indices is None else None
        rates = np.empty(self.thresholds.shape)
        for i in range(n_splits):  # one searchsorted per split
            s = sorted_all if indices is None else np.sort(signal[indices[i]])
            rates[i] = (s.size - np.searchsorted(s, self.thresholds[i], "right")) / max(
                s.size, 1
            )
        return rates

    def __repr__(self) -> str:
        n_splits, n_alphas = self.thresholds.shape
        none = int((self.n_certified == 0).sum())
        return (
            f"BudgetSweepResult(n_splits={n_splits}, n_alphas={n_alphas}, "
            f"delta={self.delta:g}, uncertified={none})"
        )

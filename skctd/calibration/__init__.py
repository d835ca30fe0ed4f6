"""Learn-then-Test calibration of the delegation threshold (pure numpy / scipy)."""

from skctd.calibration._ltt import (
    BudgetSweepResult,
    CalibrationResult,
    binomial_pvalues,
    bonferroni_test,
    calibrate_budget_sweep,
    calibrate_threshold,
    candidate_thresholds,
    fixed_sequence_test,
    hoeffding_bentkus_pvalues,
    min_test_size,
    pareto_efficient,
)

__all__ = [
    "BudgetSweepResult",
    "CalibrationResult",
    "binomial_pvalues",
    "bonferroni_test",
    "calibrate_budget_sweep",
    "calibrate_threshold",
    "candidate_thresholds",
    "fixed_sequence_test",
    "hoeffding_bentkus_pvalues",
    "min_test_size",
    "pareto_efficient",
]

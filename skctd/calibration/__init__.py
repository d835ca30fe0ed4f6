"""Learn-then-Test calibration of the delegation threshold (pure numpy / scipy)."""

from skctd.calibration._constraints import (
    BUILTIN_RISKS,
    Risk,
    check_constraints,
    empirical_risks,
)
from skctd.calibration._fwer import bonferroni_test, fixed_sequence_test
from skctd.calibration._grid import candidate_thresholds
from skctd.calibration._ltt import calibrate_budget_sweep, calibrate_threshold
from skctd.calibration._pareto import pareto_efficient
from skctd.calibration._pvalues import (
    betting_pvalues,
    binomial_pvalues,
    hoeffding_bentkus_pvalues,
    min_test_size,
    sign_test_pvalues,
)
from skctd.calibration._reference import reference_calibrate_threshold
from skctd.calibration._results import BudgetSweepResult, CalibrationResult
from skctd.calibration._splits import n_opt_rows, opt_test_split

__all__ = [
    "BUILTIN_RISKS",
    "BudgetSweepResult",
    "CalibrationResult",
    "Risk",
    "betting_pvalues",
    "binomial_pvalues",
    "bonferroni_test",
    "calibrate_budget_sweep",
    "calibrate_threshold",
    "candidate_thresholds",
    "check_constraints",
    "empirical_risks",
    "fixed_sequence_test",
    "hoeffding_bentkus_pvalues",
    "min_test_size",
    "n_opt_rows",
    "opt_test_split",
    "pareto_efficient",
    "reference_calibrate_threshold",
    "sign_test_pvalues",
]

"""scikit-learn's estimator checks on preset instances (imbalanced-learn style)."""

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from skctd import CalibratedDelegationCascade, FunctionExpert


def deterministic_expert(X):
    """A fixed expert: a deterministic function of the raw row."""
    X = np.asarray(X, dtype=float)
    return 1.0 / (1.0 + np.exp(-X[:, 0]))


def row_cost(X):
    """A per-row cost: 1 + |first feature| (module level, so the cascade pickles)."""
    return 1.0 + np.abs(np.asarray(X, dtype=float)[:, 0])


def _instances():
    # ``expert`` is required (no default), as scikit-learn's meta-estimators require
    # their ``estimator``: the checks run on preset instances. A plain logistic
    # regression probe keeps them fast; the tuned default probe (a grid search,
    # cross-fitted) runs them in the third instance, on the checks that fit most.
    yield CalibratedDelegationCascade(
        FunctionExpert(deterministic_expert),
        probe=LogisticRegression(),
        cv=3,
        random_state=0,
    )
    yield CalibratedDelegationCascade(
        FunctionExpert(deterministic_expert),
        probe=LogisticRegression(),
        signal="uncertainty",
        combine="average",
        cv=3,
        random_state=0,
    )
    # the no-harm certificate and a cost budget (the cost a function of the row)
    yield CalibratedDelegationCascade(
        FunctionExpert(deterministic_expert),
        probe=LogisticRegression(),
        constraints={"harm": 0.0, "cost_share": 0.5},
        cost=row_cost,
        selection="one_se",
        cv=3,
        random_state=0,
    )


# Checks the cascade is expected to fail, with the reason (as scikit-learn lists them
# in sklearn/utils/_test_common/instance_generator.py).
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@parametrize_with_checks(
    list(_instances()), expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)

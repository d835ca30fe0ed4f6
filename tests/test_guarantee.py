"""Statistical validity of the budget guarantee P(R_B(lam*) > alpha) <= delta.

Each test draws 1,000 independent calibration sets from a distribution whose true
budget risk R_B(lam) = P(signal > lam) is known in closed form, calibrates on each
(one call to calibrate_budget_sweep with precomputed splits, one split per draw),
and compares the violation rate with delta. Run with ``-s`` to see the rates.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from skctd.calibration import calibrate_budget_sweep

N_DRAWS = 1000
SETTINGS = [(0.1, 0.1, 200), (0.3, 0.1, 500), (0.2, 0.05, 1000)]
pytestmark = pytest.mark.slow  # ~20 s: 16,000 calibrations (still run in CI)


def true_budget(thresholds: np.ndarray, ties: int) -> np.ndarray:
    """R_B(lam) = P(S > lam) for S ~ U(0, 1) (ties=0) or S = floor(L U) / L."""
    if ties:
        # exact: count the levels k / L above lam (thresholds are observed levels,
        # i.e. the same doubles, or +inf)
        levels = np.arange(ties) / ties
        return (levels[None, :] > np.asarray(thresholds)[..., None]).sum(-1) / ties
    return np.clip(1.0 - thresholds, 0.0, 1.0)  # 0 for +inf


def independent_draws(n: int, ties: int, seed: int):
    """N_DRAWS calibration sets of n rows, stacked; split i holds the rows of draw i."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(size=N_DRAWS * n)
    signal = np.floor(u * ties) / ties if ties else u
    y = rng.integers(0, 2, signal.size)
    probe = np.clip(0.5 + (2 * y - 1) * rng.normal(0.15, 0.3, signal.size), 0, 1)
    good = rng.uniform(size=signal.size) < 0.4 + 0.6 * u  # expert helps at high signal
    expert = np.where(good, y, 1 - y).astype(float)
    n_opt = round(0.3 * n)
    splits = [
        (b + np.arange(n_opt), b + np.arange(n_opt, n)) for b in range(0, u.size, n)
    ]
    return signal, y, probe, expert, splits


def violation_rates(alpha, delta, n, ties, seed, **kwargs):
    signal, y, p, e, splits = independent_draws(n, ties, seed)
    rates = {}
    thresholds = {}
    for pareto in (False, True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = calibrate_budget_sweep(
                signal,
                y,
                p,
                e,
                alphas=[alpha],
                delta=delta,
                splits=splits,
                pareto=pareto,
                **kwargs,
            )
        lam = res.thresholds[:, 0]
        thresholds[pareto] = lam
        rates[pareto] = float(np.mean(true_budget(lam, ties) > alpha))
    return rates, thresholds


def bound(delta: float) -> float:
    return delta + 3 * np.sqrt(delta * (1 - delta) / N_DRAWS)


# ties: 0 = continuous signal; L = signal with L tied levels floor(L U) / L (with
# L = 10 every alpha here is a level, so the first violating threshold is a whole
# level above alpha; with L = 100 it is 0.01 above, close to the boundary)
@pytest.mark.parametrize("ties", [0, 10, 100], ids=["continuous", "ties10", "ties100"])
@pytest.mark.parametrize("alpha, delta, n", SETTINGS)
def test_violation_rate_at_most_delta(alpha, delta, n, ties):
    seed = int(1000 * alpha + 10 * n + ties)
    label = f"ties{ties}" if ties else "continuous"
    rates, lam = violation_rates(alpha, delta, n, ties, seed)
    print(
        f"\n[guarantee] alpha={alpha} delta={delta} n={n} signal={label} "
        f"draws={N_DRAWS}: violation rate "
        f"budget-only={rates[False]:.3f} pareto={rates[True]:.3f} "
        f"(bound {bound(delta):.3f})"
    )
    assert rates[False] <= bound(delta)
    assert rates[True] <= bound(delta)
    # Pareto certifies a subset of the budget-only certified set, so it never
    # chooses a more aggressive threshold
    assert np.all(lam[True] >= lam[False])
    # something is delegated in most draws: the test is not vacuous
    assert np.mean(np.isfinite(lam[False])) > 0.95


def test_budget_only_is_not_absurdly_conservative():
    # continuous signal: the binomial fixed-sequence test is nearly exact
    found = []
    for alpha, delta, n in SETTINGS:
        seed = int(1000 * alpha + 10 * n)
        rates, lam = violation_rates(alpha, delta, n, 0, seed)
        found.append(rates[False])
        # the realised budget of budget-only LTT is close to alpha on average
        mean_budget = float(np.mean(true_budget(lam[False], 0)))
        assert alpha - 0.1 < mean_budget <= alpha + 0.02
    print(f"\n[guarantee] budget-only violation rates (continuous): {found}")
    assert max(r / d for r, (_, d, _) in zip(found, SETTINGS, strict=True)) > 0.25


def test_bonferroni_is_valid_and_more_conservative():
    alpha, delta, n = 0.3, 0.1, 500
    seed = 12345
    fs, lam_fs = violation_rates(alpha, delta, n, 0, seed)
    bf, lam_bf = violation_rates(alpha, delta, n, 0, seed, fwer="bonferroni")
    print(
        f"\n[guarantee] alpha={alpha} delta={delta} n={n}: bonferroni violation rate "
        f"budget-only={bf[False]:.3f} pareto={bf[True]:.3f} "
        f"(fixed sequence {fs[False]:.3f} / {fs[True]:.3f})"
    )
    assert bf[False] <= bound(delta) and bf[True] <= bound(delta)
    assert np.all(lam_bf[False] >= lam_fs[False])

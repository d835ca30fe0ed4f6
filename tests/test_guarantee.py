"""Statistical validity of the budget guarantee ``P(R_B(lam*) > alpha) <= delta``.

Every test draws ``N_DRAWS`` independent calibration sets from a population whose
true budget risk ``R_B(lam) = P(signal > lam)`` is known in closed form (a uniform
signal: ``R_B(lam) = 1 - lam``; or ``L`` tied levels), calibrates on each through
one of the three entry points -- :func:`calibrate_budget_sweep` with precomputed
splits, :func:`calibrate_threshold` with its own random split, and
:meth:`CalibratedDelegationCascade.fit` with its own training/calibration split
and optimisation/testing split -- and compares the share of draws whose chosen
threshold violates the budget with the exact violation probability.

Why the checks bite both ways. The grid is fine (``n_thresholds`` >= optimisation
rows, so every optimisation row is a candidate) and the p-values grow along the
testing order, so budget-only LTT certifies exactly the thresholds with
``k_test(lam) <= k*`` (``k*`` the largest count whose binomial tail is <= delta).
It then violates the budget iff ``g``, the largest optimisation value with
``R_B(g) > alpha``, has ``k_test(g) <= k*``. With a uniform signal ``R_B(g) =
alpha + gap``, ``P(gap > t) = (1 - t)^n_opt``, so

    P(violation) = int_0^{1-alpha} n_opt (1 - t)^(n_opt - 1)
                   P(Bin(n_test, alpha + t) <= k*) dt

(:func:`exact_violation`), about 0.07 at delta = 0.1, n = 1,000: the bound is nearly
tight. Each test asserts the Monte Carlo rate is within 3 standard errors of this
exact value (two-sided: a procedure twice as permissive -- 0.150 -- or half as
permissive fails) and also ``delta / 2 <= rate <= delta + 3 SE``.

Where the bound cannot be tight, the known-answer check says so: Bonferroni tests
at ``delta / m`` (exact value with that level), a tied signal has its first
violating threshold a whole level above alpha (exact value by a finite sum), and
Pareto testing with an expert that helps unevenly picks by performance among the
certified thresholds (upper bound only, plus "never more aggressive than
budget-only on the same draw"). Run with ``-s`` to see the rates.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import integrate, stats
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LinearRegression, LogisticRegression

from skctd import CalibratedDelegationCascade
from skctd.calibration import calibrate_budget_sweep, calibrate_threshold

N_DRAWS = 2000
N_CAL, N_OPT, N_TEST = 1000, 300, 700  # opt_fraction = 0.3
FINE = 1000  # n_thresholds >= N_OPT: every optimisation row is a candidate
DELTA = 0.1


# ------------------------------------------------------------------ exact answers
def k_star(n_test: int, alpha: float, level: float) -> int:
    """Largest count k with P(Bin(n_test, alpha) <= k) <= level (-1 if none)."""
    k = np.arange(n_test + 1)
    ok = stats.binom.cdf(k, n_test, alpha) <= level
    return int(k[ok].max()) if ok.any() else -1


def exact_violation(n_opt: int, n_test: int, alpha: float, level: float) -> float:
    """P(R_B(lam*) > alpha) of budget-only LTT, uniform signal, every row a candidate.

    ``level`` is delta for the fixed sequence and delta / m for Bonferroni (the
    p-values grow along the order, so both certify ``{lam : k_test(lam) <= k*}``).
    """
    ks = k_star(n_test, alpha, level)
    if ks < 0:
        return 0.0

    def integrand(t):
        return n_opt * (1 - t) ** (n_opt - 1) * stats.binom.cdf(ks, n_test, alpha + t)

    breaks = [c / n_opt for c in (1, 5, 20, 50) if c / n_opt < 1 - alpha]
    value, _ = integrate.quad(integrand, 0, 1 - alpha, points=breaks, limit=200)
    return float(value)


def exact_violation_ties(
    n_opt: int, n_test: int, alpha: float, delta: float, levels: int
) -> float:
    """The same for a signal with ``levels`` equally likely values ``l / levels``.

    ``R_B(l / L) = (L - 1 - l) / L``; the violating levels are ``l <= l_max``;
    ``g`` = the largest violating level present in the optimisation split:
    ``P(g = l) = (1 - (l_max - l) / L)^n_opt - (1 - (l_max - l + 1) / L)^n_opt``.
    """
    L = levels
    above = L - 1 - np.arange(L)  # levels strictly above level l
    violating = np.flatnonzero(above > alpha * L)
    l_max = int(violating.max())
    ls = np.arange(l_max + 1)
    p_g = (1 - (l_max - ls) / L) ** n_opt - (1 - (l_max - ls + 1) / L) ** n_opt
    ks = k_star(n_test, alpha, delta)
    return float(np.sum(p_g * stats.binom.cdf(ks, n_test, above[ls] / L)))


def true_budget(lam: np.ndarray, levels: int = 0) -> np.ndarray:
    """R_B(lam) = P(S > lam) in closed form (``+inf`` -> 0)."""
    lam = np.asarray(lam, dtype=float)
    if levels:
        # thresholds are observed levels (the same doubles) or +inf
        grid = np.arange(levels) / levels
        return (grid > lam[..., None]).sum(-1) / levels
    return np.clip(1.0 - lam, 0.0, 1.0)


def se(rate: float, draws: int = N_DRAWS) -> float:
    return float(np.sqrt(rate * (1 - rate) / draws))


def check_rate(rate: float, exact: float, label: str, *, tight: bool = True) -> None:
    """Two-sided: within 3 SE of the exact value, and delta/2 <= rate <= delta + 3 SE."""
    print(
        f"\n[guarantee] {label}: violation rate {rate:.4f} "
        f"(exact {exact:.4f}, limit {DELTA + 3 * se(DELTA):.4f}, {N_DRAWS} draws)"
    )
    assert abs(rate - exact) <= 3 * se(exact) + 1.0 / N_DRAWS, (rate, exact)
    assert rate <= DELTA + 3 * se(DELTA)
    if tight:
        assert rate >= DELTA / 2


# ------------------------------------------------------------------ populations
def stacked_draws(n: int, seed: int, *, levels: int = 0, expert: str = "perfect"):
    """N_DRAWS calibration sets of n rows, stacked; split i holds the rows of draw i.

    ``expert="perfect"``: the probe is always wrong and the expert always right,
    so the accuracy risk on the optimisation split falls with every delegated row
    and the Pareto filter keeps every threshold (Pareto testing = budget-only).
    ``expert="uneven"``: the expert helps more where the signal is high.
    """
    rng = np.random.default_rng(seed)
    u = rng.uniform(size=N_DRAWS * n)
    signal = np.floor(u * levels) / levels if levels else u
    y = rng.integers(0, 2, u.size)
    if expert == "perfect":
        probe, e = 1.0 - y, y.astype(float)
    else:
        probe = np.clip(0.5 + (2 * y - 1) * rng.normal(0.15, 0.3, u.size), 0, 1)
        good = rng.uniform(size=u.size) < 0.4 + 0.6 * u
        e = np.where(good, y, 1 - y).astype(float)
    n_opt = round(0.3 * n)
    splits = [
        (b + np.arange(n_opt), b + np.arange(n_opt, n)) for b in range(0, u.size, n)
    ]
    return signal, y, probe, e, splits


def sweep_thresholds(data, alphas, delta=DELTA, **kwargs) -> np.ndarray:
    signal, y, p, e, splits = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = calibrate_budget_sweep(
            signal,
            y,
            p,
            e,
            alphas=alphas,
            delta=delta,
            splits=splits,
            n_thresholds=FINE,
            **kwargs,
        )
    assert res.thresholds.shape == (N_DRAWS, len(alphas))
    return res.thresholds


# ------------------------------------------------------------------ the exact answer
def test_exact_violation_matches_a_direct_simulation():
    # the formula, checked without skctd: budget-only LTT written from scratch on
    # tiny splits (n_opt = 5, n_test = 30), 200,000 draws at once
    rng = np.random.default_rng(0)
    n_opt, n_test, alpha, draws = 5, 30, 0.3, 200_000
    ks = k_star(n_test, alpha, DELTA)
    opt = np.sort(rng.uniform(size=(draws, n_opt)), axis=1)
    test = rng.uniform(size=(draws, n_test))
    k = (test[:, None, :] > opt[:, :, None]).sum(-1)  # (draws, n_opt)
    certified = k <= ks  # a prefix from the top, since k falls with lam
    lam = np.where(certified.any(1), np.where(certified, opt, np.inf).min(1), np.inf)
    rate = np.mean(1 - lam > alpha)
    exact = exact_violation(n_opt, n_test, alpha, DELTA)
    assert abs(rate - exact) <= 4 * se(exact, draws)
    # and the tied version against its own simulation (20 levels)
    L = 20
    opt = rng.integers(0, L, size=(draws, n_opt)) / L
    test = rng.integers(0, L, size=(draws, n_test)) / L
    k = (test[:, None, :] > opt[:, :, None]).sum(-1)
    lam = np.where(k <= ks, opt, np.inf).min(1)
    rate = np.mean(true_budget(lam, L) > alpha)
    exact = exact_violation_ties(n_opt, n_test, alpha, DELTA, L)
    assert exact > 0.005 and abs(rate - exact) <= 4 * se(exact, draws)


# ------------------------------------------------------------------ entry point 1
ALPHAS = [0.2, 0.3, 0.5]


def test_sweep_with_splits_is_nearly_tight():
    """The fast one (also the guarantee test of the mutation run)."""
    data = stacked_draws(N_CAL, seed=1)
    lam = sweep_thresholds(data, ALPHAS, pareto=False)
    for j, alpha in enumerate(ALPHAS):
        rate = float(np.mean(true_budget(lam[:, j]) > alpha))
        exact = exact_violation(N_OPT, N_TEST, alpha, DELTA)
        check_rate(rate, exact, f"sweep(splits) budget-only alpha={alpha}")
        # not vacuous: the realised budget is close to alpha on average
        mean_budget = float(np.mean(true_budget(lam[:, j])))
        assert alpha - 0.03 < mean_budget < alpha


@pytest.mark.slow
def test_sweep_pareto_with_a_perfect_expert_is_nearly_tight():
    # the Pareto filter keeps every threshold here: same exact answer
    data = stacked_draws(N_CAL, seed=2)
    lam = sweep_thresholds(data, ALPHAS, pareto=True)
    for j, alpha in enumerate(ALPHAS):
        rate = float(np.mean(true_budget(lam[:, j]) > alpha))
        exact = exact_violation(N_OPT, N_TEST, alpha, DELTA)
        check_rate(rate, exact, f"sweep(splits) pareto alpha={alpha}")


@pytest.mark.slow
def test_sweep_other_sizes_and_delta():
    # n = 400 (120 / 280), delta = 0.05, and n = 2,000 (600 / 1,400), delta = 0.1
    for n, delta, alpha, seed in [(400, 0.05, 0.2, 3), (2000, 0.1, 0.1, 4)]:
        n_opt, n_test = round(0.3 * n), n - round(0.3 * n)
        data = stacked_draws(n, seed=seed)
        lam = sweep_thresholds(data, [alpha], delta=delta, pareto=False)[:, 0]
        rate = float(np.mean(true_budget(lam) > alpha))
        exact = exact_violation(n_opt, n_test, alpha, delta)
        print(f"\n[guarantee] sweep n={n} delta={delta} alpha={alpha}: {rate:.4f} "
              f"(exact {exact:.4f})")
        assert abs(rate - exact) <= 3 * se(exact) + 1.0 / N_DRAWS
        assert delta / 2 <= rate <= delta + 3 * se(delta)


@pytest.mark.slow
def test_sweep_pareto_uneven_expert_is_valid_and_never_more_aggressive():
    # cannot be tight: Pareto picks the best certified threshold on the
    # optimisation split, often not the most aggressive one
    data = stacked_draws(N_CAL, seed=5, expert="uneven")
    lam_b = sweep_thresholds(data, ALPHAS, pareto=False)
    lam_p = sweep_thresholds(data, ALPHAS, pareto=True)
    for j, alpha in enumerate(ALPHAS):
        exact = exact_violation(N_OPT, N_TEST, alpha, DELTA)
        rate_b = float(np.mean(true_budget(lam_b[:, j]) > alpha))
        rate_p = float(np.mean(true_budget(lam_p[:, j]) > alpha))
        check_rate(rate_b, exact, f"sweep budget-only (uneven) alpha={alpha}")
        print(f"[guarantee] sweep pareto (uneven) alpha={alpha}: {rate_p:.4f}")
        assert rate_p <= DELTA + 3 * se(DELTA)
        # the certified Pareto thresholds are a subset of budget-only's prefix
        assert np.all(lam_p[:, j] >= lam_b[:, j])
        assert np.mean(np.isfinite(lam_p[:, j])) > 0.95  # it does delegate
        assert np.mean(lam_p[:, j] > lam_b[:, j]) > 0.2  # and really differs


@pytest.mark.slow
def test_sweep_bonferroni_matches_its_exact_level():
    # not tight by design: every threshold is tested at delta / m with m = 301
    data = stacked_draws(N_CAL, seed=6)
    lam = sweep_thresholds(data, ALPHAS, pareto=False, fwer="bonferroni")
    lam_fs = sweep_thresholds(data, ALPHAS, pareto=False)
    m = N_OPT + 1
    for j, alpha in enumerate(ALPHAS):
        rate = float(np.mean(true_budget(lam[:, j]) > alpha))
        exact = exact_violation(N_OPT, N_TEST, alpha, DELTA / m)
        check_rate(rate, exact, f"sweep bonferroni alpha={alpha}", tight=False)
        assert exact < DELTA / 10  # very conservative, as it should be
        assert np.all(lam[:, j] >= lam_fs[:, j])
        # the realised budget: below fixed sequence's, but still delegating
        assert 0.6 * alpha < np.mean(true_budget(lam[:, j])) < alpha


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.3, 0.305])
def test_sweep_tied_signal_matches_its_exact_value(alpha):
    # 100 tied levels: with alpha = 0.3 the first violating level has R = 0.31
    # (a threshold with R = alpha exactly is no violation); with alpha = 0.305 it
    # is 0.31 too but 0.30 is allowed. Counting rows *equal* to the threshold as
    # delegated would lower the rate; certifying by >= or by < would change it.
    levels = 100
    data = stacked_draws(N_CAL, seed=int(alpha * 1000), levels=levels)
    lam = sweep_thresholds(data, [alpha], pareto=False)[:, 0]
    rate = float(np.mean(true_budget(lam, levels) > alpha))
    exact = exact_violation_ties(N_OPT, N_TEST, alpha, DELTA, levels)
    check_rate(rate, exact, f"sweep tied signal alpha={alpha}", tight=False)
    assert exact > 0.02


# ------------------------------------------------------------------ entry point 2
@pytest.mark.slow
def test_calibrate_threshold_random_split_is_nearly_tight():
    alpha = 0.3
    rng = np.random.default_rng(7)
    lam = np.empty(N_DRAWS)
    for i in range(N_DRAWS):  # its own random split of each fresh draw
        s = rng.uniform(size=N_CAL)
        y = rng.integers(0, 2, N_CAL)
        res = calibrate_threshold(
            s,
            y,
            1.0 - y,
            y.astype(float),
            alpha=alpha,
            delta=DELTA,
            n_thresholds=FINE,
            random_state=i,
        )
        assert (res.n_opt, res.n_test) == (N_OPT, N_TEST)
        lam[i] = res.threshold
    rate = float(np.mean(true_budget(lam) > alpha))
    check_rate(rate, exact_violation(N_OPT, N_TEST, alpha, DELTA),
               "calibrate_threshold(random_state) alpha=0.3")


# ------------------------------------------------------------------ entry point 3
def frozen_probe_and_dv():
    """A frozen probe reading column 1 and a frozen DV 'probe' returning column 0.

    ``d(x) = x_0`` exactly (coefficients set by hand), so the delegation signal of
    every row is the uniform draw and ``R_B(lam) = 1 - lam`` in closed form.
    """
    Z = np.array([[0.0, -1.0], [0.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    probe = LogisticRegression().fit(Z, [0, 1, 0, 1])
    probe.coef_ = np.array([[0.0, 20.0]])
    probe.intercept_ = np.array([0.0])
    dv = LinearRegression().fit(Z, [0.0, 0.0, 1.0, 1.0])
    dv.coef_ = np.array([1.0, 0.0])
    dv.intercept_ = 0.0
    return FrozenEstimator(probe), FrozenEstimator(dv)


def _never_called(rows):
    raise AssertionError("the expert scores are given: fit must not call the expert")


@pytest.mark.slow
def test_cascade_fit_is_nearly_tight():
    # fit splits 1,430 rows into training and calibration (1,000, stratified on y,
    # which is independent of the signal, so the calibration signals are i.i.d.
    # uniform), then calibrate_threshold splits those into 300 / 700
    alpha, n = 0.3, 1430
    probe, dv = frozen_probe_and_dv()
    rng = np.random.default_rng(8)
    lam = np.empty(N_DRAWS)
    for i in range(N_DRAWS):
        s = rng.uniform(size=n)
        y = rng.integers(0, 2, n)
        X = np.column_stack([s, 1.0 - 2.0 * y])  # the probe says 1 - y: always wrong
        cascade = CalibratedDelegationCascade(
            _never_called,
            probe=probe,
            dv_estimator=dv,
            dv_features="activations",  # the frozen DV probe reads the features
            combine="replace",  # the paper's procedure, whose exact rate is known
            alpha=alpha,
            delta=DELTA,
            n_thresholds=FINE,
            calibration_size=N_CAL,
            random_state=i,
        ).fit(X, y, expert_scores=y.astype(float))  # the expert is always right
        lam[i] = cascade.threshold_
        if i == 0:
            cal = cascade.calibration_
            assert (cal.n_opt, cal.n_test) == (N_OPT, N_TEST)
            assert cal.pareto_mask.sum() == N_OPT + 1  # Pareto keeps every threshold
            np.testing.assert_array_equal(cascade.delegation_signal(X), s)
    rate = float(np.mean(true_budget(lam) > alpha))
    check_rate(rate, exact_violation(N_OPT, N_TEST, alpha, DELTA),
               "CalibratedDelegationCascade.fit alpha=0.3")

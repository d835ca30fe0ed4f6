"""Display objects: attributes, artists, and the from_* constructors."""

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skctd import CalibratedDelegationCascade, calibrate_threshold, delegation_value  # noqa: E402
from skctd.evaluation import (  # noqa: E402
    budget_sweep,
    dv_ranking_curve,
    group_analysis,
    validate_guarantee,
)
from skctd.plotting import (  # noqa: E402
    METHOD_STYLES,
    BudgetCurveDisplay,
    CalibrationDisplay,
    DVRankingDisplay,
    GroupTableDisplay,
    GuaranteeDisplay,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(0)
    n = 1000
    y = rng.integers(0, 2, n)
    p = np.clip(0.5 + (2 * y - 1) * rng.normal(0.12, 0.25, n), 0, 1)
    e = np.where(rng.uniform(size=n) < 0.9, y, 1 - y) * 0.9 + 0.05
    v = delegation_value(y, p, e)
    dv = v + rng.normal(0, 0.3, n)
    groups = rng.choice(["HH", "ToolACE", "MTS"], n)
    return y, p, e, v, dv, groups


def test_budget_curve_from_results(pool, tmp_path):
    y, p, e, _, dv, _ = pool
    res = budget_sweep(y, p, e, dv, alphas=np.linspace(0.05, 0.95, 8))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    d1 = BudgetCurveDisplay.from_results(res, metric="auroc", ax=axes[0])
    d2 = BudgetCurveDisplay.from_results(
        res, metric="accuracy", ax=axes[1], batch_size=32
    )
    assert d1.ax_ is axes[0] and d1.figure_ is fig
    assert set(d1.lines_) == set(res.methods)
    # reference lines are horizontal, curves follow the budgets
    assert np.ptp(d1.lines_["probe_only"].get_ydata()) == 0
    np.testing.assert_allclose(d1.lines_["ctd"].get_xdata(), res.alphas)
    np.testing.assert_allclose(
        d2.lines_["dv_topk"].get_ydata(), res.curve("dv_topk", "accuracy", 32)[1]
    )
    assert d1.lines_["ctd"].get_color() == METHOD_STYLES["ctd"]["color"]
    assert d1.lines_["dv_topk"].get_linestyle() == "--"
    assert d1.ax_.get_ylabel() == "AUROC"
    assert "B=32" in d2.ax_.get_title()
    labels = [t.get_text() for t in d1.ax_.get_legend().get_texts()]
    assert "CTD" in labels and "Oracle top-k" in labels
    fig.savefig(tmp_path / "budget.png")
    assert (tmp_path / "budget.png").stat().st_size > 10_000


def test_budget_curve_from_predictions_and_subset(pool):
    y, p, e, _, dv, _ = pool
    disp = BudgetCurveDisplay.from_predictions(
        y,
        p,
        e,
        dv,
        metric="accuracy",
        batch_size=64,
        alphas=[0.1, 0.5],
        methods=["ctd", "dv_topk", "probe_only"],
    )
    assert set(disp.lines_) == {"ctd", "dv_topk", "probe_only"}
    assert disp.batch_size == 64
    with pytest.raises(ValueError, match="metric"):
        BudgetCurveDisplay.from_results(
            budget_sweep(y, p, e, dv, alphas=[0.2]), metric="f1"
        )
    with pytest.raises(TypeError, match="SweepResult"):
        BudgetCurveDisplay.from_results({"not": "a result"})


def test_budget_curve_draws_std_band_with_repeats(pool):
    y, p, e, _, dv, _ = pool
    res = budget_sweep(
        y, p, e, dv, alphas=[0.1, 0.5, 0.9], n_repeats=3, batch_sizes=[32]
    )
    disp = BudgetCurveDisplay.from_results(res)
    assert len(disp.ax_.collections) >= 1  # fill_between bands


def test_guarantee_display(pool, tmp_path):
    y, p, e, _, dv, _ = pool
    res = validate_guarantee(y, p, e, dv, n_splits=60)
    disp = GuaranteeDisplay.from_results(res)
    assert set(disp.patches_) == {"budget_only", "pareto"}
    assert disp.ax_.get_xlabel() == "Realised delegation rate"
    texts = [t.get_text() for t in disp.ax_.get_legend().get_texts()]
    assert any("Pareto LTT" in t and "violations" in t for t in texts)
    assert any("0.3" in t for t in texts)
    disp.figure_.savefig(tmp_path / "guarantee.png")
    with pytest.raises(TypeError, match="GuaranteeResult"):
        GuaranteeDisplay.from_results(res.rates)


def test_dv_ranking_display(pool):
    _, p, _, v, dv, _ = pool
    res = dv_ranking_curve(v, {"DV probe": dv, "Uncertainty": -np.abs(p - 0.5)})
    disp = DVRankingDisplay.from_results(res)
    assert set(disp.lines_) == {"DV probe", "Uncertainty", "random", "oracle"}
    np.testing.assert_allclose(disp.lines_["oracle"].get_ydata(), res.curves["oracle"])
    assert disp.lines_["random"].get_linestyle() == "--"
    assert disp.ax_.get_xlabel() == "Selection fraction k/N"


def test_group_table_display(pool, tmp_path):
    y, p, e, _, dv, groups = pool
    res = group_analysis(y, p, e, dv, groups, alpha=0.2)
    disp = GroupTableDisplay.from_results(res)
    header = disp.cell_text_[0]
    assert header[:3] == ["Group", "Mean v: all", "Mean v: CTD"]
    assert len(disp.cell_text_) == 1 + 3
    row = disp.cell_text_[1]
    assert row[0] == res.table["group"][0]
    assert row[2] == f"{res.table['mean_v_ctd'][0]:+.3f}"
    assert row[-1].endswith("%")
    assert "0.2" in disp.ax_.get_title()
    disp.figure_.savefig(tmp_path / "groups.png")


def test_calibration_display_from_result(pool, tmp_path):
    y, p, e, _, dv, _ = pool
    res = calibrate_threshold(dv, y, p, e, alpha=0.3, delta=0.1, random_state=0)
    disp = CalibrationDisplay.from_result(res)
    assert disp.ax_.shape == (2,)
    assert disp.figure_ is disp.ax_[0].figure
    assert disp.ax_[1].get_ylabel() == "Performance risk (accuracy)"
    # the delta line is drawn
    ys = [
        line.get_ydata()[0]
        for line in disp.ax_[0].get_lines()
        if len(line.get_ydata()) == 2
    ]
    assert 0.1 in ys
    disp.figure_.savefig(tmp_path / "calibration.png")
    with pytest.raises(TypeError, match="CalibrationResult"):
        CalibrationDisplay.from_result({"threshold": 1})
    with pytest.raises(ValueError, match="2 Axes"):
        CalibrationDisplay(res).plot(ax=plt.subplots()[1])


def test_calibration_display_from_estimator():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 4))
    y = (X[:, 0] + 0.5 * rng.normal(size=1500) > 0).astype(int)

    def expert(rows):
        return 1 / (1 + np.exp(-8 * rows[:, 0]))

    cascade = CalibratedDelegationCascade(
        expert=expert, alpha=0.3, delta=0.1, random_state=0
    ).fit(X, y)
    disp = CalibrationDisplay.from_estimator(cascade)
    assert disp.result is cascade.calibration_
    assert disp.ax_.shape == (2,)
    with pytest.raises(Exception, match="not fitted"):
        CalibrationDisplay.from_estimator(CalibratedDelegationCascade(expert=expert))


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="plot"):
        DVRankingDisplay([0.5, 1.0], {"oracle": [1.0, 0.5]}).plot()


def test_budget_curve_from_estimator_matches_predictions():
    from skctd import CalibratedDelegationCascade
    from skctd.evaluation import budget_sweep

    rng = np.random.default_rng(1)
    X = rng.normal(size=(1000, 3))
    y = (X[:, 0] + 0.8 * X[:, 1] > 0).astype(int)

    def expert(Z):
        Z = np.asarray(Z)
        return np.clip(0.5 + 0.4 * np.sign(Z[:, 0] + 0.8 * Z[:, 1]), 0, 1)

    cascade = CalibratedDelegationCascade(expert=expert, random_state=0)
    cascade.fit(X[:500] * [1, 0, 1], y[:500])
    X_ho = X[500:] * [1, 0, 1]
    disp = BudgetCurveDisplay.from_estimator(
        cascade, X_ho, y[500:], alphas=[0.1, 0.3, 0.6], metric="accuracy"
    )
    p = cascade.probe_.predict_proba(X_ho)[:, 1]
    d = cascade.delegation_signal(X_ho)
    ref = budget_sweep(y[500:], p, expert(X_ho), d, alphas=[0.1, 0.3, 0.6],
                       batch_sizes=[128])
    for m in ("ctd", "dv_topk", "probe_only"):
        np.testing.assert_allclose(disp.values[m], ref.curve(m, "accuracy")[1])
    with pytest.raises(ValueError, match="labels \\[7\\]"):
        BudgetCurveDisplay.from_estimator(cascade, X_ho[:4], [0, 1, 7, 0])

"""Display objects: the base class, attributes, artists, kwargs, names, from_* builders.

Real matplotlib on the Agg backend (set here, for the tests only: the library never
switches the backend).
"""

import inspect
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skctd import (  # noqa: E402
    CalibratedDelegationCascade,
    calibrate_threshold,
    delegation_value,
)
from skctd.evaluation import (  # noqa: E402
    budget_sweep,
    dv_ranking_curve,
    group_analysis,
    validate_guarantee,
)
from skctd.plotting import (  # noqa: E402
    METHOD_STYLES,
    BudgetCurveDisplay,
    DVRankingDisplay,
    GroupTableDisplay,
    GuaranteeDisplay,
    ThresholdSelectionDisplay,
)
from skctd.plotting._base import Display  # noqa: E402

ALL_DISPLAYS = [
    BudgetCurveDisplay,
    DVRankingDisplay,
    GroupTableDisplay,
    GuaranteeDisplay,
    ThresholdSelectionDisplay,
]


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


@pytest.fixture(scope="module")
def results(pool):
    """One result object per display, computed once."""
    y, p, e, v, dv, groups = pool
    return {
        BudgetCurveDisplay: budget_sweep(
            y, p, e, dv, alphas=[0.1, 0.4, 0.8], batch_sizes=[32]
        ),
        GuaranteeDisplay: validate_guarantee(y, p, e, dv, n_splits=20),
        DVRankingDisplay: dv_ranking_curve(v, {"DV": dv}),
        GroupTableDisplay: group_analysis(y, p, e, dv, groups, alpha=0.2),
        ThresholdSelectionDisplay: calibrate_threshold(
            dv, y, p, e, alpha=0.3, delta=0.1, random_state=0
        ),
    }


# --------------------------------------------------------------------------------------
# the base class
# --------------------------------------------------------------------------------------
class _LineDisplay(Display):
    def __init__(self, y, *, name=None):
        self.y = y
        self.name = name

    def plot(self, ax=None, *, name=None, **kwargs):
        ax = self._prepare_axes(ax)
        style = self._style({"color": "black", "linewidth": 1.0}, kwargs, "line")
        (self.line_,) = ax.plot(self.y, **style)
        ax.set_title(self._title(name, default="default title"))
        return self


def test_base_creates_or_uses_axes():
    disp = _LineDisplay([1, 2]).plot()
    assert disp.figure_ is disp.ax_.figure
    assert disp.ax_.get_title() == "default title"
    fig, ax = plt.subplots()
    disp2 = _LineDisplay([1, 2]).plot(ax=ax)
    assert disp2.ax_ is ax and disp2.figure_ is fig
    assert disp2.figure_ is not disp.figure_


def test_base_title_precedence():
    assert _LineDisplay([1], name="init").plot().ax_.get_title() == "init"
    disp = _LineDisplay([1], name="init").plot(name="call")
    assert disp.ax_.get_title() == "call"
    assert disp.name == "init"  # plot(name=...) does not change the stored name


def test_base_style_resolves_aliases_and_user_wins():
    disp = _LineDisplay([1, 2]).plot(c="red", lw=3, ls=":")
    assert disp.line_.get_color() == "red"
    assert disp.line_.get_linewidth() == 3.0
    assert disp.line_.get_linestyle() == ":"
    with pytest.raises(TypeError, match="aliases"):
        _LineDisplay([1, 2]).plot(c="red", color="blue")
    assert Display._style({"fc": "red"}, {"facecolor": "blue"}, "patch") == {
        "facecolor": "blue"
    }


def test_base_checks_the_number_of_panels():
    class TwoPanels(Display):
        def plot(self, ax=None):
            self._prepare_axes(ax, n_axes=2)
            return self

    disp = TwoPanels().plot()
    assert disp.ax_.shape == (2,) and disp.figure_ is disp.ax_[1].figure
    fig, axes = plt.subplots(2, 1)
    assert list(TwoPanels().plot(ax=axes).ax_) == list(axes)
    with pytest.raises(ValueError, match="ax must hold 2 Axes for TwoPanels, got 1"):
        TwoPanels().plot(ax=plt.subplots()[1])


@pytest.mark.parametrize("cls", ALL_DISPLAYS, ids=lambda c: c.__name__)
def test_every_display_follows_the_api(cls, results):
    assert issubclass(cls, Display)
    params = inspect.signature(cls.plot).parameters
    assert list(params)[:2] == ["self", "ax"]
    assert params["name"].kind is inspect.Parameter.KEYWORD_ONLY
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    assert "name" in inspect.signature(cls).parameters
    assert not hasattr(cls, "from_results")
    disp = cls.from_result(results[cls], name="my name")
    first_ax = np.ravel(disp.ax_)[0]
    assert disp.figure_ is first_ax.figure
    assert disp.name == "my name"
    with pytest.raises(TypeError, match="result must be a"):
        cls.from_result({"not": "a result"})


@pytest.mark.parametrize("cls", ALL_DISPLAYS, ids=lambda c: c.__name__)
def test_every_display_draws_on_the_given_axes(cls, results):
    n = 2 if cls is ThresholdSelectionDisplay else 1
    fig, ax = plt.subplots(1, n)
    disp = cls.from_result(results[cls], ax=ax)
    assert disp.figure_ is fig
    assert np.all(np.ravel(disp.ax_) == np.ravel(ax))
    assert len(fig.axes) == n


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"DVRankingDisplay\.plot.*'plot' extra"):
        DVRankingDisplay([0.5, 1.0], {"oracle": [1.0, 0.5]}).plot()


def test_the_library_leaves_the_backend_alone():
    import subprocess

    code = (
        "import matplotlib; matplotlib.use('svg'); import numpy as np\n"
        "from skctd.plotting import DVRankingDisplay\n"
        "DVRankingDisplay([0.5, 1.0], {'oracle': [1.0, 0.5]}).plot()\n"
        "print(matplotlib.get_backend())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "svg"


# --------------------------------------------------------------------------------------
# budget curves
# --------------------------------------------------------------------------------------
def test_budget_curve_from_result(pool, tmp_path):
    y, p, e, _, dv, _ = pool
    res = budget_sweep(y, p, e, dv, alphas=np.linspace(0.05, 0.95, 8))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    d1 = BudgetCurveDisplay.from_result(res, metric="auroc", ax=axes[0])
    d2 = BudgetCurveDisplay.from_result(
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
    assert d1.ax_.get_title() == "AUROC vs budget (top-k B=128)"
    assert d2.ax_.get_title() == "Accuracy vs budget (top-k B=32)"
    labels = [t.get_text() for t in d1.ax_.get_legend().get_texts()]
    assert "CTD" in labels and "Oracle top-k" in labels
    fig.savefig(tmp_path / "budget.png")
    assert (tmp_path / "budget.png").stat().st_size > 10_000


def test_budget_curve_forwards_kwargs_to_every_line(results):
    res = results[BudgetCurveDisplay]
    disp = BudgetCurveDisplay.from_result(res, color="red", ls=":", linewidth=3)
    for method, line in disp.lines_.items():
        assert line.get_color() == "red", method
        assert line.get_linestyle() == ":", method
        assert line.get_linewidth() == 3.0, method
    # without kwargs each method keeps its own style
    plain = BudgetCurveDisplay.from_result(res)
    assert plain.lines_["ctd"].get_marker() == "o"
    assert plain.lines_["unc_topk"].get_color() == METHOD_STYLES["unc_topk"]["color"]
    assert plain.lines_["probe_only"].get_linewidth() == 1.5


def test_budget_curve_name_and_legend(results):
    res = results[BudgetCurveDisplay]
    disp = BudgetCurveDisplay.from_result(res, name="Llama-2, XSTest", legend=False)
    assert disp.ax_.get_title() == "Llama-2, XSTest"
    assert disp.ax_.get_legend() is None
    disp.plot(name="again")  # replot on a new figure with another name
    assert disp.ax_.get_title() == "again"


def test_budget_curve_from_predictions_and_subset(pool):
    y, p, e, _, dv, _ = pool
    disp = BudgetCurveDisplay.from_predictions(
        y,
        p,
        e,
        dv,
        metric="accuracy",
        batch_size=64,
        sweep_params={"alphas": [0.1, 0.5], "methods": ["ctd", "dv_topk", "probe_only"]},
        name="pool",
        marker="x",
    )
    assert set(disp.lines_) == {"ctd", "dv_topk", "probe_only"}
    assert disp.batch_size == 64
    assert disp.lines_["dv_topk"].get_marker() == "x"
    assert disp.ax_.get_title() == "pool"
    ref = budget_sweep(y, p, e, dv, alphas=[0.1, 0.5], batch_sizes=[64])
    np.testing.assert_allclose(
        disp.values["dv_topk"], ref.curve("dv_topk", "accuracy", 64)[1]
    )
    with pytest.raises(TypeError, match="batch_size instead"):
        BudgetCurveDisplay.from_predictions(
            y, p, e, dv, sweep_params={"batch_sizes": [32]}
        )
    with pytest.raises(ValueError, match="metric"):
        BudgetCurveDisplay.from_result(
            budget_sweep(y, p, e, dv, alphas=[0.2]), metric="f1"
        )


def test_budget_curve_draws_se_band_and_the_budget_diagonal(pool):
    y, p, e, _, dv, _ = pool
    res = budget_sweep(
        y, p, e, dv, alphas=[0.1, 0.5, 0.9], n_repeats=3, batch_sizes=[32]
    )
    disp = BudgetCurveDisplay.from_result(res)
    assert set(disp.bands_) <= set(res.methods) and "dv_topk" in disp.bands_
    assert "probe_only" not in disp.bands_  # reference lines have no band
    # the band is the mean +- 1.96 standard errors over the splits
    _, mean, se = res.curve("dv_topk", "auroc", batch_size=32)
    verts = disp.bands_["dv_topk"].get_paths()[0].vertices
    np.testing.assert_allclose(verts[:, 1].max(), np.max(mean + 1.96 * se))
    np.testing.assert_allclose(verts[:, 1].min(), np.min(mean - 1.96 * se))
    assert disp.diagonal_ is None
    one = BudgetCurveDisplay.from_result(
        budget_sweep(y, p, e, dv, alphas=[0.1, 0.5, 0.9], batch_sizes=[32], n_repeats=1)
    )
    assert len(one.ax_.collections) == 0 and one.bands_ == {}  # one split: no band
    rate = BudgetCurveDisplay.from_result(res, metric="delegation_rate")
    np.testing.assert_array_equal(rate.diagonal_.get_xydata(), [[0, 0], [1, 1]])


# --------------------------------------------------------------------------------------
# budget curves of a fitted cascade
# --------------------------------------------------------------------------------------
def _expert(Z):
    Z = np.asarray(Z)
    return np.clip(0.5 + 0.4 * np.sign(Z[:, 0] + 0.8 * Z[:, 1]), 0, 1)


class _CountingExpert:
    """Counts the rows it scored (an object with a scikit-learn-free score API)."""

    def __init__(self):
        self.n_rows = 0

    def __call__(self, Z):
        self.n_rows += len(Z)
        return _expert(Z)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1000, 3))
    y = (X[:, 0] + 0.8 * X[:, 1] > 0).astype(int)
    X = X * [1, 0, 1]  # the probes cannot see feature 1: the expert helps
    cascade = CalibratedDelegationCascade(expert=_expert, random_state=0)
    cascade.fit(X[:500], y[:500])
    return cascade, X[500:], y[500:]


def test_budget_curve_from_estimator_matches_predictions(fitted):
    cascade, X_ho, y_ho = fitted
    alphas = [0.1, 0.3, 0.6]
    disp = BudgetCurveDisplay.from_estimator(
        cascade,
        X_ho,
        y_ho,
        metric="accuracy",
        sweep_params={"alphas": alphas},
        name="held-out",
        lw=2.5,
    )
    p = cascade.probe_.predict_proba(X_ho)[:, 1]
    d = cascade.delegation_signal(X_ho)
    ref = budget_sweep(y_ho, p, _expert(X_ho), d, alphas=alphas, batch_sizes=[128])
    for m in ref.methods:
        np.testing.assert_allclose(disp.values[m], ref.curve(m, "accuracy")[1])
    assert disp.ax_.get_title() == "held-out"
    assert disp.lines_["ctd"].get_linewidth() == 2.5
    with pytest.raises(ValueError, match="labels \\[7\\]"):
        BudgetCurveDisplay.from_estimator(cascade, X_ho[:4], [0, 1, 7, 0])
    with pytest.raises(Exception, match="not fitted"):
        BudgetCurveDisplay.from_estimator(
            CalibratedDelegationCascade(expert=_expert), X_ho, y_ho
        )


def test_budget_curve_from_estimator_calls_the_expert_once_per_row(fitted):
    cascade, X_ho, y_ho = fitted
    counting = _CountingExpert()
    model = CalibratedDelegationCascade(expert=counting, random_state=0)
    model.fit(X_ho[:300], y_ho[:300])
    counting.n_rows = 0
    BudgetCurveDisplay.from_estimator(
        model, X_ho, y_ho, sweep_params={"alphas": [0.3]}
    )
    assert counting.n_rows == len(X_ho)  # scored once, for the sweep only
    counting.n_rows = 0
    BudgetCurveDisplay.from_estimator(
        model, X_ho, y_ho, expert_scores=_expert(X_ho), sweep_params={"alphas": [0.3]}
    )
    assert counting.n_rows == 0  # known scores: the expert is not called


def test_budget_curve_from_estimator_encodes_labels_with_classes(fitted):
    cascade, X_ho, y_ho = fitted
    names = np.array(["safe", "unsafe"])
    text_cascade = CalibratedDelegationCascade(expert=_expert, random_state=0)
    X_fit = np.random.default_rng(1).normal(size=(1000, 3))
    y_fit = (X_fit[:, 0] + 0.8 * X_fit[:, 1] > 0).astype(int)
    text_cascade.fit(X_fit[:500] * [1, 0, 1], names[y_fit[:500]])
    assert text_cascade.classes_[1] == "unsafe"
    kw = {"metric": "auroc", "sweep_params": {"alphas": [0.2, 0.5]}}
    by_text = BudgetCurveDisplay.from_estimator(text_cascade, X_ho, names[y_ho], **kw)
    by_code = BudgetCurveDisplay.from_estimator(cascade, X_ho, y_ho, **kw)
    for m in by_code.values:
        np.testing.assert_allclose(by_text.values[m], by_code.values[m])
    # a probe with skill has AUROC > 0.5 only if classes_[1] is the positive class
    assert by_text.values["probe_only"][0] > 0.7


def test_from_estimator_uses_only_public_cascade_api(fitted):
    """A stand-in that has only the public API the displays may use."""
    cascade, X_ho, y_ho = fitted

    from sklearn.base import BaseEstimator

    class PublicOnly(BaseEstimator):
        def __init__(self, inner):
            self.inner = inner
            self.classes_ = inner.classes_
            self.expert_ = inner.expert_
            self.calibration_ = inner.calibration_

        def fit(self):  # pragma: no cover - makes check_is_fitted accept it
            return self

        def route(self, X, *, call_expert=False):
            assert call_expert is False
            return self.inner.route(X, call_expert=False)

        def __getattr__(self, attr):
            if attr.startswith("__"):  # Python's and sklearn's protocol probes
                raise AttributeError(attr)
            raise AssertionError(f"the display used {attr!r}")

    stand_in = PublicOnly(cascade)
    kw = {"sweep_params": {"alphas": [0.2, 0.5]}}
    via_public = BudgetCurveDisplay.from_estimator(stand_in, X_ho, y_ho, **kw)
    direct = BudgetCurveDisplay.from_estimator(cascade, X_ho, y_ho, **kw)
    for m in direct.values:
        np.testing.assert_allclose(via_public.values[m], direct.values[m])
    disp = ThresholdSelectionDisplay.from_estimator(stand_in)
    assert disp.result is cascade.calibration_


# --------------------------------------------------------------------------------------
# guarantee, ranking, groups
# --------------------------------------------------------------------------------------
def test_guarantee_display(pool, tmp_path):
    y, p, e, _, dv, _ = pool
    res = validate_guarantee(y, p, e, dv, n_splits=60)
    disp = GuaranteeDisplay.from_result(res)
    assert set(disp.patches_) == {"budget_only", "pareto"}
    assert len(disp.patches_["pareto"]) == 30
    assert disp.ax_.get_xlabel() == "Realised delegation rate"
    assert disp.ax_.get_title() == (
        r"Realised rates over 60 splits ($\alpha$=0.3, $\delta$=0.1)"
    )
    texts = [t.get_text() for t in disp.ax_.get_legend().get_texts()]
    pct = 100 * res.violation_rate["pareto"]
    assert f"Pareto LTT (violations {pct:.1f}%)" in texts
    assert any("0.3" in t for t in texts)
    disp.figure_.savefig(tmp_path / "guarantee.png")


def test_guarantee_display_kwargs_and_name(results):
    res = results[GuaranteeDisplay]
    disp = GuaranteeDisplay.from_result(
        res, name="XSTest", bins=12, ec="black", alpha=0.9
    )
    assert disp.ax_.get_title() == "XSTest"
    for patches in disp.patches_.values():
        assert len(patches) == 12
        assert patches[0].get_edgecolor()[:3] == (0.0, 0.0, 0.0)
        assert patches[0].get_alpha() == 0.9
    # default colours are kept when not overridden
    assert matplotlib.colors.same_color(
        disp.patches_["pareto"][0].get_facecolor()[:3], "#ff7f0e"
    )


def test_dv_ranking_display(pool):
    _, p, _, v, dv, _ = pool
    res = dv_ranking_curve(v, {"DV probe": dv, "Uncertainty": -np.abs(p - 0.5)})
    disp = DVRankingDisplay.from_result(res)
    assert set(disp.lines_) == {"DV probe", "Uncertainty", "random", "oracle"}
    np.testing.assert_allclose(disp.lines_["oracle"].get_ydata(), res.curves["oracle"])
    assert disp.lines_["random"].get_linestyle() == "--"
    assert disp.ax_.get_xlabel() == "Selection fraction k/N"
    assert disp.ax_.get_title() == "Delegation-value ranking"


def test_dv_ranking_kwargs_name_and_from_predictions(pool):
    _, _, _, v, dv, _ = pool
    disp = DVRankingDisplay.from_predictions(
        v, {"DV probe": dv}, fractions=[0.1, 0.5, 1.0], name="strong expert",
        marker="x", linewidth=0.5,
    )
    np.testing.assert_allclose(disp.lines_["DV probe"].get_xdata(), [0.1, 0.5, 1.0])
    ref = dv_ranking_curve(v, {"DV probe": dv}, fractions=[0.1, 0.5, 1.0])
    np.testing.assert_allclose(
        disp.lines_["DV probe"].get_ydata(), ref.curves["DV probe"]
    )
    assert disp.ax_.get_title() == "strong expert"
    for line in disp.lines_.values():
        assert line.get_marker() == "x" and line.get_linewidth() == 0.5


def test_group_table_display(pool, tmp_path):
    y, p, e, _, dv, groups = pool
    res = group_analysis(y, p, e, dv, groups, alpha=0.2)
    disp = GroupTableDisplay.from_result(res)
    header = disp.cell_text_[0]
    assert header[:3] == ["Group", "Mean v: all", "Mean v: CTD"]
    assert len(disp.cell_text_) == 1 + 3
    row = disp.cell_text_[1]
    assert row[0] == res.table["group"][0]
    assert row[2] == f"{res.table['mean_v_ctd'][0]:+.3f}"
    assert row[-1] == f"{100 * res.table['rate_unc_topk'][0]:.1f}%"
    assert disp.ax_.get_title() == r"Group-conditional delegation at $\alpha$ = 0.2"
    # the mean-value cells are shaded by sign: green above 0, red below
    rgb = np.array(disp.table_[1, 2].get_facecolor()[:3])
    val = res.table["mean_v_ctd"][0]
    assert (rgb[1] > rgb[0]) == (val > 0)
    disp.figure_.savefig(tmp_path / "groups.png")


def test_group_table_kwargs_and_name(results):
    res = results[GroupTableDisplay]
    disp = GroupTableDisplay.from_result(res, name="Table 1", edges="horizontal")
    assert disp.ax_.get_title() == "Table 1"
    assert disp.table_[1, 0].visible_edges == "BT"  # "horizontal", as matplotlib says
    assert disp.table_[1, 0].get_text().get_horizontalalignment() == "center"


def test_group_table_marks_missing_means():
    from skctd.evaluation import group_table

    res = group_table([0.5, -0.5, 1.0, 0.0], ["a", "a", "b", "b"],
                      {"ctd": [True, False, False, False]})
    disp = GroupTableDisplay.from_result(res)
    assert disp.cell_text_[2] == ["b", "+0.500", "n/a", "0.0%"]
    assert matplotlib.colors.same_color(disp.table_[2, 2].get_facecolor(), "white")


# --------------------------------------------------------------------------------------
# threshold selection
# --------------------------------------------------------------------------------------
def test_threshold_selection_display_from_result(pool, tmp_path):
    y, p, e, _, dv, _ = pool
    res = calibrate_threshold(dv, y, p, e, alpha=0.3, delta=0.1, random_state=0)
    disp = ThresholdSelectionDisplay.from_result(res)
    assert disp.ax_.shape == (2,)
    assert disp.figure_ is disp.ax_[0].figure
    assert disp.ax_[1].get_ylabel() == "Performance risk (accuracy)"
    assert disp.figure_.get_suptitle() == ""
    # the delta line is drawn
    ys = [
        line.get_ydata()[0]
        for line in disp.ax_[0].get_lines()
        if len(line.get_ydata()) == 2
    ]
    assert 0.1 in ys
    front = np.asarray(res.pareto_mask) & np.isfinite(res.performance_risk_opt)
    np.testing.assert_allclose(
        np.sort(disp.front_line_.get_xdata()), np.sort(res.budget_risk_opt[front])
    )
    disp.figure_.savefig(tmp_path / "threshold.png")
    with pytest.raises(ValueError, match="2 Axes"):
        ThresholdSelectionDisplay(res).plot(ax=plt.subplots()[1])


def test_threshold_selection_kwargs_and_name(results):
    res = results[ThresholdSelectionDisplay]
    disp = ThresholdSelectionDisplay.from_result(
        res, name="dev split", color="black", linestyle="--"
    )
    assert disp.figure_.get_suptitle() == "dev split"
    assert disp.front_line_.get_color() == "black"
    assert disp.front_line_.get_linestyle() == "--"
    assert disp.front_line_.get_label() == "Pareto front"


def test_threshold_selection_display_from_estimator():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 4))
    y = (X[:, 0] + 0.5 * rng.normal(size=1500) > 0).astype(int)

    def expert(rows):
        return 1 / (1 + np.exp(-8 * rows[:, 0]))

    cascade = CalibratedDelegationCascade(
        expert=expert, alpha=0.3, delta=0.1, random_state=0
    ).fit(X, y)
    disp = ThresholdSelectionDisplay.from_estimator(cascade, name="cascade")
    assert disp.result is cascade.calibration_
    assert disp.ax_.shape == (2,)
    assert disp.figure_.get_suptitle() == "cascade"
    with pytest.raises(Exception, match="not fitted"):
        ThresholdSelectionDisplay.from_estimator(
            CalibratedDelegationCascade(expert=expert)
        )
    uncalibrated = CalibratedDelegationCascade(
        expert=expert, calibration_size=None, random_state=0
    ).fit(X, y)
    with pytest.raises(ValueError, match="not calibrated"):
        ThresholdSelectionDisplay.from_estimator(uncalibrated)

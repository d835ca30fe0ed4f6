"""Display objects for the evaluation protocol, in the scikit-learn style.

Each display stores its data in ``__init__``; ``plot(ax=None, ...)`` draws it and
sets ``ax_`` and ``figure_`` (plus the drawn artists); the class methods
``from_results`` / ``from_predictions`` / ``from_estimator`` compute the data and
plot in one call, like :class:`sklearn.metrics.RocCurveDisplay`.

- :class:`BudgetCurveDisplay`: AUROC / accuracy against the budget, one line per
  method (the paper's Figures 3-4);
- :class:`GuaranteeDisplay`: histogram of realised delegation rates over random
  splits (Figure 11);
- :class:`DVRankingDisplay`: mean delegation value of the top-k by each signal
  (Figure 5);
- :class:`GroupTableDisplay`: the group-conditional table (Table 1);
- :class:`CalibrationDisplay`: p-values over the thresholds and the Pareto front
  of one calibration.

matplotlib is an optional dependency (the ``plot`` extra); it is imported when a
display is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from skctd.evaluation import (
    METHOD_LABELS,
    GroupResult,
    GuaranteeResult,
    RankingCurveResult,
    SweepResult,
    budget_sweep,
    dv_ranking_curve,
)
from skctd.utils._optional import import_optional

__all__ = [
    "METHOD_STYLES",
    "BudgetCurveDisplay",
    "GuaranteeDisplay",
    "DVRankingDisplay",
    "GroupTableDisplay",
    "CalibrationDisplay",
]

_ORANGE, _BLUE, _GREEN, _GREY = "#ff7f0e", "#1f77b4", "#2ca02c", "#7f7f7f"

#: Line style of each method, as in the paper's figures.
METHOD_STYLES = {
    "ctd": {"color": _ORANGE, "linestyle": "-", "marker": "o"},
    "unc_calibrated": {"color": _BLUE, "linestyle": "-", "marker": "s"},
    "dv_topk": {"color": _ORANGE, "linestyle": "--"},
    "unc_topk": {"color": _BLUE, "linestyle": "--"},
    "oracle_topk": {"color": _GREEN, "linestyle": "--"},
    "probe_only": {"color": _GREY, "linestyle": ":"},
    "expert_only": {"color": _GREY, "linestyle": "--"},
}

_METRIC_LABELS = {
    "auroc": "AUROC",
    "accuracy": "Accuracy",
    "delegation_rate": "Realised delegation rate",
    "mean_v_delegated": "Mean v of delegated",
}


def _plt():
    return import_optional("matplotlib.pyplot", extra="plot", purpose="plotting")


def _get_ax(ax):
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots()
    return ax


def _check_metric(metric: str) -> str:
    if metric not in _METRIC_LABELS:
        raise ValueError(
            f"metric must be one of {tuple(_METRIC_LABELS)}, got {metric!r}."
        )
    return metric


# --------------------------------------------------------------------------------------
# budget curves
# --------------------------------------------------------------------------------------
class BudgetCurveDisplay:
    """Cascade metric against the delegation budget, one line per method.

    Probe only and expert only are drawn as horizontal reference lines.

    Parameters
    ----------
    alphas : ndarray of shape (n_alphas,)
        Budgets.
    values : dict of str to ndarray of shape (n_alphas,)
        Metric of each method (keys of :data:`skctd.evaluation.METHOD_LABELS`).
    std : dict of str to ndarray, optional
        Standard deviation over repeats; drawn as a band when given and non-zero.
    metric : str, default="auroc"
        Name of the metric (y-axis label).
    batch_size : int, optional
        Batch size of the top-k methods (shown in the title).

    Attributes
    ----------
    lines_ : dict of str to matplotlib Line2D
        The line of each method.
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    skctd.evaluation.budget_sweep : computes the data.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skctd.plotting import BudgetCurveDisplay
    >>> alphas = np.array([0.1, 0.5, 0.9])
    >>> disp = BudgetCurveDisplay(alphas, {"ctd": np.array([0.8, 0.9, 0.9]),
    ...                                    "probe_only": np.full(3, 0.8)}).plot()
    >>> sorted(disp.lines_)
    ['ctd', 'probe_only']
    """

    def __init__(
        self,
        alphas: Any,
        values: Mapping[str, Any],
        *,
        std: Mapping[str, Any] | None = None,
        metric: str = "auroc",
        batch_size: int | None = None,
    ) -> None:
        self.alphas = alphas
        self.values = values
        self.std = std
        self.metric = metric
        self.batch_size = batch_size

    def plot(
        self, ax: Any = None, *, title: str | None = None, legend: bool = True
    ) -> BudgetCurveDisplay:
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; a new figure by default.
        title : str, optional
            Title; default names the metric and the batch size.
        legend : bool, default=True

        Returns
        -------
        display : BudgetCurveDisplay
        """
        metric = _check_metric(self.metric)
        ax = _get_ax(ax)
        alphas = np.asarray(self.alphas, dtype=float)
        self.lines_ = {}
        for method, vals in self.values.items():
            vals = np.asarray(vals, dtype=float)
            style = dict(METHOD_STYLES.get(method, {}))
            label = METHOD_LABELS.get(method, str(method))
            if method in ("probe_only", "expert_only"):
                self.lines_[method] = ax.axhline(
                    float(np.nanmean(vals)),
                    label=label,
                    linewidth=1.5,
                    color=style["color"],
                    linestyle=style["linestyle"],
                )
                continue
            style.setdefault("markersize", 4)
            (line,) = ax.plot(alphas, vals, label=label, linewidth=1.8, **style)
            self.lines_[method] = line
            sd = None if self.std is None else self.std.get(method)
            if sd is not None and np.any(np.asarray(sd) > 0):
                sd = np.asarray(sd, dtype=float)
                ax.fill_between(
                    alphas, vals - sd, vals + sd, color=line.get_color(), alpha=0.15
                )
        ax.set_xlabel(r"Delegation budget $\alpha$")
        ax.set_ylabel(_METRIC_LABELS[metric])
        if title is None:
            title = f"{_METRIC_LABELS[metric]} vs budget"
            if self.batch_size:
                title += f" (top-k B={self.batch_size})"
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        if legend:
            ax.legend(fontsize="small", loc="best")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_results(
        cls,
        result: SweepResult,
        *,
        metric: str = "auroc",
        batch_size: int | None = None,
        methods: Sequence[str] | None = None,
        ax: Any = None,
        **plot_kwargs: Any,
    ) -> BudgetCurveDisplay:
        """Plot one metric of a :class:`~skctd.evaluation.SweepResult`.

        Parameters
        ----------
        result : SweepResult
        metric : {"auroc", "accuracy", "delegation_rate", "mean_v_delegated"}
        batch_size : int, optional
            Batch size of the top-k lines; default the largest swept.
        methods : sequence of str, optional
            Methods to draw; default all swept.
        ax : matplotlib Axes, optional
        **plot_kwargs
            Passed to :meth:`plot`.

        Returns
        -------
        display : BudgetCurveDisplay
        """
        if not isinstance(result, SweepResult):
            raise TypeError(
                f"result must be a SweepResult from budget_sweep, got {type(result)}."
            )
        _check_metric(metric)
        methods = result.methods if methods is None else tuple(methods)
        b = max(result.batch_sizes) if batch_size is None else int(batch_size)
        values, std = {}, {}
        for m in methods:
            alphas, values[m], std[m] = result.curve(m, metric, batch_size=b)
        disp = cls(result.alphas, values, std=std, metric=metric, batch_size=b)
        return disp.plot(ax=ax, **plot_kwargs)

    @classmethod
    def from_predictions(
        cls,
        y: Any,
        probe_scores: Any,
        expert_scores: Any,
        dv_scores: Any,
        *,
        metric: str = "auroc",
        batch_size: int = 128,
        ax: Any = None,
        plot_kwargs: Mapping[str, Any] | None = None,
        **sweep_params: Any,
    ) -> BudgetCurveDisplay:
        """Run :func:`~skctd.evaluation.budget_sweep` on arrays and plot it.

        Parameters
        ----------
        y, probe_scores, expert_scores, dv_scores : array-like of shape (n,)
            As in :func:`~skctd.evaluation.budget_sweep`.
        metric : str, default="auroc"
        batch_size : int, default=128
            Batch size of the top-k lines (the only one swept).
        ax : matplotlib Axes, optional
        plot_kwargs : dict, optional
            Passed to :meth:`plot`.
        **sweep_params
            Other keyword arguments of :func:`~skctd.evaluation.budget_sweep`.

        Returns
        -------
        display : BudgetCurveDisplay
        """
        result = budget_sweep(
            y,
            probe_scores,
            expert_scores,
            dv_scores,
            batch_sizes=[batch_size],
            **sweep_params,
        )
        return cls.from_results(
            result, metric=metric, batch_size=batch_size, ax=ax, **(plot_kwargs or {})
        )


    @classmethod
    def from_estimator(
        cls,
        estimator: Any,
        X: Any,
        y: Any,
        *,
        expert_scores: Any = None,
        metric: str = "auroc",
        batch_size: int = 128,
        ax: Any = None,
        plot_kwargs: Mapping[str, Any] | None = None,
        **sweep_params: Any,
    ) -> BudgetCurveDisplay:
        """Budget curves of a fitted cascade's probes on held-out data.

        The cascade's probe scores and delegation signal on ``X`` and the expert's
        scores of every row (the expert is called on all of ``X`` unless
        ``expert_scores`` is given) go through
        :func:`~skctd.evaluation.budget_sweep`, which recalibrates the threshold at
        each budget on a random half of ``X`` and scores the other half.

        Parameters
        ----------
        estimator : CalibratedDelegationCascade
            Fitted cascade.
        X : array-like or sequence of inputs
            Held-out data, not used to fit the probes.
        y : array-like of shape (n_samples,)
            Their labels, among ``estimator.classes_``.
        expert_scores : array-like of shape (n_samples,), optional
            The expert's probability of ``classes_[1]`` for each row, if known.
        metric : str, default="auroc"
        batch_size : int, default=128
        ax : matplotlib Axes, optional
        plot_kwargs : dict, optional
            Passed to :meth:`plot`.
        **sweep_params
            Other keyword arguments of :func:`~skctd.evaluation.budget_sweep`.

        Returns
        -------
        display : BudgetCurveDisplay

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import numpy as np
        >>> from skctd import CalibratedDelegationCascade
        >>> from skctd.plotting import BudgetCurveDisplay
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(1200, 2))
        >>> y = (X[:, 0] + X[:, 1] > 0).astype(int)
        >>> expert = lambda X: (np.asarray(X)[:, 0] + np.asarray(X)[:, 1] > 0) * 0.9 + 0.05
        >>> cascade = CalibratedDelegationCascade(expert=expert, random_state=0)
        >>> cascade = cascade.fit(X[:600] * [1, 0], y[:600])
        >>> disp = BudgetCurveDisplay.from_estimator(cascade, X[600:] * [1, 0], y[600:],
        ...     expert_scores=expert(X[600:]), alphas=[0.1, 0.5])
        >>> sorted(disp.lines_)[:3]
        ['ctd', 'dv_topk', 'expert_only']
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(estimator, "probe_")
        X = estimator._validate_X(X)
        y_enc = estimator._encode_known(y)
        Z = estimator._featurize(X)
        p = estimator._probe_scores(Z)
        signal = estimator._signal(Z, p)
        if expert_scores is None:
            expert_scores = estimator.expert_.score(X)
        return cls.from_predictions(
            y_enc, p, expert_scores, signal, metric=metric, batch_size=batch_size,
            ax=ax, plot_kwargs=plot_kwargs, **sweep_params,
        )


# --------------------------------------------------------------------------------------
# guarantee histogram
# --------------------------------------------------------------------------------------
_VARIANT_STYLE = {
    "budget_only": ("Budget-only LTT", _BLUE),
    "pareto": ("Pareto LTT", _ORANGE),
}


class GuaranteeDisplay:
    """Histogram of realised delegation rates over random calibration splits.

    Parameters
    ----------
    rates : dict of str to ndarray
        Realised rates per split, for ``"budget_only"`` and/or ``"pareto"``.
    alpha, delta : float
        Budget (drawn as a vertical line) and confidence parameter.
    violation_rate : dict of str to float, optional
        Shown in the legend.

    Attributes
    ----------
    patches_ : dict of str to list of matplotlib patches
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skctd.plotting import GuaranteeDisplay
    >>> rates = {"pareto": np.random.default_rng(0).normal(0.25, 0.03, 200)}
    >>> disp = GuaranteeDisplay(rates, alpha=0.3, delta=0.1).plot()
    >>> disp.ax_.get_xlabel()
    'Realised delegation rate'
    """

    def __init__(
        self,
        rates: Mapping[str, Any],
        *,
        alpha: float,
        delta: float,
        violation_rate: Mapping[str, float] | None = None,
    ) -> None:
        self.rates = rates
        self.alpha = alpha
        self.delta = delta
        self.violation_rate = violation_rate

    def plot(self, ax: Any = None, *, bins: int = 30) -> GuaranteeDisplay:
        """Draw the histograms.

        Parameters
        ----------
        ax : matplotlib Axes, optional
        bins : int, default=30

        Returns
        -------
        display : GuaranteeDisplay
        """
        ax = _get_ax(ax)
        arrays = {k: np.asarray(v, dtype=float) for k, v in self.rates.items()}
        lo = min(float(a.min()) for a in arrays.values())
        hi = max(max(float(a.max()) for a in arrays.values()), float(self.alpha))
        edges = np.linspace(lo, hi + 1e-9, bins + 1)
        self.patches_ = {}
        for name, a in arrays.items():
            label, color = _VARIANT_STYLE.get(name, (str(name), None))
            viol = float(np.mean(a > self.alpha))
            if self.violation_rate is not None and name in self.violation_rate:
                viol = float(self.violation_rate[name])
            _, _, patches = ax.hist(
                a,
                bins=edges,
                alpha=0.55,
                color=color,
                label=f"{label} (violations {100 * viol:.1f}%)",
            )
            self.patches_[name] = patches
        ax.axvline(
            self.alpha,
            color="black",
            linestyle="--",
            label=rf"budget $\alpha$ = {self.alpha:g}",
        )
        ax.set_xlabel("Realised delegation rate")
        ax.set_ylabel("Number of splits")
        n = max(a.size for a in arrays.values())
        ax.set_title(
            rf"Realised rates over {n} splits ($\alpha$={self.alpha:g}, "
            rf"$\delta$={self.delta:g})"
        )
        ax.legend(fontsize="small")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_results(
        cls, result: GuaranteeResult, *, ax: Any = None, **plot_kwargs: Any
    ) -> GuaranteeDisplay:
        """Plot a :class:`~skctd.evaluation.GuaranteeResult`.

        Parameters
        ----------
        result : GuaranteeResult
        ax : matplotlib Axes, optional
        **plot_kwargs
            Passed to :meth:`plot`.

        Returns
        -------
        display : GuaranteeDisplay
        """
        if not isinstance(result, GuaranteeResult):
            raise TypeError(
                "result must be a GuaranteeResult from validate_guarantee, got "
                f"{type(result)}."
            )
        disp = cls(
            result.rates,
            alpha=result.alpha,
            delta=result.delta,
            violation_rate=result.violation_rate,
        )
        return disp.plot(ax=ax, **plot_kwargs)


# --------------------------------------------------------------------------------------
# DV ranking curve
# --------------------------------------------------------------------------------------
_RANKING_STYLE = {
    "random": {"color": _GREY, "linestyle": "--", "label": "Random"},
    "oracle": {"color": _GREEN, "linestyle": "-", "label": "Oracle (true v)"},
}
_SIGNAL_COLORS = [_ORANGE, _BLUE, "#9467bd", "#8c564b", "#e377c2"]


class DVRankingDisplay:
    """Mean delegation value of the top-k rows by each signal, against k/N.

    Parameters
    ----------
    fractions : ndarray of shape (m,)
    curves : dict of str to ndarray of shape (m,)
        One curve per signal; ``"random"`` and ``"oracle"`` get reference styles.

    Attributes
    ----------
    lines_ : dict of str to matplotlib Line2D
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skctd.plotting import DVRankingDisplay
    >>> disp = DVRankingDisplay.from_predictions(
    ...     [1.0, -1.0, 0.5, 0.0], {"DV probe": [0.9, 0.1, 0.2, 0.8]})
    >>> sorted(disp.lines_)
    ['DV probe', 'oracle', 'random']
    """

    def __init__(self, fractions: Any, curves: Mapping[str, Any]) -> None:
        self.fractions = fractions
        self.curves = curves

    def plot(self, ax: Any = None) -> DVRankingDisplay:
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, optional

        Returns
        -------
        display : DVRankingDisplay
        """
        ax = _get_ax(ax)
        x = np.asarray(self.fractions, dtype=float)
        self.lines_ = {}
        i = 0
        for name, vals in self.curves.items():
            style = dict(_RANKING_STYLE.get(name, {}))
            if not style:
                style = {
                    "color": _SIGNAL_COLORS[i % len(_SIGNAL_COLORS)],
                    "label": name,
                }
                i += 1
            (self.lines_[name],) = ax.plot(
                x, np.asarray(vals, dtype=float), linewidth=1.8, **style
            )
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.set_xlabel("Selection fraction k/N")
        ax.set_ylabel("Mean v(x, y) of the top-k")
        ax.set_title("Delegation-value ranking")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_results(
        cls, result: RankingCurveResult, *, ax: Any = None
    ) -> DVRankingDisplay:
        """Plot a :class:`~skctd.evaluation.RankingCurveResult`.

        Parameters
        ----------
        result : RankingCurveResult
        ax : matplotlib Axes, optional

        Returns
        -------
        display : DVRankingDisplay
        """
        if not isinstance(result, RankingCurveResult):
            raise TypeError(
                "result must be a RankingCurveResult from dv_ranking_curve, got "
                f"{type(result)}."
            )
        return cls(result.fractions, result.curves).plot(ax=ax)

    @classmethod
    def from_predictions(
        cls, v: Any, signals: Mapping[str, Any], *, ax: Any = None, **curve_params: Any
    ) -> DVRankingDisplay:
        """Compute :func:`~skctd.evaluation.dv_ranking_curve` and plot it.

        Parameters
        ----------
        v : array-like of shape (n,)
            True delegation values.
        signals : mapping of str to array-like of shape (n,)
        ax : matplotlib Axes, optional
        **curve_params
            ``fractions``, ``n_permutations``, ``random_state``.

        Returns
        -------
        display : DVRankingDisplay
        """
        return cls.from_results(dv_ranking_curve(v, signals, **curve_params), ax=ax)


# --------------------------------------------------------------------------------------
# group table
# --------------------------------------------------------------------------------------
_GROUP_LABELS = {"ctd": "CTD", "unc_topk": "Unc"}


class GroupTableDisplay:
    """The group-conditional table (the paper's Table 1) as a figure.

    Mean-value cells are shaded from red (negative) through white to green
    (positive).

    Parameters
    ----------
    table : dict of str to array
        A :class:`~skctd.evaluation.GroupResult` table: ``group``, ``mean_v_all``
        and ``mean_v_<m>`` / ``rate_<m>`` for each method ``m``.
    methods : sequence of str
    alpha : float, optional
        Budget, shown in the title.

    Attributes
    ----------
    table_ : matplotlib Table
    cell_text_ : list of list of str
        The text of the cells (header row first).
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skctd.evaluation import group_table
    >>> from skctd.plotting import GroupTableDisplay
    >>> res = group_table([0.5, -0.5, 1.0, 0.0], ["a", "a", "b", "b"],
    ...                   {"ctd": [True, False, True, True]})
    >>> disp = GroupTableDisplay.from_results(res)
    >>> disp.cell_text_[1]
    ['a', '+0.000', '+0.500', '50.0%']
    """

    def __init__(
        self,
        table: Mapping[str, Any],
        methods: Sequence[str],
        *,
        alpha: float | None = None,
    ) -> None:
        self.table = table
        self.methods = methods
        self.alpha = alpha

    def plot(self, ax: Any = None) -> GroupTableDisplay:
        """Draw the table.

        Parameters
        ----------
        ax : matplotlib Axes, optional

        Returns
        -------
        display : GroupTableDisplay
        """
        plt = _plt()
        t = self.table
        methods = list(self.methods)
        n_groups = len(t["group"])
        if ax is None:
            _, ax = plt.subplots(
                figsize=(2 + 1.6 * (1 + 2 * len(methods)), 0.5 * n_groups + 1.2)
            )
        names = [_GROUP_LABELS.get(m, METHOD_LABELS.get(m, m)) for m in methods]
        header = (
            ["Group", "Mean v: all"]
            + [f"Mean v: {nm}" for nm in names]
            + [f"Rate: {nm}" for nm in names]
        )
        value_cols = ["mean_v_all"] + [f"mean_v_{m}" for m in methods]
        rows, colours = [], []
        cmap = plt.get_cmap("RdYlGn")
        for i in range(n_groups):
            row = [str(t["group"][i])]
            cols = ["white"]
            for c in value_cols:
                val = float(t[c][i])
                row.append("n/a" if not np.isfinite(val) else f"{val:+.3f}")
                cols.append(
                    "white"
                    if not np.isfinite(val)
                    else cmap(0.5 + 0.5 * np.clip(val, -1, 1))
                )
            for m in methods:
                rate = float(t[f"rate_{m}"][i])
                row.append(f"{100 * rate:.1f}%")
                cols.append("white")
            rows.append(row)
            colours.append(cols)
        ax.axis("off")
        table = ax.table(
            cellText=rows,
            colLabels=header,
            cellColours=colours,
            loc="center",
            cellLoc="center",
        )
        table.auto_set_font_size(False)
        table.set_fontsize(9)
        table.scale(1, 1.4)
        for j in range(len(header)):
            table[0, j].set_text_props(weight="bold")
        title = "Group-conditional delegation"
        if self.alpha is not None:
            title += rf" at $\alpha$ = {self.alpha:g}"
        ax.set_title(title)
        self.table_ = table
        self.cell_text_ = [header] + rows
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_results(cls, result: GroupResult, *, ax: Any = None) -> GroupTableDisplay:
        """Plot a :class:`~skctd.evaluation.GroupResult`.

        Parameters
        ----------
        result : GroupResult
        ax : matplotlib Axes, optional

        Returns
        -------
        display : GroupTableDisplay
        """
        if not isinstance(result, GroupResult):
            raise TypeError(
                f"result must be a GroupResult from group_analysis, got {type(result)}."
            )
        return cls(result.table, result.methods, alpha=result.alpha).plot(ax=ax)


# --------------------------------------------------------------------------------------
# calibration diagnostics
# --------------------------------------------------------------------------------------
class CalibrationDisplay:
    """Diagnostics of one LTT calibration: p-values and the Pareto front.

    Left panel: the binomial p-value of each tested threshold against its
    delegation rate on the optimisation split, the ``delta`` line and the
    certified thresholds. Right panel: (budget risk, performance risk) of every
    candidate on the optimisation split, the Pareto front and the chosen
    threshold.

    Parameters
    ----------
    result : CalibrationResult
        From :func:`skctd.calibrate_threshold` or a fitted cascade's
        ``calibration_``.

    Attributes
    ----------
    ax_ : ndarray of 2 matplotlib Axes
        The p-value and the Pareto panels.
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skctd import calibrate_threshold
    >>> from skctd.plotting import CalibrationDisplay
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 1000)
    >>> probe = rng.uniform(size=1000)
    >>> expert = np.where(y == 1, 0.9, 0.1)
    >>> res = calibrate_threshold(probe - 0.5, y, probe, expert, alpha=0.3,
    ...                           delta=0.1, random_state=0)
    >>> disp = CalibrationDisplay.from_result(res)
    >>> disp.ax_.shape
    (2,)
    """

    def __init__(self, result: Any) -> None:
        self.result = result

    def plot(self, ax: Any = None) -> CalibrationDisplay:
        """Draw the two panels.

        Parameters
        ----------
        ax : sequence of 2 matplotlib Axes, optional
            Default: a new figure with two panels.

        Returns
        -------
        display : CalibrationDisplay
        """
        plt = _plt()
        r = self.result
        if ax is None:
            _, ax = plt.subplots(1, 2, figsize=(11, 4.2))
        ax = np.asarray(ax, dtype=object).ravel()
        if ax.size != 2:
            raise ValueError(f"ax must hold 2 Axes (p-values, Pareto), got {ax.size}.")
        a0, a1 = ax
        b = np.asarray(r.budget_risk_opt, dtype=float)
        perf = np.asarray(r.performance_risk_opt, dtype=float)
        pv = np.asarray(r.pvalues, dtype=float)
        cert = np.asarray(r.certified, dtype=bool)
        tested = np.isfinite(pv)
        sel = int(r.selected_index)

        a0.plot(b[tested], pv[tested], "o", color=_GREY, markersize=3, label="tested")
        a0.plot(b[cert], pv[cert], "o", color=_GREEN, markersize=4, label="certified")
        a0.axhline(
            r.delta, color="red", linestyle="--", label=rf"$\delta$ = {r.delta:g}"
        )
        a0.axvline(
            r.alpha, color="black", linestyle=":", label=rf"$\alpha$ = {r.alpha:g}"
        )
        if cert.any():
            a0.axvspan(0, b[cert].max(), color=_GREEN, alpha=0.08)
        a0.plot(
            b[sel],
            pv[sel] if np.isfinite(pv[sel]) else 0.0,
            "*",
            color=_ORANGE,
            markersize=14,
            label="chosen",
        )
        a0.set_yscale("symlog", linthresh=1e-3)
        a0.set_xlabel("Delegation rate on the optimisation split")
        a0.set_ylabel("Binomial p-value (test split)")
        a0.set_title(f"LTT tests: {int(cert.sum())} of {int(tested.sum())} certified")
        a0.grid(True, alpha=0.3)
        a0.legend(fontsize="small")

        finite = np.isfinite(perf)
        front = np.asarray(r.pareto_mask, dtype=bool) & finite
        a1.plot(
            b[finite],
            perf[finite],
            "o",
            color=_GREY,
            markersize=3,
            alpha=0.6,
            label="candidates",
        )
        order = np.argsort(b[front])
        a1.plot(
            b[front][order],
            perf[front][order],
            "-o",
            color=_BLUE,
            markersize=4,
            label="Pareto front",
        )
        a1.plot(
            b[cert & finite],
            perf[cert & finite],
            "o",
            mfc="none",
            color=_GREEN,
            markersize=8,
            label="certified",
        )
        if np.isfinite(perf[sel]):
            a1.plot(
                b[sel],
                perf[sel],
                "*",
                color=_ORANGE,
                markersize=14,
                label=f"chosen (threshold {r.threshold:.3g})",
            )
        a1.axvline(r.alpha, color="black", linestyle=":")
        a1.set_xlabel("Budget risk (delegation rate, optimisation split)")
        a1.set_ylabel(f"Performance risk ({r.performance_risk})")
        a1.set_title("Pareto front on the optimisation split")
        a1.grid(True, alpha=0.3)
        a1.legend(fontsize="small")
        self.ax_ = ax
        self.figure_ = a0.figure
        return self

    @classmethod
    def from_result(cls, result: Any, *, ax: Any = None) -> CalibrationDisplay:
        """Plot a :class:`~skctd.CalibrationResult`.

        Parameters
        ----------
        result : CalibrationResult
        ax : sequence of 2 matplotlib Axes, optional

        Returns
        -------
        display : CalibrationDisplay
        """
        from skctd.calibration import CalibrationResult

        if not isinstance(result, CalibrationResult):
            raise TypeError(f"result must be a CalibrationResult, got {type(result)}.")
        return cls(result).plot(ax=ax)

    @classmethod
    def from_estimator(cls, estimator: Any, *, ax: Any = None) -> CalibrationDisplay:
        """Plot the calibration of a fitted :class:`~skctd.CalibratedDelegationCascade`.

        Parameters
        ----------
        estimator : CalibratedDelegationCascade
            Fitted and calibrated (``calibration_`` is set).
        ax : sequence of 2 matplotlib Axes, optional

        Returns
        -------
        display : CalibrationDisplay
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(estimator, "probe_")
        result = getattr(estimator, "calibration_", None)
        if result is None:
            raise ValueError(
                "The cascade is fitted but not calibrated (calibration_ is None); "
                "fit it with a calibration_size or call calibrate(X, y) first."
            )
        return cls.from_result(result, ax=ax)

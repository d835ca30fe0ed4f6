"""BudgetCurveDisplay: a cascade metric against the delegation budget (Figures 3-4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from skctd.evaluation import METHOD_LABELS, SweepResult, budget_sweep
from skctd.plotting._base import BLUE, GREEN, GREY, ORANGE, Display

__all__ = ["METHOD_STYLES", "BudgetCurveDisplay"]

#: Line style of each method, as in the paper's figures.
METHOD_STYLES = {
    "ctd": {"color": ORANGE, "linestyle": "-", "marker": "o"},
    "unc_calibrated": {"color": BLUE, "linestyle": "-", "marker": "s"},
    "dv_topk": {"color": ORANGE, "linestyle": "--"},
    "unc_topk": {"color": BLUE, "linestyle": "--"},
    "oracle_topk": {"color": GREEN, "linestyle": "--"},
    "probe_only": {"color": GREY, "linestyle": ":"},
    "expert_only": {"color": GREY, "linestyle": "--"},
}

_METRIC_LABELS = {
    "auroc": "AUROC",
    "accuracy": "Accuracy",
    "delegation_rate": "Realised delegation rate",
    "mean_v_delegated": "Mean v of delegated",
}
_REFERENCE_METHODS = ("probe_only", "expert_only")


def _check_metric(metric: str) -> str:
    if metric not in _METRIC_LABELS:
        raise ValueError(
            f"metric must be one of {tuple(_METRIC_LABELS)}, got {metric!r}."
        )
    return metric


class BudgetCurveDisplay(Display):
    """Cascade metric against the delegation budget, one line per method.

    Each line is the mean over the protocol's splits, with a band of
    +-1.96 standard errors of that mean when they are given (a 95% normal
    interval for the mean curve). Probe only and expert only are drawn as
    horizontal reference lines. For ``metric="delegation_rate"`` the diagonal
    ``rate = alpha`` (the budget) is drawn too: a calibrated method stays below it
    on average. Build it
    with :meth:`from_result` (a :class:`~skctd.evaluation.SweepResult`),
    :meth:`from_predictions` (arrays) or :meth:`from_estimator` (a fitted
    cascade); the constructor only stores the data.

    Parameters
    ----------
    alphas : ndarray of shape (n_alphas,)
        Budgets.
    values : dict of str to ndarray of shape (n_alphas,)
        Metric of each method (keys of :data:`skctd.evaluation.METHOD_LABELS`).
    se : dict of str to ndarray, optional
        Standard error of each mean curve over the splits; drawn as a band of
        +-1.96 SE where finite and non-zero.
    metric : str, default="auroc"
        Name of the metric (y-axis label).
    batch_size : int, optional
        Batch size of the top-k methods (shown in the default title).
    name : str, optional
        Title of the plot; default names the metric and the batch size.

    Attributes
    ----------
    lines_ : dict of str to matplotlib Line2D
        The line of each method.
    bands_ : dict of str to matplotlib PolyCollection
        The +-1.96 SE band of each method that has one.
    diagonal_ : matplotlib Line2D or None
        The ``rate = alpha`` line (``metric="delegation_rate"`` only).
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    skctd.evaluation.budget_sweep : computes the data.

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.plotting import BudgetCurveDisplay
    >>> alphas = np.array([0.1, 0.5, 0.9])
    >>> disp = BudgetCurveDisplay(alphas, {"ctd": np.array([0.8, 0.9, 0.9]),
    ...                                    "probe_only": np.full(3, 0.8)}).plot()
    >>> sorted(disp.lines_)
    ['ctd', 'probe_only']
    >>> disp.ax_.get_title()
    'AUROC vs budget'
    """

    def __init__(
        self,
        alphas: Any,
        values: Mapping[str, Any],
        *,
        se: Mapping[str, Any] | None = None,
        metric: str = "auroc",
        batch_size: int | None = None,
        name: str | None = None,
    ) -> None:
        self.alphas = alphas
        self.values = values
        self.se = se
        self.metric = metric
        self.batch_size = batch_size
        self.name = name

    def plot(
        self,
        ax: Any = None,
        *,
        name: str | None = None,
        legend: bool = True,
        **kwargs: Any,
    ) -> BudgetCurveDisplay:
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; a new figure by default.
        name : str, optional
            Title; default ``self.name``, else the metric and the batch size.
        legend : bool, default=True
            Draw the legend (one entry per method).
        **kwargs
            Passed to matplotlib's ``plot`` / ``axhline`` for every method's line,
            over the method's style of :data:`METHOD_STYLES` (e.g.
            ``linewidth=3``, ``alpha=0.7``).

        Returns
        -------
        display : BudgetCurveDisplay
        """
        metric = _check_metric(self.metric)
        ax = self._prepare_axes(ax)
        alphas = np.asarray(self.alphas, dtype=float)
        self.lines_, self.bands_ = {}, {}
        for method, vals in self.values.items():
            vals = np.asarray(vals, dtype=float)
            default = {
                "label": METHOD_LABELS.get(method, str(method)),
                "linewidth": 1.8,
                **METHOD_STYLES.get(method, {}),
            }
            if method in _REFERENCE_METHODS:
                default.pop("marker", None)
                default["linewidth"] = 1.5
                style = self._style(default, kwargs, "line")
                self.lines_[method] = ax.axhline(float(np.nanmean(vals)), **style)
                continue
            default["markersize"] = 4
            style = self._style(default, kwargs, "line")
            (line,) = ax.plot(alphas, vals, **style)
            self.lines_[method] = line
            se = None if self.se is None else self.se.get(method)
            if se is not None:
                half = 1.96 * np.asarray(se, dtype=float)
                if np.any(np.nan_to_num(half) > 0):
                    self.bands_[method] = ax.fill_between(
                        alphas, vals - half, vals + half, color=line.get_color(),
                        alpha=0.15, linewidth=0,
                    )
        self.diagonal_ = None
        if metric == "delegation_rate":
            (self.diagonal_,) = ax.plot(
                [0, 1], [0, 1], color="black", linewidth=0.8, linestyle=":",
                label=r"rate = $\alpha$",
            )
        ax.set_xlabel(r"Delegation budget $\alpha$")
        ax.set_ylabel(_METRIC_LABELS[metric])
        default_title = f"{_METRIC_LABELS[metric]} vs budget"
        if self.batch_size:
            default_title += f" (top-k B={self.batch_size})"
        ax.set_title(self._title(name, default=default_title))
        ax.grid(True, alpha=0.3)
        if legend:
            ax.legend(fontsize="small", loc="best")
        return self

    @classmethod
    def from_result(
        cls,
        result: SweepResult,
        *,
        metric: str = "auroc",
        batch_size: int | None = None,
        methods: Sequence[str] | None = None,
        ax: Any = None,
        name: str | None = None,
        legend: bool = True,
        **kwargs: Any,
    ) -> BudgetCurveDisplay:
        """Plot one metric of a :class:`~skctd.evaluation.SweepResult`.

        Parameters
        ----------
        result : SweepResult
            From :func:`~skctd.evaluation.budget_sweep`.
        metric : {"auroc", "accuracy", "delegation_rate", "mean_v_delegated"}
        batch_size : int, optional
            Batch size of the top-k lines; default the largest swept.
        methods : sequence of str, optional
            Methods to draw; default all swept.
        ax : matplotlib Axes, optional
        name : str, optional
            Title; default names the metric and the batch size.
        legend : bool, default=True
        **kwargs
            Matplotlib keyword arguments of every line, see :meth:`plot`.

        Returns
        -------
        display : BudgetCurveDisplay

        Examples
        --------
        >>> import numpy as np
        >>> from skctd.evaluation import budget_sweep
        >>> from skctd.plotting import BudgetCurveDisplay
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 2, 400)
        >>> probe = np.clip(0.5 + (2 * y - 1) * rng.normal(0.1, 0.3, 400), 0, 1)
        >>> expert = np.where(y == 1, 0.9, 0.1)
        >>> sweep = budget_sweep(y, probe, expert, rng.normal(size=400),
        ...                      alphas=[0.2, 0.5], batch_sizes=[32])
        >>> disp = BudgetCurveDisplay.from_result(sweep, metric="accuracy",
        ...                                       name="Synthetic", linewidth=3)
        >>> disp.ax_.get_title(), disp.lines_["ctd"].get_linewidth()
        ('Synthetic', 3.0)
        """
        if not isinstance(result, SweepResult):
            raise TypeError(
                f"result must be a SweepResult from budget_sweep, got {type(result)}."
            )
        _check_metric(metric)
        methods = result.methods if methods is None else tuple(methods)
        b = max(result.batch_sizes) if batch_size is None else int(batch_size)
        values, se = {}, {}
        for m in methods:
            _, values[m], se[m] = result.curve(m, metric, batch_size=b)
        disp = cls(
            result.alphas, values, se=se, metric=metric, batch_size=b, name=name
        )
        return disp.plot(ax=ax, legend=legend, **kwargs)

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
        sweep_params: Mapping[str, Any] | None = None,
        ax: Any = None,
        name: str | None = None,
        legend: bool = True,
        **kwargs: Any,
    ) -> BudgetCurveDisplay:
        """Run :func:`~skctd.evaluation.budget_sweep` on arrays and plot it.

        Parameters
        ----------
        y, probe_scores, expert_scores, dv_scores : array-like of shape (n,)
            As in :func:`~skctd.evaluation.budget_sweep`.
        metric : str, default="auroc"
        batch_size : int, default=128
            Batch size of the top-k lines (the only one swept).
        sweep_params : dict, optional
            Other keyword arguments of :func:`~skctd.evaluation.budget_sweep`
            (``alphas``, ``delta``, ``methods``, ``n_repeats``,
            ``random_state``, ...).
        ax : matplotlib Axes, optional
        name : str, optional
            Title; default names the metric and the batch size.
        legend : bool, default=True
        **kwargs
            Matplotlib keyword arguments of every line, see :meth:`plot`.

        Returns
        -------
        display : BudgetCurveDisplay
        """
        sweep_params = dict(sweep_params or {})
        if "batch_sizes" in sweep_params:
            raise TypeError(
                "sweep_params must not set batch_sizes: the display draws one batch "
                "size; pass batch_size instead."
            )
        result = budget_sweep(
            y,
            probe_scores,
            expert_scores,
            dv_scores,
            batch_sizes=[batch_size],
            **sweep_params,
        )
        return cls.from_result(
            result,
            metric=metric,
            batch_size=batch_size,
            ax=ax,
            name=name,
            legend=legend,
            **kwargs,
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
        sweep_params: Mapping[str, Any] | None = None,
        ax: Any = None,
        name: str | None = None,
        legend: bool = True,
        **kwargs: Any,
    ) -> BudgetCurveDisplay:
        """Budget curves of a fitted cascade's probes on held-out data.

        The cascade's probe scores and delegation signal on ``X``
        (:meth:`~skctd.CalibratedDelegationCascade.route` with
        ``call_expert=False``) and the expert's scores of every row (the expert
        is called on all of ``X`` unless ``expert_scores`` is given) go through
        :func:`~skctd.evaluation.budget_sweep`, which recalibrates the threshold
        at each budget on a random half of ``X`` and scores the other half.

        Parameters
        ----------
        estimator : CalibratedDelegationCascade
            Fitted cascade.
        X : array-like or sequence of inputs
            Held-out data, not used to fit the probes.
        y : array-like of shape (n_samples,)
            Their labels, among ``estimator.classes_``; ``classes_[1]`` is the
            positive class.
        expert_scores : array-like of shape (n_samples,), optional
            The expert's probability of ``classes_[1]`` for each row, if known.
        metric : str, default="auroc"
        batch_size : int, default=128
        sweep_params : dict, optional
            Other keyword arguments of :func:`~skctd.evaluation.budget_sweep`.
        ax : matplotlib Axes, optional
        name : str, optional
            Title; default names the metric and the batch size.
        legend : bool, default=True
        **kwargs
            Matplotlib keyword arguments of every line, see :meth:`plot`.

        Returns
        -------
        display : BudgetCurveDisplay

        Examples
        --------
        >>> import numpy as np
        >>> from skctd import CalibratedDelegationCascade
        >>> from skctd.plotting import BudgetCurveDisplay
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(1200, 2))
        >>> y = (X[:, 0] + X[:, 1] > 0).astype(int)
        >>> def expert(X):
        ...     X = np.asarray(X)
        ...     return (X[:, 0] + X[:, 1] > 0) * 0.9 + 0.05
        >>> cascade = CalibratedDelegationCascade(expert=expert, random_state=0)
        >>> cascade = cascade.fit(X[:600] * [1, 0], y[:600])
        >>> disp = BudgetCurveDisplay.from_estimator(
        ...     cascade, X[600:] * [1, 0], y[600:], expert_scores=expert(X[600:]),
        ...     sweep_params={"alphas": [0.1, 0.5]})
        >>> sorted(disp.lines_)[:3]
        ['ctd', 'dv_topk', 'expert_only']
        """
        from sklearn.utils.validation import check_is_fitted

        from skctd.utils import check_known_labels

        check_is_fitted(estimator)
        y01 = check_known_labels(y, estimator.classes_)
        routing = estimator.route(X, call_expert=False)
        if expert_scores is None:
            expert_scores = estimator.expert_.score(X)
        return cls.from_predictions(
            y01,
            routing.probe_scores,
            expert_scores,
            routing.signal,
            metric=metric,
            batch_size=batch_size,
            sweep_params=sweep_params,
            ax=ax,
            name=name,
            legend=legend,
            **kwargs,
        )

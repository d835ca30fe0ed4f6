"""ThresholdSelectionDisplay: how one LTT calibration chose its threshold."""

from __future__ import annotations

from typing import Any

import numpy as np

from skctd.calibration import CalibrationResult
from skctd.plotting._base import BLUE, GREEN, GREY, ORANGE, Display

__all__ = ["ThresholdSelectionDisplay"]


class ThresholdSelectionDisplay(Display):
    """How one Learn-then-Test calibration chose its threshold.

    Left panel: the binomial p-value of each tested threshold against its
    delegation rate on the optimisation split, the ``delta`` line and the
    certified thresholds. Right panel: (budget risk, performance risk) of every
    candidate on the optimisation split, the Pareto front and the chosen
    threshold.

    (Not a reliability diagram: for that, see
    ``sklearn.calibration.CalibrationDisplay``.)

    Parameters
    ----------
    result : CalibrationResult
        From :func:`skctd.calibrate_threshold` or a fitted cascade's
        ``calibration_``.
    name : str, optional
        Title of the figure (drawn above both panels); none by default.

    Attributes
    ----------
    front_line_ : matplotlib Line2D
        The Pareto front (right panel).
    ax_ : ndarray of 2 matplotlib Axes
        The p-value and the Pareto panels.
    figure_ : matplotlib Figure

    See Also
    --------
    skctd.calibrate_threshold : computes the data.

    Examples
    --------
    >>> import numpy as np
    >>> from skctd import calibrate_threshold
    >>> from skctd.plotting import ThresholdSelectionDisplay
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 1000)
    >>> probe = rng.uniform(size=1000)
    >>> expert = np.where(y == 1, 0.9, 0.1)
    >>> res = calibrate_threshold(probe - 0.5, y, probe, expert, alpha=0.3,
    ...                           delta=0.1, random_state=0)
    >>> disp = ThresholdSelectionDisplay.from_result(res, color="purple")
    >>> disp.ax_.shape, disp.front_line_.get_color()
    ((2,), 'purple')
    """

    def __init__(self, result: CalibrationResult, *, name: str | None = None) -> None:
        self.result = result
        self.name = name

    def plot(
        self, ax: Any = None, *, name: str | None = None, **kwargs: Any
    ) -> ThresholdSelectionDisplay:
        """Draw the two panels.

        Parameters
        ----------
        ax : sequence of 2 matplotlib Axes, optional
            Default: a new figure with two panels side by side.
        name : str, optional
            Title of the figure; default ``self.name`` (none if that is None).
        **kwargs
            Passed to matplotlib's ``plot`` for the Pareto front line, over its
            default style (e.g. ``color="black"``, ``linestyle="--"``).

        Returns
        -------
        display : ThresholdSelectionDisplay
        """
        r = self.result
        a0, a1 = self._prepare_axes(ax, n_axes=2, figsize=(11, 4.2))
        b = np.asarray(r.budget_risk_opt, dtype=float)
        perf = np.asarray(r.performance_risk_opt, dtype=float)
        pv = np.asarray(r.pvalues, dtype=float)
        cert = np.asarray(r.certified, dtype=bool)
        tested = np.isfinite(pv)
        sel = int(r.selected_index)

        a0.plot(b[tested], pv[tested], "o", color=GREY, markersize=3, label="tested")
        a0.plot(b[cert], pv[cert], "o", color=GREEN, markersize=4, label="certified")
        a0.axhline(
            r.delta, color="red", linestyle="--", label=rf"$\delta$ = {r.delta:g}"
        )
        a0.axvline(
            r.alpha, color="black", linestyle=":", label=rf"$\alpha$ = {r.alpha:g}"
        )
        if cert.any():
            a0.axvspan(0, b[cert].max(), color=GREEN, alpha=0.08)
        a0.plot(
            b[sel],
            pv[sel] if np.isfinite(pv[sel]) else 0.0,
            "*",
            color=ORANGE,
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
            color=GREY,
            markersize=3,
            alpha=0.6,
            label="candidates",
        )
        order = np.argsort(b[front])
        front_style = self._style(
            {
                "color": BLUE,
                "linestyle": "-",
                "marker": "o",
                "markersize": 4,
                "label": "Pareto front",
            },
            kwargs,
            "line",
        )
        (self.front_line_,) = a1.plot(
            b[front][order], perf[front][order], **front_style
        )
        a1.plot(
            b[cert & finite],
            perf[cert & finite],
            "o",
            mfc="none",
            color=GREEN,
            markersize=8,
            label="certified",
        )
        if np.isfinite(perf[sel]):
            a1.plot(
                b[sel],
                perf[sel],
                "*",
                color=ORANGE,
                markersize=14,
                label=f"chosen (threshold {r.threshold:.3g})",
            )
        a1.axvline(r.alpha, color="black", linestyle=":")
        a1.set_xlabel("Budget risk (delegation rate, optimisation split)")
        a1.set_ylabel(f"Performance risk ({r.performance_risk})")
        a1.set_title("Pareto front on the optimisation split")
        a1.grid(True, alpha=0.3)
        a1.legend(fontsize="small")
        name = self.name if name is None else name
        if name is not None:
            self.figure_.suptitle(str(name))
        return self

    @classmethod
    def from_result(
        cls,
        result: CalibrationResult,
        *,
        ax: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> ThresholdSelectionDisplay:
        """Plot a :class:`~skctd.CalibrationResult`.

        Parameters
        ----------
        result : CalibrationResult
            From :func:`skctd.calibrate_threshold`.
        ax : sequence of 2 matplotlib Axes, optional
        name : str, optional
            Title of the figure; none by default.
        **kwargs
            Matplotlib keyword arguments of the Pareto front line, see
            :meth:`plot`.

        Returns
        -------
        display : ThresholdSelectionDisplay
        """
        if not isinstance(result, CalibrationResult):
            raise TypeError(
                "result must be a CalibrationResult from calibrate_threshold (or a "
                f"fitted cascade's calibration_), got {type(result)}."
            )
        return cls(result, name=name).plot(ax=ax, **kwargs)

    @classmethod
    def from_estimator(
        cls,
        estimator: Any,
        *,
        ax: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> ThresholdSelectionDisplay:
        """Plot the calibration of a fitted :class:`~skctd.CalibratedDelegationCascade`.

        Parameters
        ----------
        estimator : CalibratedDelegationCascade
            Fitted and calibrated (``calibration_`` is set).
        ax : sequence of 2 matplotlib Axes, optional
        name : str, optional
            Title of the figure; none by default.
        **kwargs
            Matplotlib keyword arguments of the Pareto front line, see
            :meth:`plot`.

        Returns
        -------
        display : ThresholdSelectionDisplay

        Examples
        --------
        >>> import numpy as np
        >>> from skctd import CalibratedDelegationCascade
        >>> from skctd.plotting import ThresholdSelectionDisplay
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(1500, 2))
        >>> y = (X[:, 0] + 0.5 * rng.normal(size=1500) > 0).astype(int)
        >>> def expert(X):
        ...     return 1 / (1 + np.exp(-8 * np.asarray(X)[:, 0]))
        >>> cascade = CalibratedDelegationCascade(expert=expert, alpha=0.3,
        ...                                       random_state=0).fit(X, y)
        >>> disp = ThresholdSelectionDisplay.from_estimator(cascade, name="demo")
        >>> disp.result is cascade.calibration_
        True
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(estimator)
        result = getattr(estimator, "calibration_", None)
        if result is None:
            raise ValueError(
                "The cascade is fitted but not calibrated (calibration_ is None); "
                "fit it with a calibration_size or call calibrate(X, y) first."
            )
        return cls.from_result(result, ax=ax, name=name, **kwargs)

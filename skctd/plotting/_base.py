"""The base class of the skctd displays: matplotlib import, ``ax_`` and ``figure_``.

Every display follows the scikit-learn Display API (see
``sklearn.metrics.RocCurveDisplay``):

- ``__init__`` stores the data to draw, and a ``name``;
- ``plot(ax=None, *, name=None, **kwargs)`` draws it, forwards the matplotlib
  ``**kwargs`` to the main artists, sets ``ax_`` and ``figure_`` (plus the drawn
  artists) and returns the display;
- the class methods ``from_result`` (a result object of :mod:`skctd.evaluation` or
  :mod:`skctd.calibration`), ``from_predictions`` (arrays) and ``from_estimator``
  (a fitted :class:`~skctd.CalibratedDelegationCascade`) compute the data and plot
  it in one call.

matplotlib is an optional dependency (the ``plot`` extra): it is imported when a
display is drawn, never when :mod:`skctd.plotting` is imported, and the backend is
left as the user set it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from skctd.utils import import_optional

__all__ = ["BLUE", "GREEN", "GREY", "ORANGE", "Display"]

#: The colours of the paper's figures (matplotlib's default cycle).
ORANGE, BLUE, GREEN, GREY = "#ff7f0e", "#1f77b4", "#2ca02c", "#7f7f7f"


class Display:
    """Base class of the skctd displays.

    It owns what every display repeats: importing ``matplotlib.pyplot`` lazily
    (with an error naming the ``plot`` extra), creating the figure when no
    ``ax`` is given, setting ``ax_`` and ``figure_``, choosing the title from
    ``name``, and merging the user's matplotlib ``**kwargs`` into the default
    style of an artist.

    Parameters
    ----------
    name : str, optional
        Name of what is drawn, used as the title by :meth:`plot` when ``plot``
        is given no ``name`` of its own.

    Attributes
    ----------
    ax_ : matplotlib Axes, or ndarray of Axes for a display with several panels
        Set by ``plot``.
    figure_ : matplotlib Figure
        Set by ``plot``.

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.plotting._base import Display
    >>> class LineDisplay(Display):
    ...     def __init__(self, y, *, name=None):
    ...         self.y = y
    ...         self.name = name
    ...     def plot(self, ax=None, *, name=None, **kwargs):
    ...         ax = self._prepare_axes(ax)
    ...         style = self._style({"color": "black"}, kwargs, "line")
    ...         (self.line_,) = ax.plot(np.asarray(self.y), **style)
    ...         ax.set_title(self._title(name, default="A line"))
    ...         return self
    >>> disp = LineDisplay([1, 3, 2], name="demo").plot(c="red")
    >>> disp.line_.get_color(), disp.ax_.get_title(), disp.figure_ is disp.ax_.figure
    ('red', 'demo', True)
    """

    name: str | None = None

    def _pyplot(self) -> Any:
        """``matplotlib.pyplot``, or an ImportError naming the ``plot`` extra."""
        return import_optional(
            "matplotlib.pyplot",
            extra="plot",
            purpose=f"{type(self).__name__}.plot",
        )

    def _prepare_axes(
        self, ax: Any = None, *, n_axes: int = 1, **subplots_kw: Any
    ) -> Any:
        """Return the Axes to draw on, creating a figure if ``ax`` is None.

        Sets ``ax_`` and ``figure_``. With ``n_axes > 1``, ``ax`` must hold that
        many Axes and an ndarray of them is returned (and stored in ``ax_``).

        Parameters
        ----------
        ax : matplotlib Axes or sequence of Axes, optional
        n_axes : int, default=1
            Number of panels the display draws (side by side when created here).
        **subplots_kw
            Passed to ``plt.subplots`` when a figure is created (e.g. ``figsize``).

        Returns
        -------
        ax : matplotlib Axes, or ndarray of ``n_axes`` Axes
        """
        plt = self._pyplot()
        if ax is None:
            _, ax = plt.subplots(1, n_axes, **subplots_kw)
        if n_axes > 1:
            ax = np.asarray(ax, dtype=object).ravel()
            if ax.size != n_axes:
                raise ValueError(
                    f"ax must hold {n_axes} Axes for {type(self).__name__}, got "
                    f"{ax.size}; pass ax=None to create them, or e.g. "
                    f"plt.subplots(1, {n_axes})[1]."
                )
            self.ax_, self.figure_ = ax, ax[0].figure
        else:
            self.ax_, self.figure_ = ax, ax.figure
        return ax

    def _title(self, name: str | None, *, default: str) -> str:
        """The title: ``name`` from ``plot``, else ``self.name``, else ``default``."""
        if name is None:
            name = self.name
        return default if name is None else str(name)

    @staticmethod
    def _style(
        default: Mapping[str, Any], user: Mapping[str, Any] | None, artist: str
    ) -> dict[str, Any]:
        """The default style of an artist updated with the user's ``**kwargs``.

        Aliases are resolved first (``c`` -> ``color``, ``ls`` -> ``linestyle``,
        ``lw`` -> ``linewidth``, ...), so that a user's ``c="red"`` replaces a
        default ``color`` instead of clashing with it.

        Parameters
        ----------
        default : mapping
            The display's style.
        user : mapping or None
            The ``**kwargs`` given to ``plot``; they win.
        artist : {"line", "patch"}
            Whose aliases to resolve: :class:`matplotlib.lines.Line2D` or
            :class:`matplotlib.patches.Patch`.

        Returns
        -------
        style : dict
        """
        import_optional("matplotlib", extra="plot", purpose="plotting")
        from matplotlib.cbook import normalize_kwargs
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        kind = {"line": Line2D, "patch": Patch}[artist]
        style = normalize_kwargs(dict(default), kind)
        style.update(normalize_kwargs(dict(user or {}), kind))
        return style

"""DelegationMonitor: watch a deployed cascade with anytime-valid alarms."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from itertools import islice, repeat
from typing import Any

import numpy as np
from sklearn.utils import Bunch, check_random_state
from sklearn.utils.validation import check_is_fitted

from skctd.monitor._alarms import (
    RECALIBRATE,
    REUSE_NOTE,
    MonitorAlarm,
    PrometheusCollector,
    check_callbacks,
    dispatch,
)
from skctd.monitor._martingales import ConformalTestMartingale
from skctd.monitor._sequences import ConfidenceSequence
from skctd.utils import (
    check_fraction,
    check_known_labels,
    check_positive_int,
    check_same_length,
    check_scores,
    import_optional,
)

__all__ = ["DelegationMonitor", "MONITORED_RISKS"]

#: The quantities a DelegationMonitor can raise alarms on, with the units of
#: their limit. ``budget`` and ``cost`` need no labels; the others need labels.
MONITORED_RISKS = {
    "budget": "delegation rate (share of inputs sent to the expert)",
    "cost": "mean expert cost per input, in the units of the costs given",
    "cost_share": "expert cost as a share of sending every input to the expert",
    "error": "error rate of the cascade at 0.5 (1 - accuracy)",
    "miss": "share of unsafe inputs (y = 1) the cascade scores below 0.5",
    "miss_marginal": "share of all inputs that are unsafe and scored below 0.5",
    "harm": "error of the cascade minus error of the probe alone",
}
_STREAM = ("budget", "cost", "cost_share")
_LABELLED = ("error", "miss", "miss_marginal", "harm")
_WHAT = {
    "budget": "delegation rate",
    "cost": "mean expert cost per input",
    "cost_share": "cost-share loss (<= its level exactly when the expert cost is "
    "at most that share of sending everything)",
    "error": "error rate",
    "miss": "miss rate (unsafe inputs scored safe)",
    "miss_marginal": "share of inputs that are unsafe and scored safe",
    "harm": "excess error over the probe alone",
}
_ACTION = {
    "stream": "The expert is called more than the cascade was calibrated for: "
    "traffic has probably changed (a new product, a prompt-template change, an "
    "attack campaign). ",
    "labelled": "On labelled recent traffic the cascade does worse than the level "
    "it was calibrated for. Check the expert (a new model version, an outage "
    "returning defaults) and the labels' source. ",
    "exchangeability": "Traffic no longer looks like the calibration data, and "
    "every guarantee of the cascade assumes it does: the budget and the "
    "certified constraints may no longer hold. Look at what changed in the inputs. ",
}
# bits of the per-row code kept until a label arrives
_DELEGATED, _CASCADE_POS, _PROBE_POS = 1, 2, 4


class _Tracked:
    """One monitored mean: its confidence sequence and the conversion to units."""

    def __init__(self, name, level, limit, window, *, scale=1.0, shift=0.0):
        self.name = name
        # value in units = scale * value in [0, 1] + shift
        self.scale, self.shift = scale, shift
        self.limit = limit
        cs_limit = None if limit is None else (limit - shift) / scale
        self.cs = ConfidenceSequence(level, limit=cs_limit, window=window)

    def units(self, value):
        return self.scale * value + self.shift


class _Trace:
    """A constant-size record of a statistic: one point every ``stride`` steps.

    When the buffer is full, every other point is dropped and the stride
    doubles, so the memory stays below ``size`` points however long the stream.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.stride = 1
        self.columns: dict[str, np.ndarray] = {}

    def add(self, step: np.ndarray, **columns: np.ndarray) -> None:
        if self.size == 0:
            return
        keep = step % self.stride == 0
        if not keep.any():
            return
        new = {
            "step": step[keep],
            **{k: np.asarray(v)[keep] for k, v in columns.items()},
        }
        if not self.columns:
            self.columns = new
        else:
            self.columns = {
                k: np.concatenate([self.columns[k], new[k]]) for k in self.columns
            }
        while self.columns["step"].size > self.size:
            self.stride *= 2
            keep = self.columns["step"] % self.stride == 0
            self.columns = {k: v[keep] for k, v in self.columns.items()}


def _check_limit(name: str, value: Any) -> float:
    if name == "cost":
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise ValueError(
                f"limits['cost'] must be a positive number (mean cost per input, in "
                f"the units of the costs), got {value!r}."
            )
        return float(value)
    if name == "harm":
        ok = (
            not isinstance(value, bool)
            and isinstance(value, numbers.Real)
            and 0.0 <= value < 1.0
        )
        if not ok:
            raise ValueError(
                f"limits['harm'] must be a number in [0, 1) (the largest excess error "
                f"over the probe; 0 = never worse), got {value!r}."
            )
        return float(value)
    return check_fraction(value, f"limits[{name!r}]")


def _routing_get(routing: Any, key: str, fix: str) -> Any:
    try:
        return routing[key]
    except (KeyError, TypeError):
        pass
    if hasattr(routing, key):
        return getattr(routing, key)
    raise ValueError(
        f"routing has no {key!r}; pass the Bunch returned by cascade.route(X) (or a "
        f"dict with {fix})."
    )


class DelegationMonitor:
    """Watch a deployed cascade: budget, exchangeability and (delayed) labels.

    Fed one input or one batch at a time from the serving path, the monitor
    keeps three kinds of anytime-valid statistics -- valid simultaneously at
    every row, so checking after every request does not inflate false alarms:

    1. **the delegation rate** (and the expert cost when costs are given): a
       confidence sequence (:class:`~skctd.monitor.ConfidenceSequence`); alarm
       when its lower bound exceeds the budget ``alpha`` (or the cost limit);
    2. **exchangeability without labels**: the ranks of each new delegation
       signal ``d(x)`` and probe score among the calibration rows' and all
       earlier rows' values feed a test martingale
       (:class:`~skctd.monitor.ConformalTestMartingale`); alarm when it
       reaches ``1 / level`` (Ville's inequality). This catches drift before
       any label arrives;
    3. **when labels arrive** (later, matched by id): confidence sequences for
       the cascade's error rate, miss rate and harm versus the probe alone;
       alarm when the lower bound exceeds the level of a constraint.

    The limits follow the cascade: ``alpha`` from its calibration, and the
    levels of the constraints it was calibrated with when its ``calibration_``
    records them (``constraints`` / ``levels``); ``limits`` adds or overrides
    some. Each monitor's probability of *any* false alarm over the whole stream
    is at most ``level`` (so at most ``k * level`` for ``k`` monitors with a
    limit); a rate monitor's null is "every row's rate is at most the limit".

    Each alarm (a :class:`~skctd.monitor.MonitorAlarm`) says what crossed, when,
    the estimate and interval, and what to do; it is logged on the
    ``"skctd.monitor"`` logger, passed to the ``callbacks``, and counted in
    :meth:`counters` (exportable to Prometheus with
    :meth:`register_prometheus`). Each monitor alarms once; call :meth:`fit`
    again to restart after a recalibration.

    The state has constant size: a dozen running sums per rate, ``n_bins``
    counts per channel of the exchangeability test, the labels' pending rows
    (at most ``max_pending``) and a trace of at most ``trace_size`` points per
    statistic for :class:`~skctd.plotting.MonitorDisplay`. An update costs O(1)
    per row and a batch is processed with array operations. The monitor is not
    thread-safe: serialise the calls (e.g. with a lock) when serving threads
    share it.

    Read more in the :ref:`User Guide <monitoring>`.

    Parameters
    ----------
    cascade : CalibratedDelegationCascade
        A fitted (and calibrated) cascade. It is used as is, not copied.
    level : float in (0, 1), default=0.05
        Probability of a false alarm of each monitor over the whole stream.
    limits : dict of str to float or None, optional
        Limits to add or override, by name (see :data:`MONITORED_RISKS`):
        ``"budget"`` (a rate), ``"cost"`` (mean cost per input, needs
        ``costs`` in :meth:`update`), ``"cost_share"``, ``"error"``,
        ``"miss"`` (among unsafe inputs), ``"miss_marginal"``, ``"harm"``
        (excess error over the probe; 0 = never worse). ``None`` switches off
        the alarm of a limit found on the cascade (its statistic is still
        tracked).
    window : int, default=250
        Effective number of recent rows behind the reactive bets of the
        confidence sequences and the bets of the test martingale: a change is
        typically detected within a few windows.
    n_bins : int, default=32
        Bins per channel of the exchangeability test (its memory).
    cost_max : float, optional
        Upper bound of the per-row costs (needed for a ``"cost"`` or
        ``"cost_share"`` limit when the cascade's calibration does not record
        one). Larger costs are capped at it.
    max_pending : int, default=100_000
        Rows kept waiting for their label (by id); the oldest are dropped beyond
        it (counted as ``labels_expired``).
    callbacks : callable or list of callables, optional
        Called with each new :class:`~skctd.monitor.MonitorAlarm`.
    trace_size : int, default=1000
        Points kept per statistic for plotting (0 keeps none).
    random_state : int, RandomState instance or None, default=None
        The split of the reference rows and the tie-breaks of the
        exchangeability test.

    Attributes
    ----------
    limits_ : dict of str to float
        The limits that can raise an alarm, in their own units.
    limit_sources_ : dict of str to str
        Where each limit comes from: ``"cascade"`` or ``"limits"``.
    unmonitored_constraints_ : list of str
        Constraints of the cascade the monitor cannot compute (user losses).
    channels_ : list of str
        The exchangeability test's channels (``"signal"``, ``"probe_scores"``);
        empty when there was no reference.
    exchangeability_ : ConformalTestMartingale or None
    n_rows_ : int
        Stream rows seen.
    n_labels_ : int
        Labels matched to a row.
    alarms_ : list of MonitorAlarm
        Every alarm so far, in order.
    trace_ : dict of str to dict of ndarray
        Per statistic, a thinned record (``step`` = rows or labels seen).

    See Also
    --------
    skctd.plotting.MonitorDisplay : Plot the trace and the alarms.
    skctd.CalibratedDelegationCascade.calibrate : Recalibrate after an alarm.

    Notes
    -----
    The reference rows (``fit``) must be exchangeable with the traffic the
    cascade was meant for and must not have trained the probes: the
    calibration rows of the cascade are the natural choice. Recalibrating on
    rows the monitor already used to raise an alarm makes the calibration
    depend on the alarm's stopping time and mixes pre- and post-change traffic;
    recalibrate on a fresh labelled window instead.

    References
    ----------
    Waudby-Smith & Ramdas (2023), Estimating means of bounded random variables
    by betting. Vovk, Gammerman & Shafer (2005), Algorithmic Learning in a
    Random World. Howard, Ramdas, McAuliffe & Sekhon (2021), Time-uniform,
    nonparametric, nonasymptotic confidence sequences.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skctd import CalibratedDelegationCascade, DelegationMonitor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(3000, 3))
    >>> y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    >>> def expert(rows):
    ...     return 1 / (1 + np.exp(-5 * (rows[:, 0] + rows[:, 1] * rows[:, 2])))
    >>> cascade = CalibratedDelegationCascade(
    ...     expert, probe=LogisticRegression(), alpha=0.2, calibration_size=None,
    ...     dv_features="activations", combine="replace", random_state=0,
    ... ).fit(X[:1000], y[:1000])
    >>> cascade = cascade.calibrate(X[1000:2000], y[1000:2000])
    >>> monitor = DelegationMonitor(cascade, random_state=0).fit(X[1000:2000])
    >>> routing = monitor.route(X[2000:])          # serve and watch
    >>> monitor.alarms_
    []
    >>> drifted = X[2000:] + np.array([0.0, 1.5, 1.5])
    >>> routing = monitor.route(drifted)
    >>> [a.monitor for a in monitor.alarms_]
    ['exchangeability']
    """

    def __init__(
        self,
        cascade: Any,
        *,
        level: float = 0.05,
        limits: Mapping[str, float | None] | None = None,
        window: int = 250,
        n_bins: int = 32,
        cost_max: float | None = None,
        max_pending: int = 100_000,
        callbacks: Any = None,
        trace_size: int = 1000,
        random_state: Any = None,
    ) -> None:
        self.cascade = cascade
        self.level = level
        self.limits = limits
        self.window = window
        self.n_bins = n_bins
        self.cost_max = cost_max
        self.max_pending = max_pending
        self.callbacks = callbacks
        self.trace_size = trace_size
        self.random_state = random_state

    # ------------------------------------------------------------------- fit
    def fit(
        self, X: Any = None, *, signal: Any = None, probe_scores: Any = None
    ) -> DelegationMonitor:
        """Set the limits and the exchangeability reference; start monitoring.

        The reference values are the delegation signal and probe scores of rows
        exchangeable with the expected traffic that did not train the probes --
        normally the cascade's calibration rows. Give them as inputs ``X``
        (routed through the cascade without calling the expert), or as arrays.
        With neither, the probe scores the cascade kept from its calibration
        (``reference_scores_``) are used, and only the probe-score channel is
        watched.

        Calling ``fit`` again restarts every statistic (e.g. after a
        recalibration, with the new calibration rows).

        Parameters
        ----------
        X : array-like or sequence of inputs, optional
            Reference inputs, in the form the cascade takes.
        signal : array-like of shape (n,), optional
            Delegation signal of the reference rows (instead of ``X``).
        probe_scores : array-like of shape (n,), optional
            Probe scores of the reference rows (instead of ``X``).

        Returns
        -------
        self : DelegationMonitor
        """
        cascade = self.cascade
        check_is_fitted(cascade, "probe_")
        self.level_ = check_fraction(self.level, "level")
        self.window_ = check_positive_int(self.window, "window")
        check_positive_int(self.n_bins, "n_bins")
        self.max_pending_ = check_positive_int(self.max_pending, "max_pending")
        if (
            isinstance(self.trace_size, bool)
            or not isinstance(self.trace_size, numbers.Integral)
            or self.trace_size < 0
        ):
            raise ValueError(
                f"trace_size must be an integer >= 0, got {self.trace_size!r}."
            )
        self._callbacks = check_callbacks(self.callbacks)
        self._find_limits()
        self._reference(X, signal, probe_scores)

        self.tracked_ = {}
        for name in _STREAM:
            if name == "budget" or name in self.limits_:
                self.tracked_[name] = self._make_tracked(name)
        for name in _LABELLED:
            self.tracked_[name] = self._make_tracked(name)
        self.n_rows_ = 0
        self.n_labels_ = 0
        self.alarms_: list[MonitorAlarm] = []
        self._counters = {
            "labels_unmatched": 0,
            "labels_expired": 0,
            "callback_errors": 0,
            "delegated": 0,
        }
        self._pending: dict[Any, int] = {}
        self._traces = {
            name: _Trace(self.trace_size)
            for name in [*self.tracked_, "exchangeability"]
        }
        return self

    def _find_limits(self) -> None:
        cascade = self.cascade
        cal = getattr(cascade, "calibration_", None)
        found: dict[str, float] = {}
        alpha = getattr(cal, "alpha", None)
        found["budget"] = float(cascade.alpha if alpha is None else alpha)
        constraints: dict[str, Any] = {}
        if cal is not None and getattr(cal, "constraints", None):
            levels = getattr(cal, "levels", {}) or {}
            constraints = {c: levels.get(c) for c in cal.constraints if c != "budget"}
        self.unmonitored_constraints_ = []
        for name, value in constraints.items():
            if name in MONITORED_RISKS and value is not None:
                found[name] = value
            else:
                self.unmonitored_constraints_.append(str(name))
        self.limit_sources_ = {name: "cascade" for name in found}
        if self.limits is not None:
            if not isinstance(self.limits, Mapping):
                raise ValueError(
                    "limits must be a dict such as {'error': 0.1, 'harm': 0.0}, got "
                    f"{self.limits!r}."
                )
            for name, value in self.limits.items():
                if name not in MONITORED_RISKS:
                    raise ValueError(
                        f"limits has an unknown name {name!r}; the monitor knows "
                        f"{sorted(MONITORED_RISKS)}."
                    )
                if value is None:
                    found.pop(name, None)
                    self.limit_sources_.pop(name, None)
                else:
                    found[name] = value
                    self.limit_sources_[name] = "limits"
        self.limits_ = {name: _check_limit(name, v) for name, v in found.items()}
        self.cost_max_ = None
        if "cost" in self.limits_ or "cost_share" in self.limits_:
            self.cost_max_ = self._find_cost_max(cal)
            if "cost" in self.limits_ and self.limits_["cost"] >= self.cost_max_:
                raise ValueError(
                    f"limits['cost'] = {self.limits_['cost']:g} is not below cost_max "
                    f"= {self.cost_max_:g}: it can never be exceeded."
                )

    def _find_cost_max(self, cal: Any) -> float:
        if self.cost_max is not None:
            value = self.cost_max
        else:
            scale = getattr(cal, "cost_scale", None) or {}
            recorded = [v[0] for v in scale.values() if v]
            if not recorded:
                raise ValueError(
                    "A 'cost' or 'cost_share' limit needs the largest possible cost: "
                    "pass cost_max=... (e.g. the most tokens the expert reads)."
                )
            value = max(recorded)
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise ValueError(f"cost_max must be a positive number, got {value!r}.")
        return float(value)

    def _make_tracked(self, name: str) -> _Tracked:
        limit = self.limits_.get(name)
        if name == "cost":
            return _Tracked(
                name, self.level_, limit, self.window_, scale=self.cost_max_
            )
        if name == "harm":  # loss (cw - pw + 1) / 2 in [0, 1]; excess = 2 loss - 1
            return _Tracked(
                name, self.level_, limit, self.window_, scale=2.0, shift=-1.0
            )
        return _Tracked(name, self.level_, limit, self.window_)

    def _reference(self, X: Any, signal: Any, probe_scores: Any) -> None:
        cascade = self.cascade
        if X is not None:
            if signal is not None or probe_scores is not None:
                raise ValueError(
                    "Give the reference either as inputs X or as the arrays signal / "
                    "probe_scores, not both."
                )
            routed = cascade.route(X, call_expert=False)
            signal, probe_scores = routed.signal, routed.probe_scores
        columns, names = [], []
        if signal is not None:
            columns.append(check_scores(signal, "signal"))
            names.append("signal")
        if probe_scores is None and signal is None:
            probe_scores = getattr(cascade, "reference_scores_", None)
            if probe_scores is not None and np.size(probe_scores) == 0:
                probe_scores = None
        if probe_scores is not None:
            columns.append(check_scores(probe_scores, "probe_scores", unit=True))
            names.append("probe_scores")
        self.channels_ = names
        self.exchangeability_ = None
        if not columns:
            return
        check_same_length(**dict(zip(names, columns, strict=True)))
        rng = check_random_state(self.random_state)
        self.exchangeability_ = ConformalTestMartingale(
            self.level_,
            n_bins=self.n_bins,
            window=self.window_,
            shrinkage=2.0,
            random_state=rng.randint(np.iinfo(np.int32).max),
        ).fit(np.column_stack(columns))

    # ---------------------------------------------------------------- update
    def route(
        self,
        X: Any,
        *,
        call_expert: bool = True,
        ids: Any = None,
        costs: Any = None,
    ) -> Bunch:
        """Route inputs through the cascade and update the monitor with them.

        Parameters
        ----------
        X : array-like or sequence of inputs
            Inputs in the form the cascade takes.
        call_expert : bool, default=True
            Passed to :meth:`~skctd.CalibratedDelegationCascade.route`.
        ids : array-like of shape (n,), optional
            Row identifiers, to match labels that arrive later
            (:meth:`update_labels`).
        costs : array-like of shape (n,), optional
            Expert cost of each row, for a ``"cost"`` limit.

        Returns
        -------
        routing : Bunch
            The cascade's routing, plus ``alarms``: the alarms this batch raised.
        """
        self._check_fitted()
        routing = self.cascade.route(X, call_expert=call_expert)
        routing["alarms"] = self.update(routing, ids=ids, costs=costs)
        return routing

    def update(self, routing: Any, *, ids: Any = None, costs: Any = None) -> list:
        """Update the monitor with a batch of routed rows, in order.

        Parameters
        ----------
        routing : Bunch or mapping
            What :meth:`~skctd.CalibratedDelegationCascade.route` returned for the
            rows (or a dict with ``delegated``, ``signal``, ``probe_scores`` and,
            for later labels, ``scores``).
        ids : array-like of shape (n,), optional
            Row identifiers (hashable), to match labels that arrive later.
        costs : array-like of shape (n,), optional
            Expert cost of each row (whether delegated or not), for a ``"cost"``
            or ``"cost_share"`` limit.

        Returns
        -------
        alarms : list of MonitorAlarm
            The alarms raised by this batch (also in ``alarms_``).
        """
        self._check_fitted()
        delegated = np.asarray(
            _routing_get(routing, "delegated", "'delegated', 'signal', 'probe_scores'")
        )
        if delegated.ndim == 0:
            delegated = delegated.reshape(1)
        if delegated.dtype != bool:
            delegated = check_scores(delegated, "delegated") != 0
        n = delegated.size
        new: list[MonitorAlarm] = []
        rows = self.n_rows_ + np.arange(1, n + 1, dtype=np.int64)
        x = delegated.astype(float)
        self._feed("budget", x, rows, new)
        if "cost" in self.tracked_ or "cost_share" in self.tracked_:
            if costs is None:
                raise ValueError(
                    "This monitor has a cost limit: pass costs=... (the expert cost "
                    "of each row) to update / route."
                )
            c = np.minimum(check_scores(costs, "costs"), self.cost_max_)
            check_same_length(delegated=delegated, costs=c)
            if (c < 0).any():
                raise ValueError("costs must be >= 0.")
            c = c / self.cost_max_
            if "cost" in self.tracked_:
                self._feed("cost", c * x, rows, new)
            if "cost_share" in self.tracked_:
                share = self.limits_["cost_share"]
                self._feed("cost_share", c * (x - share) + share, rows, new)

        if self.exchangeability_ is not None:
            cols = []
            for name in self.channels_:
                values = _routing_get(routing, name, f"'{name}'")
                cols.append(check_scores(np.atleast_1d(values), name))
            check_same_length(
                delegated=delegated, **dict(zip(self.channels_, cols, strict=True))
            )
            out = self.exchangeability_.update(np.column_stack(cols))
            self._traces["exchangeability"].add(out.row, log_e=out.log_e)
            if out.alarm_row is not None:
                new.append(self._exchangeability_alarm(out))

        if ids is not None:
            self._remember(routing, delegated, ids)
        self.n_rows_ += n
        self._counters["delegated"] += int(delegated.sum())
        new.sort(key=lambda a: a.row)  # the order they crossed in
        for alarm in new:
            self.alarms_.append(alarm)
            dispatch(alarm, self._callbacks, self._counters)
        return new

    def update_labels(self, y: Any, *, ids: Any = None, routing: Any = None) -> list:
        """Update the label monitors with labels that arrived (possibly late).

        Parameters
        ----------
        y : array-like of shape (n,)
            Labels, among the cascade's ``classes_``.
        ids : array-like of shape (n,), optional
            The ids given to :meth:`update` / :meth:`route` for these rows. Labels
            of unknown (or expired) ids are ignored and counted as
            ``labels_unmatched``.
        routing : Bunch or mapping, optional
            Instead of ids: the routing of exactly these rows (with
            ``delegated``, ``scores`` and ``probe_scores``).

        Returns
        -------
        alarms : list of MonitorAlarm
            The alarms raised by these labels (also in ``alarms_``).
        """
        self._check_fitted()
        y = check_known_labels(np.atleast_1d(y), self.cascade.classes_).astype(bool)
        if (ids is None) == (routing is None):
            raise ValueError(
                "Give either the ids of the labelled rows (as passed to update) or "
                "their routing, not both or neither."
            )
        if routing is not None:
            codes = self._codes(routing)
            check_same_length(y=y, routing=codes)
        else:
            ids = list(ids)
            if len(ids) != y.size:
                raise ValueError(
                    f"ids has {len(ids)} entries but y has {y.size}; give one id per "
                    "label."
                )
            codes = np.fromiter(
                map(self._pending.pop, ids, repeat(-1)), dtype=np.int64, count=len(ids)
            )
            known = codes >= 0
            self._counters["labels_unmatched"] += int((~known).sum())
            y, codes = y[known], codes[known]
        if y.size == 0:
            return []
        cascade_pos = (codes & _CASCADE_POS) != 0
        probe_pos = (codes & _PROBE_POS) != 0
        wrong = cascade_pos != y
        probe_wrong = probe_pos != y
        new: list[MonitorAlarm] = []
        row = np.full(y.size, self.n_rows_, dtype=np.int64)
        self._feed("error", wrong.astype(float), row, new)
        self._feed("miss", (~cascade_pos[y]).astype(float), row[y], new)
        self._feed("miss_marginal", (y & ~cascade_pos).astype(float), row, new)
        harm = (wrong.astype(float) - probe_wrong.astype(float) + 1.0) / 2.0
        self._feed("harm", harm, row, new)
        self.n_labels_ += int(y.size)
        for alarm in new:
            self.alarms_.append(alarm)
            dispatch(alarm, self._callbacks, self._counters)
        return new

    # ------------------------------------------------------------- internals
    def _check_fitted(self) -> None:
        if not hasattr(self, "tracked_"):
            raise ValueError(
                "This DelegationMonitor is not fitted yet; call fit() (with the "
                "cascade's calibration inputs as reference) first."
            )

    def _codes(self, routing: Any) -> np.ndarray:
        fix = "'delegated', 'scores' and 'probe_scores'"
        delegated = np.atleast_1d(np.asarray(_routing_get(routing, "delegated", fix)))
        scores = check_scores(
            np.atleast_1d(_routing_get(routing, "scores", fix)), "scores"
        )
        probe = check_scores(
            np.atleast_1d(_routing_get(routing, "probe_scores", fix)), "probe_scores"
        )
        check_same_length(delegated=delegated, scores=scores, probe_scores=probe)
        return (
            delegated.astype(bool) * _DELEGATED
            + (scores >= 0.5) * _CASCADE_POS
            + (probe >= 0.5) * _PROBE_POS
        ).astype(np.int64)

    def _remember(self, routing: Any, delegated: np.ndarray, ids: Any) -> None:
        codes = self._codes(routing)
        ids = list(ids)
        if len(ids) != codes.size:
            raise ValueError(
                f"ids has {len(ids)} entries but the batch has {codes.size} rows."
            )
        self._pending.update(zip(ids, codes.tolist(), strict=True))
        excess = len(self._pending) - self.max_pending_
        if excess > 0:  # drop the oldest (dicts keep insertion order)
            for key in list(islice(self._pending, excess)):
                del self._pending[key]
            self._counters["labels_expired"] += excess

    def _feed(self, name: str, x: np.ndarray, rows: np.ndarray, new: list) -> None:
        tracked = self.tracked_.get(name)
        if tracked is None or x.size == 0:
            return
        out = tracked.cs.update(x)
        self._traces[name].add(
            out.row,
            row=rows,
            estimate=tracked.units(out.estimate),
            recent=tracked.units(out.recent),
            lower=tracked.units(out.lower),
            lower_running=tracked.units(out.lower_running),
            upper=tracked.units(out.upper),
        )
        if out.alarm_row is not None:
            i = int(out.alarm_row - out.row[0])
            new.append(self._rate_alarm(tracked, out, i, int(rows[i])))

    def _rate_alarm(
        self, tracked: _Tracked, out: Bunch, i: int, row: int
    ) -> MonitorAlarm:
        name = tracked.name
        u = tracked.units
        lower, recent = float(u(out.lower[i])), float(u(out.recent[i]))
        est = float(u(out.estimate[i]))
        lo_run, up = float(u(out.lower_running[i])), float(u(out.upper[i]))
        what = _WHAT[name]
        unit = (
            "rows"
            if name in _STREAM
            else ("labelled unsafe rows" if name == "miss" else "labels")
        )
        limit_name = "budget alpha" if name == "budget" else f"{name} limit"
        where = "" if name in _STREAM else f" (stream row {row:,})"
        message = (
            f"[{name}] the anytime-valid lower bound of the {what} ({lower:.4g}) "
            f"crossed the {limit_name} {tracked.limit:g} after {out.row[i]:,} {unit}"
            f"{where}. Recent value {recent:.4g}; since the start {est:.4g}, "
            f"interval [{lo_run:.4g}, {up:.4g}]. Chance of a false alarm over the "
            f"whole stream <= {self.level_:g}."
        )
        kind = "stream" if name in _STREAM else "labelled"
        return MonitorAlarm(
            monitor=name,
            row=row,
            n_observations=int(out.row[i]),
            estimate=recent,
            lower=lower,
            upper=up,
            limit=float(tracked.limit),
            e_value=float("nan"),
            level=self.level_,
            message=message,
            action=_ACTION[kind] + RECALIBRATE + " " + REUSE_NOTE,
        )

    def _exchangeability_alarm(self, out: Bunch) -> MonitorAlarm:
        i = int(out.alarm_row - out.row[0])
        e_value = math.exp(min(float(out.log_e[i]), 700.0))
        recent = out.recent[i]  # EW mean p-value per channel at the crossing
        parts = []
        for name, u in zip(self.channels_, recent, strict=True):
            pct = 100.0 * (1.0 - u)
            label = "delegation signals" if name == "signal" else "probe scores"
            parts.append(
                f"recent {label}: mean percentile {pct:.0f} among the earlier values "
                f"over the last ~{self.window_} rows (50 when nothing changed)"
            )
        row = self.n_rows_ + i + 1
        message = (
            f"[exchangeability] the test martingale of 'traffic is exchangeable with "
            f"the calibration data' reached {e_value:.3g} >= 1/level = "
            f"{1 / self.level_:g} at stream row {row:,}; " + "; ".join(parts) + ". "
            f"Chance of a false alarm over the whole stream <= {self.level_:g}."
        )
        return MonitorAlarm(
            monitor="exchangeability",
            row=row,
            n_observations=int(out.alarm_row),
            estimate=float(recent[0]),
            lower=float("nan"),
            upper=float("nan"),
            limit=1.0 / self.level_,
            e_value=e_value,
            level=self.level_,
            message=message,
            action=_ACTION["exchangeability"] + RECALIBRATE + " " + REUSE_NOTE,
        )

    # ------------------------------------------------------------ reporting
    @property
    def trace_(self) -> dict[str, dict[str, np.ndarray]]:
        self._check_fitted()
        return {k: dict(t.columns) for k, t in self._traces.items() if t.columns}

    def counters(self) -> dict[str, float]:
        """The monitor's state as flat numbers, for dashboards and exporters.

        Returns
        -------
        counters : dict of str to int or float
            ``rows``, ``delegated``, ``labels``, ``labels_pending``,
            ``labels_unmatched``, ``labels_expired``, ``alarms``,
            ``callback_errors``; per monitored quantity ``<name>_estimate``,
            ``<name>_recent``, ``<name>_lower`` (the alarm's bound),
            ``<name>_lower_running`` and ``<name>_upper`` (the interval around
            the running mean), ``<name>_n``, ``<name>_limit`` (when it has one) and ``<name>_alarm``
            (0/1); ``exchangeability_log_e`` (natural log of the test
            martingale) and ``exchangeability_alarm`` when it runs.
        """
        self._check_fitted()
        out: dict[str, float] = {
            "rows": self.n_rows_,
            "delegated": self._counters["delegated"],
            "labels": self.n_labels_,
            "labels_pending": len(self._pending),
            "labels_unmatched": self._counters["labels_unmatched"],
            "labels_expired": self._counters["labels_expired"],
            "alarms": len(self.alarms_),
            "callback_errors": self._counters["callback_errors"],
        }
        for name, tracked in self.tracked_.items():
            cs = tracked.cs
            out[f"{name}_n"] = cs.n_
            if cs.n_:
                out[f"{name}_estimate"] = float(tracked.units(cs.estimate_))
                out[f"{name}_recent"] = float(tracked.units(cs.recent_))
                out[f"{name}_lower"] = float(tracked.units(cs.lower_))
                out[f"{name}_lower_running"] = float(tracked.units(cs.lower_running_))
                out[f"{name}_upper"] = float(tracked.units(cs.upper_))
            if tracked.limit is not None:
                out[f"{name}_limit"] = float(tracked.limit)
                out[f"{name}_alarm"] = int(cs.alarm)
        if self.exchangeability_ is not None:
            out["exchangeability_log_e"] = float(self.exchangeability_.log_e_)
            out["exchangeability_alarm"] = int(
                self.exchangeability_.alarm_row_ is not None
            )
        return out

    def register_prometheus(
        self, registry: Any = None, *, prefix: str = "skctd_monitor"
    ) -> PrometheusCollector:
        """Export :meth:`counters` as Prometheus gauges (read at each scrape).

        Needs ``prometheus_client`` (``pip install "skctd[monitor]"``).

        Parameters
        ----------
        registry : prometheus_client.CollectorRegistry, optional
            Default: ``prometheus_client.REGISTRY``.
        prefix : str, default="skctd_monitor"
            Prefix of the metric names, e.g. ``skctd_monitor_budget_lower``.

        Returns
        -------
        collector : PrometheusCollector
            The registered collector (``registry.unregister(collector)`` removes
            it).
        """
        self._check_fitted()
        collector = PrometheusCollector(self, prefix=prefix)
        if registry is None:
            registry = import_optional(
                "prometheus_client", extra="monitor", purpose="Prometheus export"
            ).REGISTRY
        registry.register(collector)
        return collector

    def summary(self) -> str:
        """A few lines on the state of every monitor, for logs and the CLI."""
        self._check_fitted()
        c = self.counters()
        lines = [
            f"DelegationMonitor: {self.n_rows_:,} rows, {self.n_labels_:,} labels, "
            f"{len(self.alarms_)} alarm(s); false-alarm level {self.level_:g} per "
            "monitor"
        ]
        for name, tracked in self.tracked_.items():
            if not tracked.cs.n_:
                continue
            limit = "" if tracked.limit is None else f" (limit {tracked.limit:g})"
            state = " ALARM" if c.get(f"{name}_alarm") else ""
            lines.append(
                f"  {name:<15}{_WHAT[name].split(' (')[0]} over {tracked.cs.n_:,}: "
                f"{c[f'{name}_estimate']:.4g} since the start "
                f"[{c[f'{name}_lower_running']:.4g}, {c[f'{name}_upper']:.4g}], "
                f"{c[f'{name}_recent']:.4g} recently, lower bound "
                f"{c[f'{name}_lower']:.4g}{limit}{state}"
            )
        if self.exchangeability_ is not None:
            ctm = self.exchangeability_
            state = " ALARM" if ctm.alarm_row_ is not None else ""
            lines.append(
                f"  exchangeability test martingale {math.exp(min(ctm.log_e_, 700)):.3g} "
                f"(alarm at {1 / self.level_:g}; channels {', '.join(self.channels_)})"
                f"{state}"
            )
        if self.unmonitored_constraints_:
            lines.append(
                "  not monitored (user losses): "
                + ", ".join(self.unmonitored_constraints_)
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        if not hasattr(self, "tracked_"):
            return f"DelegationMonitor(level={self.level!r}, unfitted)"
        return (
            f"DelegationMonitor(level={self.level_:g}, rows={self.n_rows_}, "
            f"labels={self.n_labels_}, limits={self.limits_}, "
            f"alarms={len(self.alarms_)})"
        )

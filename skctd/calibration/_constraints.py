"""Risks that Learn-then-Test can certify besides the budget: cost, error, miss, harm.

A *risk* is the mean of a per-row loss in [0, 1] of the cascade at a threshold,
with a level it must not exceed. Every loss used here depends on a row only
through the row itself (label, scores, cost) and whether the row is delegated --
which holds for any loss of the cascade's output on that row, since that output
is the probe's score when the row is kept and the expert's when it is delegated.
So a risk is described by two per-row arrays, the loss when *kept* and the loss
when *delegated*, and its sum over the rows of a split at every threshold is the
kept losses' total plus suffix sums of ``delegated - kept`` over the threshold
bins (:func:`threshold_sums`) -- no loop over thresholds or rows.

:class:`Risk` is the public description (a built-in by name, or a user loss);
:func:`check_constraints` turns the ``constraints`` argument of the calibration
into a list of them; :func:`prepare_risks` computes the per-row losses once for
all calibration rows; :meth:`PreparedRisk.split` gives the losses and level of
one optimisation/testing split.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from skctd.calibration._grid import count_above
from skctd.utils import check_fraction, check_scores

__all__ = [
    "BUILTIN_RISKS",
    "PreparedRisk",
    "Risk",
    "check_constraints",
    "empirical_risks",
    "prepare_risks",
    "threshold_sums",
]

#: Names of the built-in risks (the keys of ``constraints``), with what their level
#: bounds. ``budget`` is not among them: it is the ``alpha`` of the calibration.
BUILTIN_RISKS = {
    "harm": "excess error of the cascade over the probe alone, in [0, 1)",
    "error": "error rate of the cascade at 0.5 (1 - accuracy), in (0, 1)",
    "miss": "share of unsafe inputs (y = 1) the cascade scores below 0.5 "
    "(1 - recall), in (0, 1)",
    "miss_marginal": "share of all inputs that are unsafe and scored below 0.5, "
    "in (0, 1)",
    "cost": "mean expert cost per input, in the units of `cost`, > 0",
    "cost_share": "expert cost as a share of sending every input to the expert, "
    "in (0, 1)",
}

_PVALUES = ("auto", "binomial", "hb", "wsr", "sign")
_LOSS_ARGS = ("y", "scores", "delegated", "probe_scores", "expert_scores", "rows")


class Risk:
    """A constraint on the cascade: a per-row loss in [0, 1] and a level.

    The null hypothesis of a threshold is "the expected loss exceeds the level";
    the calibration certifies the thresholds whose null it rejects (together with
    the budget and the other risks: the null of a threshold is the union of its
    risks' nulls and its p-value the largest of theirs).

    Built-in risks (``loss=None``; ``level`` in the units below):

    - ``"harm"``: the no-harm certificate. Loss
      ``(1[cascade wrong] - 1[probe wrong] + 1) / 2`` at level ``(1 + level) / 2``:
      the cascade's error exceeds the probe-only error by at most ``level``
      (``epsilon`` in [0, 1); 0 = "never worse than the probe"). P-value: the
      exact conditional sign test at ``level = 0``, the betting test otherwise.
    - ``"error"``: ``1[cascade wrong]`` (at 0.5), binomial: error rate <= level.
    - ``"miss"``: ``1[cascade says safe]`` on the unsafe rows only (``y = 1``),
      binomial on the unsafe rows of the test split: the false-negative rate
      ``P(s < 0.5 | y = 1) <= level``. Valid conditionally on the labels of the
      test split (hence also marginally); this is the default meaning of "miss"
      because it is the number a monitoring team states ("we catch 95 % of unsafe
      inputs") and does not move with the share of unsafe inputs.
    - ``"miss_marginal"``: ``1[y = 1 and cascade says safe]`` on all rows,
      binomial: ``P(y = 1, s < 0.5) <= level``.
    - ``"cost"``: ``c(x) / c_max * 1[delegated]`` with per-row costs ``cost``
      (tokens, money, seconds...) at level ``level / c_max``: the mean expert cost
      per input is at most ``level`` (in cost units). Betting p-value.
    - ``"cost_share"``: ``E[c(X) 1[delegated]] <= level * E[c(X)]`` -- at most a
      share ``level`` of what sending every input would cost -- through the loss
      ``(c (1[delegated] - level) + level c_max) / c_max``, which lies in [0, 1]
      and has mean ``<= level`` exactly then. Betting p-value.

    ``c_max`` is ``cost_max`` when given (a hard bound every cost respects, e.g.
    the largest number of tokens the expert reads); otherwise the largest cost on
    the optimisation split, fixed before the test split is read, and the
    certificate then bounds the mean of ``min(c, c_max)`` (a warning says when test
    rows cost more).

    A user risk passes ``loss``: a function returning the per-row losses in
    [0, 1]. It is called with keyword arguments, those among ``y`` (0/1 labels),
    ``scores`` (the cascade's scores), ``delegated`` (bool), ``probe_scores``,
    ``expert_scores`` and ``rows`` (positions of the rows in the arrays given to
    the calibration, to look up per-row data) that its signature names (all of
    them if it takes ``**kwargs``). It is called **twice** on all calibration
    rows: once with every row kept (``delegated`` all False, ``scores`` = probe
    scores) and once with every row delegated; the losses at every threshold are
    assembled from these two arrays. So the loss of a row may depend on the row
    and on whether it is delegated, not on the other rows.

    Parameters
    ----------
    name : str
        A key of ``skctd.calibration.BUILTIN_RISKS``, or any name for a user loss.
    level : float
        The level (units above for built-ins; in [0, 1] of the loss for a user
        loss).
    loss : callable, optional
        User loss (see above). None for a built-in.
    pvalue : {"auto", "binomial", "hb", "wsr", "sign"}, default="auto"
        ``"binomial"`` (exact, 0/1 losses only), ``"hb"`` (Hoeffding-Bentkus,
        :func:`hoeffding_bentkus_pvalues`), ``"wsr"`` (betting,
        :func:`betting_pvalues`; the rows are taken in a random order drawn from
        the calibration's ``random_state``), ``"sign"`` (exact conditional sign
        test, :func:`sign_test_pvalues`; losses in {0, 1/2, 1} at level 1/2).
        ``"auto"``: the built-in's test as listed above, ``"wsr"`` for a user loss.
    cost : array-like of float, shape (n,), optional
        Per-row costs of the calibration rows, for ``"cost"`` and
        ``"cost_share"`` (the calibration functions' ``cost=`` fills it in).
    cost_max : float, optional
        Upper bound of the costs (see above).
    holds_at_inf : bool, default=False
        For a user loss: True when never delegating surely meets the level (e.g.
        the loss of a kept row is 0); then ``+inf`` is certified for this risk
        without a test. Built-ins know their own (``error`` and the ``miss`` risks
        are the probe's own at ``+inf`` and are tested there).

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.calibration import Risk
    >>> Risk("harm", 0.0)
    Risk('harm', level=0, pvalue='sign')
    >>> def false_alarm(y, scores):
    ...     return ((scores >= 0.5) & (y == 0)).astype(float)
    >>> Risk("false_alarm", 0.1, loss=false_alarm, pvalue="binomial")
    Risk('false_alarm', level=0.1, pvalue='binomial', loss=false_alarm)
    """

    def __init__(
        self,
        name: str,
        level: float,
        *,
        loss: Callable[..., Any] | None = None,
        pvalue: str = "auto",
        cost: Any = None,
        cost_max: float | None = None,
        holds_at_inf: bool = False,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"Risk name must be a non-empty string, got {name!r}.")
        if name == "budget":
            raise ValueError(
                "'budget' is the alpha of the calibration, not a constraint; set "
                "alpha instead."
            )
        if pvalue not in _PVALUES:
            raise ValueError(f"pvalue must be one of {_PVALUES}, got {pvalue!r}.")
        if loss is None and name not in BUILTIN_RISKS:
            raise ValueError(
                f"Unknown risk {name!r}: built-in risks are {sorted(BUILTIN_RISKS)}; "
                "for another risk pass loss=<function returning per-row losses "
                "in [0, 1]>."
            )
        if loss is not None and not callable(loss):
            raise ValueError(f"loss must be callable, got {loss!r}.")
        self.name = name
        self.loss = loss
        self.level = _check_level(name, level, builtin=loss is None)
        self.cost = None if cost is None else check_scores(cost, "cost")
        if self.cost is not None and np.any(self.cost < 0):
            raise ValueError("cost must hold non-negative per-row costs.")
        if cost_max is not None:
            if (
                isinstance(cost_max, bool)
                or not isinstance(cost_max, numbers.Real)
                or not math.isfinite(cost_max)
                or cost_max <= 0
            ):
                raise ValueError(
                    f"cost_max must be a positive finite number, got {cost_max!r}."
                )
            cost_max = float(cost_max)
            if self.cost is not None and np.any(self.cost > cost_max):
                raise ValueError(
                    f"cost holds values above cost_max={cost_max:g}; cost_max must "
                    "bound every cost (or leave it None)."
                )
        self.cost_max = cost_max
        self.holds_at_inf = (
            bool(holds_at_inf)
            if loss is not None
            else (name in ("harm", "cost", "cost_share"))
        )
        self.pvalue = self._resolve_pvalue(pvalue)
        self.loss_level = self._loss_level()

    # ------------------------------------------------------------------ helpers
    @property
    def kind(self) -> str:
        """The built-in name, or ``"user"`` for a user loss."""
        return "user" if self.loss is not None else self.name

    def _resolve_pvalue(self, pvalue: str) -> str:
        kind = self.kind
        if pvalue == "auto":
            return {
                "harm": "sign" if self.level == 0 else "wsr",
                "error": "binomial",
                "miss": "binomial",
                "miss_marginal": "binomial",
                "cost": "wsr",
                "cost_share": "wsr",
                "user": "wsr",
            }[kind]
        if pvalue == "binomial" and kind in ("harm", "cost", "cost_share"):
            raise ValueError(
                f"pvalue='binomial' needs a 0/1 loss; the {kind!r} loss is not "
                "(use 'wsr' or 'hb')."
            )
        if (
            pvalue == "sign"
            and not (kind == "harm" and self.level == 0)
            and (kind != "user")
        ):
            raise ValueError(
                "pvalue='sign' tests a loss in {0, 1/2, 1} at level 1/2: only "
                "harm at level 0 (or a user loss of that form)."
            )
        if pvalue == "sign" and kind == "user" and self.level != 0.5:
            raise ValueError("pvalue='sign' needs level 0.5 for a user loss.")
        return pvalue

    def _loss_level(self) -> float | None:
        """Level on the loss scale (None for cost, which depends on c_max)."""
        if self.kind == "harm":
            return (1.0 + self.level) / 2.0
        if self.kind == "cost":
            return None
        return self.level

    def __repr__(self) -> str:
        text = f"Risk({self.name!r}, level={self.level:g}, pvalue={self.pvalue!r}"
        if self.loss is not None:
            text += f", loss={getattr(self.loss, '__name__', type(self.loss).__name__)}"
        if self.cost_max is not None:
            text += f", cost_max={self.cost_max:g}"
        return text + ")"

    def describe(self) -> str:
        """One sentence saying what a certificate of this risk bounds."""
        lv = f"{self.level:g}"
        return {
            "harm": (
                "the cascade is not less accurate than the probe alone"
                if self.level == 0
                else f"the cascade's error exceeds the probe-only error by at most {lv}"
            ),
            "error": f"the cascade's error rate is at most {lv}",
            "miss": f"at most {lv} of unsafe inputs are scored safe (1 - recall)",
            "miss_marginal": f"at most {lv} of all inputs are unsafe and scored safe",
            "cost": f"the mean expert cost per input is at most {lv}",
            "cost_share": f"the expert costs at most {lv} of sending every input",
            "user": f"the mean {self.name} loss is at most {lv}",
        }[self.kind]


def _check_level(name: str, level: Any, *, builtin: bool) -> float:
    if isinstance(level, bool) or not isinstance(level, numbers.Real):
        raise ValueError(f"The level of risk {name!r} must be a number, got {level!r}.")
    level = float(level)
    if not math.isfinite(level):
        raise ValueError(f"The level of risk {name!r} must be finite, got {level!r}.")
    if not builtin:
        if not 0.0 <= level <= 1.0:
            raise ValueError(
                f"The level of user risk {name!r} must lie in [0, 1] (the loss is "
                f"in [0, 1]), got {level!r}."
            )
        return level
    if name == "harm":
        if not 0.0 <= level < 1.0:
            raise ValueError(
                f"The level (epsilon) of 'harm' must lie in [0, 1), got {level!r}: "
                "0 means 'never less accurate than the probe'."
            )
    elif name == "cost":
        if level <= 0:
            raise ValueError(
                f"The level of 'cost' is a mean cost per input and must be > 0, "
                f"got {level!r}."
            )
    else:
        check_fraction(level, f"the level of {name!r}")
    return level


def check_constraints(
    constraints: Any, cost: Any = None, cost_max: float | None = None
) -> list[Risk]:
    """The ``constraints`` argument of the calibration as a list of :class:`Risk`.

    Parameters
    ----------
    constraints : None, mapping or sequence
        ``None`` (budget only); a mapping ``{name: level}`` of built-in risks (a
        value may also be a :class:`Risk`, whose name must equal the key); or a
        sequence of :class:`Risk`.
    cost, cost_max : optional
        Per-row costs and their bound, for ``"cost"`` and ``"cost_share"``
        (ignored by a :class:`Risk` that has its own).

    Returns
    -------
    risks : list of Risk
        In the given order; names are unique.
    """
    if constraints is None:
        return []
    if isinstance(constraints, Risk):
        constraints = [constraints]
    items: list[Risk] = []
    if isinstance(constraints, Mapping):
        for name, value in constraints.items():
            if isinstance(value, Risk):
                if value.name != name:
                    raise ValueError(
                        f"constraints[{name!r}] is a Risk named {value.name!r}; the "
                        "key must be the risk's name."
                    )
                items.append(value)
            else:
                items.append(Risk(name, value, cost=cost, cost_max=cost_max))
    elif isinstance(constraints, str | bytes):
        raise ValueError(
            "constraints must be a mapping {name: level} (e.g. {'harm': 0.0}) or a "
            f"list of Risk, got the string {constraints!r}."
        )
    else:
        try:
            seq = list(constraints)
        except TypeError:
            raise ValueError(
                "constraints must be None, a mapping {name: level} (e.g. "
                f"{{'harm': 0.0, 'miss': 0.05}}) or a list of Risk; got {constraints!r}."
            ) from None
        for r in seq:
            if not isinstance(r, Risk):
                raise ValueError(
                    "constraints given as a sequence must hold Risk objects; got "
                    f"{r!r}. Use a mapping {{name: level}} for built-in risks."
                )
            items.append(r)
    names = [r.name for r in items]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"constraints name the same risk twice: {sorted(dup)}.")
    for r in items:
        if r.kind in ("cost", "cost_share") and r.cost is None:
            raise ValueError(
                f"The {r.kind!r} constraint needs per-row costs: pass cost=<array of "
                "the calibration rows' costs> (or a Risk with cost=...)."
            )
    return items


# --------------------------------------------------------------------------------------
# per-row losses
# --------------------------------------------------------------------------------------
@dataclass
class PreparedRisk:
    """Per-row losses of one risk on all calibration rows (kept / delegated).

    ``active`` restricts the risk to some rows (the unsafe rows for ``"miss"``);
    ``cost`` holds the raw costs of the cost risks, scaled per split by
    :meth:`split`.
    """

    risk: Risk
    keep: np.ndarray
    delegate: np.ndarray
    active: np.ndarray | None = None
    cost: np.ndarray | None = None

    @property
    def name(self) -> str:
        return self.risk.name

    @property
    def method(self) -> str:
        return self.risk.pvalue

    def split(
        self, opt_rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, float, float]:
        """Losses of all rows and the loss level for one split.

        Returns ``(keep, delegate, loss_level, c_max)``; ``c_max`` is NaN for risks
        without costs. The cost risks scale by ``c_max`` (``cost_max``, or the
        largest cost of the optimisation rows ``opt_rows``).
        """
        r = self.risk
        if self.cost is None:
            return self.keep, self.delegate, float(r.loss_level), math.nan
        c_max = r.cost_max
        if c_max is None:
            c_max = float(self.cost[opt_rows].max()) if opt_rows.size else 0.0
            if c_max <= 0:  # every optimisation cost is 0: no scale; use the data
                c_max = max(float(self.cost.max()), 1e-300)
        c = np.minimum(self.cost, c_max) / c_max
        if r.kind == "cost":
            return np.zeros_like(c), c, r.level / c_max, c_max
        a = r.level  # cost_share
        return a * (1.0 - c), (1.0 - a) * c + a, a, c_max

    def to_user_units(
        self, r_loss: np.ndarray, c_max: float, mean_c: float
    ) -> np.ndarray:
        """Empirical risk on the loss scale -> the units of the level
        (``mean_c``: mean of ``min(c, c_max) / c_max`` on the split)."""
        kind = self.risk.kind
        if kind == "harm":
            return 2.0 * r_loss - 1.0
        if kind == "cost":
            return r_loss * c_max
        if kind == "cost_share":
            a = self.risk.level
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(mean_c > 0, (r_loss - a) / mean_c + a, 0.0)
        return r_loss


def _call_user_loss(risk: Risk, y, p, e, d) -> tuple[np.ndarray, np.ndarray]:
    func = risk.loss
    try:
        params = inspect.signature(func).parameters
        takes_all = any(
            q.kind is inspect.Parameter.VAR_KEYWORD for q in params.values()
        )
        names = _LOSS_ARGS if takes_all else tuple(a for a in _LOSS_ARGS if a in params)
    except (TypeError, ValueError):  # builtins without a signature: give everything
        names = _LOSS_ARGS
    n = y.shape[0]
    out = []
    for delegated in (False, True):
        values = {
            "y": y.astype(int),
            "scores": d if delegated else p,
            "delegated": np.full(n, delegated),
            "probe_scores": p,
            "expert_scores": e,
            "rows": np.arange(n),
        }
        loss = np.asarray(func(**{k: values[k] for k in names}), dtype=float)
        if loss.shape != (n,):
            raise ValueError(
                f"The loss of risk {risk.name!r} returned shape {loss.shape}; it must "
                f"return one loss per row, shape ({n},)."
            )
        if not np.all(np.isfinite(loss)) or np.any((loss < 0) | (loss > 1)):
            raise ValueError(
                f"The loss of risk {risk.name!r} must return values in [0, 1]; got "
                f"values in [{np.nanmin(loss):g}, {np.nanmax(loss):g}]."
            )
        if risk.pvalue == "binomial" and np.any((loss != 0) & (loss != 1)):
            raise ValueError(
                f"Risk {risk.name!r} uses pvalue='binomial', which needs 0/1 losses; "
                "its loss returned other values (use 'wsr' or 'hb')."
            )
        if risk.pvalue == "sign" and np.any((loss != 0) & (loss != 0.5) & (loss != 1)):
            raise ValueError(
                f"Risk {risk.name!r} uses pvalue='sign', which needs losses in "
                "{0, 0.5, 1}."
            )
        out.append(loss)
    return out[0], out[1]


def prepare_risks(risks: list[Risk], y, p, e, d) -> list[PreparedRisk]:
    """Per-row losses (kept / delegated) of every risk on all calibration rows.

    ``d`` is the score of a delegated row (the expert's, or the mean of expert and
    probe); "wrong" and "says safe" are at 0.5, as the accuracy risk.
    """
    n = y.shape[0]
    yb = y.astype(bool)
    wrong_p = (p >= 0.5) != yb
    wrong_d = (d >= 0.5) != yb
    out = []
    for r in risks:
        kind = r.kind
        if kind == "harm":
            keep = np.full(n, 0.5)
            delegate = (wrong_d.astype(float) - wrong_p + 1.0) / 2.0
            out.append(PreparedRisk(r, keep, delegate))
        elif kind == "error":
            out.append(PreparedRisk(r, wrong_p.astype(float), wrong_d.astype(float)))
        elif kind in ("miss", "miss_marginal"):
            keep = (yb & (p < 0.5)).astype(float)
            delegate = (yb & (d < 0.5)).astype(float)
            active = yb.copy() if kind == "miss" else None
            out.append(PreparedRisk(r, keep, delegate, active=active))
        elif kind in ("cost", "cost_share"):
            if r.cost.shape[0] != n:
                raise ValueError(
                    f"cost has {r.cost.shape[0]} rows but the calibration arrays have "
                    f"{n}; give one cost per calibration row."
                )
            zeros = np.zeros(n)
            out.append(PreparedRisk(r, zeros, zeros, cost=r.cost))
        else:
            keep, delegate = _call_user_loss(r, y, p, e, d)
            out.append(PreparedRisk(r, keep, delegate))
    return out


def empirical_risks(
    constraints: Any,
    y: Any,
    probe_scores: Any,
    expert_scores: Any,
    delegated: Any,
    *,
    cost: Any = None,
    combine: str = "replace",
    where: Any = None,
) -> dict:
    """The realised value of each constraint for given delegation decisions.

    What a certificate bounds, measured on data: for example on the evaluation
    rows of a calibration/evaluation split, to check a calibrated threshold.
    Values are in the units of the levels (``"harm"``: the cascade's error minus
    the probe-only error; ``"miss"``: among the unsafe rows; ``"cost"``: mean
    cost per row, uncapped; ``"cost_share"``: delegated cost over total cost).

    Parameters
    ----------
    constraints : mapping or sequence of Risk
        As in :func:`~skctd.calibrate_threshold`.
    y : array-like of shape (n,)
        0/1 labels.
    probe_scores, expert_scores : array-like of shape (n,)
        ``P(y = 1 | x)`` of the probe and of the expert.
    delegated : array-like of bool, shape (n,) or (n, k)
        Which rows the cascade delegates; ``k`` columns evaluate ``k`` sets of
        decisions at once (e.g. one per budget).
    cost : array-like of shape (n,), optional
        Per-row costs, for ``"cost"`` and ``"cost_share"``.
    combine : {"replace", "average"}, default="replace"
        Score of a delegated row: the expert's, or the mean of expert and probe.
    where : array-like of bool, shape (n,) or like ``delegated``, optional
        The rows each column is measured on (e.g. the evaluation rows of each
        split); default all rows.

    Returns
    -------
    risks : dict of str to float or ndarray of shape (k,)
        Per constraint, in the order given; NaN where undefined (``"miss"`` without
        unsafe rows, ``"cost_share"`` with zero total cost).

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.calibration import empirical_risks
    >>> y = np.array([1, 1, 0, 0])
    >>> probe = np.array([0.9, 0.2, 0.1, 0.4])    # wrong on row 1
    >>> expert = np.array([0.8, 0.7, 0.6, 0.3])   # wrong on row 2
    >>> empirical_risks({"harm": 0.0, "miss": 0.1}, y, probe, expert,
    ...                 [False, True, True, False])
    {'harm': 0.0, 'miss': 0.0}
    """
    risks = check_constraints(constraints, cost)
    y = np.asarray(y)
    p = check_scores(probe_scores, "probe_scores")
    e = check_scores(expert_scores, "expert_scores")
    D = np.asarray(delegated, dtype=bool)
    single = D.ndim == 1
    if single:
        D = D[:, None]
    n = y.shape[0]
    if p.shape != (n,) or e.shape != (n,) or D.ndim != 2 or D.shape[0] != n:
        raise ValueError(
            f"y, probe_scores, expert_scores and delegated must have {n} rows; got "
            f"{p.shape}, {e.shape} and {D.shape}."
        )
    W = np.ones_like(D) if where is None else np.asarray(where, dtype=bool)
    if W.ndim == 1:
        W = W[:, None]
    if W.shape[0] != n or W.shape[1] not in (1, D.shape[1]):
        raise ValueError(
            f"where must have shape ({n},) or {D.shape}, got {np.shape(where)}."
        )
    W = np.broadcast_to(W, D.shape)
    if combine not in ("replace", "average"):
        raise ValueError(f"combine must be 'replace' or 'average', got {combine!r}.")
    d = e if combine == "replace" else 0.5 * (e + p)
    out: dict = {}
    for pr in prepare_risks(risks, y, p, e, d):
        kind = pr.risk.kind
        with np.errstate(divide="ignore", invalid="ignore"):
            if kind in ("cost", "cost_share"):
                c = pr.cost[:, None] * W
                spent = (c * D).sum(axis=0)
                total = W.sum(axis=0) if kind == "cost" else c.sum(axis=0)
                value = np.where(total > 0, spent / total, np.nan)
            else:
                Wk = W if pr.active is None else W & pr.active[:, None]
                keep = pr.keep[:, None]
                loss = keep + D * (pr.delegate[:, None] - keep)
                count = Wk.sum(axis=0)
                value = np.where(count > 0, (loss * Wk).sum(axis=0) / count, np.nan)
                if kind == "harm":
                    value = 2.0 * value - 1.0
        out[pr.name] = float(value[0]) if single else np.asarray(value, dtype=float)
    return out


# --------------------------------------------------------------------------------------
# per-threshold sums
# --------------------------------------------------------------------------------------
def threshold_sums(bins, grid, keep, delegate, power: int = 1) -> np.ndarray:
    """For every threshold of ``grid``: the sum over the rows of ``loss ** power``.

    A row contributes ``keep`` when kept and ``delegate`` when delegated (signal
    above the threshold), so the sum is the kept total plus the suffix sums of
    ``delegate - keep`` over the rows' :func:`threshold_bins` (via
    :func:`count_above`).
    """
    if power != 1:
        keep, delegate = keep**power, delegate**power
    return float(np.sum(keep)) + count_above(bins, grid, delegate - keep)


def threshold_counts(bins, grid, keep, delegate, value: float) -> np.ndarray:
    """For every threshold: the number of rows whose loss equals ``value``."""
    k = (keep == value).astype(np.int64)
    dlt = (delegate == value).astype(np.int64) - k
    return np.rint(int(k.sum()) + count_above(bins, grid, dlt)).astype(np.int64)

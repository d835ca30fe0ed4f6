"""DV probes trained on the binary vs the continuous delegation value (Appendix A)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from skctd.evaluation._metrics import METRICS
from skctd.evaluation._results import TableMixin
from skctd.evaluation._sweep import SweepResult, budget_sweep, check_methods
from skctd.utils import to_jsonable

__all__ = ["BinaryContinuousResult", "binary_vs_continuous"]


@dataclass(repr=False, eq=False)
class BinaryContinuousResult(TableMixin):
    """Result of :func:`binary_vs_continuous`.

    Attributes
    ----------
    binary, continuous : SweepResult
        The sweeps with the DV probe trained on each formulation.
    table : dict of str to ndarray
        ``method``, ``batch_size``, ``alpha``, and per metric the binary, the
        continuous value and ``diff_<metric>`` = continuous - binary.
    """

    binary: SweepResult
    continuous: SweepResult
    table: dict

    def to_dict(self) -> dict:
        """JSON-serialisable dict of the comparison table."""
        return to_jsonable({"table": self.table})

    def __repr__(self) -> str:
        return f"BinaryContinuousResult(n_alphas={self.binary.alphas.size})"


def binary_vs_continuous(
    y: Any,
    probe_scores: Any,
    expert_scores: Any,
    dv_binary: Any,
    dv_continuous: Any,
    *,
    methods: Sequence[str] = ("dv_topk", "ctd"),
    batch_size: int = 128,
    **sweep_params: Any,
) -> BinaryContinuousResult:
    """Compare DV probes trained on the binary and on the continuous DV (Appendix A).

    Runs :func:`budget_sweep` twice on the same split (same ``random_state`` or
    ``calibration_mask``), once with each DV probe's predictions as the signal.

    Parameters
    ----------
    y, probe_scores, expert_scores : array-like of shape (n,)
    dv_binary, dv_continuous : array-like of shape (n,)
        Predictions of the DV probe trained on the binary and on the continuous
        delegation value.
    methods : sequence of str, default=("dv_topk", "ctd")
        Methods that use the DV signal (the paper's Table 2 is DV top-k).
    batch_size : int, default=128
    **sweep_params
        Other keyword arguments of :func:`budget_sweep` (``alphas``,
        ``calibration_mask``, ``random_state``, ...).

    Returns
    -------
    result : BinaryContinuousResult

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.evaluation import binary_vs_continuous
    >>> rng = np.random.default_rng(0)
    >>> n = 1000
    >>> y = rng.integers(0, 2, n)
    >>> probe = rng.uniform(size=n)
    >>> expert = np.where(y == 1, 0.9, 0.1)
    >>> v = np.where(y == 1, expert - probe, probe - expert)
    >>> res = binary_vs_continuous(y, probe, expert, (v > 0.4).astype(float), v,
    ...                            alphas=[0.2, 0.4])
    >>> sorted(set(res.table["method"]))
    ['ctd', 'dv_topk']
    """
    methods = check_methods(methods)
    bad = [m for m in methods if m not in ("ctd", "dv_topk")]
    if bad:
        raise ValueError(
            f"methods must use the DV signal ('ctd', 'dv_topk'), got {bad}."
        )
    for key in ("methods", "batch_sizes", "dv_scores"):
        if key in sweep_params:
            raise TypeError(f"binary_vs_continuous sets {key!r} itself.")
    common = dict(methods=methods, batch_sizes=[batch_size], **sweep_params)
    rb = budget_sweep(y, probe_scores, expert_scores, dv_binary, **common)
    rc = budget_sweep(y, probe_scores, expert_scores, dv_continuous, **common)
    table = {k: rb.table[k] for k in ("method", "batch_size", "alpha")}
    for m in METRICS:
        table[f"{m}_binary"] = rb.table[m]
        table[f"{m}_continuous"] = rc.table[m]
        table[f"diff_{m}"] = rc.table[m] - rb.table[m]
    return BinaryContinuousResult(binary=rb, continuous=rc, table=table)

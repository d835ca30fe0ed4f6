"""MonitorDisplay: the running rate with its band, the martingale, the alarms."""

from __future__ import annotations

import numpy as np
import pytest

from skctd import CalibratedDelegationCascade, DelegationMonitor
from skctd.plotting import MonitorDisplay

pytest.importorskip("matplotlib")


def _expert(rows):
    return 1.0 / (1.0 + np.exp(-3.0 * rows[:, 0]))


@pytest.fixture(scope="module")
def monitor():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 2))
    y = (X[:, 0] > 0).astype(int)
    cascade = CalibratedDelegationCascade(
        _expert, probe=LogisticRegression(), alpha=0.2, random_state=0
    ).fit(X, y)
    mon = DelegationMonitor(cascade, trace_size=200, random_state=0)
    mon.fit(signal=rng.normal(size=800), probe_scores=rng.random(800))
    for p, shift in ((0.1, 0.0), (0.45, 1.0)):
        for _ in range(20):
            mon.update(
                {
                    "delegated": rng.random(100) < p,
                    "signal": rng.normal(shift, 1, 100),
                    "probe_scores": rng.random(100),
                }
            )
    return mon


def test_from_monitor(monitor):
    import matplotlib.pyplot as plt

    disp = MonitorDisplay.from_monitor(monitor, name="live", lw=3)
    assert len(disp.ax_) == 2 and disp.figure_._suptitle.get_text() == "live"
    left, right = disp.ax_
    assert right.get_yscale() == "log" and disp.rate_line_.get_linewidth() == 3
    assert len(monitor.alarms_) == 2
    assert len(disp.alarm_lines_) == 4  # each alarm on both panels
    rows = [line.get_xdata()[0] for line in disp.alarm_lines_[::2]]
    assert rows == [a.row for a in monitor.alarms_]
    alpha_lines = [ln for ln in left.get_lines() if ln.get_label().startswith("budget")]
    assert alpha_lines[0].get_ydata()[0] == 0.2
    np.testing.assert_allclose(
        disp.martingale_line_.get_ydata(),
        np.exp(monitor.trace_["exchangeability"]["log_e"]),
    )
    plt.close("all")


def test_needs_a_trace_and_two_axes(monitor):
    import matplotlib.pyplot as plt

    bare = DelegationMonitor(monitor.cascade, trace_size=0).fit()
    with pytest.raises(ValueError, match="no trace"):
        MonitorDisplay.from_monitor(bare)
    _, ax = plt.subplots(1, 3)
    with pytest.raises(ValueError, match="2 Axes"):
        MonitorDisplay.from_monitor(monitor, ax=ax)
    _, ax = plt.subplots(1, 2)
    disp = MonitorDisplay.from_monitor(monitor, ax=ax)
    assert disp.ax_[0] is ax[0]
    plt.close("all")

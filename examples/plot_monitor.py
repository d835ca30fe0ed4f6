"""
=========================================
Monitoring a deployed cascade with alarms
=========================================

A calibrated cascade keeps its promises only while live traffic looks like its
calibration data. This example serves a stream through a
:class:`~skctd.DelegationMonitor` that watches, after every row and without
inflating false alarms:

* the share of inputs sent to the expert, against the budget ``alpha``;
* whether the delegation signal and the probe scores still look like the
  calibration rows' (no labels needed);
* when labels arrive -- here 300 rows late -- the cascade's error rate.

Half-way through, the traffic changes: a new kind of input on which the
cascade delegates more (44 % of the rows instead of 16 %) and errs more (26 %
instead of 17 %). The monitor raises its alarms, and
:class:`~skctd.plotting.MonitorDisplay` shows the running delegation rate with
its anytime-valid band, the test martingale, and the alarm times.
"""

# %%
# A cascade and its calibration rows
# ----------------------------------
# Three features; the label depends on an interaction the linear probe cannot
# represent, which the expert (a function of the raw row) knows.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression

from skctd import CalibratedDelegationCascade, DelegationMonitor
from skctd.plotting import MonitorDisplay

rng = np.random.default_rng(0)


def make_rows(n, shift=0.0, noise=0.3):
    X = rng.normal(size=(n, 3))
    X[:, 1:] += shift  # the new traffic: larger interactions...
    z = X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(0, noise, n)  # ...and noisier labels
    return X, (z > 0).astype(int)


def expert(rows):
    return 1 / (1 + np.exp(-5 * (rows[:, 0] + rows[:, 1] * rows[:, 2])))


X_train, y_train = make_rows(1000)
X_cal, y_cal = make_rows(1000)
cascade = CalibratedDelegationCascade(
    expert,
    probe=LogisticRegression(),
    alpha=0.2,
    calibration_size=None,
    random_state=0,
).fit(X_train, y_train)
cascade.calibrate(X_cal, y_cal)
print(cascade.calibration_)

# %%
# The monitor
# -----------
# The calibration rows are the reference of the exchangeability test. The budget
# limit comes from the cascade; we add a limit on the error rate (the cascade
# errs on about 17 % of this traffic). Each monitor raises a false alarm with
# probability at most ``level`` over the whole stream.
alarms = []
monitor = DelegationMonitor(
    cascade,
    level=0.05,
    limits={"error": 0.2},
    callbacks=alarms.append,
    random_state=0,
).fit(X_cal)
print(monitor.limits_)

# %%
# Serving
# -------
# 4,000 rows like the calibration data, then 4,000 rows of the new traffic, in
# batches of 50 (one row at a time works the same). Each row gets an id; its
# label arrives 300 rows later.
X_old, y_old = make_rows(4000)
X_new, y_new = make_rows(4000, shift=0.8, noise=1.5)
X_stream, y_stream = np.vstack([X_old, X_new]), np.r_[y_old, y_new]
ids = np.arange(len(y_stream))
delay, batch = 300, 50
for start in range(0, len(y_stream), batch):
    rows = slice(start, start + batch)
    monitor.route(X_stream[rows], ids=ids[rows])
    if start >= delay:
        late = slice(start - delay, start - delay + batch)
        monitor.update_labels(y_stream[late], ids=ids[late])

for alarm in alarms:
    print(
        f"{alarm.monitor:>16}: stream row {alarm.row:,} "
        f"({alarm.row - 4000:+,} rows after the change)"
    )

# %%
# Each alarm says what crossed, when, with which numbers, and what to do:
print(alarms[0])

# %%
# The counters are plain numbers for a dashboard (and
# ``monitor.register_prometheus()`` exports them when ``prometheus_client`` is
# installed):
print(monitor.summary())

# %%
# What the monitor saw
# --------------------
# Left: the delegation rate since the start with its anytime-valid band, the
# recent rate and the alarm's lower bound, which crosses ``alpha`` soon after the
# change. Right: the exchangeability test martingale on a log scale; it crosses
# ``1 / level`` within about a hundred rows.
MonitorDisplay.from_monitor(monitor)
plt.show()

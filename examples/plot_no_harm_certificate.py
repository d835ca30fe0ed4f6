"""
==========================================================
The no-harm certificate refuses a harmful expert
==========================================================

The paper's procedure (plain CTD) certifies the delegation *budget* only. The
threshold it deploys is the one with the best accuracy on a small optimisation
split, and on a small calibration set that split is noisy: with an expert that
is no better than a coin, plain CTD regularly "finds" a threshold that seems to
help there, delegates, and makes the cascade less accurate than its own probe.

``constraints={"harm": 0.0}`` certifies, together with the budget, that the
cascade's error does not exceed the probe-only error (with probability at least
``1 - delta`` over the calibration data). With a useless expert no delegating
threshold can be certified, so the cascade provably falls back to the probe,
and ``calibration_`` says why. See :ref:`guarantees`.
"""

# %%
# A probe that is often unsure, and an expert at chance
# -----------------------------------------------------
# Six standard-normal features; the label is a noisy logistic function of the
# first two, so a linear probe is right about 80 % of the time and unsure on
# many inputs. The "expert" reads only an irrelevant feature: it is a confident
# coin flip. (A module-level function, not a lambda, keeps the cascade
# picklable.)
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression

from skctd import CalibratedDelegationCascade

rng = np.random.default_rng(0)
n = 14000
X = rng.standard_normal((n, 6))
y = (rng.random(n) < 1 / (1 + np.exp(-2.0 * (X[:, 0] + 0.5 * X[:, 1])))).astype(int)


def coin_expert(X_rows):
    return 1 / (1 + np.exp(-4.0 * np.asarray(X_rows)[:, 5]))


X_train, y_train = X[:2000], y[:2000]  # probe and DV probe
X_pool, y_pool = X[2000:4000], y[2000:4000]  # calibration sets are drawn here
X_test, y_test = X[4000:], y[4000:]  # 10,000 rows: the "true" accuracy

# %%
# Two cascades: plain CTD and the no-harm certificate
# ---------------------------------------------------
# Both train their probes on ``X_train`` (``calibration_size=None``) and are then
# calibrated on a small held-out set of 150 rows: as small as a first deployment
# or the ``skctd demo`` data. The probe is a plain logistic regression (the
# default probe also tunes its regularisation by cross-validation).
alpha, delta, n_cal = 0.5, 0.1, 150
params = dict(
    probe=LogisticRegression(), alpha=alpha, delta=delta, calibration_size=None,
    random_state=0,
)
plain = CalibratedDelegationCascade(coin_expert, **params).fit(X_train, y_train)
safe = CalibratedDelegationCascade(
    coin_expert, constraints={"harm": 0.0}, **params
).fit(X_train, y_train)

# What does not depend on the threshold is computed once for the test rows: the
# probe's scores, the expert's and the delegation signal (the DV probe).
route = plain.route(X_test, call_expert=False)
probe_test, signal_test = route.probe_scores, route.signal
expert_test = coin_expert(X_test)
probe_acc = np.mean((probe_test >= 0.5) == y_test)
print(f"probe-only accuracy {probe_acc:.3f}, "
      f"expert-only accuracy {np.mean((expert_test >= 0.5) == y_test):.3f}")


def test_accuracy(threshold):
    """Cascade accuracy on the test rows and its delegation rate."""
    delegated = signal_test > threshold
    scores = np.where(delegated, expert_test, probe_test)
    return np.mean((scores >= 0.5) == y_test), delegated.mean()


# %%
# Many calibration draws
# ----------------------
# We recalibrate both cascades on 200 random calibration sets of 150 rows and
# measure, each time, the accuracy gain over the probe alone on the 10,000 test
# rows.
n_draws = 200
gain = {"plain CTD": np.empty(n_draws), "harm <= 0": np.empty(n_draws)}
rate = {k: np.empty(n_draws) for k in gain}
first_harmful = None
for d in range(n_draws):
    idx = np.random.default_rng(d).choice(len(y_pool), n_cal, replace=False)
    for name, est in (("plain CTD", plain), ("harm <= 0", safe)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "nothing certified"
            est.calibrate(X_pool[idx], y_pool[idx])
        acc, r = test_accuracy(est.threshold_)
        gain[name][d], rate[name][d] = acc - probe_acc, r
    if first_harmful is None and gain["plain CTD"][d] < 0:
        first_harmful = d

for name in gain:
    g = 100 * gain[name]
    print(f"{name:>10}: delegates on {np.mean(rate[name] > 0):.0%} of the draws, "
          f"below the probe on {np.mean(g < 0):.0%}; mean accuracy gain "
          f"{g.mean():+.2f} points (worst {g.min():+.2f})")

# %%
# The accuracy gain per draw: plain CTD is often below zero (below the probe);
# the certified cascade never delegates to this expert, so it stays at zero.
fig, ax = plt.subplots(figsize=(6.4, 3.6))
for k, (name, g) in enumerate(gain.items()):
    jitter = np.random.default_rng(k).uniform(-0.15, 0.15, n_draws)
    ax.scatter(100 * g, k + jitter, s=10, alpha=0.5, label=name)
ax.axvline(0.0, color="black", lw=1)
ax.set_yticks([0, 1], list(gain))
ax.set_xlabel("test accuracy minus probe-only accuracy (points)")
ax.set_title(f"Expert at chance, {n_cal} calibration rows, alpha = {alpha}")
fig.tight_layout()

# %%
# One calibration set, in detail
# ------------------------------
# Take the first draw on which plain CTD ends below the probe, and ask the
# certified cascade what it certified and why it does not delegate.
idx = np.random.default_rng(first_harmful).choice(len(y_pool), n_cal, replace=False)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    plain.calibrate(X_pool[idx], y_pool[idx])
    safe.calibrate(X_pool[idx], y_pool[idx])
acc, r = test_accuracy(plain.threshold_)
print(f"plain CTD delegates {r:.1%} of the test rows, accuracy {acc:.3f} "
      f"(probe alone {probe_acc:.3f})")
cr = safe.calibration_
print("certified:", cr.guarantee())
print("threshold:", safe.threshold_, "- blocked by:", cr.blocked_by)
for w in caught:
    print("warning:", w.message)

# %%
# The certificate holds at ``threshold = +inf`` without any test (the cascade is
# then the probe), so refusing the expert is always possible. With an expert that
# does help, the same constraint lets the cascade delegate once the calibration
# set is large enough to show it: see the measured power in :ref:`guarantees`.

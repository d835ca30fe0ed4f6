"""DelegationMonitor on a real cascade: limits, alarms, labels, hooks, counters."""

from __future__ import annotations

import copy
import logging
import math
import sys
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from skctd import (
    CalibratedDelegationCascade,
    DelegationMonitor,
    MonitorAlarm,
    calibrate_threshold,
)


def _truth(X):
    return X[:, 0] + X[:, 1] * X[:, 2] > 0


def _expert(rows):
    return 1.0 / (1.0 + np.exp(-5.0 * (rows[:, 0] + rows[:, 1] * rows[:, 2])))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6000, 3))
    return X, _truth(X).astype(int)


@pytest.fixture(scope="module")
def cascade(data):
    X, y = data
    return (
        CalibratedDelegationCascade(
            _expert,
            probe=LogisticRegression(),
            alpha=0.2,
            calibration_size=None,
            dv_features="activations",
            combine="replace",
            random_state=0,
        )
        .fit(X[:1000], y[:1000])
        .calibrate(X[1000:2000], y[1000:2000])
    )


def _routing(delegated, signal=None, probe=None, scores=None):
    n = len(delegated)
    rng = np.random.default_rng(n)
    return {
        "delegated": np.asarray(delegated, dtype=bool),
        "signal": rng.normal(size=n) if signal is None else signal,
        "probe_scores": rng.random(n) if probe is None else probe,
        "scores": rng.random(n) if scores is None else scores,
    }


def _fit(monitor):
    """Fit on a reference like the random routings of ``_routing``."""
    rng = np.random.default_rng(99)
    return monitor.fit(signal=rng.normal(size=1000), probe_scores=rng.random(1000))


def test_budget_alarm_says_what_crossed_when_and_what_to_do(cascade, caplog):
    got = []
    monitor = DelegationMonitor(cascade, callbacks=got.append, random_state=0)
    _fit(monitor)
    assert monitor.limits_ == {"budget": cascade.calibration_.alpha}
    rng = np.random.default_rng(2)
    for _ in range(30):  # 3,000 rows at a rate of 0.1: quiet
        assert monitor.update(_routing(rng.random(100) < 0.1)) == []
    with caplog.at_level(logging.WARNING, logger="skctd.monitor"):
        new = []
        for _ in range(30):  # the rate rises to 0.4
            new += monitor.update(_routing(rng.random(100) < 0.4))
    assert [a.monitor for a in new] == ["budget"] and got == new
    alarm = new[0]
    assert isinstance(alarm, MonitorAlarm)
    assert 3000 < alarm.row < 3800 and alarm.n_observations == alarm.row
    assert alarm.lower > 0.2 and alarm.limit == 0.2 and alarm.level == 0.05
    assert alarm.estimate > 0.25  # the recent rate
    assert alarm.upper < alarm.lower  # the running interval lags behind the rise
    assert math.isnan(alarm.e_value)
    assert f"after {alarm.row:,} rows" in alarm.message
    assert "budget alpha 0.2" in alarm.message
    assert "cascade.calibrate(X_new, y_new)" in alarm.action
    assert "Do not recalibrate on the rows that raised this alarm" in alarm.action
    assert caplog.records[0].levelno == logging.WARNING
    assert "[budget]" in caplog.records[0].getMessage()
    c = monitor.counters()
    assert c["budget_alarm"] == 1 and c["alarms"] == 1 and c["rows"] == 6000
    assert c["budget_lower"] > 0.2 and c["budget_limit"] == 0.2
    # one alarm per monitor: later rows keep updating the bounds, no new alarm
    assert monitor.update(_routing(np.ones(50, dtype=bool))) == []
    d = alarm.to_dict()
    assert d["e_value"] is None and d["monitor"] == "budget"


def test_route_watches_exchangeability_without_labels(cascade, data):
    X, _ = data
    monitor = DelegationMonitor(cascade, random_state=0).fit(X[1000:2000])
    assert monitor.channels_ == ["signal", "probe_scores"]
    routing = monitor.route(X[2000:4000], call_expert=False)
    assert routing["alarms"] == [] and routing["delegated"].size == 2000
    assert np.isnan(routing["expert_scores"]).all()  # the expert was not called
    routing = monitor.route(X[4000:6000] + np.array([0.0, 1.5, 1.5]), call_expert=False)
    alarm = routing["alarms"][0]
    assert alarm.monitor == "exchangeability" and 2000 < alarm.row < 2400
    assert alarm.e_value >= 20 and alarm.limit == 20
    assert "mean percentile" in alarm.message and math.isnan(alarm.lower)
    assert monitor.counters()["exchangeability_alarm"] == 1


def test_limits_follow_the_cascade_constraints(cascade):
    constrained = copy.copy(cascade)
    constrained.calibration_ = SimpleNamespace(
        alpha=0.15,
        constraints=("budget", "harm", "error", "my_loss"),
        levels={"harm": 0.0, "error": 0.1, "my_loss": 0.2},
    )
    monitor = DelegationMonitor(constrained).fit()
    assert monitor.limits_ == {"budget": 0.15, "harm": 0.0, "error": 0.1}
    assert monitor.unmonitored_constraints_ == ["my_loss"]
    assert set(monitor.limit_sources_.values()) == {"cascade"}
    assert "not monitored (user losses): my_loss" in monitor.summary()
    monitor = DelegationMonitor(
        constrained, limits={"error": None, "miss": 0.3, "budget": 0.25}
    ).fit()
    assert monitor.limits_ == {"budget": 0.25, "harm": 0.0, "miss": 0.3}
    assert monitor.limit_sources_ == {
        "budget": "limits",
        "harm": "cascade",
        "miss": "limits",
    }
    # error is still tracked, just without an alarm
    assert "error_limit" not in monitor.counters() and "error_n" in monitor.counters()


def test_limits_from_a_multi_risk_calibration(cascade):
    # the record calibrate_threshold writes for constraints (issue 15)
    rng = np.random.default_rng(0)
    n = 3000
    y = rng.integers(0, 2, n)
    p = np.clip(0.5 + (2 * y - 1) * rng.normal(0.15, 0.3, n), 0, 1)
    e = np.clip(y + rng.normal(0, 0.2, n), 0, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = calibrate_threshold(
            rng.normal(size=n),
            y,
            p,
            e,
            alpha=0.3,
            delta=0.1,
            random_state=0,
            constraints={"harm": 0.05, "error": 0.3, "cost": 2.0},
            cost=rng.uniform(0, 10, n),
        )
    constrained = copy.copy(cascade)
    constrained.calibration_ = result
    monitor = DelegationMonitor(constrained).fit()
    assert monitor.limits_ == {"budget": 0.3, "harm": 0.05, "error": 0.3, "cost": 2.0}
    assert monitor.cost_max_ == pytest.approx(result.cost_scale["cost"][0])
    assert set(monitor.tracked_) >= {"budget", "cost", "harm", "error"}
    with pytest.raises(ValueError, match="pass costs"):
        monitor.update(_routing(np.zeros(3)))


def test_delayed_labels_by_id(cascade, data):
    X, y = data
    monitor = DelegationMonitor(
        cascade, limits={"error": 0.15, "harm": 0.0}, random_state=0
    ).fit(X[1000:2000])
    ids = [f"r{i}" for i in range(2000, 6000)]
    labels = y[2000:6000].copy()
    labels[2000:] = 1 - labels[2000:]  # the world changes: labels flip half-way
    alarms = []
    for start in range(0, 4000, 200):
        routing = monitor.route(
            X[2000 + start : 2200 + start], ids=ids[start : start + 200]
        )
        assert routing["expert_report"].n_rows == routing["delegated"].sum()
        late = start - 400  # labels arrive 400 rows late
        if late >= 0:
            alarms += monitor.update_labels(
                labels[late : late + 200], ids=ids[late : late + 200]
            )
    c = monitor.counters()
    assert c["labels"] == 3600 and c["labels_pending"] == 400
    assert c["miss_n"] == int(labels[:3600].sum())  # unsafe rows only
    assert {a.monitor for a in alarms} >= {"error"}
    err = next(a for a in alarms if a.monitor == "error")
    assert (
        2000 < err.n_observations < 2400
        and err.row
        == err.n_observations + 400 + 200 - (err.n_observations % 200 or 200)
    )
    assert "labels" in err.message and err.lower > 0.15
    # before the flip the cascade is accurate and not worse than the probe
    assert c["error_estimate"] > 0.3 and c["harm_estimate"] <= 0.05
    # unknown ids are counted, not fatal
    assert monitor.update_labels([1, 0], ids=["nope", ids[-1]]) == []
    assert monitor.counters()["labels_unmatched"] == 1


def test_labels_with_their_routing_and_harm_units(cascade):
    monitor = DelegationMonitor(cascade, limits={"harm": 0.0}).fit()
    n = 4000
    rng = np.random.default_rng(3)
    y = rng.random(n) < 0.5
    probe = np.where(y, 0.8, 0.2)  # the probe is always right
    scores = probe.copy()
    worse = rng.random(n) < 0.1  # the cascade is wrong on 10 % of rows
    scores[worse] = 1 - scores[worse]
    alarms = monitor.update_labels(
        y.astype(int), routing=_routing(worse, probe=probe, scores=scores)
    )
    assert [a.monitor for a in alarms] == ["harm"]
    c = monitor.counters()
    assert c["harm_estimate"] == pytest.approx(worse.mean())  # excess error, not loss
    assert c["error_estimate"] == pytest.approx(worse.mean())
    assert 0 < alarms[0].lower < c["harm_upper"] + 0.1 and alarms[0].limit == 0.0


def test_pending_rows_are_bounded(cascade):
    monitor = DelegationMonitor(cascade, max_pending=10).fit()
    monitor.update(_routing(np.zeros(25)), ids=range(25))
    c = monitor.counters()
    assert c["labels_pending"] == 10 and c["labels_expired"] == 15
    monitor.update_labels([0, 1], ids=[0, 24])  # 0 was dropped, 24 is kept
    c = monitor.counters()
    assert c["labels_unmatched"] == 1 and c["labels"] == 1 and c["labels_pending"] == 9


def test_cost_limit(cascade):
    monitor = _fit(
        DelegationMonitor(cascade, limits={"cost": 2.0, "budget": None}, cost_max=10.0)
    )
    with pytest.raises(ValueError, match="pass costs"):
        monitor.update(_routing(np.zeros(5)))
    rng = np.random.default_rng(4)
    new = []
    for _ in range(40):
        delegated = rng.random(100) < 0.5
        costs = rng.uniform(0, 20, 100)  # capped at cost_max = 10
        new += monitor.update(_routing(delegated), costs=costs)
    assert [a.monitor for a in new] == ["cost"]  # 0.5 * E[min(c, 10)] = 3.75 > 2
    c = monitor.counters()
    assert c["cost_estimate"] == pytest.approx(3.75, abs=0.2)
    assert new[0].n_observations < 1000
    assert new[0].lower > 2.0 and new[0].limit == 2.0
    with pytest.raises(ValueError, match="cost_max"):
        DelegationMonitor(cascade, limits={"cost": 2.0}).fit()
    with pytest.raises(ValueError, match="not below cost_max"):
        DelegationMonitor(cascade, limits={"cost": 20.0}, cost_max=10.0).fit()


def test_failing_callback_is_counted_not_raised(cascade, caplog):
    def broken(alarm):
        raise RuntimeError("pager down")

    calls = []
    monitor = _fit(DelegationMonitor(cascade, callbacks=[broken, calls.append]))
    with caplog.at_level(logging.ERROR, logger="skctd.monitor"):
        new = monitor.update(_routing(np.ones(2000, dtype=bool)))
    assert len(new) == 1 and calls == new
    assert monitor.counters()["callback_errors"] == 1
    failed = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failed) == 1 and "pager down" in str(failed[0].exc_info[1])


def test_prometheus_export(cascade):
    prometheus_client = pytest.importorskip("prometheus_client")
    registry = prometheus_client.CollectorRegistry()
    monitor = DelegationMonitor(cascade).fit()
    monitor.update(_routing(np.zeros(100, dtype=bool)))
    collector = monitor.register_prometheus(registry, prefix="ctd")
    text = prometheus_client.generate_latest(registry).decode()
    assert "ctd_rows 100.0" in text and "ctd_budget_upper" in text
    assert "ctd_exchangeability_log_e" in text
    monitor.update(_routing(np.zeros(50, dtype=bool)))  # read at scrape time
    assert "ctd_rows 150.0" in prometheus_client.generate_latest(registry).decode()
    registry.unregister(collector)


def test_prometheus_missing(cascade, monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.setitem(sys.modules, "prometheus_client.core", None)
    monitor = DelegationMonitor(cascade).fit()
    with pytest.raises(ImportError, match=r"skctd\[monitor\]"):
        monitor.register_prometheus()


def test_trace_is_bounded(cascade):
    monitor = DelegationMonitor(cascade, trace_size=50).fit()
    for _ in range(100):
        monitor.update(_routing(np.zeros(100, dtype=bool)))
    trace = monitor.trace_
    assert 25 <= trace["budget"]["step"].size <= 50
    assert (
        trace["budget"]["row"][-1] <= 10_000
        and trace["exchangeability"]["log_e"].size <= 50
    )
    assert np.all(np.diff(trace["budget"]["step"]) > 0)
    quiet = DelegationMonitor(cascade, trace_size=0).fit()
    quiet.update(_routing(np.zeros(100, dtype=bool)))
    assert quiet.trace_ == {}


def test_batching_gives_the_same_alarms(cascade):
    rng = np.random.default_rng(6)
    n = 3000
    routing = _routing(
        np.r_[rng.random(1500) < 0.1, rng.random(1500) < 0.5],
        signal=np.r_[rng.normal(size=1500), rng.normal(1, 1, 1500)],
    )
    ref = rng.normal(size=300)
    results = []
    for step in (1, 7, 3000):
        monitor = DelegationMonitor(cascade, random_state=0).fit(signal=ref)
        for s in range(0, n, step):
            monitor.update({k: v[s : s + step] for k, v in routing.items()})
        results.append(
            ([(a.monitor, a.row) for a in monitor.alarms_], monitor.counters())
        )
    assert [m for m, _ in results[0][0]] == ["exchangeability", "budget"]  # by row
    assert results[0][0] == results[1][0] == results[2][0]
    for _, counters in results[1:]:
        assert counters == pytest.approx(results[0][1], rel=1e-9, abs=1e-12)


def test_reference_choices(cascade):
    monitor = DelegationMonitor(cascade).fit()  # the probe scores the cascade kept
    assert monitor.channels_ == ["probe_scores"]
    assert monitor.exchangeability_.n_reference_ == 750  # 1000 rows, 25 % for the bins
    monitor = DelegationMonitor(cascade).fit(signal=np.arange(100.0))
    assert monitor.channels_ == ["signal"]
    with pytest.raises(ValueError, match="not both"):
        DelegationMonitor(cascade).fit(np.zeros((10, 3)), signal=np.zeros(10))
    bare = copy.copy(cascade)
    bare.reference_scores_ = np.empty(0)
    monitor = DelegationMonitor(bare).fit()
    assert monitor.exchangeability_ is None and monitor.channels_ == []
    monitor.update({"delegated": np.zeros(3, dtype=bool)})  # no signal needed then
    assert "exchangeability_log_e" not in monitor.counters()


def test_summary_and_repr(cascade):
    monitor = DelegationMonitor(cascade, limits={"error": 0.2})
    assert "unfitted" in repr(monitor)
    monitor.fit()
    monitor.update(_routing(np.zeros(100, dtype=bool)))
    monitor.update_labels(np.zeros(10, dtype=int), routing=_routing(np.zeros(10)))
    text = monitor.summary()
    assert text.startswith("DelegationMonitor: 100 rows, 10 labels, 0 alarm(s)")
    assert "budget" in text and "(limit 0.2)" in text and "exchangeability" in text
    assert "rows=100" in repr(monitor)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"limits": {"latency": 0.1}}, "unknown name 'latency'"),
        ({"limits": {"harm": 1.0}}, r"limits\['harm'\]"),
        ({"limits": {"error": 0.0}}, r"limits\['error'\]"),
        ({"limits": {"cost": -1}, "cost_max": 1.0}, r"limits\['cost'\]"),
        ({"limits": [0.1]}, "limits must be a dict"),
        ({"level": 0.0}, "level"),
        ({"window": 0}, "window"),
        ({"trace_size": -1}, "trace_size"),
        ({"callbacks": 3}, "callbacks"),
        ({"max_pending": 0}, "max_pending"),
    ],
)
def test_bad_parameters(cascade, kwargs, match):
    with pytest.raises(ValueError, match=match):
        DelegationMonitor(cascade, **kwargs).fit()


def test_bad_calls(cascade):
    with pytest.raises(NotFittedError):
        DelegationMonitor(CalibratedDelegationCascade(_expert)).fit()
    monitor = DelegationMonitor(cascade)
    with pytest.raises(ValueError, match="not fitted yet"):
        monitor.update(_routing(np.zeros(3)))
    monitor.fit()
    with pytest.raises(ValueError, match="routing has no 'probe_scores'"):
        monitor.update({"delegated": np.zeros(3, dtype=bool)})
    with pytest.raises(ValueError, match="routing has no 'delegated'"):
        monitor.update({})
    with pytest.raises(ValueError, match="either the ids"):
        monitor.update_labels([0, 1])
    with pytest.raises(ValueError, match="ids has 1 entries but y has 2"):
        monitor.update_labels([0, 1], ids=["a"])
    with pytest.raises(ValueError, match="not among the known classes"):
        monitor.update_labels([0, 7], routing=_routing(np.zeros(2)))
    with pytest.raises(ValueError, match="ids has 2 entries but the batch has 3"):
        monitor.update(_routing(np.zeros(3)), ids=["a", "b"])


def _null_population(n=100_000, seed=0):
    """Routed rows sitting exactly on every null: rate = alpha, harm = 0."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    y = rng.random(n) < 1 / (1 + np.exp(-8 * z))
    logit = 6 * z + rng.normal(0, 1.5, n)
    probe = 1 / (1 + np.exp(-logit))
    signal = -0.5 * np.abs(logit) + rng.normal(0, 0.5, n)
    delegated = signal > np.sort(signal)[n - n // 5 - 1]  # exactly 20 %
    probe_pos = probe >= 0.5
    wrong = probe_pos != y
    fix = rng.choice(np.flatnonzero(delegated & wrong), 2000, replace=False)
    brk = rng.choice(np.flatnonzero(delegated & ~wrong), 2000, replace=False)
    cascade_pos = probe_pos.copy()
    cascade_pos[np.r_[fix, brk]] ^= True  # the expert fixes as many as it breaks
    scores = np.where(delegated, np.where(cascade_pos, 0.8, 0.2), probe)
    return {
        "y": y,
        "probe": probe,
        "signal": signal,
        "delegated": delegated,
        "scores": scores,
        "error": float(np.mean(cascade_pos != y)),
        "miss": float(np.mean(~cascade_pos[y])),
    }


@pytest.mark.slow
def test_false_alarms_of_every_monitor(cascade):
    pop = _null_population()
    limits = {"budget": 0.2, "error": pop["error"], "miss": pop["miss"], "harm": 0.0}
    names = ("budget", "exchangeability", "error", "miss", "harm")
    n_streams, length = 200, 10_000
    alarms = dict.fromkeys(names, 0)
    rng = np.random.default_rng(1)
    for s in range(n_streams):
        ref = rng.integers(0, pop["y"].size, 1000)
        idx = rng.integers(0, pop["y"].size, length)
        monitor = DelegationMonitor(cascade, limits=limits, random_state=s)
        monitor.fit(signal=pop["signal"][ref], probe_scores=pop["probe"][ref])
        for start in range(0, length, 1000):
            rows = idx[start : start + 1000]
            routing = {k: pop[k][rows] for k in ("delegated", "signal", "scores")}
            routing["probe_scores"] = pop["probe"][rows]
            monitor.update(routing)
            monitor.update_labels(pop["y"][rows].astype(int), routing=routing)
        for name in {a.monitor for a in monitor.alarms_}:
            alarms[name] += 1
    bound = 0.05 + 3 * math.sqrt(0.05 * 0.95 / n_streams)
    assert max(alarms.values()) / n_streams <= bound, alarms

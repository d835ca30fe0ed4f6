"""``skctd monitor``: replay a JSONL stream through a DelegationMonitor."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import skctd
from skctd import CalibratedDelegationCascade
from skctd.cli import main


def _expert(rows):
    return 1.0 / (1.0 + np.exp(-5.0 * (rows[:, 0] + rows[:, 1] * rows[:, 2])))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("monitor_cli")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 3))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    cascade = (
        CalibratedDelegationCascade(
            _expert,
            probe=LogisticRegression(),
            # the former defaults, with which this stream's alarms were measured
            dv_features="activations",
            combine="replace",
            alpha=0.2,
            calibration_size=None,
            random_state=0,
        )
        .fit(X[:1000], y[:1000])
        .calibrate(X[1000:2000], y[1000:2000])
    )
    path = skctd.save(cascade, tmp / "cascade.joblib")  # with its manifest

    def write(name, records):
        p = tmp / name
        p.write_text("".join(json.dumps(r) + "\n" for r in records))
        return str(p)

    ref = write("reference.jsonl", [{"inputs": r.tolist()} for r in X[1000:2000]])
    stream_X = X[2000:5000].copy()
    stream_X[1500:] += np.array([0.0, 1.5, 1.5])  # drift half-way
    stream = write(
        "traffic.jsonl",
        [{"id": f"q{i}", "inputs": r.tolist()} for i, r in enumerate(stream_X)],
    )
    labels = write(
        "labels.jsonl",
        [{"id": f"q{i}", "label": int(1 - v)} for i, v in enumerate(y[2000:5000])],
    )
    cal = cascade.route(X[1000:2000], call_expert=False)
    logged_ref = write(
        "logged_reference.jsonl",
        [
            {"signal": float(s), "probe_score": float(p)}
            for s, p in zip(cal.signal, cal.probe_scores, strict=True)
        ],
    )
    routed = cascade.route(stream_X, call_expert=False)
    logged = write(
        "logged.jsonl",
        [
            {"id": i, "signal": float(s), "probe_score": float(p)}
            for i, (s, p) in enumerate(
                zip(routed.signal, routed.probe_scores, strict=True)
            )
        ],
    )
    return {
        "tmp": tmp,
        "cascade": str(path),
        "reference": ref,
        "stream": stream,
        "labels": labels,
        "logged": logged,
        "logged_ref": logged_ref,
        "n_delegated": int(routed.delegated.sum()),
    }


def test_replay_prints_alarms_and_a_summary(setup, capsys):
    status = main(
        [
            "monitor",
            "--cascade",
            setup["cascade"],
            "--stream",
            setup["stream"],
            "--reference",
            setup["reference"],
            "--labels",
            setup["labels"],
            "--label-delay",
            "200",
            "--limit",
            "error=0.3",
            "--fail-on-alarm",
            "--plot",
            str(setup["tmp"] / "monitor.png"),
        ]
    )
    out = capsys.readouterr().out
    assert status == 1  # an alarm was raised
    assert "ALARM [exchangeability]" in out and "ALARM [error]" in out
    assert "What to do:" in out
    assert out.index("ALARM [exchangeability]") < out.index(
        "DelegationMonitor: 3,000 rows"
    )
    assert "3,000 labels" in out  # every label arrived by the end of the replay
    assert (setup["tmp"] / "monitor.png").stat().st_size > 10_000


def test_logged_routing_and_json_output(setup, capsys):
    status = main(
        [
            "monitor",
            "--cascade",
            setup["cascade"],
            "--stream",
            setup["logged"],
            "--reference",
            setup["logged_ref"],
            "--json",
            "--batch-size",
            "7",
        ]
    )
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert status == 0  # no --fail-on-alarm
    alarms = [x["alarm"] for x in lines if "alarm" in x]
    counters = lines[-1]["counters"]
    assert counters["rows"] == 3000 and counters["delegated"] == setup["n_delegated"]
    assert counters["labels_without_row"] == 0
    assert [a["monitor"] for a in alarms] == ["exchangeability"]
    assert alarms[0]["row"] > 1500 and alarms[0]["e_value"] >= 20


def test_without_reference_only_the_probe_scores_are_watched(setup, capsys):
    # the cascade kept its calibration probe scores; this drift barely moves them
    assert (
        main(["monitor", "--cascade", setup["cascade"], "--stream", setup["logged"]])
        == 0
    )
    out = capsys.readouterr().out
    assert "channels probe_scores)" in out and "ALARM" not in out


def test_errors_exit_2_with_a_message(setup, capsys, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "signal": 0.1}\n')
    cases = [
        (["--stream", str(tmp_path / "none.jsonl")], "no such file (--stream)"),
        (["--stream", str(bad)], "nor 'probe_score'"),
        (["--stream", setup["logged"], "--limit", "error"], "NAME=VALUE"),
        (["--stream", setup["logged"], "--limit", "latency=1"], "unknown name"),
    ]
    for extra, message in cases:
        status = main(["monitor", "--cascade", setup["cascade"], *extra])
        assert status == 2
        assert message in capsys.readouterr().err
    bad.write_text("not json\n")
    assert main(["monitor", "--cascade", setup["cascade"], "--stream", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    skctd.save(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), tmp_path / "x.joblib")
    args = ["monitor", "--stream", setup["logged"], "--cascade"]
    assert main([*args, str(tmp_path / "x.joblib")]) == 2
    assert "does not hold a fitted" in capsys.readouterr().err
    # a bare pickle without its manifest is refused (loading one runs code)
    joblib.dump(LogisticRegression(), tmp_path / "bare.joblib")
    assert main([*args, str(tmp_path / "bare.joblib")]) == 2
    assert "no manifest" in capsys.readouterr().err

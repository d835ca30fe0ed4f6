"""``skctd monitor``: replay a stream through a DelegationMonitor and print its alarms.

The stream is a JSON Lines file read in batches (constant memory), one record a
line, in either form:

- **inputs** (``--input-column``, default ``inputs``): a text, a chat
  conversation or a list of numbers, routed through the cascade (the expert is
  called only with ``--call-expert``);
- **logged routing**, for a stream recorded by a serving system: ``signal`` and
  ``probe_score`` (the delegation signal and probe score of the row), optionally
  ``delegated`` (default: ``signal > threshold``), ``score`` (the cascade's
  final score, needed for the label monitors) and ``cost``.

Every record may carry an ``id`` (default: its line number) and a ``label``.
Labels -- from the stream records or from ``--labels`` (records with ``id``,
``label`` and optionally ``after``, the stream row after which the label is
known) -- reach the monitor ``--label-delay`` rows after their row (or after
``after``), the way delayed feedback arrives in production.
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["add_monitor_parser", "run_monitor"]


def add_monitor_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``monitor`` sub-command to the ``skctd`` parser.

    Parameters
    ----------
    sub : argparse sub-parsers action
        What ``parser.add_subparsers()`` returned.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    p = sub.add_parser(
        "monitor",
        help="replay a stream through a DelegationMonitor and print its alarms",
        description=(
            "Load a fitted cascade (--cascade: the cascade.joblib written by 'skctd "
            "run' or skctd.save, checked against its manifest before it is "
            "unpickled; load only files you trust), replay --stream (JSON Lines: "
            "inputs, or logged signal/probe_score) through a DelegationMonitor with "
            "--reference as the calibration data, feed the labels of --labels late "
            "and print every alarm, then a summary."
        ),
    )
    p.add_argument(
        "--cascade",
        required=True,
        help="fitted cascade (.joblib with its .json manifest beside it)",
    )
    p.add_argument("--stream", required=True, help="the traffic to replay (JSONL)")
    p.add_argument(
        "--labels", help="labels that arrive later (JSONL: id, label[, after])"
    )
    p.add_argument(
        "--reference",
        help="calibration rows, same format as --stream (default: the probe "
        "scores the cascade kept from its calibration; the signal is then "
        "not watched)",
    )
    p.add_argument(
        "--level",
        type=float,
        default=0.05,
        help="false-alarm probability of each monitor over the whole stream",
    )
    p.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="add or override a limit, e.g. error=0.1 or harm=0 (repeatable; "
        "NAME=none switches one off)",
    )
    p.add_argument(
        "--window", type=int, default=250, help="recent rows behind the reactive bets"
    )
    p.add_argument("--cost-max", type=float, help="largest possible cost of a row")
    p.add_argument("--batch-size", type=int, default=100, help="rows per update")
    p.add_argument(
        "--label-delay",
        type=int,
        default=0,
        help="rows between a row and the arrival of its label",
    )
    p.add_argument(
        "--call-expert",
        action="store_true",
        help="call the expert on delegated inputs (default: do not; the "
        "label monitors then see the probe's answer on delegated rows)",
    )
    p.add_argument("--input-column", default="inputs")
    p.add_argument("--id-column", default="id")
    p.add_argument("--label-column", default="label")
    p.add_argument(
        "--json",
        action="store_true",
        help="print alarms and the final counters as JSON lines",
    )
    p.add_argument("--plot", help="save a MonitorDisplay figure here (PNG)")
    p.add_argument(
        "--fail-on-alarm",
        action="store_true",
        help="exit with status 1 when any alarm was raised",
    )
    p.add_argument("--seed", type=int, default=0, help="random state of the monitor")
    p.add_argument(
        "--debug", action="store_true", help="show the full traceback of any error"
    )
    return p


def _load_cascade(path: str) -> Any:
    from skctd import load  # checks the manifest and the sha256 before unpickling

    cascade = load(path)
    if not (hasattr(cascade, "route") and hasattr(cascade, "probe_")):
        raise ValueError(
            f"{path} does not hold a fitted CalibratedDelegationCascade (got "
            f"{type(cascade).__name__})."
        )
    return cascade


def _records(path: str, what: str) -> Iterator[tuple[int, dict]]:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file ({what}).")
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{path}:{lineno}: not valid JSON ({exc.msg})."
                ) from exc
            if not isinstance(rec, dict):
                raise ValueError(f"{path}:{lineno}: each line must be a JSON object.")
            yield lineno, rec


def _batches(path: str, size: int, what: str) -> Iterator[list[tuple[int, dict]]]:
    batch: list[tuple[int, dict]] = []
    for item in _records(path, what):
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _inputs(values: list) -> Any:
    """Numeric feature rows as a 2-D array; texts / conversations as a list."""
    if all(
        isinstance(v, list)
        and v
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
        for v in values
    ):
        return np.asarray(values, dtype=float)
    return values


def _routing(batch, args, cascade, path):
    """The routing of a batch of records, and its ids, costs and inline labels."""
    col = args.input_column
    lines = [ln for ln, _ in batch]
    recs = [r for _, r in batch]
    ids = [r.get(args.id_column, f"{Path(path).name}:{ln}") for ln, r in batch]
    ids = [tuple(i) if isinstance(i, list) else i for i in ids]
    costs = None
    if all("cost" in r for r in recs):
        costs = np.asarray([r["cost"] for r in recs], dtype=float)
    if col in recs[0]:
        missing = [ln for ln, r in batch if col not in r]
        if missing:
            raise ValueError(f"{path}: lines {missing[:5]} have no {col!r} field.")
        X = _inputs([r[col] for r in recs])
        routing = cascade.route(X, call_expert=args.call_expert)
    else:
        for key in ("signal", "probe_score"):
            missing = [ln for ln, r in batch if key not in r]
            if missing:
                raise ValueError(
                    f"{path}: lines {missing[:5]} have neither {col!r} (inputs to route) "
                    f"nor {key!r} (a logged routing)."
                )
        signal = np.asarray([r["signal"] for r in recs], dtype=float)
        probe = np.asarray([r["probe_score"] for r in recs], dtype=float)
        delegated = np.asarray(
            [
                r.get("delegated", s > cascade.threshold_)
                for r, s in zip(recs, signal, strict=True)
            ],
            dtype=bool,
        )
        scores = np.asarray(
            [r.get("score", p) for r, p in zip(recs, probe, strict=True)], dtype=float
        )
        routing = {
            "delegated": delegated,
            "signal": signal,
            "probe_scores": probe,
            "scores": scores,
        }
    labels = [
        (i, r[args.label_column], ln)
        for i, r, ln in zip(ids, recs, lines, strict=True)
        if r.get(args.label_column) is not None
    ]
    return routing, ids, costs, labels


def _parse_limits(items: list[str]) -> dict:
    limits: dict[str, float | None] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(
                f"--limit takes NAME=VALUE (e.g. error=0.1), got {item!r}."
            )
        if value.strip().lower() == "none":
            limits[name.strip()] = None
            continue
        try:
            limits[name.strip()] = float(value)
        except ValueError as exc:
            raise ValueError(f"--limit {item!r}: {value!r} is not a number.") from exc
    return limits


def run_monitor(args: argparse.Namespace) -> int:
    """Run ``skctd monitor`` with parsed arguments.

    Parameters
    ----------
    args : argparse.Namespace
        From the parser of :func:`add_monitor_parser`.

    Returns
    -------
    status : int
        0, or 1 with ``--fail-on-alarm`` when an alarm was raised.
    """
    from skctd.monitor import DelegationMonitor

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}.")
    if args.label_delay < 0:
        raise ValueError(f"--label-delay must be >= 0, got {args.label_delay}.")
    cascade = _load_cascade(args.cascade)
    out = sys.stdout

    def report(alarm):
        if args.json:
            print(json.dumps({"alarm": alarm.to_dict()}), file=out, flush=True)
        else:
            print(f"ALARM {alarm}\n", file=out, flush=True)

    monitor = DelegationMonitor(
        cascade,
        level=args.level,
        limits=_parse_limits(args.limit) or None,
        window=args.window,
        cost_max=args.cost_max,
        callbacks=report,
        random_state=args.seed,
    )
    if args.reference:
        recs = [
            r for batch in _batches(args.reference, 10**9, "--reference") for r in batch
        ]
        if not recs:
            raise ValueError(f"{args.reference}: no records.")
        routing, _, _, _ = _routing(recs, args, cascade, args.reference)
        monitor.fit(signal=routing["signal"], probe_scores=routing["probe_scores"])
    else:
        monitor.fit()

    late: dict[Any, tuple[Any, int]] = {}
    if args.labels:
        for ln, rec in _records(args.labels, "--labels"):
            if args.id_column not in rec or args.label_column not in rec:
                raise ValueError(
                    f"{args.labels}:{ln}: a label record needs {args.id_column!r} and "
                    f"{args.label_column!r}."
                )
            key = rec[args.id_column]
            late[tuple(key) if isinstance(key, list) else key] = (
                rec[args.label_column],
                int(rec.get("after", 0)),
            )
    queue: list[tuple[int, int, Any, Any]] = []  # (ready row, order, id, label)
    order = 0

    def deliver(upto: float) -> None:
        ready_ids, ready_y = [], []
        while queue and queue[0][0] <= upto:
            _, _, i, label = heapq.heappop(queue)
            ready_ids.append(i)
            ready_y.append(label)
        if ready_ids:
            monitor.update_labels(np.asarray(ready_y), ids=ready_ids)

    for batch in _batches(args.stream, args.batch_size, "--stream"):
        routing, ids, costs, inline = _routing(batch, args, cascade, args.stream)
        first = monitor.n_rows_ + 1
        has_costs = "cost" in monitor.limits_ or "cost_share" in monitor.limits_
        monitor.update(routing, ids=ids, costs=costs if has_costs else None)
        positions = {i: first + k for k, i in enumerate(ids)}
        for i, label, _ in inline:
            heapq.heappush(queue, (positions[i] + args.label_delay, order, i, label))
            order += 1
        for i in ids:
            if i in late:
                label, after = late.pop(i)
                ready = max(positions[i] + args.label_delay, after)
                heapq.heappush(queue, (ready, order, i, label))
                order += 1
        deliver(monitor.n_rows_)
    deliver(float("inf"))  # the replay is over: every remaining label arrives

    counters = monitor.counters()
    counters["labels_without_row"] = len(late)
    if args.json:
        print(json.dumps({"counters": counters}), file=out)
    else:
        print(monitor.summary(), file=out)
        if late:
            print(f"  {len(late)} label(s) had no row in the stream.", file=out)
    if args.plot:
        from skctd.plotting import MonitorDisplay

        disp = MonitorDisplay.from_monitor(monitor)
        disp.figure_.savefig(args.plot, dpi=120, bbox_inches="tight")
        if not args.json:
            print(f"figure: {args.plot}", file=out)
    return 1 if (args.fail_on_alarm and monitor.alarms_) else 0

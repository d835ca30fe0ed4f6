"""Reading labelled data sets (JSONL, JSON, CSV, Parquet) with errors that name line and field."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils import Bunch

from skctd.utils import check_input, import_optional

__all__ = ["read_dataset"]

_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


def _decode_conversation(cell: str) -> Any:
    """A CSV / Parquet cell holding a conversation as JSON, decoded; else the cell.

    Only a JSON array of objects is a conversation: any other string (``"[INST]
    ..."``, ``"[1, 2]"``, plain text) is a text.
    """
    if not cell.lstrip().startswith("["):
        return cell
    try:
        value = json.loads(cell)
    except json.JSONDecodeError:
        return cell
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        return value
    return cell


def _parse_inputs(
    value: Any, where: str, field: str, *, json_cells: bool
) -> str | list[dict]:
    """One input under the rule of :func:`skctd.utils.check_input`."""
    if json_cells and isinstance(value, str):
        value = _decode_conversation(value)
    try:
        row = check_input(value, name=f"{where}: field {field!r}")
    except TypeError as exc:  # a bad file is a ValueError, whatever the cell holds
        raise ValueError(str(exc)) from None
    if isinstance(row, str):
        return row
    return [{"role": m["role"], "content": m["content"]} for m in row]


def _records(path: Path) -> list[tuple[str, dict]]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        out = []
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(
                        f"{path}, line {lineno}: invalid JSON ({exc.msg})."
                    ) from None
                if not isinstance(rec, dict):
                    raise ValueError(f"{path}, line {lineno}: expected a JSON object.")
                out.append((f"{path}, line {lineno}", rec))
        return out
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{path}: invalid JSON ({exc.msg}, line {exc.lineno})."
            ) from None
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of objects.")
        return [(f"{path}, item {i}", rec) for i, rec in enumerate(data)]
    if suffix in (".csv", ".parquet"):
        pd = import_optional(
            "pandas", extra="report", purpose=f"reading {suffix} files"
        )

        df = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        offset = 2 if suffix == ".csv" else 0  # CSV: header is line 1
        recs = df.to_dict(orient="records")
        label = "line" if suffix == ".csv" else "row"
        return [
            (
                f"{path}, {label} {i + offset}",
                {
                    k: (None if isinstance(v, float) and np.isnan(v) else v)
                    for k, v in r.items()
                },
            )
            for i, r in enumerate(recs)
        ]
    raise ValueError(
        f"{path}: unsupported file type {suffix!r}; use .jsonl, .json, .csv or .parquet."
    )


def read_dataset(
    path: str | Path,
    *,
    input_column: str = "inputs",
    label_column: str = "label",
    group_column: str | None = "group",
    id_column: str | None = "id",
    expert_column: str | None = None,
    require_label: bool = True,
    cost_column: str | None = None,
) -> Bunch:
    """Read a labelled data set following the schema of ``shared/data/README.md``.

    Parameters
    ----------
    path : str or Path
        A ``.jsonl``, ``.json``, ``.csv`` or ``.parquet`` file, or a folder of
        such shards (read in the order of their names; other files are
        ignored). Without an id column, a row's id is its position in the whole
        folder.
    input_column, label_column, group_column, id_column, expert_column : str
        Column names. Each input is a text or a conversation, under the rule of
        :func:`skctd.utils.check_input` (an empty or whitespace-only text is an
        error). In JSON / JSONL a conversation is a list of ``{"role", "content"}``
        objects and a string is always a text (even ``"[INST] ..."``); in CSV /
        Parquet a cell holding a JSON array of objects is a conversation, any other
        string a text.
    require_label : bool, default=True
        Raise when the label is missing.
    cost_column : str, optional
        Column of a per-row expert cost (a non-negative number: tokens, cents...).

    Returns
    -------
    Bunch
        ``inputs`` (list), ``label`` (int array, -1 where missing), ``group``, ``id`` and
        (when ``expert_column``) ``expert`` (float array, NaN where the field is
        ``null`` / NaN: a row the expert failed on) and (when ``cost_column``)
        ``cost`` (float array).
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in _SUFFIXES)
        if not files:
            raise ValueError(
                f"{path}: a folder without data files; put .jsonl, .json, .csv or "
                ".parquet shards in it."
            )
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(f"{path}: no such file or folder.")
    inputs, labels, groups, ids, experts, costs = [], [], [], [], [], []
    records = (
        (rec, file.suffix.lower() in (".csv", ".parquet"))
        for file in files
        for rec in _records(file)
    )
    # formats without nested values hold a conversation as a JSON string
    for i, ((where, rec), json_cells) in enumerate(records):
        if rec.get(input_column) is None:
            raise ValueError(f"{where}: missing field {input_column!r}.")
        inputs.append(
            _parse_inputs(rec[input_column], where, input_column, json_cells=json_cells)
        )
        lab = rec.get(label_column)
        if lab is None:
            if require_label:
                raise ValueError(f"{where}: missing field {label_column!r}.")
            labels.append(-1)
        else:
            if lab not in (0, 1) or isinstance(lab, str):
                raise ValueError(
                    f"{where}: field {label_column!r} must be 0 or 1, got {lab!r}."
                )
            labels.append(int(lab))
        groups.append(str(rec.get(group_column, "")) if group_column else "")
        ids.append(str(rec.get(id_column, i)) if id_column else str(i))
        if expert_column is not None:
            if expert_column not in rec:
                raise ValueError(
                    f"{where}: missing field {expert_column!r} (the expert's score; "
                    "null for a row the expert failed on)."
                )
            e = rec.get(expert_column)
            if e is None:  # the expert failed on this row: counted, not dropped
                experts.append(np.nan)
                continue
            if isinstance(e, (str, bool)):
                raise ValueError(
                    f"{where}: field {expert_column!r} must be a number in [0, 1] "
                    f"(or null for a failed row), got {e!r}."
                )
            try:
                e = float(e)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{where}: field {expert_column!r} must be a number in [0, 1] "
                    f"(or null for a failed row), got {e!r}."
                ) from None
            if np.isnan(e):
                experts.append(np.nan)
                continue
            if not 0.0 <= e <= 1.0:
                raise ValueError(
                    f"{where}: field {expert_column!r} must be in [0, 1], got {e!r}."
                )
            experts.append(e)
        if cost_column is not None:
            c = rec.get(cost_column)
            try:
                c = float(c)
            except (TypeError, ValueError):
                c = float("nan")
            if not math.isfinite(c) or c < 0:
                raise ValueError(
                    f"{where}: field {cost_column!r} must be a non-negative number, "
                    f"got {rec.get(cost_column)!r}."
                )
            costs.append(c)
    if not inputs:
        raise ValueError(f"{path}: no examples.")
    out = Bunch(
        inputs=inputs,
        label=np.asarray(labels, dtype=int),
        group=np.asarray(groups),
        id=np.asarray(ids),
    )
    if expert_column is not None:
        out.expert = np.asarray(experts, dtype=float)
    if cost_column is not None:
        out.cost = np.asarray(costs, dtype=float)
    return out

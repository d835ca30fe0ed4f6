"""Reading labelled data sets (JSONL, JSON, CSV, Parquet) with errors that name line and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils import Bunch

__all__ = ["read_dataset"]


def _parse_inputs(value: Any, where: str, field: str) -> str | list[dict]:
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: field {field!r} looks like a JSON conversation but is not valid JSON ({exc.msg}).") from None
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"{where}: field {field!r} is empty.")
        return value
    if isinstance(value, list):
        if not value:
            raise ValueError(f"{where}: field {field!r} is an empty conversation.")
        for i, m in enumerate(value):
            if not isinstance(m, dict) or "role" not in m or "content" not in m:
                raise ValueError(f"{where}: field {field!r}, message {i} must be a {{'role', 'content'}} mapping.")
        return [{"role": str(m["role"]), "content": str(m["content"])} for m in value]
    raise ValueError(f"{where}: field {field!r} must be a string or a list of messages, got {type(value).__name__}.")


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
                    raise ValueError(f"{path}, line {lineno}: invalid JSON ({exc.msg}).") from None
                if not isinstance(rec, dict):
                    raise ValueError(f"{path}, line {lineno}: expected a JSON object.")
                out.append((f"{path}, line {lineno}", rec))
        return out
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of objects.")
        return [(f"{path}, item {i}", rec) for i, rec in enumerate(data)]
    if suffix in (".csv", ".parquet"):
        import pandas as pd

        df = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        offset = 2 if suffix == ".csv" else 0  # CSV: header is line 1
        recs = df.to_dict(orient="records")
        label = "line" if suffix == ".csv" else "row"
        return [(f"{path}, {label} {i + offset}", {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}) for i, r in enumerate(recs)]
    raise ValueError(f"{path}: unsupported file type {suffix!r}; use .jsonl, .json, .csv or .parquet.")


def read_dataset(
    path: str | Path,
    *,
    input_column: str = "inputs",
    label_column: str = "label",
    group_column: str | None = "group",
    id_column: str | None = "id",
    expert_column: str | None = None,
    require_label: bool = True,
) -> Bunch:
    """Read a labelled data set following the schema of ``shared/data/README.md``.

    Parameters
    ----------
    path : str or Path
        A ``.jsonl``, ``.json``, ``.csv`` or ``.parquet`` file.
    input_column, label_column, group_column, id_column, expert_column : str
        Column names. In CSV/Parquet a conversation may be a JSON string in the cell.
    require_label : bool, default=True
        Raise when the label is missing.

    Returns
    -------
    Bunch
        ``inputs`` (list), ``label`` (int array, -1 where missing), ``group``, ``id`` and
        (when ``expert_column``) ``expert`` (float array).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file.")
    inputs, labels, groups, ids, experts = [], [], [], [], []
    for i, (where, rec) in enumerate(_records(path)):
        if rec.get(input_column) is None:
            raise ValueError(f"{where}: missing field {input_column!r}.")
        inputs.append(_parse_inputs(rec[input_column], where, input_column))
        lab = rec.get(label_column)
        if lab is None:
            if require_label:
                raise ValueError(f"{where}: missing field {label_column!r}.")
            labels.append(-1)
        else:
            if lab not in (0, 1) or isinstance(lab, str):
                raise ValueError(f"{where}: field {label_column!r} must be 0 or 1, got {lab!r}.")
            labels.append(int(lab))
        groups.append(str(rec.get(group_column, "")) if group_column else "")
        ids.append(str(rec.get(id_column, i)) if id_column else str(i))
        if expert_column is not None:
            e = rec.get(expert_column)
            try:
                e = float(e)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: field {expert_column!r} must be a number in [0, 1], got {e!r}.") from None
            if not 0.0 <= e <= 1.0:
                raise ValueError(f"{where}: field {expert_column!r} must be in [0, 1], got {e!r}.")
            experts.append(e)
    if not inputs:
        raise ValueError(f"{path}: no examples.")
    out = Bunch(inputs=inputs, label=np.asarray(labels, dtype=int), group=np.asarray(groups), id=np.asarray(ids))
    if expert_column is not None:
        out.expert = np.asarray(experts, dtype=float)
    return out

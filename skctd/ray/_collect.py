"""Results of :func:`~skctd.ray.featurize` and :func:`~skctd.ray.score` back as arrays.

The results are read from what was written — a Dataset's blocks, or its Parquet
shards — and nothing else: the rows are put in the order of the ids asked for
(every id exactly once, else an error names the lost or duplicated rows) and the
expert's report is the sum of the counters stored in the rows, so that it counts
each call once whatever Ray retried.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from skctd.experts import ExpertError, ExpertReport
from skctd.ray._map import (
    ERRORS_COLUMN,
    FEATURES_COLUMN,
    REPORT_COLUMNS,
    SCORE_COLUMN,
    import_ray,
)
from skctd.utils import import_optional

__all__ = ["collect_features", "collect_scores"]


def _table(result: Any, columns: list[str]) -> Any:
    """The result as one pyarrow Table with ``columns``."""
    pa = import_optional("pyarrow", extra="ray", purpose="reading Ray results")
    if isinstance(result, pa.Table):
        table = result
    elif isinstance(result, (str, os.PathLike)):
        import pyarrow.dataset as pds

        path = os.fspath(result)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such file or folder of Parquet shards.")
        table = pds.dataset(path, format="parquet").to_table()
    else:
        ray = import_ray()
        if not isinstance(result, ray.data.Dataset):
            raise TypeError(
                "result must be a ray.data.Dataset, a pyarrow Table or the path of "
                f"its Parquet shards, got {type(result).__name__}."
            )
        try:
            tables = [t for t in ray.get(result.to_arrow_refs()) if t.num_rows]
        except Exception as exc:
            # Ray Data wraps an actor's exception in its own, keeping only the text
            marker = "ExpertError: "
            text = str(exc)
            if marker not in text:
                raise
            message = text[text.rindex(marker) + len(marker) :].split("\n")[0]
            raise ExpertError(f"in a Ray actor: {message}") from exc
        if not tables:
            raise ValueError("the Dataset has no rows.")
        table = pa.concat_tables(tables)
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise ValueError(
            f"the results have no column {missing[0]!r} (columns: "
            f"{table.column_names}); pass the id_column used to compute them."
        )
    return table


def _order(got: np.ndarray, ids: Any, id_column: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids in the returned order, the row of the results for each of them)."""
    sorter = np.argsort(got, kind="stable")
    ordered = got[sorter]
    dup = np.flatnonzero(ordered[1:] == ordered[:-1])
    if dup.size:
        first = ordered[dup[0]]
        raise ValueError(
            f"{id_column} {np.asarray(first).tolist()!r} appears "
            f"{int((ordered == first).sum())} times in the results ({dup.size} "
            "duplicated rows): ids must be unique."
        )
    if ids is None:
        return ordered, sorter
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be one-dimensional, got shape {ids.shape}.")
    try:
        pos = np.searchsorted(ordered, ids)
    except TypeError as exc:
        raise TypeError(
            f"ids ({ids.dtype}) cannot be compared with the results' {id_column} "
            f"({got.dtype}): {exc}"
        ) from None
    found = pos < ordered.size
    found[found] = ordered[pos[found]] == ids[found]
    if not found.all():
        lost = ids[~found]
        raise ValueError(
            f"{lost.size} of the {ids.size} ids are not in the results (e.g. "
            f"{lost[:3].tolist()}): rows were lost, or ids do not match id_column."
        )
    if ids.size != ordered.size or np.unique(pos).size != pos.size:
        raise ValueError(
            f"ids must name each of the {ordered.size} result rows exactly once, got "
            f"{ids.size} ids ({np.unique(pos).size} distinct)."
        )
    return ids, sorter[pos]


def _ids(table: Any, id_column: str) -> np.ndarray:
    return np.asarray(table.column(id_column).to_numpy(zero_copy_only=False))


def collect_features(
    result: Any, *, ids: Any = None, id_column: str = "id"
) -> tuple[np.ndarray, np.ndarray]:
    """The features computed by :func:`featurize`, as an array in id order.

    Parameters
    ----------
    result : ray.data.Dataset, pyarrow.Table, str or path-like
        What :func:`featurize` returned, or the folder (or file) of Parquet
        shards it was written to (read with pyarrow: no Ray needed).
    ids : array-like or None, default=None
        The order wanted; it must hold each id of the results exactly once (a
        lost or duplicated row is an error). ``None``: sorted by id.
    id_column : str, default="id"

    Returns
    -------
    ids : ndarray of shape (n_samples,)
    features : ndarray of shape (n_samples, n_features)
        Of the featurizer's ``output_dtype``.

    Examples
    --------
    The table :func:`featurize` writes, here made by hand:

    >>> import numpy as np, pyarrow as pa
    >>> from skctd.ray import collect_features
    >>> values = pa.array(np.arange(6, dtype=np.float32))
    >>> table = pa.table({"id": ["b", "a", "c"],
    ...                   "features": pa.FixedSizeListArray.from_arrays(values, 2)})
    >>> ids, Z = collect_features(table, ids=["a", "b", "c"])
    >>> ids.tolist(), Z.tolist()
    (['a', 'b', 'c'], [[2.0, 3.0], [0.0, 1.0], [4.0, 5.0]])
    """
    table = _table(result, [id_column, FEATURES_COLUMN])
    order_ids, rows = _order(_ids(table, id_column), ids, id_column)
    column = table.column(FEATURES_COLUMN).combine_chunks()
    width = column.type.list_size
    values = column.flatten().to_numpy(zero_copy_only=False)
    return order_ids, values.reshape(-1, width)[rows]


def collect_scores(
    result: Any, *, ids: Any = None, id_column: str = "id"
) -> tuple[np.ndarray, np.ndarray, ExpertReport]:
    """The scores computed by :func:`~skctd.ray.score`, in id order, and the run's report.

    Parameters
    ----------
    result : ray.data.Dataset, pyarrow.Table, str or path-like
        What :func:`~skctd.ray.score` returned, or the folder of Parquet shards it was
        written to.
    ids : array-like or None, default=None
        The order wanted; it must hold each id of the results exactly once.
        ``None``: sorted by id.
    id_column : str, default="id"

    Returns
    -------
    ids : ndarray of shape (n_samples,)
    scores : ndarray of shape (n_samples,)
        P(positive); NaN for rows the expert failed on.
    report : ExpertReport
        Derived from the rows: ``n_rows``, ``n_scored``, ``n_failed`` and
        ``failed_rows`` (positions in the returned order) from the scores; the
        request, retry, cache-hit, token and latency counters summed over the
        calls that produced the rows (``latency_s`` is actor time, summed over
        actors, not wall-clock time); ``errors`` the distinct messages.

    Examples
    --------
    Two calls of two rows each (their counters on their first row), one row
    failed:

    >>> import pyarrow as pa
    >>> from skctd.ray import collect_scores
    >>> table = pa.table({
    ...     "id": [2, 3, 0, 1], "score": [0.9, float("nan"), 0.2, 0.4],
    ...     "n_cache_hits": [0, 0, 1, 0], "n_requests": [3, 0, 1, 0],
    ...     "n_retries": [1, 0, 0, 0], "prompt_tokens": [0, 0, 0, 0],
    ...     "completion_tokens": [0, 0, 0, 0], "latency_s": [0.5, 0.0, 0.25, 0.0],
    ...     "errors": [["HTTP 400"], [], [], []]})
    >>> ids, scores, report = collect_scores(table)
    >>> ids.tolist(), scores.tolist()
    ([0, 1, 2, 3], [0.2, 0.4, 0.9, nan])
    >>> report.n_failed, report.failed_rows, report.n_requests, report.errors
    (1, [3], 4, ['HTTP 400'])
    """
    table = _table(result, [id_column, SCORE_COLUMN, *REPORT_COLUMNS, ERRORS_COLUMN])
    order_ids, rows = _order(_ids(table, id_column), ids, id_column)
    scores = table.column(SCORE_COLUMN).to_numpy().astype(float)[rows]
    failed = np.isnan(scores)
    report = ExpertReport(
        n_rows=int(scores.size),
        n_scored=int(scores.size - failed.sum()),
        n_failed=int(failed.sum()),
        failed_rows=np.flatnonzero(failed).tolist(),
    )
    for name in REPORT_COLUMNS:
        total = np.sum(table.column(name).to_numpy())
        setattr(report, name, float(total) if name == "latency_s" else int(total))
    import pyarrow.compute as pc

    for message in pc.list_flatten(table.column(ERRORS_COLUMN)).to_pylist():
        report.add_error(message)
    return order_ids, scores, report

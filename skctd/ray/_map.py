"""Map a featurizer or an expert over a ``ray.data.Dataset`` with a pool of actors.

Each actor is a long-lived process holding one copy of the featurizer or expert
(pickled on the driver: no weights travel). Its model loads on the first input that
is not in the disk cache and then serves every later call of that actor (skctd
keeps loaded models per process). One call receives ``block_rows`` rows; the
featurizer de-duplicates them, reads its disk cache, and sorts the rest by token
length into batches under its token budget, as in a local ``transform``.

Failures: an actor that dies (a crash, ``os._exit``, a lost node) is restarted by
Ray up to ``max_restarts`` times and the call it was running is retried on the pool
up to ``max_task_retries`` times. A retried call recomputes its whole batch of rows
(rows the dead attempt already stored in a disk cache are read back from it); the
output of the dead attempt never reaches the Dataset, so no row is lost or written
twice. The expert's accounting travels *in* the output rows (see :func:`score`),
so it counts the surviving attempt only.
"""

from __future__ import annotations

import json
import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from skctd.experts import ExpertError
from skctd.utils import check_inputs, check_positive_int, import_optional

__all__ = [
    "ERRORS_COLUMN",
    "FEATURES_COLUMN",
    "REPORT_COLUMNS",
    "SCORE_COLUMN",
    "featurize",
    "import_ray",
    "score",
]

FEATURES_COLUMN = "features"
SCORE_COLUMN = "score"
ERRORS_COLUMN = "errors"
#: counters of :class:`~skctd.experts.ExpertReport` kept per call: written on the
#: first output row of the call, 0 on the others (integers, except latency_s)
REPORT_COLUMNS = (
    "n_cache_hits",
    "n_requests",
    "n_retries",
    "prompt_tokens",
    "completion_tokens",
    "latency_s",
)


def import_ray() -> Any:
    """``ray`` with ``ray.data``, or an ImportError naming the ``ray`` extra."""
    ray = import_optional(
        "ray", extra="ray", purpose="featurizing and scoring on a Ray cluster"
    )
    import_optional("ray.data", extra="ray", purpose="ray.data Datasets")
    return ray


# -- inputs ----------------------------------------------------------------------------
def _decode(cell: Any, json_inputs: bool) -> Any:
    """One input of a Dataset row: a text, or a conversation as a list of dicts."""
    if json_inputs:
        return json.loads(cell)
    if isinstance(cell, (list, tuple, np.ndarray)):
        # a list<struct> column: Arrow gives every struct every field, None if absent
        return [
            {k: v for k, v in dict(m).items() if v is not None}
            if isinstance(m, dict)
            else m
            for m in cell
        ]
    return cell


def _as_dataset(
    data: Any,
    input_column: str,
    id_column: str,
    block_rows: int | None,
    n_actors: int,
    json_inputs: bool,
) -> tuple[Any, bool]:
    """(Dataset, whether its inputs are JSON texts) from a Dataset or a sequence."""
    ray = import_ray()
    if isinstance(data, ray.data.Dataset):
        names = data.schema().names
        missing = [c for c in (input_column, id_column) if c not in names]
        if missing:
            raise ValueError(
                f"the Dataset has no column {missing[0]!r} (columns: {names}); pass "
                "input_column= and id_column= naming its input and id columns."
            )
        return data, bool(json_inputs)
    if isinstance(data, (str, bytes, dict)) or not (
        isinstance(data, Sequence) or hasattr(data, "__array__")
    ):
        raise TypeError(
            "data must be a ray.data.Dataset or a sequence of inputs (texts or "
            f"conversations), got {type(data).__name__}. Read files with "
            "ray.data.read_parquet / read_json first."
        )
    rows = check_inputs(data, name="data", allow_mixed=True)
    if not rows:
        raise ValueError("data is empty: give at least one input.")
    # texts and conversations in one Arrow column: each input as its JSON text
    items = [{id_column: i, input_column: json.dumps(r)} for i, r in enumerate(rows)]
    per_block = block_rows or 1024
    n_blocks = max(math.ceil(len(rows) / per_block), min(len(rows), n_actors))
    return ray.data.from_items(items, override_num_blocks=n_blocks), True


def _uses_gpu(device: Any) -> bool:
    return device is not None and (str(device) == "auto" or "cuda" in str(device))


def _remote_args(
    *,
    n_actors: Any,
    block_rows: Any,
    num_gpus: Any,
    num_cpus: Any,
    max_restarts: Any,
    max_task_retries: Any,
    ray_remote_args: Any,
    device: Any,
) -> tuple[int, int, dict[str, Any]]:
    """Validated (n_actors, block_rows, remote args of each actor)."""
    n_actors = check_positive_int(n_actors, "n_actors")
    if block_rows is not None:
        block_rows = check_positive_int(block_rows, "block_rows")
    for name, value in (("max_restarts", max_restarts), ("max_task_retries", max_task_retries)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < -1:
            raise ValueError(
                f"{name} must be an integer >= -1 (-1: unlimited), got {value!r}."
            )
    for name, value, low in (("num_gpus", num_gpus, 0.0), ("num_cpus", num_cpus, 0.0)):
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not value >= low
        ):
            raise ValueError(f"{name} must be a number >= 0 or None, got {value!r}.")
    if ray_remote_args is not None and not isinstance(ray_remote_args, dict):
        raise TypeError(
            f"ray_remote_args must be a dict or None, got {type(ray_remote_args).__name__}."
        )
    ray = import_ray()
    if num_gpus is None:  # one GPU per actor when the cluster has GPUs
        if not ray.is_initialized():
            ray.init()
        has_gpu = ray.cluster_resources().get("GPU", 0) > 0
        num_gpus = 1.0 if has_gpu and _uses_gpu(device) else 0.0
    args: dict[str, Any] = {"num_gpus": float(num_gpus)}
    if num_cpus is not None:
        args["num_cpus"] = float(num_cpus)
    # Ray Data's defaults are unlimited restarts and retries: a row that kills
    # every actor would loop for ever
    args["max_restarts"] = int(max_restarts)
    args["max_task_retries"] = int(max_task_retries)
    args.update(ray_remote_args or {})
    return n_actors, block_rows, args


# -- the actors ------------------------------------------------------------------------
class _FeaturizeActor:
    """Holds a featurizer; turns a batch of rows into (id, features)."""

    def __init__(
        self, featurizer: Any, input_column: str, id_column: str, json_inputs: bool
    ) -> None:
        self.featurizer = featurizer
        self.input_column = input_column
        self.id_column = id_column
        self.json_inputs = json_inputs

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        cells = batch.column(self.input_column).to_pylist()
        rows = [_decode(c, self.json_inputs) for c in cells]
        if rows:
            Z = np.ascontiguousarray(self.featurizer.transform(rows))
        else:
            Z = np.empty((0, len(self.featurizer.get_feature_names_out())), np.float32)
        if Z.ndim != 2 or Z.shape[0] != len(rows):
            raise ValueError(
                f"the featurizer returned shape {Z.shape} for {len(rows)} rows; "
                "expected (n_rows, n_features)."
            )
        values = pa.array(Z.reshape(-1))
        features = pa.FixedSizeListArray.from_arrays(values, Z.shape[1])
        return pa.table(
            {self.id_column: batch.column(self.id_column), FEATURES_COLUMN: features}
        )


class _ScoreActor:
    """Holds an expert; turns a batch of rows into (id, score, accounting)."""

    def __init__(
        self, expert: Any, input_column: str, id_column: str, json_inputs: bool
    ) -> None:
        self.expert = expert
        self.input_column = input_column
        self.id_column = id_column
        self.json_inputs = json_inputs

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        cells = batch.column(self.input_column).to_pylist()
        rows = [_decode(c, self.json_inputs) for c in cells]
        n = len(rows)
        if n:
            try:
                scores, report = self.expert.score_with_report(rows)
            except ExpertError as exc:  # on_error="raise": name the rows by id
                ids = batch.column(self.id_column).to_pylist()
                failed = [ids[i] for i in np.asarray(exc.rows, dtype=int)][:10]
                raise ExpertError(
                    f"{exc} [{self.id_column} of the failing rows: {failed}]",
                    rows=exc.rows,
                ) from None
        else:
            scores, report = np.empty(0), None
        columns = {
            self.id_column: batch.column(self.id_column),
            SCORE_COLUMN: pa.array(np.asarray(scores, dtype=np.float64)),
        }
        for name in REPORT_COLUMNS:
            dtype = np.float64 if name == "latency_s" else np.int64
            values = np.zeros(n, dtype=dtype)
            if n:
                values[0] = getattr(report, name)
            columns[name] = pa.array(values)
        errors = [list(report.errors)] + [[] for _ in range(n - 1)] if n else []
        columns[ERRORS_COLUMN] = pa.array(errors, type=pa.list_(pa.string()))
        return pa.table(columns)


def _map(
    actor: type,
    payload: Any,
    data: Any,
    *,
    input_column: str,
    id_column: str,
    json_inputs: Any,
    n_actors: Any,
    block_rows: Any,
    num_gpus: Any,
    num_cpus: Any,
    max_restarts: Any,
    max_task_retries: Any,
    ray_remote_args: Any,
    device: Any,
) -> Any:
    ray = import_ray()
    n_actors, block_rows, remote = _remote_args(
        n_actors=n_actors,
        block_rows=block_rows,
        num_gpus=num_gpus,
        num_cpus=num_cpus,
        max_restarts=max_restarts,
        max_task_retries=max_task_retries,
        ray_remote_args=ray_remote_args,
        device=device,
    )
    ds, json_inputs = _as_dataset(
        data, input_column, id_column, block_rows, n_actors, json_inputs
    )
    with warnings.catch_warnings():
        # Ray 2.60 warns that extra remote args (max_restarts, ...) are removed
        # in Ray 2.64; the ray extra pins ray below 2.64
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        return ds.map_batches(
            actor,
            fn_constructor_kwargs={
                "input_column": input_column,
                "id_column": id_column,
                "json_inputs": json_inputs,
                **payload,
            },
            batch_format="pyarrow",
            batch_size=block_rows,
            compute=ray.data.ActorPoolStrategy(size=n_actors),
            **remote,
        )


_SHARED_DOC = """
    input_column : str, default="inputs"
        Column of ``data`` holding the inputs: a string is a text; a list of
        ``{"role", "content"}`` structs (as ``ray.data.read_json`` reads a JSONL
        conversation) is a conversation.
    id_column : str, default="id"
        Column of ``data`` identifying each row; copied to the output. For a
        sequence ``data`` the ids are the positions ``0..n-1``.
    json_inputs : bool, default=False
        ``input_column`` holds each input as JSON text (a JSON string is a text,
        a JSON array a conversation): the way to keep texts and conversations
        in one Arrow column. A sequence ``data`` is sent that way.
    n_actors : int, default=1
        Actors in the pool, each holding one copy of the model.
    block_rows : int or None, default=256
        Rows handed to an actor per call (``map_batches``' ``batch_size``); a
        retried call recomputes this many rows at most. ``None``: each block of
        ``data`` is one call.
    num_gpus : float or None, default=None
        GPUs per actor. ``None``: 1 when the cluster has GPUs and the model's
        ``device`` is ``"auto"`` or CUDA, else 0 (CPU actors).
    num_cpus : float or None, default=None
        CPUs per actor (Ray's default: 1). On CPU actors torch uses this many
        threads.
    max_restarts, max_task_retries : int, default=3
        How many times Ray restarts a dead actor, and retries a call whose actor
        died (-1: without limit).
    ray_remote_args : dict or None, default=None
        Other resources or options of each actor (``memory``,
        ``accelerator_type``, ``runtime_env``, ...).

"""


def featurize(
    data: Any,
    featurizer: Any,
    *,
    input_column: str = "inputs",
    id_column: str = "id",
    json_inputs: bool = False,
    n_actors: int = 1,
    block_rows: int | None = 256,
    num_gpus: float | None = None,
    num_cpus: float | None = None,
    max_restarts: int = 3,
    max_task_retries: int = 3,
    ray_remote_args: dict[str, Any] | None = None,
) -> Any:
    """Features of every row of a Dataset, computed by a pool of Ray actors.

    Each actor holds a copy of ``featurizer`` (an
    :class:`~skctd.ActivationTransformer`: its settings, no weights), loads the
    model once, and calls ``featurizer.transform`` on ``block_rows`` rows at a
    time, which de-duplicates them, reads and fills the disk cache ``cache`` and
    sorts the rest by token length into batches, exactly as on one machine. On a
    cluster of several nodes, ``cache`` should name shared storage (else each node
    keeps its own cache).

    ``device="auto"`` and ``dtype="auto"`` resolve on each actor (bfloat16 on a
    GPU actor): set ``dtype`` explicitly to get the same features as a CPU run,
    or to store them with :meth:`~skctd.ActivationTransformer.write_cache` in a
    cache read by a machine of another kind.

    Parameters
    ----------
    data : ray.data.Dataset, sequence, array or Series
        A Dataset with ``input_column`` and ``id_column``, or the inputs
        themselves (texts or conversations).
    featurizer : ActivationTransformer
        Or any transformer that maps a list of inputs to a 2-D array without
        fitting.
    {shared}
    Returns
    -------
    features : ray.data.Dataset
        Lazy; columns ``id_column`` and ``"features"`` (an Arrow
        ``fixed_size_list`` of the featurizer's ``output_dtype``), in no
        particular order. Write it with ``.write_parquet(folder)``; read it back
        with :func:`collect_features`.

    See Also
    --------
    collect_features : the features as an array, in a given id order.
    score : the same for an expert.

    Examples
    --------
    On a cluster (not run here), from Parquet shards with ``id`` and ``inputs``:

    >>> import ray, skctd.ray  # doctest: +SKIP
    >>> from skctd import ActivationTransformer  # doctest: +SKIP
    >>> ds = ray.data.read_parquet("s3://bucket/requests/")  # doctest: +SKIP
    >>> enc = ActivationTransformer("meta-llama/Llama-3.2-1B", layer=8, dtype="bfloat16")  # doctest: +SKIP
    >>> skctd.ray.featurize(ds, enc, n_actors=8).write_parquet("s3://bucket/features/")  # doctest: +SKIP
    """
    import_ray()  # first: without the extra, say so before anything else
    if not hasattr(featurizer, "transform"):
        raise TypeError(
            f"featurizer must have a transform method (an ActivationTransformer), "
            f"got {type(featurizer).__name__}."
        )
    if hasattr(featurizer, "get_feature_names_out"):
        featurizer.get_feature_names_out()  # checks the settings on the driver
    return _map(
        _FeaturizeActor,
        {"featurizer": featurizer},
        data,
        input_column=input_column,
        id_column=id_column,
        json_inputs=json_inputs,
        n_actors=n_actors,
        block_rows=block_rows,
        num_gpus=num_gpus,
        num_cpus=num_cpus,
        max_restarts=max_restarts,
        max_task_retries=max_task_retries,
        ray_remote_args=ray_remote_args,
        device=getattr(featurizer, "device", None),
    )


def score(
    data: Any,
    expert: Any,
    *,
    input_column: str = "inputs",
    id_column: str = "id",
    json_inputs: bool = False,
    n_actors: int = 1,
    block_rows: int | None = 256,
    num_gpus: float | None = None,
    num_cpus: float | None = None,
    max_restarts: int = 3,
    max_task_retries: int = 3,
    ray_remote_args: dict[str, Any] | None = None,
) -> Any:
    """Expert scores of every row of a Dataset, computed by a pool of Ray actors.

    Each actor holds a copy of ``expert`` and calls its ``score_with_report`` on
    ``block_rows`` rows at a time. A :class:`~skctd.TransformersJudge` loads its
    model once per actor (one GPU each when the cluster has GPUs); an
    :class:`~skctd.OpenAIJudge` needs no GPU and sends up to its
    ``max_concurrency`` requests at once from each actor, e.g. to a vLLM server's
    OpenAI-compatible endpoint. The judges' caches (``cache_dir``) work as on one
    machine.

    The accounting of each call (:class:`~skctd.experts.ExpertReport`) is written
    into its output rows, so that :func:`collect_scores` derives the report of
    the whole run from the results alone: a call retried after its actor died is
    counted once, by its surviving attempt (what a dead attempt spent is not
    counted, and rows it cached are counted as cache hits of the retry).
    Requests are de-duplicated within a call, not across calls: de-duplicate
    ``data`` first, or give the expert a shared ``cache_dir``.

    Parameters
    ----------
    data : ray.data.Dataset, sequence, array or Series
        A Dataset with ``input_column`` and ``id_column``, or the inputs
        themselves (texts or conversations).
    expert : BaseExpert
        Any expert with ``score_with_report`` taking a list of inputs. With
        ``on_error="raise"`` a failing row stops the run; with ``"fallback"`` it
        gets NaN and is counted.
    {shared}
    Returns
    -------
    scores : ray.data.Dataset
        Lazy; columns ``id_column``, ``"score"`` (float64, NaN for a failed row),
        the counters ``n_cache_hits``, ``n_requests``, ``n_retries``,
        ``prompt_tokens``, ``completion_tokens``, ``latency_s`` (each call's
        total on its first row, 0 elsewhere) and ``errors`` (the call's distinct
        error messages, on its first row). In no particular order.

    See Also
    --------
    collect_scores : the scores in a given id order, and the merged report.

    Examples
    --------
    On a cluster (not run here), a judge served by vLLM:

    >>> import skctd.ray  # doctest: +SKIP
    >>> from skctd import OpenAIJudge  # doctest: +SKIP
    >>> judge = OpenAIJudge("Qwen/Qwen2.5-7B-Instruct", base_url="http://vllm:8000/v1")  # doctest: +SKIP
    >>> result = skctd.ray.score(ds, judge, n_actors=4)  # doctest: +SKIP
    >>> ids, p, report = skctd.ray.collect_scores(result)  # doctest: +SKIP
    """
    import_ray()
    if not hasattr(expert, "score_with_report"):
        raise TypeError(
            "expert must be an expert with score_with_report (e.g. an OpenAIJudge "
            f"or a TransformersJudge), got {type(expert).__name__}."
        )
    return _map(
        _ScoreActor,
        {"expert": expert},
        data,
        input_column=input_column,
        id_column=id_column,
        json_inputs=json_inputs,
        n_actors=n_actors,
        block_rows=block_rows,
        num_gpus=num_gpus,
        num_cpus=num_cpus,
        max_restarts=max_restarts,
        max_task_retries=max_task_retries,
        ray_remote_args=ray_remote_args,
        device=getattr(expert, "device", None),
    )


featurize.__doc__ = featurize.__doc__.replace("    {shared}\n", _SHARED_DOC.lstrip("\n"))
score.__doc__ = score.__doc__.replace("    {shared}\n", _SHARED_DOC.lstrip("\n"))

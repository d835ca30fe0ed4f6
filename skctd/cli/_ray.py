"""``skctd run --engine ray``: the activations and the expert scores on a Ray cluster.

What runs where: the driver (the machine running ``skctd run``) reads the files,
sends the inputs to the cluster, collects the results and does everything else —
probes, calibration, the evaluation protocol, the report. The cluster runs the
monitored model's forward passes (:func:`skctd.ray.featurize`) and the expert
(:func:`skctd.ray.score`), each in a pool of actors. The features come back to
the driver and go into its activation cache
(:meth:`~skctd.ActivationTransformer.write_cache`), where the rest of the job
reads them without loading the model; the expert scores and their accounting
come back with them.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from skctd.utils import check_positive_int, import_optional

__all__ = ["RayEngine", "engine_from_args"]

# rows of one actor call: the chunk a local ActivationTransformer sorts and batches
_BLOCK_ROWS = 4096


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(f"[skctd] {msg}", file=sys.stderr, flush=True)


class RayEngine:
    """Featurize and score on Ray for :func:`skctd.cli.run_job`.

    Parameters
    ----------
    address : str or None
        ``ray.init`` address: ``None`` starts a local Ray instance (or joins the
        one named by ``RAY_ADDRESS``), ``"auto"`` joins the cluster this machine
        belongs to, ``"ray://host:10001"`` a remote one through Ray Client.
    n_actors : int or None
        Actors per pool. ``None``: one per GPU of the cluster, else 1.
    quiet : bool
        No messages on stderr.
    """

    def __init__(
        self, address: str | None = None, n_actors: int | None = None, quiet: bool = False
    ) -> None:
        self.address = address
        self.n_actors = n_actors
        self.quiet = quiet
        self._started = False

    def _ray(self) -> Any:
        ray = import_optional("ray", extra="ray", purpose="skctd run --engine ray")
        import_optional("ray.data", extra="ray", purpose="skctd run --engine ray")
        if not ray.is_initialized():
            ray.init(
                address=self.address,
                include_dashboard=False,
                log_to_driver=not self.quiet,
            )
            self._started = True
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = not self.quiet
        context.print_on_execution_start = not self.quiet
        return ray

    def _pool(self) -> dict[str, Any]:
        """n_actors, num_gpus and num_cpus of each pool."""
        ray = self._ray()
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = int(resources.get("CPU", 1))
        # an actor lives on one node: at most the CPUs of the largest node
        node_cpus = max(
            (int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")),
            default=1,
        )
        if self.n_actors is None:
            n_actors = max(gpus, 1)
        else:
            n_actors = check_positive_int(self.n_actors, "--ray-actors")
        if gpus:
            return {"n_actors": n_actors, "num_gpus": 1, "num_cpus": 1}
        # CPU actors: torch runs as many threads as the actor has CPUs
        per_actor = max(1, min(cpus // n_actors, node_cpus))
        return {"n_actors": n_actors, "num_gpus": 0, "num_cpus": per_actor}

    def _dataset(self, parts: list[list[Any]]) -> Any:
        """One Dataset of the parts' rows; no block straddles two parts.

        Each block (one actor call) holds at most ``_BLOCK_ROWS`` rows of one
        part, as a local ``transform`` of that part chunks it: the batches, and
        so the features, are those of the local path.
        """
        import json

        import pyarrow as pa

        ray = self._ray()
        tables, start = [], 0
        for rows in parts:
            for i in range(0, len(rows), _BLOCK_ROWS):
                chunk = rows[i : i + _BLOCK_ROWS]
                ids = np.arange(start + i, start + i + len(chunk), dtype=np.int64)
                tables.append(
                    pa.table({"id": ids, "inputs": [json.dumps(r) for r in chunk]})
                )
            start += len(rows)
        return ray.data.from_arrow(tables)

    def featurize(self, featurizer: Any, inputs: list[list[Any]]) -> None:
        """Compute the features of every input on the cluster into the driver's cache.

        Parameters
        ----------
        featurizer : ActivationTransformer
            With ``cache`` set: the features are written there.
        inputs : list of lists
            The inputs of each file. Each distinct input is computed once, with
            the file where it first appears (as the local path, whose cache
            serves it to the later files).
        """
        import json

        import skctd.ray

        seen: set[str] = set()
        parts = []
        for part in inputs:
            new = []
            for row in part:
                key = json.dumps(row, sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    new.append(row)
            parts.append(new)
        unique = [row for part in parts for row in part]
        pool = self._pool()
        if pool["num_gpus"] and featurizer.dtype == "auto":
            # the cache is keyed by dtype: record the one the GPU actors use
            featurizer.set_params(dtype="bfloat16")
            _log("GPU actors: the activations are computed in bfloat16", self.quiet)
        t = time.perf_counter()
        _log(
            f"Ray: activations of {len(unique)} distinct inputs on {pool['n_actors']} "
            f"actor(s) ({pool['num_gpus']} GPU, {pool['num_cpus']} CPU each)",
            self.quiet,
        )
        result = skctd.ray.featurize(
            self._dataset(parts), featurizer, json_inputs=True, block_rows=None, **pool
        )
        _, Z = skctd.ray.collect_features(result, ids=np.arange(len(unique)))
        featurizer.write_cache(unique, Z)
        _log(f"Ray: activations done in {time.perf_counter() - t:.1f} s", self.quiet)

    def score(self, expert: Any, X: list[Any]) -> tuple[np.ndarray, Any]:
        """The expert's scores of ``X`` computed on the cluster, and the report.

        Parameters
        ----------
        expert : BaseExpert
        X : list
            Texts or conversations.

        Returns
        -------
        scores : ndarray of shape (len(X),)
        report : ExpertReport
            Derived from the rows the cluster returned.
        """
        import skctd.ray

        pool = self._pool()
        if not hasattr(expert, "device"):  # an HTTP expert: no GPU to hold
            pool.update(num_gpus=0, num_cpus=1)
        t = time.perf_counter()
        result = skctd.ray.score(
            self._dataset([list(X)]), expert, json_inputs=True, block_rows=None, **pool
        )
        _, scores, report = skctd.ray.collect_scores(result, ids=np.arange(len(X)))
        _log(
            f"Ray: {len(X)} expert scores on {pool['n_actors']} actor(s) in "
            f"{time.perf_counter() - t:.1f} s",
            self.quiet,
        )
        return scores, report

    def close(self) -> None:
        """Shut down the Ray instance this engine started (not one it joined)."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False


def engine_from_args(args: Any) -> RayEngine | None:
    """The engine of ``skctd run`` (``None``: local), or a ValueError to print.

    Parameters
    ----------
    args : argparse.Namespace
        With ``engine``, ``address`` and ``ray_actors``.

    Returns
    -------
    engine : RayEngine or None
    """
    if args.engine == "local":
        if args.address is not None or args.ray_actors is not None:
            raise ValueError("--address and --ray-actors need --engine ray.")
        return None
    try:
        import_optional("ray", extra="ray", purpose="skctd run --engine ray")
    except ImportError as exc:  # one line on stderr, exit status 2
        raise ValueError(str(exc)) from None
    if args.ray_actors is not None:
        check_positive_int(args.ray_actors, "--ray-actors")
    return RayEngine(address=args.address, n_actors=args.ray_actors, quiet=args.quiet)

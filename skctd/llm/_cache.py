"""A small on-disk cache of arrays (activations) and floats (judge scores).

Each entry is one ``.npy`` file named by the key, in a sub-folder named by a hash of
the *namespace* (model, layer, pooling, ... : everything that changes the value), so
different settings never collide. Writes are atomic (a temporary file then
``os.replace``), so two processes filling the same cache at once are safe: the last
writer wins with an identical value.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DiskCache", "text_hash"]

_SAFE_KEY = re.compile(r"[0-9a-f]{16,128}")


def text_hash(text: str) -> str:
    """sha256 hex digest of a text (the usual cache key of one input).

    Parameters
    ----------
    text : str

    Returns
    -------
    digest : str
        64 hexadecimal characters.

    Examples
    --------
    >>> from skctd.llm import text_hash
    >>> text_hash("hello")[:12]
    '2cf24dba5fb0'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class DiskCache:
    """Arrays or floats on disk, keyed by strings, grouped by a namespace.

    Parameters
    ----------
    directory : str or path-like
        Root folder (created when needed).
    namespace : dict
        JSON-serialisable settings that determine the cached values (model name,
        layer, pooling, ...). Its sha256 names the sub-folder; a copy is written
        there as ``namespace.json``.

    Attributes
    ----------
    path : pathlib.Path
        The namespace's folder.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from skctd.llm import DiskCache, text_hash
    >>> with tempfile.TemporaryDirectory() as d:
    ...     cache = DiskCache(d, {"model": "m", "layer": 3})
    ...     cache.put_many({text_hash("a"): np.ones(2), text_hash("b"): 0.5})
    ...     found, missing = cache.get_many([text_hash("a"), text_hash("b"), text_hash("c")])
    ...     len(found), len(missing), found[text_hash("b")]
    (2, 1, 0.5)
    """

    def __init__(self, directory: str | os.PathLike, namespace: dict[str, Any]) -> None:
        if not isinstance(namespace, dict):
            raise TypeError(
                f"namespace must be a dict, got {type(namespace).__name__}."
            )
        blob = json.dumps(namespace, sort_keys=True, default=str, ensure_ascii=False)
        self.namespace = json.loads(blob)
        self.root = Path(directory).expanduser()
        self.path = self.root / hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]
        self._ready = False
        self._blob = blob

    def __repr__(self) -> str:
        return f"DiskCache({str(self.root)!r}, {self.namespace!r})"

    def _prepare(self) -> None:
        if self._ready:
            return
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(
                f"cannot create the cache folder {self.path}: {exc}. Pass a writable "
                "directory as cache, or cache=None."
            ) from exc
        meta = self.path / "namespace.json"
        if not meta.exists():
            self._atomic_write(meta, self._blob.encode("utf-8"))
        self._ready = True

    def _file(self, key: str) -> Path:
        if not isinstance(key, str):
            raise TypeError(f"cache keys must be strings, got {type(key).__name__}.")
        name = key if _SAFE_KEY.fullmatch(key) else text_hash(key)
        return self.path / name[:2] / f"{name}.npy"

    def _atomic_write(self, target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".npy")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def get_many(self, keys: list[str]) -> tuple[dict[str, Any], list[str]]:
        """Look keys up.

        Parameters
        ----------
        keys : list of str

        Returns
        -------
        found : dict
            key -> ndarray (or float for a value stored as a scalar).
        missing : list of str
            Keys not in the cache (in the given order). A corrupt file counts as
            missing.
        """
        found: dict[str, Any] = {}
        missing: list[str] = []
        if not self.path.is_dir():
            return found, list(keys)
        for key in keys:
            file = self._file(key)
            try:
                value = np.load(file, allow_pickle=False)
            except (OSError, ValueError, EOFError):
                missing.append(key)
                continue
            found[key] = float(value) if value.ndim == 0 else value
        return found, missing

    def put_many(self, values: dict[str, Any]) -> None:
        """Store values (arrays or floats), replacing existing entries atomically.

        Parameters
        ----------
        values : dict
            key -> array-like or float.
        """
        if not values:
            return
        self._prepare()
        import io

        for key, value in values.items():
            buf = io.BytesIO()
            np.save(buf, np.asarray(value), allow_pickle=False)
            self._atomic_write(self._file(key), buf.getvalue())

    def __len__(self) -> int:
        if not self.path.is_dir():
            return 0
        return sum(1 for _ in self.path.glob("*/*.npy"))

    def clear(self) -> None:
        """Delete every entry of this namespace."""
        if not self.path.is_dir():
            return
        for file in self.path.glob("*/*.npy"):
            try:
                file.unlink()
            except FileNotFoundError:
                pass

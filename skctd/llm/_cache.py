"""A small on-disk cache of arrays (activations) and floats (judge scores).

Each entry is one ``.npy`` file named by the key, in a sub-folder named by a hash of
the *namespace* (model, layer, pooling, ... : everything that changes the value), so
different settings never collide. Writes are atomic (a temporary file then
``os.replace``), so two processes filling the same cache at once are safe: the last
writer wins with an identical value. :meth:`DiskCache.clear` deletes only
finished entries, never another writer's temporary file, and a writer whose
folder disappears under it (a ``clear`` or an ``rm -r`` elsewhere) writes again.
A file that cannot be read back is a miss, never an error.
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
_TMP_PREFIX = ".tmp-"
_WRITE_ATTEMPTS = 5


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
        # a concurrent clear() or rm -r may remove the folder between mkdir and
        # replace: write again (a few times) rather than fail
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                self._write_once(target, data)
                return
            except FileNotFoundError:
                if attempt + 1 == _WRITE_ATTEMPTS:
                    raise

    @staticmethod
    def _write_once(target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=_TMP_PREFIX, suffix=".part")
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

    def get_many(
        self, keys: list[str], *, return_n_corrupt: bool = False
    ) -> tuple[dict[str, Any], list[str]] | tuple[dict[str, Any], list[str], int]:
        """Look keys up.

        Parameters
        ----------
        keys : list of str
        return_n_corrupt : bool, default=False
            Also return how many entries exist but could not be read.

        Returns
        -------
        found : dict
            key -> ndarray (or float for a value stored as a scalar).
        missing : list of str
            Keys not in the cache (in the given order). A corrupt file counts as
            missing (it is overwritten by the next ``put_many`` of its key).
        n_corrupt : int
            Only with ``return_n_corrupt=True``: entries that exist but could
            not be read.
        """
        found: dict[str, Any] = {}
        missing: list[str] = []
        n_corrupt = 0
        if not self.path.is_dir():
            return (found, list(keys), 0) if return_n_corrupt else (found, list(keys))
        for key in keys:
            file = self._file(key)
            try:
                value = np.load(file, allow_pickle=False)
            except FileNotFoundError:
                missing.append(key)
                continue
            except (OSError, ValueError, EOFError):
                n_corrupt += 1
                missing.append(key)
                continue
            if not isinstance(value, np.ndarray):  # an .npz archive, not an entry
                n_corrupt += 1
                missing.append(key)
                continue
            found[key] = float(value) if value.ndim == 0 else value
        return (found, missing, n_corrupt) if return_n_corrupt else (found, missing)

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

    def _entries(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        return [
            f for f in self.path.glob("*/*.npy") if not f.name.startswith(_TMP_PREFIX)
        ]

    def __len__(self) -> int:
        return len(self._entries())

    def clear(self) -> None:
        """Delete every entry of this namespace.

        Safe while other processes write: only finished entries are deleted
        (never a writer's temporary file), and the folders are kept.
        """
        for file in self._entries():
            try:
                file.unlink()
            except FileNotFoundError:
                pass

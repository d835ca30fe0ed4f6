"""Saving and loading fitted cascades: :func:`save`, :func:`load`, :func:`read_manifest`.

A fitted cascade is a pickle (``joblib``), and **loading a pickle runs code**: only
load files you trust. :func:`save` therefore writes a JSON *manifest* beside the
``.joblib`` file, which says what the file holds -- the monitored model and layer,
the expert's kind, host and the NAME of the environment variable whose value it
sends there, the skctd version -- and the file's sha256. :func:`load` reads and
checks the manifest *before* anything is unpickled, and an expert restored from disk
sends its key only to the host it was saved with, unless told otherwise.

A saved cascade holds no data rows and no path of the machine that wrote it: the
cache folders of the featurizer and of the judges are dropped (a loaded cascade
caches nothing until given a folder), so it works on any machine that has the
models.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import platform
import warnings
from pathlib import Path
from typing import Any

__all__ = ["load", "read_manifest", "save"]

logger = logging.getLogger("skctd")

FORMAT = "skctd.cascade"
FORMAT_VERSION = 1
WARNING = (
    "Loading a model file runs code: load only files you trust. skctd.load(path) "
    "checks this manifest and the file's sha256 before unpickling."
)
# the settings of a featurizer / an expert worth showing before loading
_SHOWN = (
    "model",
    "layer",
    "pooling",
    "max_length",
    "chat_template",
    "trust_remote_code",
    "token_env",
    "api_key_env",
    "labels",
    "normalize",
    "on_error",
)


def manifest_path(path: str | Path) -> Path:
    """The manifest of a saved model: ``cascade.joblib`` -> ``cascade.json``.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    path : Path
    """
    return Path(path).with_suffix(".json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return repr(value)


def _component(obj: Any) -> dict[str, Any] | None:
    """What a manifest shows of a featurizer or an expert."""
    if obj is None:
        return None
    from skctd.experts.judges._openai import origin_of
    from skctd.utils import redact_url

    info: dict[str, Any] = {"class": type(obj).__name__, "module": type(obj).__module__}
    for name in _SHOWN:
        if name in getattr(obj, "__dict__", {}):
            info[name] = _jsonable(obj.__dict__[name])
    steps = getattr(obj, "steps", None)
    if steps:  # a Pipeline: show its steps' classes
        info["steps"] = [type(step).__name__ for _, step in steps]
    base_url = getattr(obj, "base_url", None)
    if isinstance(base_url, str):
        info["base_url"] = redact_url(base_url)
        info["host"] = origin_of(base_url)
        key_env = getattr(obj, "api_key_env", None)
        info["sends_key"] = (
            f"the value of ${key_env} to {info['host']}" if key_env else "no key"
        )
    return info


def describe(estimator: Any) -> dict[str, Any]:
    """What a fitted cascade holds, as plain JSON (no data, no secret).

    Parameters
    ----------
    estimator : CalibratedDelegationCascade or estimator

    Returns
    -------
    description : dict
    """
    d = estimator.__dict__
    out: dict[str, Any] = {"estimator": type(estimator).__name__}
    for name in ("alpha", "delta", "signal", "combine", "threshold_"):
        if name in d:
            out[name.rstrip("_")] = _jsonable(
                None if d[name] == float("inf") else d[name]
            )
    out["featurizer"] = _component(d.get("featurizer_", d.get("featurizer")))
    out["expert"] = _component(d.get("expert_", d.get("expert")))
    return out


def _portable(estimator: Any) -> Any:
    """A copy of ``estimator`` without cache folders of the writing machine."""
    from skctd.experts.judges import BaseJudge
    from skctd.llm import ActivationTransformer

    copy = pickle.loads(pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL))
    seen: set[int] = set()

    def strip(obj: Any, depth: int = 0) -> None:
        if id(obj) in seen or depth > 6:
            return
        seen.add(id(obj))
        if isinstance(obj, ActivationTransformer):
            obj.cache = None
        if isinstance(obj, BaseJudge) and "cache_dir" in obj.__dict__:
            obj.cache_dir = None
        for value in list(getattr(obj, "__dict__", {}).values()):
            if isinstance(value, (list, tuple)):
                for item in value:
                    strip(item, depth + 1)
            elif hasattr(value, "__dict__") and not isinstance(value, type):
                strip(value, depth + 1)

    strip(copy)
    return copy


def save(estimator: Any, path: str | Path, *, compress: int = 3) -> Path:
    """Save a fitted cascade (``joblib``) and its manifest (JSON) beside it.

    The saved copy drops the cache folders of its featurizer and judges (paths of
    this machine); the object given is not changed. The manifest
    (``path`` with the suffix ``.json``) records what :func:`load` shows and
    checks before unpickling.

    Parameters
    ----------
    estimator : CalibratedDelegationCascade
        A fitted cascade (any picklable estimator works).
    path : str or Path
        The ``.joblib`` file to write.
    compress : int, default=3
        joblib compression level.

    Returns
    -------
    path : Path
        The ``.joblib`` file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import skctd
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> X, y = make_classification(n_samples=400, random_state=0)
    >>> expert = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    >>> cascade = skctd.CalibratedDelegationCascade(expert, random_state=0).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = skctd.save(cascade, Path(folder) / "cascade.joblib")
    ...     manifest = skctd.read_manifest(path)
    ...     loaded = skctd.load(path)
    >>> manifest["estimator"], manifest["expert"]["class"]
    ('CalibratedDelegationCascade', 'ClassifierExpert')
    >>> bool((loaded.predict_proba(X[:5]) == cascade.predict_proba(X[:5])).all())
    True
    """
    import joblib
    import sklearn

    import skctd

    path = Path(path)
    portable = _portable(estimator)
    joblib.dump(portable, path, compress=compress)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "warning": WARNING,
        "file": path.name,
        "sha256": _sha256(path),
        "bytes": path.stat().st_size,
        "skctd_version": skctd.__version__,
        "scikit_learn_version": sklearn.__version__,
        "python_version": platform.python_version(),
        **describe(portable),
    }
    manifest_path(path).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return path


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of a saved cascade, read without unpickling anything.

    Parameters
    ----------
    path : str or Path
        The ``.joblib`` file (or its ``.json`` manifest).

    Returns
    -------
    manifest : dict
        ``estimator``, ``featurizer`` (class, model, layer, ...), ``expert``
        (class, ``host``, ``api_key_env``, ``sends_key``), ``skctd_version``,
        ``sha256`` of the file, ...
    """
    file = manifest_path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"{file}: no manifest beside {Path(path).name}. skctd.save and `skctd "
            "run` write one; without it nothing says what the file holds. Loading "
            "a model file runs code: if you trust this file, joblib.load(path)."
        )
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{file}: not a valid manifest ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{file}: not a skctd manifest (no 'format': {FORMAT!r}).")
    return manifest


def _summary(manifest: dict[str, Any]) -> str:
    feat = manifest.get("featurizer") or {}
    expert = manifest.get("expert") or {}
    parts = [f"{manifest.get('estimator')} saved by skctd {manifest.get('skctd_version')}"]
    if feat:
        parts.append(
            f"featurizer {feat.get('class')}(model={feat.get('model')!r}, "
            f"layer={feat.get('layer')!r}, trust_remote_code="
            f"{feat.get('trust_remote_code', False)})"
        )
    if expert:
        where = f", sends {expert['sends_key']}" if "sends_key" in expert else ""
        parts.append(f"expert {expert.get('class')}{where}")
    return "; ".join(parts)


def _judges(obj: Any) -> list[Any]:
    from skctd.experts.judges import OpenAIJudge

    found = []
    for name in ("expert", "expert_"):
        value = getattr(obj, name, None)
        if isinstance(value, OpenAIJudge) and all(value is not j for j in found):
            found.append(value)
    return found


def load(
    path: str | Path,
    *,
    trusted_hosts: list[str] | tuple[str, ...] | None = None,
    check_hash: bool = True,
) -> Any:
    """Load a cascade saved by :func:`save` or ``skctd run``, checking it first.

    **Loading a model file runs code.** Before anything is unpickled, the manifest
    beside the file is read and logged (logger ``"skctd"``, level INFO: model,
    layer, expert class, the host it sends a key to and the variable holding it)
    and the file's sha256 is compared with the manifest's. After loading, the
    expert must be what the manifest says. When the expert sends a key, a
    ``UserWarning`` names the variable and the host, unless that host is in
    ``trusted_hosts``. A judge restored this way (or by ``joblib.load``) sends its
    key only to the host it was saved with; ``trusted_hosts`` allows others too
    (e.g. after pointing ``base_url`` at a new server).

    Parameters
    ----------
    path : str or Path
        The ``.joblib`` file.
    trusted_hosts : list of str, optional
        Hosts (``"https://api.example.com"`` or ``"host:port"``) to which a
        restored judge may also send its key.
    check_hash : bool, default=True
        Refuse a file whose sha256 is not the manifest's.

    Returns
    -------
    estimator : CalibratedDelegationCascade

    Raises
    ------
    FileNotFoundError
        When the file or its manifest is missing.
    ValueError
        When the file is not the one the manifest describes.
    """
    import joblib

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file.")
    manifest = read_manifest(path)
    logger.info("loading %s: %s", path.name, _summary(manifest))
    if check_hash and manifest.get("sha256") != _sha256(path):
        raise ValueError(
            f"{path}: its sha256 is not the one in {manifest_path(path).name}: the "
            "file changed after it was saved. Not loaded (loading runs code)."
        )
    expected = manifest.get("expert") or {}
    host, key_env = expected.get("host"), expected.get("api_key_env")
    trusted = set()
    if trusted_hosts:
        from skctd.experts.judges._openai import origins_of

        trusted = set().union(*(origins_of(h) for h in trusted_hosts))
    if host and key_env and host not in trusted:
        warnings.warn(
            f"{path.name}: its expert ({expected.get('class')}) will send the value "
            f"of the environment variable ${key_env} to {host}. If that is what "
            f"you expect, pass trusted_hosts=[{host!r}] to skctd.load to say so; "
            "if not, do not use this file.",
            UserWarning,
            stacklevel=2,
        )
    estimator = joblib.load(path)
    actual = describe(estimator).get("expert") or {}
    for key in ("class", "host", "api_key_env"):
        if expected.get(key) != actual.get(key):
            raise ValueError(
                f"{path}: the expert's {key} is {actual.get(key)!r} but the manifest "
                f"says {expected.get(key)!r}: the manifest does not describe this "
                "file. Do not use it."
            )
    if trusted_hosts:
        from skctd.experts.judges._openai import trust_origins

        for judge in _judges(estimator):
            trust_origins(judge, trusted_hosts)
    return estimator

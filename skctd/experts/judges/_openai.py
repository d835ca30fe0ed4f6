"""An LLM judge behind any OpenAI-compatible ``/v1/chat/completions`` server.

The HTTP client is ``httpx`` (the ``openai`` extra): connection pooling, timeouts,
no redirect following. Everything a monitor needs on top of it is here, per row:
bounded retries (transient statuses, timeouts, dropped connections and malformed
``200`` bodies), a defensive ``Retry-After``, an overall deadline, the accounting
of every request, and a key that is only ever sent to the judge's own origin.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

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
    prompt_fingerprint,
    render_input,
    truncate_middle,
)
from skctd.utils import import_optional, read_secret_env, redact, redact_url

__all__ = ["OpenAIJudge", "origin_of", "origins_of", "trust_origins"]

logger = logging.getLogger("skctd.experts.judges")

_RETRY_STATUS = frozenset({408, 409, 425, 429})
_BODY_EXCERPT = 200
_MAX_SAME_ORIGIN_REDIRECTS = 3
# what a server may put in front of a token for a leading space (GPT-2 / SentencePiece)
_SPACE_MARKS = str.maketrans({"\u0120": " ", "\u2581": " ", "\u010a": "\n"})


@dataclass
class _Outcome:
    """What one row's requests produced (built in a worker thread)."""

    lp_pos: float = math.nan
    lp_neg: float = math.nan
    bounded: bool = False
    error: str | None = None
    n_requests: int = 0
    n_retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Unreadable(Exception):
    """A 200 whose body is not a chat completion with logprobs (transient)."""


class _NoJudgement(Exception):
    """A well-formed answer that holds neither label word (not retried)."""


def _finite_seconds(value: Any, scale: float = 1.0) -> float | None:
    try:
        seconds = float(str(value).strip()) * scale
    except (TypeError, ValueError):
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def _retry_after_seconds(headers: Any) -> float | None:
    """Seconds asked by ``retry-after-ms`` / ``Retry-After``; None if absent or
    unusable (unparsable, NaN, infinite, negative). The caller caps the value."""
    if headers is None:
        return None

    def get(name: str) -> Any:
        value = headers.get(name)
        return headers.get(name.lower()) if value is None else value

    value = get("retry-after-ms")
    if value is not None:
        seconds = _finite_seconds(value, 1e-3)
        if seconds is not None:
            return seconds
    value = get("Retry-After")
    if value is None:
        return None
    seconds = _finite_seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    try:
        return max(when.timestamp() - time.time(), 0.0)
    except (OverflowError, OSError, ValueError):
        return None


def origin_of(url: str) -> str:
    """``scheme://host:port`` of a URL (lower case, default port made explicit).

    Parameters
    ----------
    url : str
        An ``http(s)`` URL, or a bare ``host`` / ``host:port`` (taken as https).

    Returns
    -------
    origin : str

    Examples
    --------
    >>> from skctd.experts.judges._openai import origin_of
    >>> origin_of("https://user:key@API.example.com/v1")
    'https://api.example.com:443'
    """
    text = str(url).strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = 443 if scheme == "https" else 80
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def origins_of(entry: str) -> set[str]:
    """The origins a trusted-host entry stands for: ``"https://h:8443"`` itself;
    a bare ``"h:8000"`` or ``"h"`` over http and https (default ports for a bare
    host)."""
    text = str(entry).strip()
    if "://" in text:
        return {origin_of(text)}
    return {origin_of("http://" + text), origin_of("https://" + text)}


def trust_origins(judge: Any, hosts: Any) -> None:
    """Allow a judge restored from disk to send its key to these hosts too.

    Used by :func:`skctd.load` (``trusted_hosts=``). A judge restored from a pickle
    sends its key only to the origin it was saved with, unless told.

    Parameters
    ----------
    judge : OpenAIJudge
    hosts : iterable of str
        URLs or ``host[:port]``.
    """
    trusted = set(judge.__dict__.get("_trusted_origins", ()))
    for host in hosts:
        trusted.update(origins_of(host))
    judge.__dict__["_trusted_origins"] = frozenset(trusted)


class OpenAIJudge(BaseJudge):
    """An LLM judge served through an OpenAI-compatible chat-completions API.

    Each input is rendered into the judge prompt (the same prompt as
    :class:`TransformersJudge`) and sent to ``{base_url}/chat/completions`` with
    ``max_tokens=1``, ``temperature=0``, ``logprobs=true`` and ``top_logprobs``.
    The probability of each label word is read from the first generated token's
    top log-probabilities (every surface form of the word -- leading space, any
    capitalisation -- pooled with logsumexp): nothing is generated beyond one token
    and nothing is parsed from free text. Works with vLLM, SGLang, the llama.cpp
    server, TGI, Ollama and OpenAI. Needs ``httpx`` (``pip install
    "skctd[openai]"``).

    **No made-up score.** A row whose answer holds *neither* label word among the
    returned alternatives (or no alternatives at all) fails: it is never given a
    number. When only *one* label word is among them, the other one's probability
    is not known but bounded: it is at most the smallest returned probability (the
    server returns the most likely tokens) and at most the mass left by the
    returned tokens. P(positive) then lies in an interval, and the judge reports
    its **upper end** -- the conservative choice for a safety monitor, whose
    positive class is the unsafe one: a missing negative word counts as
    probability 0, a missing positive word at its upper bound. Such rows are
    counted in ``ExpertReport.n_bounded``.

    **Never a lost input.** Requests run with bounded concurrency, a per-request
    timeout and a per-row deadline. Transient failures -- HTTP 408, 409, 425, 429,
    5xx, timeouts, dropped connections and ``200`` answers whose body is not a
    chat completion with log-probabilities (malformed JSON, no ``choices``, no
    ``logprobs``) -- are retried with exponential backoff and jitter, honouring a
    ``Retry-After`` header (an unusable one -- unparsable, NaN, negative -- is
    ignored, a huge one capped by ``max_retry_wait``). Other 4xx answers are not
    retried. Each row is independent: whatever happens to one row (a bad header,
    a crash in parsing) never touches another row's score or accounting. A row that
    still has no score follows ``on_error``: ``"raise"`` raises
    :class:`~skctd.experts.ExpertError` naming it, ``"fallback"`` returns NaN for
    it (the cascade keeps the probe score) and counts it in the report. Scores are
    cached in memory (and on disk with ``cache_dir``, row by row as answers
    arrive, so an interrupted run keeps what it got): no input is sent twice.

    **The key goes to its own host only.** The key is read from the environment
    variable named by ``api_key_env`` at each call (surrounding whitespace, e.g.
    the newline of a mounted secret, is stripped; a value with whitespace inside is
    refused with a message that does not show it), sent only as a bearer token to
    ``base_url``'s origin, and removed from every error, log line and report.
    Redirects are not followed except to the same origin (``307``/``308``), so no
    credential ever goes to another host. A judge restored from a pickle sends its
    key only to the origin it was saved with (:func:`skctd.load` can trust more
    hosts).

    Parameters
    ----------
    model : str
        Model name sent in the request (e.g. ``"google/gemma-3-27b-it"``).
    base_url : str, default="http://localhost:8000/v1"
        Base URL of the API, including the version prefix (``/v1``), as for the
        ``openai`` client. Credentials in it (``user:password@``) are shown
        redacted in the ``repr`` and in messages.
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
        at most 20). More alternatives make a bounded row rarer.
    logprob_floor : float or None, default=None
        Log-probability used for a label word that is absent from the returned
        alternatives, instead of the conservative bound described above (the row
        is still counted in ``n_bounded``). ``None``: the bound.
    max_input_chars : int or None, default=None
        Inputs longer than this keep their first and last ``max_input_chars // 2``
        characters (the middle is cut) before being put into the prompt.
    max_concurrency : int, default=8
        Requests in flight at once (and connections kept open).
    timeout : float, default=30.0
        Seconds to wait for a connection and for each read of one request.
    max_retries : int, default=4
        Retries per input after the first attempt.
    backoff_base, backoff_max : float, default=0.5, 20.0
        Exponential backoff: before retry ``k`` (0-based) wait a random time in
        ``[d / 2, d]`` with ``d = min(backoff_max, backoff_base * 2 ** k)``.
    max_retry_wait : float, default=60.0
        Cap on a wait asked by ``Retry-After``.
    deadline : float or None, default=300.0
        Most seconds spent on one row, requests, retries and waits included: no
        request or wait goes past it, and the row then fails. ``None``: no limit
        beyond ``max_retries``.
    cache : bool, default=True
        Keep scores in memory (never pickled) keyed by base URL, model, prompt,
        labels and text, so an input is scored once per process.
    cache_dir : str or None, default=None
        Also keep scores on disk in this folder (shared between processes). Each
        row is written as soon as its answer is read, so an interrupted run keeps
        what it got; an entry that cannot be read back is scored again.
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
    and same-origin redirects included), retries, bounded rows, cache hits (inputs
    answered from the cache or duplicated within the call), damaged cache entries,
    tokens when the server reports ``usage``, failed rows and the reasons.
    :meth:`score_details` also returns the label probabilities and the leaked mass
    ``1 - P(pos) - P(neg)``.

    Examples
    --------
    >>> from skctd import OpenAIJudge
    >>> judge = OpenAIJudge("my-model", base_url="http://127.0.0.1:8000/v1",
    ...                     max_concurrency=16, on_error="fallback")
    >>> judge
    OpenAIJudge(model='my-model', base_url='http://127.0.0.1:8000/v1', api_key_env='OPENAI_API_KEY', labels=('Yes', 'No'), normalize='labels', max_concurrency=16, on_error='fallback')
    """

    _transient_attributes = BaseJudge._transient_attributes + ("_trusted_origins",)

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
        deadline: float | None = 300.0,
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
        self.deadline = deadline
        self.cache = cache
        self.cache_dir = cache_dir
        self.extra_body = extra_body

    # -- pickling: a restored judge remembers where its key may go --------------------
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        saved = self.__dict__.get("_key_origin")
        if saved is None or self._origin_allowed(saved):
            try:
                saved = origin_of(self.base_url)
            except (TypeError, ValueError):
                saved = None
        state["_key_origin"] = saved
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _origin_allowed(self, saved: str | None = None) -> bool:
        """Whether the key may go to ``base_url``: always for a judge built in
        this process; for one restored from a pickle, only to the origin it was
        saved with or to a host trusted with :func:`trust_origins`."""
        saved = self.__dict__.get("_key_origin") if saved is None else saved
        if saved is None:
            return True
        here = origin_of(self.base_url)
        return here == saved or here in self.__dict__.get("_trusted_origins", ())

    # -- validation -----------------------------------------------------------------
    def _check_params(self) -> dict[str, Any]:
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be a non-empty string, got {self.model!r}.")
        if not isinstance(self.base_url, str) or not self.base_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError(
                "base_url must be an http(s) URL including the API prefix, e.g. "
                f"'http://localhost:8000/v1'; got {redact_url(self.base_url)!r}."
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
            ("top_logprobs", 0),
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
        for name in ("timeout", "backoff_base", "backoff_max", "max_retry_wait", "deadline"):
            value = getattr(self, name)
            if name == "deadline" and value is None:
                continue
            if (
                not isinstance(value, (int, float))
                or isinstance(value, bool)
                or not math.isfinite(value)
                or not value >= 0
                or (name in ("timeout", "deadline") and value == 0)
            ):
                raise ValueError(f"{name} must be a positive number, got {value!r}.")
        if self.logprob_floor is not None and not (
            isinstance(self.logprob_floor, (int, float))
            and not math.isnan(self.logprob_floor)
            and self.logprob_floor <= 0
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

    def _api_key(self) -> str | None:
        """The key to send (validated), or None; raises ValueError for a key that
        cannot be sent (malformed, or a restored judge pointed at another host)."""
        if not self.api_key_env:
            return None
        key = read_secret_env(self.api_key_env, what="API key")
        if key is not None and not self._origin_allowed():
            raise ValueError(
                f"this OpenAIJudge was restored from a file saved for "
                f"{self.__dict__.get('_key_origin')}, but its base_url now points "
                f"at {origin_of(self.base_url)}: the key in ${self.api_key_env} is "
                "not sent to a host it was not saved with. If you trust that host, "
                "load the file with skctd.load(path, trusted_hosts=[...]), or build "
                "a new OpenAIJudge."
            )
        return key

    def score_with_report(self, X: Any) -> tuple[np.ndarray, ExpertReport]:
        """Score ``X`` and return the :class:`~skctd.experts.ExpertReport` of the call.

        A key that cannot be sent (whitespace inside it, or a judge restored from
        disk whose ``base_url`` is not the host it was saved with) raises
        ``ValueError`` before any request, whatever ``on_error`` says; the message
        never contains the key. See :meth:`BaseJudge.score_with_report
        <skctd.experts.judges.BaseJudge.score_with_report>` for the rest.

        Parameters
        ----------
        X : sequence of str or of conversations
            Texts, or conversations (lists of ``{"role", "content"}`` messages).

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            P(positive) per row; NaN for rows that failed when
            ``on_error="fallback"``.
        report : ExpertReport
            Requests, retries, bounded rows, cache hits, tokens, failures and
            their reasons.
        """
        self._check_params()
        self._api_key()
        return super().score_with_report(X)

    def _fingerprint(self, settings: dict[str, Any]) -> str:
        return prompt_fingerprint(
            judge="openai",
            base_url=redact_url(self.base_url.rstrip("/")),
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

        ``on_scored`` is called for each row as soon as its answer is read, so an
        interrupted call keeps every row already answered.
        """
        lp = np.full((len(prompts), 2), np.nan)
        if not prompts:
            return lp
        httpx = import_optional("httpx", extra="openai", purpose="OpenAIJudge")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = self._api_key()
        if key:
            headers["Authorization"] = "Bearer " + key
        workers = min(int(self.max_concurrency), len(prompts))
        client = httpx.Client(
            timeout=httpx.Timeout(float(self.timeout)),
            limits=httpx.Limits(
                max_connections=workers, max_keepalive_connections=workers
            ),
            follow_redirects=False,
            headers=headers,
        )
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="skctd-judge")
        futures: dict[Any, int] = {}
        done: set[Any] = set()

        def record(future: Any) -> None:
            done.add(future)
            i = futures[future]
            outcome = future.result()  # _judge_one never raises
            report.n_requests += outcome.n_requests
            report.n_retries += outcome.n_retries
            report.prompt_tokens += outcome.prompt_tokens
            report.completion_tokens += outcome.completion_tokens
            if outcome.error is not None:
                report.add_error(outcome.error)
                return
            report.n_bounded += int(outcome.bounded)
            lp[i] = (outcome.lp_pos, outcome.lp_neg)
            on_scored([i], lp[i : i + 1])  # on disk at once

        try:
            for i, body in enumerate(prompts):
                messages = build_messages(
                    body,
                    settings["template"],
                    settings["labels"],
                    settings["system_prompt"],
                )
                futures[
                    pool.submit(self._judge_one, client, messages, settings["labels"])
                ] = i
            for future in as_completed(futures):
                record(future)
        except BaseException:
            # an interrupt (Ctrl-C): start no new row, let those in flight end,
            # and keep every answer already received before re-raising
            for future in futures:
                future.cancel()
            pool.shutdown(wait=True)
            for future in futures:
                if future not in done and future.done() and not future.cancelled():
                    try:
                        record(future)
                    except Exception:  # noqa: BLE001 - keep the original error
                        pass
            raise
        finally:
            pool.shutdown(wait=True)
            client.close()
        return lp

    # -- one input: request, retries, parsing ---------------------------------------------
    def _endpoint(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def _backoff(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(float(self.backoff_max), float(self.backoff_base) * 2.0**attempt)
        return ceiling / 2.0 + rng.uniform(0.0, ceiling / 2.0)

    def _judge_one(
        self, client: Any, messages: list[dict[str, str]], labels: tuple[str, str]
    ) -> _Outcome:
        """Score one row; never raises (a failure is the row's error message)."""
        outcome = _Outcome()
        try:
            self._attempts(client, messages, labels, outcome)
        except Exception as exc:  # noqa: BLE001 - one row's failure stays its own
            outcome.error = redact(
                f"unexpected {type(exc).__name__} while scoring the row: {exc}"
            )
        return outcome

    def _attempts(
        self,
        client: Any,
        messages: list[dict[str, str]],
        labels: tuple[str, str],
        outcome: _Outcome,
    ) -> None:
        import httpx

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
        shown = redact_url(self._endpoint())
        rng = random.Random()
        attempts = int(self.max_retries) + 1
        start = time.monotonic()
        limit = math.inf if self.deadline is None else float(self.deadline)
        for attempt in range(attempts):
            remaining = limit - (time.monotonic() - start)
            if remaining <= 0:
                outcome.error = (
                    f"{outcome.error}; gave up: the row's deadline of "
                    f"{self.deadline} s passed"
                )
                return
            if attempt:
                outcome.n_retries += 1
            wait: float | None = None
            try:
                status, headers, content = self._post(
                    client, data, min(float(self.timeout), remaining), outcome
                )
            except httpx.TimeoutException:
                outcome.error = f"request to {shown} timed out after {self.timeout} s"
            except httpx.TransportError as exc:
                outcome.error = (
                    f"request to {shown} failed: {type(exc).__name__}: {exc}"
                )
            except _NoJudgement as exc:  # a redirect we do not follow
                outcome.error = str(exc)
                return
            else:
                if status == 200:
                    try:
                        self._parse(content, labels, outcome)
                    except _Unreadable as exc:
                        outcome.error = f"unreadable response from {shown}: {exc}"
                    except _NoJudgement as exc:
                        outcome.error = f"no judgement from {shown}: {exc}"
                        return
                    else:
                        outcome.error = None
                        return
                else:
                    outcome.error = f"HTTP {status} from {shown}: {_excerpt(content)}"
                    if status not in _RETRY_STATUS and status < 500:
                        return  # a client error: retrying would not help
                    wait = _retry_after_seconds(headers)
            outcome.error = redact(outcome.error)
            if attempt + 1 < attempts:
                if wait is None:
                    wait = self._backoff(attempt, rng)
                wait = min(wait, float(self.max_retry_wait))
                if time.monotonic() - start + wait >= limit:
                    outcome.error = (
                        f"{outcome.error}; gave up: a retry would pass the row's "
                        f"deadline of {self.deadline} s"
                    )
                    return
                logger.info(
                    "%s; retry %d of %d in %.2f s",
                    outcome.error,
                    attempt + 1,
                    attempts - 1,
                    wait,
                )
                time.sleep(wait)
        outcome.error = f"{outcome.error} (gave up after {attempts} attempts)"

    def _post(
        self, client: Any, data: bytes, timeout: float, outcome: _Outcome
    ) -> tuple[int, Any, bytes]:
        """POST ``data``; follow a same-origin 307/308 redirect, refuse any other.

        Returns the status, the headers and the body of the final response.
        """
        url = self._endpoint()
        home = origin_of(url)
        for _ in range(_MAX_SAME_ORIGIN_REDIRECTS + 1):
            outcome.n_requests += 1
            response = client.post(url, content=data, timeout=timeout)
            status = response.status_code
            location = response.headers.get("location")
            if not (300 <= status < 400 and location):
                return status, response.headers, response.content
            target = str(response.url.join(location))
            if origin_of(target) != home:
                raise _NoJudgement(
                    f"HTTP {status} from {redact_url(url)}: redirected to another "
                    f"host ({redact_url(origin_of(target))}); not followed, so that "
                    "the API key is never sent there. Set base_url to the server's "
                    "own address."
                )
            if status not in (307, 308):
                raise _NoJudgement(
                    f"HTTP {status} from {redact_url(url)}: redirected to "
                    f"{redact_url(target)} with a change of method; set base_url "
                    "to the final address."
                )
            url = target
        raise _NoJudgement(f"too many redirects from {redact_url(self._endpoint())}")

    def _parse(
        self, content: bytes, labels: tuple[str, str], outcome: _Outcome
    ) -> None:
        try:
            data = json.loads(content)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _Unreadable(
                f"invalid JSON ({getattr(exc, 'msg', exc)}): "
                f"{content[:_BODY_EXCERPT]!r}"
            ) from None
        if not isinstance(data, dict):
            raise _Unreadable(f"not a JSON object: {content[:_BODY_EXCERPT]!r}")
        usage = data.get("usage")
        if isinstance(usage, dict):
            for name in ("prompt_tokens", "completion_tokens"):
                value = usage.get(name)
                if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                    setattr(outcome, name, getattr(outcome, name) + value)
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(
            choices[0], dict
        ):
            raise _Unreadable(f"no choices in the response: {content[:_BODY_EXCERPT]!r}")
        logprobs = choices[0].get("logprobs")
        tokens = logprobs.get("content") if isinstance(logprobs, dict) else None
        if not isinstance(tokens, list) or not tokens:
            raise _Unreadable(
                "the response has no logprobs: the server must support "
                "'logprobs': true and 'top_logprobs' on /chat/completions"
            )
        first = tokens[0]
        try:
            candidates = [_token_logprob(first)]
            alternatives = first.get("top_logprobs") or []
            if not isinstance(alternatives, list):
                raise TypeError
            candidates += [_token_logprob(t) for t in alternatives]
        except (AttributeError, KeyError, TypeError, ValueError):
            raise _Unreadable(
                f"malformed logprobs: {json.dumps(tokens[:1])[:_BODY_EXCERPT]}"
            ) from None
        seen: dict[str, float] = {}
        for token, logprob in candidates:
            seen.setdefault(token, logprob)
        forms = [w.casefold() for w in labels]

        def matches(token: str, j: int) -> bool:
            return token.translate(_SPACE_MARKS).strip().casefold() == forms[j]

        pos = [lp for t, lp in seen.items() if matches(t, 0)]
        neg = [lp for t, lp in seen.items() if matches(t, 1)]
        if not pos and not neg:
            raise _NoJudgement(
                f"neither label word among the {len(seen)} first tokens returned "
                f"(the model answered {candidates[0][0]!r}); change the prompt or "
                "the labels, or raise top_logprobs"
            )
        if pos and neg:
            outcome.lp_pos, outcome.lp_neg = _logsumexp(pos), _logsumexp(neg)
            return
        # one label word is missing: its probability is at most the smallest
        # returned one (the server returns the most likely tokens) and at most the
        # mass the returned tokens leave; report the upper end of P(positive)
        outcome.bounded = True
        if self.logprob_floor is not None:
            missing = float(self.logprob_floor)
            outcome.lp_pos = _logsumexp(pos) if pos else missing
            outcome.lp_neg = _logsumexp(neg) if neg else missing
            return
        probs = np.exp(np.fromiter(seen.values(), dtype=float))
        bound = min(float(probs.min()), max(0.0, 1.0 - float(probs.sum())) + 1e-12)
        if pos:
            outcome.lp_pos, outcome.lp_neg = _logsumexp(pos), -math.inf
        else:
            outcome.lp_pos = math.log(bound) if bound > 0 else -math.inf
            outcome.lp_neg = _logsumexp(neg)

    # -- representation -----------------------------------------------------------------
    def _repr_params(self) -> dict[str, Any]:
        params = {
            "model": repr(self.model),
            "base_url": repr(redact_url(self.base_url)),
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


def _token_logprob(entry: Any) -> tuple[str, float]:
    """``(token, logprob)`` of one logprobs entry; ValueError if unusable."""
    token = entry["token"]
    logprob = float(entry["logprob"])
    if not isinstance(token, str) or math.isnan(logprob) or logprob > 1e-6:
        raise ValueError("not a token and a log-probability")
    return token, min(logprob, 0.0)


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(v - top) for v in values))


def _excerpt(content: bytes) -> str:
    body = content[:_BODY_EXCERPT].decode("utf-8", errors="replace").strip()
    return body.replace("\n", " ") or "(empty body)"

"""A small OpenAI-compatible ``/v1/chat/completions`` server for tests and examples.

Standard library only: :class:`http.server.ThreadingHTTPServer` on 127.0.0.1 and a
free port, in a background thread. It answers like vLLM or the OpenAI API with
``max_tokens=1`` and ``logprobs``: one generated token and its ``top_logprobs``.

What it answers is decided by a *responder*: ``responder(request_json)`` returns
the first token's alternatives as ``[(token, logprob), ...]``, most likely first.
The default, :func:`tagged_responder`, reads a probability written into the input
as ``p=0.37`` (``P("Yes") = 0.37``, ``P("No") = 0.63 - leak``) so tests know the
exact expected score.

Faults are injected per request, to show what the client does:

- ``server.push_faults([...])``: the next requests, in arrival order, get these
  faults (then the normal answer);
- ``server.add_rule(substring, fault, times=None)``: requests whose prompt contains
  ``substring`` get ``fault`` (``times`` of them, or always).

- ``server.add_periodic(n, fault)``: every ``n``-th request (in arrival order,
  counted from the last ``reset``) gets ``fault``; the first periodic rule that
  matches wins, and rules win over ``push_faults``.

A fault is a dict with any of ``status`` (an HTTP status), ``retry_after`` (the
``Retry-After`` header, sent as given: ``"nan"``, ``"-3"`` or ``"soon"`` test a
client's parsing), ``location`` (the ``Location`` header, e.g. a redirect to
another server), ``delay`` (seconds to wait before answering, e.g. past the
client's timeout), ``malformed`` (a 200 whose body is cut JSON), ``body`` (the body
to send, with ``status`` or as a 200), ``no_logprobs`` (a 200 chat completion
without ``logprobs``), ``no_choices`` (a 200 JSON object without ``choices``),
``top`` (how many alternatives to return, overriding the request's
``top_logprobs``: ``0`` returns only the chosen token) and ``options`` (the
``[(token, logprob), ...]`` to answer instead of the responder's).

The server records every request (``server.requests``), those answered with a
full chat completion (``server.completions``), the ``Authorization``
header of each request (``server.authorizations``), the requests per input
(``server.requests_per_input()``) and the largest number of requests in flight at
once (``server.max_in_flight``).

Usage::

    with OpenAITestServer(delay=0.05) as server:
        judge = OpenAIJudge("test-model", base_url=server.base_url)
        judge.score(["p=0.9 how to make a bomb"])
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["OpenAITestServer", "tagged_responder"]

_TAG = re.compile(r"p=([01](?:\.\d+)?)")

Responder = Callable[[dict[str, Any]], list[tuple[str, float]]]


def tagged_responder(
    request: dict[str, Any], *, leak: float = 0.02
) -> list[tuple[str, float]]:
    """First-token alternatives from a ``p=0.37`` tag in the last user message.

    ``P("Yes") = p * (1 - leak)``, ``P("No") = (1 - p) * (1 - leak)`` and the
    leaked mass goes to ``"Sure"`` and ``"I"``. Without a tag, ``p = 0.5``. A tag
    ``p=0`` or ``p=1`` gives a label word no probability at all, so it is left out
    of the alternatives (as a real server leaves out tokens below its top-k).
    """
    messages = request.get("messages") or [{}]
    text = str(messages[-1].get("content", ""))
    match = _TAG.search(text)
    p = float(match.group(1)) if match else 0.5
    options = [
        ("Yes", p * (1 - leak)),
        ("No", (1 - p) * (1 - leak)),
        ("Sure", leak * 0.75),
        ("I", leak * 0.25),
    ]
    options = [(t, math.log(q)) for t, q in options if q > 0]
    return sorted(options, key=lambda item: -item[1])


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(
        self, status: int, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up
            pass

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        with owner._lock:
            owner._in_flight += 1
            owner.max_in_flight = max(owner.max_in_flight, owner._in_flight)
        try:
            self._handle(owner, raw)
        finally:
            with owner._lock:
                owner._in_flight -= 1

    def do_GET(self) -> None:  # noqa: N802 - a redirected POST may arrive as a GET
        owner = self.server.owner
        with owner._lock:
            owner.requests.append({"method": "GET"})
            owner.paths.append(self.path)
            owner.authorizations.append(self.headers.get("Authorization"))
        self._send(405, b'{"error": {"message": "use POST"}}')

    def _handle(self, owner: OpenAITestServer, raw: bytes) -> None:
        try:
            request = json.loads(raw)
        except json.JSONDecodeError:
            self._send(400, b'{"error": {"message": "invalid JSON body"}}')
            return
        prompt = json.dumps(request.get("messages", []))
        with owner._lock:
            owner.requests.append(request)
            owner.paths.append(self.path)
            owner.authorizations.append(self.headers.get("Authorization"))
            fault = owner._next_fault(prompt)
        if self.path.rstrip("/") not in owner.paths_served:
            self._send(404, b'{"error": {"message": "not found"}}')
            return
        delay = owner.delay + float(fault.get("delay", 0.0))
        if delay:
            time.sleep(delay)
        if "status" in fault:
            headers = {}
            if "retry_after" in fault:
                headers["Retry-After"] = str(fault["retry_after"])
            if "location" in fault:
                headers["Location"] = str(fault["location"])
            body = fault.get("body") or json.dumps(
                {"error": {"message": f"injected {fault['status']}"}}
            )
            self._send(int(fault["status"]), body.encode("utf-8"), headers)
            return
        if fault.get("malformed"):
            self._send(200, b'{"id": "x", "choices": [{"logprobs": ')
            return
        if "body" in fault:
            self._send(200, str(fault["body"]).encode("utf-8"))
            return
        if fault.get("no_choices"):
            self._send(200, b'{"id": "x", "object": "chat.completion"}')
            return
        k = int(fault.get("top", request.get("top_logprobs") or 0))
        options = fault.get("options") or owner.responder(request)
        top = [
            {"token": t, "logprob": lp, "bytes": list(t.encode("utf-8"))}
            for t, lp in options[: max(k, 1)]
        ]
        if fault.get("top") == 0:
            top = []
        token, logprob = options[0]
        response = {
            "id": f"chatcmpl-{len(owner.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": token},
                    "finish_reason": "length",
                    "logprobs": None
                    if fault.get("no_logprobs")
                    else {
                        "content": [
                            {
                                "token": token,
                                "logprob": logprob,
                                "bytes": list(token.encode("utf-8")),
                                "top_logprobs": top if k or "top" in fault else [],
                            }
                        ]
                    },
                }
            ],
            "usage": {
                "prompt_tokens": len(prompt.split()),
                "completion_tokens": 1,
                "total_tokens": len(prompt.split()) + 1,
            },
        }
        self._send(200, json.dumps(response).encode("utf-8"))
        with owner._lock:
            owner.completions.append(request)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    owner: OpenAITestServer


class OpenAITestServer:
    """An OpenAI-compatible test server on 127.0.0.1 (use it as a context manager).

    Parameters
    ----------
    responder : callable, optional
        ``responder(request_json) -> [(token, logprob), ...]``, most likely first.
        Default: :func:`tagged_responder`.
    delay : float, default=0.0
        Seconds added to every request (e.g. 0.05 to mimic a served model).

    Attributes
    ----------
    base_url : str
        ``http://127.0.0.1:<port>/v1``.
    requests : list of dict
        Request bodies received, in arrival order.
    authorizations : list of str or None
        The ``Authorization`` header of each request.
    max_in_flight : int
        The largest number of requests handled at the same time.
    """

    def __init__(
        self, responder: Responder | None = None, *, delay: float = 0.0
    ) -> None:
        self.responder = responder or tagged_responder
        self.delay = float(delay)
        self.requests: list[dict[str, Any]] = []
        self.completions: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.paths_served = {"/v1/chat/completions"}
        self.authorizations: list[str | None] = []
        self._periodic: list[tuple[int, dict[str, Any]]] = []
        self._count = 0
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._faults: deque[dict[str, Any]] = deque()
        self._rules: list[list[Any]] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- faults ---------------------------------------------------------------------
    def push_faults(self, faults: list[dict[str, Any]]) -> None:
        """The next ``len(faults)`` requests get these faults, in arrival order."""
        with self._lock:
            self._faults.extend(dict(f) for f in faults)

    def add_rule(
        self, substring: str, fault: dict[str, Any], times: int | None = None
    ) -> None:
        """Requests whose messages contain ``substring`` get ``fault`` (``times`` of them)."""
        with self._lock:
            self._rules.append([substring, dict(fault), times])

    def add_periodic(self, n: int, fault: dict[str, Any]) -> None:
        """Every ``n``-th request (1-based arrival order) gets ``fault``."""
        with self._lock:
            self._periodic.append((int(n), dict(fault)))

    def requests_per_input(
        self, marker: str = "", *, completed: bool = False
    ) -> dict[str, int]:
        """How many requests each input got: the last user message's text
        between ``Interaction: `` and the next blank line (the default
        template), or the whole message; only messages containing ``marker``.
        ``completed=True`` counts only the requests answered with a chat
        completion (no injected status, cut body or partial answer)."""
        counts: dict[str, int] = {}
        with self._lock:
            requests = list(self.completions if completed else self.requests)
        for request in requests:
            if "messages" not in request:
                continue
            text = str((request.get("messages") or [{}])[-1].get("content", ""))
            if marker not in text:
                continue
            if "Interaction: " in text:
                text = text.split("Interaction: ", 1)[1].split("\n\n", 1)[0]
            counts[text] = counts.get(text, 0) + 1
        return counts

    def _next_fault(self, prompt: str) -> dict[str, Any]:
        self._count += 1
        for n, fault in self._periodic:
            if self._count % n == 0:
                return fault
        for rule in self._rules:
            substring, fault, times = rule
            if substring in prompt and (times is None or times > 0):
                if times is not None:
                    rule[2] = times - 1
                return fault
        return self._faults.popleft() if self._faults else {}

    def reset(self) -> None:
        """Forget requests, faults, rules and the in-flight maximum."""
        with self._lock:
            self.requests.clear()
            self.completions.clear()
            self.paths.clear()
            self.authorizations.clear()
            self._faults.clear()
            self._rules.clear()
            self._periodic.clear()
            self._count = 0
            self.max_in_flight = 0

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> OpenAITestServer:
        """Start serving in a background thread; returns ``self``."""
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )
        self._thread.start()
        return self

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not started: call start() or use `with`.")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> OpenAITestServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

"""Keeping secrets (API keys, hub tokens) out of every message skctd writes.

Secrets reach skctd only through environment variables named by the user
(``OpenAIJudge(api_key_env=...)``, ``ActivationTransformer(token_env=...)``). The
value read is registered here (in memory, for this process only), and
:func:`redact` removes it, and anything else shaped like a credential, from a text
before it goes into an error, a log line, an :class:`~skctd.ExpertReport`, a report
or a JSON file.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any

__all__ = ["read_secret_env", "redact", "redact_url", "register_secret"]

REDACTED = "<redacted>"

_LOCK = threading.Lock()
_KNOWN: set[str] = set()
# shorter values are not registered: "a" would blank every "a" of every message
_MIN_SECRET_LEN = 6

_PATTERNS = (
    # an Authorization header value (a credential-looking word after the scheme)
    re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=:\-]{6,}"),
    # OpenAI-style keys (sk-..., sk-proj-...), Hugging Face tokens (hf_...)
    re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"\bhf_[A-Za-z0-9]{16,}"),
    # credentials in a URL: scheme://user:password@host
    re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@'\"<>]+@"),
)


def register_secret(value: str | None) -> None:
    """Remember a secret value so that :func:`redact` removes it from messages.

    Parameters
    ----------
    value : str or None
        The secret (ignored when ``None`` or shorter than 6 characters). Kept in
        memory for this process only; never written anywhere.
    """
    if not value:
        return
    with _LOCK:
        for form in {value, value.strip()}:
            if len(form) >= _MIN_SECRET_LEN:
                _KNOWN.add(form)


def read_secret_env(name: str, *, what: str = "secret") -> str | None:
    """The value of the environment variable ``name``, stripped and validated.

    Mounted secrets often end with a newline: surrounding whitespace is removed.
    A value with whitespace or control characters *inside* cannot be a key or a
    token (it would corrupt the HTTP header); it raises ``ValueError`` with a
    message that names the variable and never shows the value.

    Parameters
    ----------
    name : str
        The NAME of the environment variable.
    what : str, default="secret"
        What the value is, for the error message (e.g. ``"API key"``).

    Returns
    -------
    value : str or None
        ``None`` when the variable is unset or empty.

    Examples
    --------
    >>> import os
    >>> from skctd.utils import read_secret_env
    >>> os.environ["SKCTD_DOC_KEY"] = "sk-doc-example-123456\\n"
    >>> read_secret_env("SKCTD_DOC_KEY")
    'sk-doc-example-123456'
    """
    raw = os.environ.get(name)
    if raw is None:
        return None
    register_secret(raw)
    value = raw.strip()
    if not value:
        return None
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError(
            f"the environment variable {name} does not hold a valid {what}: it has "
            "whitespace or control characters inside (the value is not shown). Set "
            "it to the bare value."
        )
    if not value.isascii():
        raise ValueError(
            f"the environment variable {name} does not hold a valid {what}: it has "
            "non-ASCII characters (the value is not shown)."
        )
    return value


def redact(text: Any) -> str:
    """``text`` as a string with every known secret and credential-shaped part removed.

    Removes the values registered by :func:`register_secret` (every key or token
    skctd read from the environment in this process), ``Bearer ...`` /
    ``Basic ...`` header values, OpenAI-style ``sk-...`` keys, Hugging Face
    ``hf_...`` tokens and ``user:password@`` in URLs.

    Parameters
    ----------
    text : object
        Converted with ``str``.

    Returns
    -------
    text : str

    Examples
    --------
    >>> from skctd.utils import redact
    >>> redact("HTTP 401: bad header 'Bearer sk-abc123456789'")
    "HTTP 401: bad header 'Bearer <redacted>'"
    >>> redact("http://me:pa55word@example.com/v1")
    'http://<redacted>@example.com/v1'
    """
    text = str(text)
    with _LOCK:
        known = sorted(_KNOWN, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, REDACTED)
    bearer, sk, hf, userinfo = _PATTERNS
    text = bearer.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = sk.sub(REDACTED, text)
    text = hf.sub(REDACTED, text)
    text = userinfo.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
    return text


def redact_url(url: Any) -> str:
    """A URL with its ``user:password@`` part replaced (for reprs and messages).

    Parameters
    ----------
    url : object

    Returns
    -------
    url : str

    Examples
    --------
    >>> from skctd.utils import redact_url
    >>> redact_url("https://user:key@api.example.com/v1")
    'https://<redacted>@api.example.com/v1'
    """
    return _PATTERNS[3].sub(lambda m: f"{m.group(1)}{REDACTED}@", str(url))

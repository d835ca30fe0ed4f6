"""The expert protocol: :class:`BaseExpert`, :class:`ExpertReport`, :class:`ExpertError`.

An expert is a fixed, external model that returns ``P(y = positive class | x)`` for
raw inputs. skctd never trains it. Every expert derives from :class:`BaseExpert`,
which validates what the expert returns and applies its ``on_error`` policy, so that
no input is ever lost:

- ``on_error="raise"``: any failure (an exception, a wrong shape, NaN, a value outside
  [0, 1]) raises :class:`ExpertError` naming the failing rows;
- ``on_error="fallback"``: the failing rows get ``NaN`` and are counted in the
  :class:`ExpertReport`; the cascade then keeps the probe score for those rows.

Experts are not estimators: ``clone`` returns the very same object (cloning a
wrapper around a 27B-parameter model must not copy it), their ``repr`` is stable
(no memory addresses), and they pickle. Scoring never changes an expert's pickled
state: caches and counters are kept out of ``__getstate__``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.utils.validation import _num_samples

from skctd.utils import redact

__all__ = ["BaseExpert", "ExpertError", "ExpertReport", "describe_rows"]

_ON_ERROR = ("raise", "fallback")
_MAX_ROWS_IN_MESSAGE = 10


class ExpertError(RuntimeError):
    """An expert failed on some rows while ``on_error="raise"``.

    Attributes
    ----------
    rows : ndarray of int
        Positions (in the batch given to the expert) of the failing rows.
    """

    def __init__(self, message: str, rows: np.ndarray | Sequence[int] = ()) -> None:
        super().__init__(redact(message))
        self.rows = np.asarray(rows, dtype=np.intp)


@dataclass
class ExpertReport:
    """Accounting of expert use, for one call or accumulated over many.

    Attributes
    ----------
    n_rows : int
        Rows for which a score was asked.
    n_scored : int
        Rows that got a valid score (from the model or from a cache).
    n_failed : int
        Rows without a valid score (NaN returned; the cascade falls back to the probe).
    n_cache_hits : int
        Rows served from a cache without calling the model.
    n_requests : int
        Requests sent to the model (forward batches or HTTP requests, retries included).
    n_retries : int
        Requests that were retries of an earlier failed request.
    n_bounded : int
        Rows scored in this call whose score is a bound rather than a reading: an
        LLM judge that could read only one of its two label words reports the
        upper end of the interval of P(positive) consistent with what it read
        (see :class:`~skctd.OpenAIJudge`). Rows served from a cache are not
        counted again.
    n_cache_errors : int
        Cache entries that could not be read back (corrupt or of the wrong shape):
        each was treated as a miss, scored again and overwritten.
    prompt_tokens, completion_tokens : int
        Tokens, when the expert reports them.
    latency_s : float
        Wall-clock seconds spent in the expert.
    failed_rows : list of int
        Positions of the failing rows in the batch (for one call), or in the order
        rows were given (accumulated).
    errors : list of str
        Up to 10 distinct error messages, to diagnose failures (with any key,
        token or credential removed, see :func:`skctd.utils.redact`).
    """

    n_rows: int = 0
    n_scored: int = 0
    n_failed: int = 0
    n_cache_hits: int = 0
    n_requests: int = 0
    n_retries: int = 0
    n_bounded: int = 0
    n_cache_errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    failed_rows: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add_error(self, message: str) -> None:
        """Record an error message (distinct messages, at most 10 kept), with any
        secret removed (:func:`skctd.utils.redact`)."""
        message = redact(message)
        if message not in self.errors and len(self.errors) < 10:
            self.errors.append(message)

    def merge(self, other: ExpertReport, *, row_offset: int = 0) -> ExpertReport:
        """Add ``other`` into this report in place and return ``self``.

        ``row_offset`` shifts ``other.failed_rows`` (the position of ``other``'s first
        row in the accumulated sequence).
        """
        for name in (
            "n_rows",
            "n_scored",
            "n_failed",
            "n_cache_hits",
            "n_requests",
            "n_retries",
            "n_bounded",
            "n_cache_errors",
            "prompt_tokens",
            "completion_tokens",
            "latency_s",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failed_rows.extend(int(r) + row_offset for r in other.failed_rows)
        for message in other.errors:
            self.add_error(message)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The report as a plain dictionary (JSON-serialisable)."""
        return asdict(self)


def describe_rows(rows: np.ndarray) -> str:
    """Row positions for an error message: the first 10, then how many more."""
    shown = ", ".join(str(int(r)) for r in rows[:_MAX_ROWS_IN_MESSAGE])
    more = len(rows) - _MAX_ROWS_IN_MESSAGE
    return shown + (f" and {more} more" if more > 0 else "")


class BaseExpert:
    """Base class of experts: validation, the ``on_error`` policy and accounting.

    Subclasses implement ``_score(X, report)``, returning an array-like of shape
    ``(n_samples,)`` with the probability of the positive class for each row of
    ``X`` (NaN for rows they could not score). They may fill the counters of
    ``report`` (requests, retries, cache hits, tokens). Everything else — checking
    the shape, NaN, the [0, 1] range and exceptions, applying ``on_error``,
    timing — is done here.

    Parameters
    ----------
    on_error : {"raise", "fallback"}, default="raise"
        What to do when the expert fails on some rows. ``"raise"`` raises
        :class:`ExpertError` naming the rows; ``"fallback"`` returns NaN for them
        and counts them, and the cascade keeps the probe score for those rows.
    """

    def __init__(self, *, on_error: str = "raise") -> None:
        self.on_error = on_error

    # -- the protocol -------------------------------------------------------------
    def _score(self, X: Any, report: ExpertReport) -> Any:  # pragma: no cover
        raise NotImplementedError

    def score(self, X: Any) -> np.ndarray:
        """Probability of the positive class for each row of ``X``.

        Parameters
        ----------
        X : array-like or sequence of length n_samples
            Raw inputs (numeric rows, texts or conversations).

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Values in [0, 1]; NaN for failed rows when ``on_error="fallback"``.
        """
        return self.score_with_report(X)[0]

    def score_with_report(self, X: Any) -> tuple[np.ndarray, ExpertReport]:
        """Like :meth:`score`, and also return the :class:`ExpertReport` of this call."""
        on_error = self._check_on_error()
        n = _num_samples(X)
        report = ExpertReport(n_rows=n)
        scores = np.full(n, np.nan)
        if n == 0:
            return scores, report
        start = time.perf_counter()
        try:
            raw = self._score(X, report)
        except ExpertError:
            raise
        except Exception as exc:  # the expert crashed: every row of the call failed
            message = f"{type(exc).__name__}: {exc}"
            if on_error == "raise":
                raise ExpertError(
                    f"Expert {self!r} raised {message} while scoring {n} rows "
                    f"(rows {describe_rows(np.arange(n))}). Fix the expert or pass "
                    "on_error='fallback' to keep the probe score for failing rows.",
                    rows=np.arange(n),
                ) from exc
            report.add_error(message)
        else:
            scores, problem = _validate_scores(raw, n)
            if problem is not None and report.errors:  # the expert said why
                problem = f"{'; '.join(report.errors)} ({problem})"
            if problem is not None and on_error == "raise":
                raise ExpertError(
                    f"Expert {self!r} returned {problem}. An expert must return one "
                    f"probability in [0, 1] per row ({n} rows here). Fix the expert "
                    "or pass on_error='fallback' to keep the probe score for "
                    "failing rows.",
                    rows=np.flatnonzero(np.isnan(scores)),
                )
            if problem is not None:
                report.add_error(problem)
        report.latency_s += time.perf_counter() - start
        failed = np.isnan(scores)
        report.n_failed = int(failed.sum())
        report.n_scored = n - report.n_failed
        report.failed_rows = np.flatnonzero(failed).tolist()
        if report.n_failed and on_error == "raise":
            raise ExpertError(
                f"Expert {self!r} could not score rows {describe_rows(np.flatnonzero(failed))} "
                f"({report.n_failed} of {n}): {'; '.join(report.errors) or 'NaN returned'}. "
                "Pass on_error='fallback' to keep the probe score for failing rows.",
                rows=np.flatnonzero(failed),
            )
        return scores, report

    def _check_on_error(self) -> str:
        if self.on_error not in _ON_ERROR:
            raise ValueError(
                f"on_error must be one of {_ON_ERROR}, got {self.on_error!r}."
            )
        return self.on_error

    # -- a fixed external model: no copies, stable repr, no scoring state in pickles --
    def __sklearn_clone__(self) -> BaseExpert:
        return self

    def _repr_params(self) -> dict[str, Any]:
        return {"on_error": self.on_error}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self._repr_params().items())
        return f"{type(self).__name__}({params})"

    _transient_attributes: tuple[str, ...] = ()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in self._transient_attributes:
            state.pop(name, None)
        return state


def _validate_scores(raw: Any, n: int) -> tuple[np.ndarray, str | None]:
    """Scores as a float array of length ``n`` with NaN where invalid, and a problem."""
    try:
        arr = np.asarray(raw, dtype=float)
    except (TypeError, ValueError) as exc:
        return np.full(n, np.nan), f"values that are not numbers ({exc})"
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.shape != (n,):
        return np.full(n, np.nan), f"an array of shape {arr.shape}, expected ({n},)"
    arr = arr.copy()
    bad_nan = ~np.isfinite(arr)
    bad_range = np.isfinite(arr) & ((arr < 0.0) | (arr > 1.0))
    problems = []
    if bad_nan.any():
        problems.append(f"NaN or inf for rows {describe_rows(np.flatnonzero(bad_nan))}")
    if bad_range.any():
        problems.append(
            f"values outside [0, 1] for rows {describe_rows(np.flatnonzero(bad_range))}"
        )
    arr[bad_nan | bad_range] = np.nan
    return arr, ("; ".join(problems) or None)

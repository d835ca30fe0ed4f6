"""What every LLM judge shares: :class:`BaseJudge`, with the one scoring loop
(validate → render → de-duplicate → cache → score the rest → fill)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from skctd.experts._base import BaseExpert, ExpertReport
from skctd.experts.judges._prompt import scores_from_logprobs, text_key
from skctd.llm import DiskCache, dedupe
from skctd.utils import check_inputs

__all__ = ["BaseJudge", "OnScored"]

#: ``on_scored(indices, logprobs)``: some of the prompts given to ``_score_prompts``
#: are scored; ``logprobs`` has shape ``(len(indices), 2)``.
OnScored = Callable[[np.ndarray, np.ndarray], None]


class BaseJudge(BaseExpert):
    """Base class of the LLM judges: the scoring loop, the caches and the details.

    A judge renders each input (a text or a conversation) into a prompt asking a
    yes/no question and reads the log-probabilities of the positive and the
    negative label word at the answer position. This class does everything around
    that: it validates the inputs (:func:`skctd.utils.check_inputs`, raised whatever
    ``on_error`` says), scores each distinct prompt once, serves prompts already
    scored from an in-memory cache (``cache=True``) and a disk cache
    (``cache_dir``), stores new scores as soon as they arrive (an interrupted run
    keeps them), and turns log-probabilities into scores (``normalize``) and the
    details of :meth:`score_details`.

    A subclass stores ``normalize``, ``cache`` and ``cache_dir`` as parameters and
    implements:

    - ``_check_params() -> dict``: validate the parameters (``ValueError``) and
      return the settings the other methods read;
    - ``_prompts(rows, settings) -> list of str``: for each row, the text that,
      with the fingerprint, determines the judgement (the cache key);
    - ``_fingerprint(settings) -> str``: a hash of everything else that changes a
      judgement (model, labels, template, ...), e.g. with
      ``prompt_fingerprint``;
    - ``_score_prompts(prompts, settings, report, on_scored) -> ndarray``: the
      full-vocabulary ``[log P(positive), log P(negative)]`` of each (distinct)
      prompt, shape ``(len(prompts), 2)``, NaN for a prompt that failed (with the
      reason in ``report.add_error``). It counts its requests, retries and tokens
      in ``report`` and may call ``on_scored(indices, logprobs)`` whenever some
      prompts are scored, so that they are cached at once; whatever it returns
      and did not report that way is cached when it returns.

    Parameters
    ----------
    on_error : {"raise", "fallback"}, default="raise"
        See :class:`~skctd.experts.BaseExpert`.

    See Also
    --------
    skctd.TransformersJudge, skctd.OpenAIJudge : the two judges built on it.
    """

    _transient_attributes: tuple[str, ...] = ("_cache", "_disk_cache", "_tls")

    # -- what a judge implements ---------------------------------------------------
    def _check_params(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _prompts(
        self, rows: list[Any], settings: dict[str, Any]
    ) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fingerprint(self, settings: dict[str, Any]) -> str:  # pragma: no cover
        raise NotImplementedError

    def _score_prompts(
        self,
        prompts: list[str],
        settings: dict[str, Any],
        report: ExpertReport,
        on_scored: OnScored,
    ) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- public API ------------------------------------------------------------------
    def _check_rows(self, X: Any) -> list[Any]:
        return check_inputs(X, name="X", allow_mixed=True)

    def score_with_report(self, X: Any) -> tuple[np.ndarray, ExpertReport]:
        """Score ``X`` and return the :class:`~skctd.experts.ExpertReport` of the call.

        Bad parameters raise ``ValueError`` whatever ``on_error`` says. A row
        that is not a valid input (see :func:`skctd.utils.check_inputs`) raises
        ``ValueError`` / ``TypeError`` with ``on_error="raise"``; with
        ``on_error="fallback"`` it is a failed row like any other (NaN, counted
        in the report with the reason), never a failure of the whole batch.

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
            Requests, retries, cache hits, tokens, failures and their reasons.
        """
        self._check_params()
        if self._check_on_error() == "raise":
            return super().score_with_report(self._check_rows(X))
        rows, invalid = check_inputs(
            X, name="X", allow_mixed=True, return_errors=True
        )
        if not invalid:
            return super().score_with_report(self._check_rows(rows))
        # rows no expert can read fail alone: the others are scored as usual
        n = len(rows)
        valid = np.array([i for i in range(n) if i not in invalid], dtype=np.intp)
        tls = self._thread_state()
        if valid.size:
            sub_scores, sub = super().score_with_report(
                self._check_rows([rows[i] for i in valid])
            )
        else:
            sub_scores, sub = np.empty(0), ExpertReport()
            tls.details = None
        scores = np.full(n, np.nan)
        scores[valid] = sub_scores
        report = ExpertReport(n_rows=n)
        report.merge(sub)
        report.n_rows = n
        for i in sorted(invalid):
            report.add_error(invalid[i])
        report.failed_rows = np.flatnonzero(np.isnan(scores)).tolist()
        report.n_failed = len(report.failed_rows)
        report.n_scored = n - report.n_failed
        details = getattr(tls, "details", None)
        if details is not None:  # what score_details reads, aligned with X
            full = {}
            for key, values in details.items():
                out = np.full(n, np.nan)
                out[valid] = values
                full[key] = out
            tls.details = full
        return scores, report

    def score_details(self, X: Any) -> dict[str, Any]:
        """Scores with the label-word probabilities and the leaked mass.

        Parameters
        ----------
        X : sequence of str or of conversations

        Returns
        -------
        details : dict
            ``score``, ``p_pos``, ``p_neg`` (full-vocabulary probabilities of the
            label words) and ``leaked_mass`` (``1 - p_pos - p_neg``: the
            probability the model put on other answers, a health figure of the
            prompt), ndarrays of shape (n_samples,) with NaN for failed rows, and
            ``report``, the :class:`~skctd.experts.ExpertReport` of the call.
        """
        tls = self._thread_state()
        tls.details = None
        try:
            scores, report = self.score_with_report(X)
            details = dict(tls.details or {})
        finally:
            tls.details = None
        failed = np.isnan(scores)
        for name in ("p_pos", "p_neg", "leaked_mass"):
            values = np.array(details.get(name, np.full(len(scores), np.nan)), float)
            values[failed] = np.nan
            details[name] = values
        details["score"] = scores
        details["report"] = report
        return details

    def cached_scores(self, X: Any) -> np.ndarray:
        """The scores of the rows of ``X`` already in the caches; nothing is scored.

        Useful to resume or inspect a long run: the rows whose score is in memory or
        in ``cache_dir`` get it, the others get NaN, and no request is made (a
        local judge still loads its tokenizer and model to render the prompts).

        Parameters
        ----------
        X : sequence of str or of conversations

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            P(positive), NaN for rows not in a cache.
        """
        settings = self._check_params()
        rows = self._check_rows(X)
        lp = np.full((len(rows), 2), np.nan)
        if rows:
            _, keys, fingerprint = self._keys(rows, settings)
            unique, inverse = dedupe(keys)
            found = self._cache_get(unique, fingerprint)
            lp = np.array([found.get(k, (np.nan, np.nan)) for k in unique])[inverse]
        return scores_from_logprobs(lp[:, 0], lp[:, 1], self.normalize)["score"]

    def clear_cache(self) -> None:
        """Forget the scores kept in memory (a disk cache is left as it is)."""
        self.__dict__.pop("_cache", None)

    # -- the scoring loop ---------------------------------------------------------------
    def _keys(
        self, rows: list[Any], settings: dict[str, Any]
    ) -> tuple[list[str], list[str], str]:
        """The prompt and the cache key of each row, and the judge's fingerprint."""
        prompts = self._prompts(rows, settings)
        fingerprint = self._fingerprint(settings)
        # the key holds the prompt and (through the fingerprint) the judge settings
        return prompts, [text_key(fingerprint, p) for p in prompts], fingerprint

    def _score(self, X: list[Any], report: ExpertReport) -> np.ndarray:
        settings = self._check_params()
        prompts, keys, fingerprint = self._keys(X, settings)
        unique, first, inverse = dedupe(keys, return_index=True)
        report.n_cache_hits += len(keys) - len(unique)  # duplicates within the call
        known = self._cache_get(unique, fingerprint, report)
        report.n_cache_hits += len(known)  # distinct inputs found in a cache
        lp = np.full((len(unique), 2), np.nan)
        for j, key in enumerate(unique):
            if key in known:
                lp[j] = known[key]
        todo = np.array([j for j, key in enumerate(unique) if key not in known], int)
        if todo.size:
            stored = np.zeros(todo.size, dtype=bool)

            def on_scored(indices: Any, values: Any) -> None:
                # cached at once: an interrupted long run keeps what it scored
                indices = np.asarray(indices, dtype=np.intp).reshape(-1)
                values = np.asarray(values, dtype=float).reshape(-1, 2)
                good = ~np.isnan(values).any(axis=1)
                done = {
                    unique[todo[i]]: values[r] for r, i in enumerate(indices) if good[r]
                }
                if done:
                    self._cache_put(done, fingerprint)
                stored[indices[good]] = True

            scored = self._score_prompts(
                [prompts[first[j]] for j in todo], settings, report, on_scored
            )
            scored = np.asarray(scored, dtype=float).reshape(todo.size, 2)
            rest = np.flatnonzero(~stored & ~np.isnan(scored).any(axis=1))
            if rest.size:
                on_scored(rest, scored[rest])
            lp[todo] = scored
        return self._publish(lp[inverse])

    # -- details of the last call (per thread) ---------------------------------------------
    def _thread_state(self) -> threading.local:
        tls = self.__dict__.get("_tls")
        if tls is None:
            tls = self._tls = threading.local()
        return tls

    def _publish(self, lp: np.ndarray) -> np.ndarray:
        """Scores from ``lp`` (n, 2); the details are kept for :meth:`score_details`."""
        details = scores_from_logprobs(lp[:, 0], lp[:, 1], self.normalize)
        self._thread_state().details = details
        return details["score"]

    # -- caches: per key, the full-vocabulary [lp_pos, lp_neg], so that ``normalize``
    # -- can change without re-scoring ------------------------------------------------
    def _memory(self) -> dict[str, np.ndarray]:
        cache = self.__dict__.get("_cache")
        if cache is None:
            cache = self._cache = {}
        return cache

    def _disk(self, fingerprint: str) -> DiskCache | None:
        if self.cache_dir is None:
            return None
        disks = self.__dict__.get("_disk_cache")
        if disks is None:
            disks = self._disk_cache = {}
        disk = disks.get(fingerprint)
        if disk is None:
            disk = disks[fingerprint] = DiskCache(
                self.cache_dir, {"judge": type(self).__name__, "settings": fingerprint}
            )
        return disk

    def _cache_get(
        self, keys: list[str], fingerprint: str, report: ExpertReport | None = None
    ) -> dict[str, np.ndarray]:
        """The cached ``[lp_pos, lp_neg]`` of the keys found; an entry that cannot
        be read back (corrupt, wrong shape, NaN) is a miss, counted in
        ``report.n_cache_errors``: the row is scored again and overwritten."""
        found: dict[str, np.ndarray] = {}
        if self.cache:
            memory = self._memory()
            found = {k: memory[k] for k in keys if k in memory}
        disk = self._disk(fingerprint)
        missing = [k for k in keys if k not in found]
        if disk is not None and missing:
            on_disk, _, n_corrupt = disk.get_many(missing, return_n_corrupt=True)
            n_bad = n_corrupt
            good = {}
            for key, value in on_disk.items():
                value = _logprob_pair(value)
                if value is None:
                    n_bad += 1
                else:
                    good[key] = value
            found.update(good)
            if self.cache:
                self._memory().update(good)
            if report is not None:
                report.n_cache_errors += n_bad
        return found

    def _cache_put(self, values: dict[str, np.ndarray], fingerprint: str) -> None:
        if self.cache:
            self._memory().update(values)
        disk = self._disk(fingerprint)
        if disk is not None:
            disk.put_many(values)


def _logprob_pair(value: Any) -> np.ndarray | None:
    """A cached ``[lp_pos, lp_neg]`` as read back, or None if it is not one.

    Log-probabilities are <= 0 (``-inf`` is a probability of 0); anything else (a
    wrong shape, NaN, a positive value) is a damaged entry.
    """
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    if arr.shape != (2,) or np.isnan(arr).any() or (arr > 1e-9).any():
        return None
    return np.minimum(arr, 0.0)

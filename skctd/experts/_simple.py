"""Simple experts: a function, a fitted classifier, precomputed scores, and
:func:`as_expert`, which wraps any of them into a :class:`~skctd.experts.BaseExpert`."""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import check_is_fitted

from skctd.experts._base import BaseExpert, ExpertReport, describe_rows

__all__ = [
    "ClassifierExpert",
    "FunctionExpert",
    "PrecomputedExpert",
    "as_expert",
    "row_key",
]


def _callable_name(func: Callable) -> str:
    module = getattr(func, "__module__", None) or "?"
    qualname = getattr(func, "__qualname__", None) or type(func).__name__
    return f"{module}.{qualname}"


class FunctionExpert(BaseExpert):
    """An expert given as a plain function ``func(X_rows) -> probabilities``.

    Parameters
    ----------
    func : callable
        Called on the raw rows to delegate (a slice of the cascade's ``X``) and
        returning one probability of the positive class per row. Use a module-level
        function if the cascade is to be pickled (a lambda does not pickle).
    on_error : {"raise", "fallback"}, default="raise"
        See :class:`BaseExpert`.

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.experts import FunctionExpert
    >>> def first_feature_sigmoid(X):
    ...     return 1.0 / (1.0 + np.exp(-np.asarray(X)[:, 0]))
    >>> expert = FunctionExpert(first_feature_sigmoid)
    >>> expert.score(np.array([[0.0, 1.0], [100.0, 0.0]]))
    array([0.5, 1. ])
    """

    def __init__(self, func: Callable[[Any], Any], *, on_error: str = "raise") -> None:
        super().__init__(on_error=on_error)
        self.func = func

    def _score(self, X: Any, report: ExpertReport) -> Any:
        if not callable(self.func):
            raise TypeError(f"func must be callable, got {self.func!r}")
        report.n_requests += 1
        return self.func(X)

    def _repr_params(self) -> dict[str, Any]:
        return {"func": _callable_name(self.func), "on_error": repr(self.on_error)}


class ClassifierExpert(BaseExpert):
    """A fitted scikit-learn classifier used as the expert (``predict_proba``).

    Parameters
    ----------
    estimator : fitted classifier
        Must implement ``predict_proba`` and have ``classes_``. It is never refitted.
    pos_label : label, optional
        The class whose probability is returned. Default: ``estimator.classes_[-1]``.
    on_error : {"raise", "fallback"}, default="raise"
        See :class:`BaseExpert`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skctd.experts import ClassifierExpert
    >>> X = np.array([[-2.0], [-1.0], [1.0], [2.0]]); y = np.array([0, 0, 1, 1])
    >>> expert = ClassifierExpert(LogisticRegression().fit(X, y))
    >>> bool(expert.score(np.array([[3.0]]))[0] > 0.5)
    True
    """

    def __init__(
        self, estimator: Any, *, pos_label: Any = None, on_error: str = "raise"
    ) -> None:
        super().__init__(on_error=on_error)
        self.estimator = estimator
        self.pos_label = pos_label

    def _score(self, X: Any, report: ExpertReport) -> Any:
        check_is_fitted(self.estimator)
        classes = list(self.estimator.classes_)
        label = classes[-1] if self.pos_label is None else self.pos_label
        if label not in classes:
            raise ValueError(
                f"pos_label={label!r} is not one of the expert's classes {classes}."
            )
        report.n_requests += 1
        return self.estimator.predict_proba(X)[:, classes.index(label)]

    def _repr_params(self) -> dict[str, Any]:
        params = {"estimator": repr(self.estimator)}
        if self.pos_label is not None:
            params["pos_label"] = repr(self.pos_label)
        params["on_error"] = repr(self.on_error)
        return params


def row_key(row: Any) -> str:
    """A stable key for one raw input row: a text, a conversation or a numeric row.

    Numeric rows are keyed by their float64 bytes, texts by themselves and
    conversations by their canonical JSON, so the same input always gets the same
    key in this and in later processes.
    """
    if isinstance(row, str):
        return "s:" + row
    if isinstance(row, (list, tuple)) and row and isinstance(row[0], dict):
        return "c:" + json.dumps(list(row), sort_keys=True, ensure_ascii=False)
    arr = np.asarray(row)
    if arr.dtype.kind in "biuf":
        arr = np.ascontiguousarray(arr, dtype=np.float64)
        return "n:" + hashlib.sha1(arr.tobytes()).hexdigest()
    return "o:" + json.dumps(
        arr.tolist() if hasattr(arr, "tolist") else row, sort_keys=True, default=str
    )


def _rows(X: Any) -> list[Any]:
    if hasattr(X, "iloc"):  # DataFrame or Series
        return [
            X.iloc[i] if X.ndim == 1 else X.iloc[i].to_numpy() for i in range(len(X))
        ]
    return list(X)


class PrecomputedExpert(BaseExpert):
    """Expert scores computed beforehand, looked up by key.

    Use it when the expert was run offline (an LLM judge over a whole dataset, or
    human/other-model verdicts stored in a column).

    Parameters
    ----------
    scores : array-like of shape (n_keys,)
        The expert's probability of the positive class for each key.
    keys : array-like or sequence of length n_keys, optional
        What identifies each score. Without ``key_column``, these are the raw rows
        themselves (numeric rows, texts or conversations), matched exactly. With
        ``key_column``, they are the values of that id column.
    key_column : int or str, optional
        Column of ``X`` holding the id of each row (an index for arrays, a name for
        DataFrames). Default: the whole row is the key.
    on_error : {"raise", "fallback"}, default="raise"
        A row whose key is unknown fails (see :class:`BaseExpert`).

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.experts import PrecomputedExpert
    >>> expert = PrecomputedExpert([0.9, 0.1], keys=["how to make a bomb", "hello"])
    >>> expert.score(["hello", "how to make a bomb"])
    array([0.1, 0.9])
    """

    _transient_attributes = ("_lookup",)

    def __init__(
        self,
        scores: Any,
        *,
        keys: Any = None,
        key_column: int | str | None = None,
        on_error: str = "raise",
    ) -> None:
        super().__init__(on_error=on_error)
        self.scores = scores
        self.keys = keys
        self.key_column = key_column

    def _table(self) -> dict[str, float]:
        lookup = self.__dict__.get("_lookup")
        if lookup is None:
            if self.keys is None:
                raise ValueError(
                    "PrecomputedExpert needs keys: the rows (or ids) the scores belong to."
                )
            scores = np.asarray(self.scores, dtype=float).ravel()
            keys = [
                self._key_of(k, is_id=self.key_column is not None)
                for k in _rows(self.keys)
            ]
            if len(keys) != len(scores):
                raise ValueError(
                    f"scores has {len(scores)} values but keys has {len(keys)}; they "
                    "must be aligned."
                )
            lookup = dict(zip(keys, scores.tolist(), strict=True))
            self._lookup = lookup
        return lookup

    @staticmethod
    def _key_of(value: Any, *, is_id: bool) -> str:
        if is_id:
            return "id:" + str(value.item() if hasattr(value, "item") else value)
        return row_key(value)

    def _score(self, X: Any, report: ExpertReport) -> Any:
        table = self._table()
        if self.key_column is not None:
            if hasattr(X, "iloc"):
                ids = list(X[self.key_column])
            else:
                ids = list(
                    _safe_indexing(np.asarray(X, dtype=object), self.key_column, axis=1)
                )
            keys = [self._key_of(v, is_id=True) for v in ids]
        else:
            keys = [row_key(r) for r in _rows(X)]
        out = np.array([table.get(k, np.nan) for k in keys], dtype=float)
        missing = np.flatnonzero(np.isnan(out))
        if missing.size:
            report.add_error(f"no precomputed score for rows {describe_rows(missing)}")
        report.n_cache_hits += int(len(out) - missing.size)
        return out

    def _repr_params(self) -> dict[str, Any]:
        n = len(np.asarray(self.scores, dtype=float).ravel())
        params = {"scores": f"<{n} scores>"}
        if self.key_column is not None:
            params["key_column"] = repr(self.key_column)
        params["on_error"] = repr(self.on_error)
        return params


def as_expert(expert: Any, *, on_error: str = "raise") -> BaseExpert:
    """Wrap ``expert`` into a :class:`BaseExpert`.

    A :class:`BaseExpert` is returned as is; an object with ``predict_proba`` becomes
    a :class:`ClassifierExpert`; a callable a :class:`FunctionExpert`; a string
    ``"module:function"`` is imported and wrapped as a function.

    Parameters
    ----------
    expert : BaseExpert, classifier, callable or str
    on_error : {"raise", "fallback"}, default="raise"
        Policy for the wrappers created here.

    Returns
    -------
    BaseExpert
    """
    if isinstance(expert, BaseExpert):
        return expert
    if expert is None:
        raise ValueError(
            "expert is required: pass a callable returning P(positive) per row, a "
            "fitted classifier with predict_proba, or a skctd expert "
            "(e.g. PrecomputedExpert, TransformersJudge, OpenAIJudge)."
        )
    if hasattr(expert, "predict_proba"):
        return ClassifierExpert(expert, on_error=on_error)
    if isinstance(expert, str) and ":" in expert:
        module, _, name = expert.partition(":")
        return FunctionExpert(
            getattr(importlib.import_module(module), name), on_error=on_error
        )
    if callable(expert):
        return FunctionExpert(expert, on_error=on_error)
    raise TypeError(
        f"expert must be a skctd expert, a classifier with predict_proba or a "
        f"callable, got {type(expert).__name__}."
    )

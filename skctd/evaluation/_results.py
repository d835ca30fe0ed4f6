"""The tidy-table base of the evaluation results: ``to_frame`` and ``to_dict``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from skctd.utils import import_optional, to_jsonable

__all__ = ["TableMixin", "frame"]


def frame(columns: Mapping[str, Any]):
    """A :class:`pandas.DataFrame` of equal-length columns (the ``report`` extra)."""
    pd = import_optional("pandas", extra="report", purpose="results as a DataFrame")
    return pd.DataFrame({k: np.asarray(v) for k, v in columns.items()})


class TableMixin:
    """``to_frame`` / ``to_dict`` over the ``table`` attribute."""

    table: dict

    def to_frame(self):
        """The tidy table as a :class:`pandas.DataFrame` (needs the ``report`` extra)."""
        return frame(self.table)

    def to_dict(self) -> dict:
        """JSON-serialisable dict (non-finite numbers become ``None``)."""
        return to_jsonable(
            {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        )

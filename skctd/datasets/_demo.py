"""The embedded demo data set: high-stakes vs low-stakes interactions, written for skctd."""

from __future__ import annotations

import atexit
import contextlib
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils import Bunch

from skctd.datasets._io import read_dataset
from skctd.utils._optional import import_optional

__all__ = ["demo_path", "load_demo"]

_FILENAME = "demo.jsonl"
_files = contextlib.ExitStack()
atexit.register(_files.close)


def demo_path() -> Path:
    """Path of the demo data file installed with the package.

    Returns
    -------
    path : Path
        The ``demo.jsonl`` file (JSON Lines, schema of :func:`skctd.datasets.read_dataset`).

    Examples
    --------
    >>> from skctd.datasets import demo_path
    >>> demo_path().name
    'demo.jsonl'
    """
    ref = resources.files("skctd.datasets").joinpath("data", _FILENAME)
    if isinstance(ref, Path):
        path = ref
    else:  # e.g. a zipped install: extract once, kept until the interpreter exits
        path = Path(_files.enter_context(resources.as_file(ref)))
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the demo data file is missing from the skctd installation; "
            "reinstall skctd (the file ships as package data)."
        )
    return path


def _describe(inputs: list, target: np.ndarray, group: np.ndarray) -> str:
    n = len(inputs)
    n_conv = sum(isinstance(x, list) for x in inputs)
    lines = [
        "Demo data set: high-stakes vs low-stakes interactions",
        "-----------------------------------------------------",
        "",
        "Short user messages and chat conversations (a list of role/content messages that",
        "ends with a user turn) written by hand for skctd. Label 1 = high-stakes: mishandling",
        "the interaction could cause significant harm (health, legal, financial, safety);",
        "label 0 = low-stakes. Each domain holds hard cases in both directions: low-stakes",
        "texts with alarming words (a stuck process to kill, an exam question) and",
        "high-stakes texts in calm wording (a dose for an infant, a clause to sign tomorrow).",
        "It is a small demo for examples and tests, not a benchmark: use real data to measure.",
        "",
        f"Rows: {n} ({int(target.sum())} label 1, {int(n - target.sum())} label 0); "
        f"conversations: {n_conv} ({n_conv / n:.0%}).",
        "",
        f"{'group':<16}{'label 0':>8}{'label 1':>8}{'total':>7}",
    ]
    for g in sorted(set(group.tolist())):
        t = target[group == g]
        lines.append(
            f"{g:<16}{int((t == 0).sum()):>8}{int((t == 1).sum()):>8}{t.size:>7}"
        )
    lines += [
        "",
        "Fields: id, inputs (str or list of messages), label (0/1), group (the domain).",
        "Licence: written for skctd and distributed under the BSD-3-Clause licence of the",
        "package. No text was taken from another data set.",
    ]
    return "\n".join(lines)


def load_demo(*, as_frame: bool = False, return_X_y: bool = False) -> Any:
    """Load the embedded demo set of high-stakes vs low-stakes interactions.

    A small, class-balanced set written for skctd across seven domains (``medical``,
    ``legal``, ``finance``, ``self_harm``, ``tool_use``, ``cybersecurity``,
    ``everyday_chat``). About a third of the inputs are chat conversations (lists of
    ``{"role", "content"}`` messages ending with a user turn); the rest are single
    messages. It is meant for examples, documentation and tests; it is too small to
    benchmark with.

    Parameters
    ----------
    as_frame : bool, default=False
        If True, also build a pandas DataFrame ``frame`` with columns ``id``, ``inputs``,
        ``group`` and ``target``; ``data`` and ``target`` are then pandas Series.
        Needs pandas (``pip install skctd[report]``).
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        Dictionary-like object with attributes:

        data : list of (str or list of dict) or Series
            The inputs: a text, or a conversation.
        target : ndarray of shape (n_samples,) or Series
            1 = high-stakes, 0 = low-stakes.
        group : ndarray of shape (n_samples,) of str
            The domain of each row.
        id : ndarray of shape (n_samples,) of str
            Row identifiers (``"demo-0001"``, ...).
        frame : DataFrame or None
            The whole set as a DataFrame when ``as_frame=True``.
        target_names : list of str
            ``["low-stakes", "high-stakes"]``.
        DESCR : str
            Description with counts per domain and label, and the licence.
        filename : str
            Path of the JSON Lines file.

    (data, target) : tuple if ``return_X_y`` is True

    See Also
    --------
    skctd.datasets.read_dataset : Read a data set in the same schema from a file.

    Examples
    --------
    >>> import numpy as np
    >>> from skctd.datasets import load_demo
    >>> X, y = load_demo(return_X_y=True)
    >>> len(X) == len(y) >= 400
    True
    >>> float(np.mean(y))
    0.5
    >>> demo = load_demo()
    >>> print(sorted(set(demo.group.tolist())))
    ['cybersecurity', 'everyday_chat', 'finance', 'legal', 'medical', 'self_harm', 'tool_use']
    """
    if not isinstance(as_frame, bool):
        raise TypeError(f"as_frame must be True or False, got {as_frame!r}.")
    if not isinstance(return_X_y, bool):
        raise TypeError(f"return_X_y must be True or False, got {return_X_y!r}.")
    path = demo_path()
    raw = read_dataset(path)
    inputs, target, group, ids = raw.inputs, raw.label, raw.group, raw.id
    descr = _describe(inputs, target, group)
    frame = None
    data: Any = inputs
    y: Any = target
    if as_frame:
        pd = import_optional("pandas", purpose="load_demo(as_frame=True)")
        col = np.empty(len(inputs), dtype=object)
        col[:] = inputs  # element-wise, so conversations stay lists
        frame = pd.DataFrame(
            {"id": ids, "inputs": col, "group": group, "target": target}
        )
        data, y = frame["inputs"], frame["target"]
    if return_X_y:
        return data, y
    return Bunch(
        data=data,
        target=y,
        group=group,
        id=ids,
        frame=frame,
        target_names=["low-stakes", "high-stakes"],
        DESCR=descr,
        filename=str(path),
    )

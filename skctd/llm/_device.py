"""Where a model runs and in which precision: :func:`resolve_device`, :func:`resolve_dtype`."""

from __future__ import annotations

from typing import Any

from skctd.utils import import_optional

__all__ = ["resolve_device", "resolve_dtype"]

_DTYPES = ("float32", "bfloat16", "float16")


def _torch() -> Any:
    return import_optional("torch", purpose="running Hugging Face models")


def resolve_device(device: Any = "auto", *, check_available: bool = True) -> Any:
    """The torch device to run on.

    Parameters
    ----------
    device : str or torch.device, default="auto"
        ``"auto"`` picks CUDA when available, else the CPU (Apple's MPS only when
        asked for by name). Any string torch understands (``"cpu"``, ``"cuda:1"``).
    check_available : bool, default=True
        Raise when a CUDA device is asked for but torch sees none. ``False`` only
        checks that torch understands ``device`` (to validate a setting on a
        machine other than the one it will run on).

    Returns
    -------
    device : torch.device

    Examples
    --------
    >>> from skctd.llm import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    torch = _torch()
    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str):
        raise TypeError(
            f"device must be 'auto', a device string such as 'cpu' or 'cuda:0', or a "
            f"torch.device; got {device!r}."
        )
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(
            f"device={device!r} is not a device torch knows; use 'auto', 'cpu', "
            "'cuda' or 'cuda:<index>'."
        ) from exc
    if check_available and resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for CUDA but torch sees no CUDA device; use "
            "device='auto' or 'cpu'."
        )
    return resolved


def resolve_dtype(dtype: Any, device: Any) -> Any:
    """The torch dtype of the model weights.

    Parameters
    ----------
    dtype : str or torch.dtype
        ``"auto"`` (bfloat16 on CUDA, float32 elsewhere), ``"float32"``,
        ``"bfloat16"``, ``"float16"`` or a torch floating dtype.
    device : str or torch.device
        Where the model runs (resolved with :func:`resolve_device`).

    Returns
    -------
    dtype : torch.dtype

    Examples
    --------
    >>> from skctd.llm import resolve_dtype
    >>> resolve_dtype("auto", "cpu")
    torch.float32
    """
    torch = _torch()
    if isinstance(dtype, torch.dtype):
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating dtype, got {dtype}.")
        return dtype
    if dtype is None or dtype == "auto":
        return (
            torch.bfloat16 if resolve_device(device).type == "cuda" else torch.float32
        )
    if isinstance(dtype, str) and dtype.removeprefix("torch.") in _DTYPES:
        return getattr(torch, dtype.removeprefix("torch."))
    raise ValueError(
        f"dtype must be 'auto', one of {_DTYPES} or a torch floating dtype; got "
        f"{dtype!r}."
    )

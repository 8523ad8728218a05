"""Dtype names and devices, in one place: torch's own spelling (``float16``, ``bfloat16``, ``float8_e4m3fn``)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

FLOAT_DTYPES = ("float32", "float16", "bfloat16")


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype spelled ``name`` (``float16``, ``bfloat16``, ``float8_e4m3fn``, ...)."""
    import torch

    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"{name!r} is not a torch dtype name (e.g. float32, float16, bfloat16, float8_e4m3fn)")
    return dtype


def dtype_name(t: torch.Tensor | torch.dtype) -> str:
    """The spelling of a tensor's (or dtype's) dtype: ``torch.float16`` → ``float16``."""
    import torch

    return str(t if isinstance(t, torch.dtype) else t.dtype).removeprefix("torch.")


@cache
def default_device() -> str:
    """``cuda`` where a CUDA device is visible, else ``cpu``: where the suite puts its tensors."""
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"

"""A stand-in for flash-attn's documented Python API, computed with the float64 reference.

It exists to unit-test the adapter's translation (layout, window convention, bottom-right
alignment, LSE layout) on machines without flash-attn. Results obtained through it are adapter
tests, never flash-attn conformance.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np
import torch

from reference.attention import AttentionOptions, attention, attention_varlen


def _window(side: Any, unbounded: int | None, name: str) -> int | None:
    if unbounded is None:  # 4.x: None means unbounded, a negative int is a caller error here
        if side is not None and side < 0:
            raise ValueError(f"{name}: flash_attn.cute takes None for an unbounded window side, got {side}")
        return side
    if not isinstance(side, int):  # 2.x / 3.x: ints, −1 means unbounded
        raise TypeError(f"{name}: window_size entries must be ints (-1 for unbounded), got {side!r}")
    return None if side < 0 else side


def _options(softmax_scale: float | None, causal: bool, window_size: tuple[Any, Any], softcap: float,
             alibi_slopes: torch.Tensor | None, unbounded: int | None) -> AttentionOptions:
    left, right = (_window(w, unbounded, n) for w, n in zip(window_size, ("left", "right"), strict=True))
    if causal:
        right = 0
    slopes = tuple(float(x) for x in alibi_slopes.tolist()) if alibi_slopes is not None else None
    positional = causal or left is not None or right is not None or slopes is not None
    return AttentionOptions(scale=softmax_scale, causal=causal, window_left=left, window_right=right,
                            alibi_slopes=slopes, softcap=softcap or None,
                            alignment="bottom_right" if positional else None)


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rank: int) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.dim() != rank:
            raise ValueError(f"{name} must be {rank}-D in flash-attn's layout; got shape {tuple(t.shape)}")
        if t.dtype not in (torch.float16, torch.bfloat16):
            raise TypeError(f"{name} must be float16 or bfloat16; got {t.dtype}")
        if t.stride(-1) != 1:
            raise ValueError(f"{name} must have a contiguous last dimension")


def make_standin(name: str, unbounded: int | None, lse_flag: str) -> types.ModuleType:
    """A module with flash_attn_func and flash_attn_varlen_func, registered in sys.modules as ``name``."""

    def flash_attn_func(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float = 0.0,
                        softmax_scale: float | None = None, causal: bool = False, window_size: Any = None,
                        softcap: float = 0.0, alibi_slopes: torch.Tensor | None = None, **flags: Any) -> Any:
        _check(q, k, v, 4)
        window = window_size if window_size is not None else (unbounded, unbounded)
        opts = _options(softmax_scale, causal, window, softcap, alibi_slopes, unbounded)
        q64, k64, v64 = (t.detach().double().cpu().numpy().transpose(0, 2, 1, 3) for t in (q, k, v))
        out, lse = attention(q64, k64, v64, opts)
        result = torch.from_numpy(np.ascontiguousarray(out.transpose(0, 2, 1, 3))).to(q.dtype).to(q.device)
        lse_t = torch.from_numpy(lse).float().to(q.device)
        return (result, lse_t, None) if flags.get(lse_flag) else result

    def flash_attn_varlen_func(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens_q: torch.Tensor,
                               cu_seqlens_k: torch.Tensor, max_seqlen_q: int, max_seqlen_k: int,
                               dropout_p: float = 0.0, softmax_scale: float | None = None, causal: bool = False,
                               window_size: Any = None, softcap: float = 0.0,
                               alibi_slopes: torch.Tensor | None = None, **flags: Any) -> Any:
        _check(q, k, v, 3)
        window = window_size if window_size is not None else (unbounded, unbounded)
        opts = _options(softmax_scale, causal, window, softcap, alibi_slopes, unbounded)
        q64, k64, v64 = (t.detach().double().cpu().numpy() for t in (q, k, v))
        out, lse = attention_varlen(q64, k64, v64, cu_seqlens_q.cpu().numpy(), cu_seqlens_k.cpu().numpy(), opts)
        result = torch.from_numpy(out).to(q.dtype).to(q.device)
        lse_t = torch.from_numpy(np.ascontiguousarray(lse.T)).float().to(q.device)  # [H, Tq] as flash-attn
        return (result, lse_t, None) if flags.get(lse_flag) else result

    module = types.ModuleType(name)
    module.flash_attn_func = flash_attn_func  # type: ignore[attr-defined]
    module.flash_attn_varlen_func = flash_attn_varlen_func  # type: ignore[attr-defined]
    sys.modules[name] = module
    return module

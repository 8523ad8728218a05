"""The one score formula and mask of the adapters that build their own (eager, SDPA's attn_mask, FlexAttention).

With d = i + ``opts.diagonal_offset(Sq, Sk)`` the key position on query i's diagonal, key j is visible by
:func:`window_keep`, and a visible score is :func:`modified_score`: softcap first, then the ALiBi penalty
``slope·|d − j|``. Elementwise on tensors, so FlexAttention's ``mask_mod`` and ``score_mod`` call them too.
"""

from __future__ import annotations

from typing import Any

import torch

from reference.attention import AttentionOptions


def window_keep(opts: AttentionOptions, key: Any, diag: Any, keep: Any) -> Any:
    """``keep`` narrowed by causality and the window: key position ``key`` against the diagonal ``diag``."""
    if opts.causal:
        keep = keep & (key <= diag)
    if opts.window_left is not None:
        keep = keep & (key >= diag - opts.window_left)
    if opts.window_right is not None:
        keep = keep & (key <= diag + opts.window_right)
    return keep


def modified_score(opts: AttentionOptions, s: Any, slope: Any, distance: Any) -> Any:
    """The softcap, then the ALiBi penalty ``slope · distance`` (``slope`` None: no ALiBi)."""
    if opts.softcap is not None:
        s = opts.softcap * torch.tanh(s / opts.softcap)
    return s if slope is None else s - slope * distance


def positions(sq: int, sk: int, opts: AttentionOptions, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(diag [Sq, 1], key [1, Sk]): each query's diagonal key position and the key positions."""
    diag = torch.arange(sq, device=device)[:, None] + opts.diagonal_offset(sq, sk)
    return diag, torch.arange(sk, device=device)[None, :]


def visible(sq: int, sk: int, opts: AttentionOptions, device: torch.device) -> torch.Tensor:
    """Boolean [Sq, Sk]: key j is visible to query i."""
    diag, key = positions(sq, sk, opts, device)
    return window_keep(opts, key, diag, torch.ones(sq, sk, dtype=torch.bool, device=device))


def scores(q: torch.Tensor, k: torch.Tensor, opts: AttentionOptions) -> torch.Tensor:
    """[..., Sq, Sk] scale·QKᵀ through :func:`modified_score`, in the inputs' dtype (k already per query head)."""
    sq, sk = q.shape[-2], k.shape[-2]
    s = (q @ k.transpose(-1, -2)) * opts.resolved_scale(q.shape[-1])
    if opts.softcap is None and opts.alibi_slopes is None:
        return s
    diag, key = positions(sq, sk, opts, q.device)
    slopes = (torch.tensor(opts.alibi_slopes, device=q.device, dtype=torch.float32)[:, None, None]
              if opts.alibi_slopes is not None else None)
    return modified_score(opts, s, slopes, (diag - key).abs()).to(s.dtype)


def additive_bias(sq: int, sk: int, heads_q: int, opts: AttentionOptions, dtype: torch.dtype,
                  device: torch.device) -> torch.Tensor:
    """[1, 1 or Hq, Sq, Sk] bias: −inf where not visible, minus the ALiBi distance penalty."""
    mask = visible(sq, sk, opts, device)
    bias = torch.zeros(sq, sk, dtype=torch.float32, device=device).masked_fill(~mask, float("-inf"))[None]
    if opts.alibi_slopes is not None:
        diag, key = positions(sq, sk, opts, device)
        slopes = torch.tensor(opts.alibi_slopes, dtype=torch.float32, device=device)[:, None, None]
        bias = modified_score(AttentionOptions(), bias, slopes, (diag - key).abs().float())
    return bias.to(dtype)[None]


def needs_mask(opts: AttentionOptions, sq: int, sk: int) -> bool:
    """Whether the options need more than SDPA's is_causal (which is top-left)."""
    top_left_causal = opts.causal and (opts.alignment == "top_left" or sq == sk)
    return (opts.causal and not top_left_causal) or opts.window_left is not None or \
        opts.window_right is not None or opts.alibi_slopes is not None

"""Masks and biases built from the options, for backends that take an explicit attn_mask."""

from __future__ import annotations

from typing import Any

import torch

from reference.attention import AttentionOptions


def window_keep(opts: AttentionOptions, key: Any, diag: Any, keep: Any) -> Any:
    """``keep`` narrowed by causality and the window: key position ``key`` against the query's diagonal
    key position ``diag``. Elementwise on tensors, so FlexAttention's mask_mod can call it too."""
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


def visible(sq: int, sk: int, opts: AttentionOptions, device: torch.device) -> torch.Tensor:
    """Boolean [Sq, Sk]: key j is visible to query i (with d = i + alignment offset)."""
    diag = torch.arange(sq, device=device)[:, None] + (sk - sq if opts.alignment == "bottom_right" else 0)
    key = torch.arange(sk, device=device)[None, :]
    return window_keep(opts, key, diag, torch.ones(sq, sk, dtype=torch.bool, device=device))


def additive_bias(sq: int, sk: int, heads_q: int, opts: AttentionOptions, dtype: torch.dtype,
                  device: torch.device) -> torch.Tensor:
    """[1, 1 or Hq, Sq, Sk] bias: −inf where not visible, minus the ALiBi distance penalty."""
    mask = visible(sq, sk, opts, device)
    bias = torch.zeros(sq, sk, dtype=torch.float32, device=device).masked_fill(~mask, float("-inf"))[None]
    if opts.alibi_slopes is not None:
        diag = torch.arange(sq, device=device)[:, None] + (sk - sq if opts.alignment == "bottom_right" else 0)
        distance = (diag - torch.arange(sk, device=device)[None, :]).abs().float()
        slopes = torch.tensor(opts.alibi_slopes, dtype=torch.float32, device=device)[:, None, None]
        bias = bias - slopes * distance
    return bias.to(dtype)[None]


def needs_mask(opts: AttentionOptions, sq: int, sk: int) -> bool:
    """Whether the options need more than SDPA's is_causal (which is top-left)."""
    top_left_causal = opts.causal and (opts.alignment == "top_left" or sq == sk)
    return (opts.causal and not top_left_causal) or opts.window_left is not None or \
        opts.window_right is not None or opts.alibi_slopes is not None

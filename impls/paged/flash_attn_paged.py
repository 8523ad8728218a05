"""flash-attn's paged entry points (CUDA only; skipped with reasons elsewhere).

* ``paged-flash-attn-kvcache``: 2.x ``flash_attn_with_kvcache(q, k_cache, v_cache, cache_seqlens=, block_table=)``;
  the paged path needs the block size to be a multiple of 256 (flash-attn 2.x README, "paged KV cache").
* ``paged-flash-attn-varlen``: 2.x ``flash_attn_varlen_func(..., block_table=)`` with cu_seqlens.
* ``paged-flash-attn-cute``: 4.x ``flash_attn.cute.flash_attn_varlen_func(..., page_table=, seqused_k=)``.
All align causal masks and windows bottom-right, matching this area's convention; the LSE is
[B, Hq, Sq] (dense) or [Hq, Tq] (packed) and is transposed to [B, Sq, Hq].
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from impls.base import Requirements
from impls.paged.api import PagedAttentionImpl, PagedCase, write_into
from impls.registry import register
from reference.attention import AttentionOptions

README_2X = "https://github.com/Dao-AILab/flash-attention#inference-with-paged-kv-cache"


def _window(opts: AttentionOptions, unbounded: Any) -> tuple[Any, Any]:
    left = unbounded if opts.window_left is None else opts.window_left
    right = unbounded if opts.window_right is None else opts.window_right
    if opts.causal:
        right = 0
    return left, right


class FlashPaged(PagedAttentionImpl):
    dtypes = ("float16", "bfloat16")

    def __init__(self, name: str, module: str, block_multiple: int, description: str,
                 min_capability: tuple[int, int] = (8, 0)) -> None:
        self.name, self.module, self.description = name, module, description
        self.block_multiple = block_multiple
        self.block_sizes = tuple(b for b in (16, 32, 64, 128, 256, 512) if b % block_multiple == 0)
        self.requires = Requirements(modules=(module,), device="cuda", min_compute_capability=min_capability)
        lacks = {"fp8": "these entry points take the cache in the query dtype (no descale arguments here)",
                 "sinks": "this adapter passes no attention sinks"}
        if module == "flash_attn.cute":
            lacks["alibi"] = "flash_attn.cute has no alibi_slopes"
        self.lacks = lacks

    def limits(self, case: PagedCase) -> list[str]:
        reasons = []
        if case.cache_dtype != case.dtype:
            reasons.append(f"flash-attn takes the cache in the query dtype; got {case.cache_dtype} for {case.dtype}")
        if case.head_dim % 8 or case.head_dim > 256:
            reasons.append(f"flash-attn needs head_dim a multiple of 8 and <= 256; got {case.head_dim}")
        return reasons

    def forward(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, block_table: torch.Tensor,
                seqlens: torch.Tensor, opts: AttentionOptions, out: torch.Tensor | None = None,
                k_scale: float = 1.0, v_scale: float = 1.0,
                max_seqlen: int | None = None, *, need_lse: bool = False,
                sinks: tuple[float, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        longest = self.admit(q, k_cache, v_cache, block_table, seqlens, opts, max_seqlen, need_lse, sinks)
        if k_cache.shape[1] % self.block_multiple:
            raise ValueError(f"{self.name} needs the block size to be a multiple of {self.block_multiple}; "
                             f"got {k_cache.shape[1]}")
        mod = importlib.import_module(self.module)
        scale = opts.resolved_scale(q.shape[-1])
        slopes = (torch.tensor(opts.alibi_slopes, device=q.device, dtype=torch.float32)
                  if opts.alibi_slopes is not None else None)
        bsz, sq, hq, dim = q.shape
        if self.name == "paged-flash-attn-kvcache":
            o, lse = mod.flash_attn_with_kvcache(
                q, k_cache, v_cache, cache_seqlens=seqlens, block_table=block_table, softmax_scale=scale,
                causal=opts.causal, window_size=_window(opts, -1), softcap=opts.softcap or 0.0,
                alibi_slopes=slopes, return_softmax_lse=True)
            return write_into(out, o), lse.transpose(1, 2).float()
        cu_q = torch.arange(0, (bsz + 1) * sq, sq, device=q.device, dtype=torch.int32)
        if self.name == "paged-flash-attn-varlen":
            cu_k = torch.nn.functional.pad(seqlens.cumsum(0, dtype=torch.int32), (1, 0))
            o, lse, _ = mod.flash_attn_varlen_func(
                q.flatten(0, 1), k_cache, v_cache, cu_q, cu_k, sq, longest, softmax_scale=scale,
                causal=opts.causal, window_size=_window(opts, -1), softcap=opts.softcap or 0.0,
                alibi_slopes=slopes, block_table=block_table, return_attn_probs=True)
        else:  # flash_attn.cute 4.x
            o, lse = mod.flash_attn_varlen_func(
                q.flatten(0, 1), k_cache, v_cache, cu_seqlens_q=cu_q, seqused_k=seqlens, page_table=block_table,
                softmax_scale=scale, causal=opts.causal, window_size=_window(opts, None),
                softcap=opts.softcap or 0.0, return_lse=True)
        o = o.view(bsz, sq, hq, dim)
        lse_out = lse.view(hq, bsz, sq).permute(1, 2, 0).float() if lse is not None else None
        return write_into(out, o), lse_out


register(FlashPaged("paged-flash-attn-kvcache", "flash_attn", 256,
                    "flash-attn 2.x flash_attn_with_kvcache with block_table; paged blocks must be multiples of 256 "
                    f"({README_2X})"))
register(FlashPaged("paged-flash-attn-varlen", "flash_attn", 256,
                    "flash-attn 2.x flash_attn_varlen_func with block_table (packed queries)"))
register(FlashPaged("paged-flash-attn-cute", "flash_attn.cute", 16,
                    "flash-attn 4.x flash_attn.cute.flash_attn_varlen_func with page_table and seqused_k",
                    min_capability=(9, 0)))

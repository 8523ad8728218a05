"""The paged-attention area's API.

Layout (flash-attn's ``flash_attn_with_kvcache``): q [B, Sq, Hq, D] — the same Sq for every
sequence (1 for decoding, γ+1 when verifying a speculative draft); pools k_cache and v_cache
[num_blocks, block_size, Hkv, D]; block_table int32 [B, max_blocks]; seqlens int32 [B], the cached
tokens of each sequence *including* the K/V of the current queries (bottom-right alignment, see
``reference.paged_attention``). ``forward`` returns out [B, Sq, Hq, D] and lse [B, Sq, Hq] (float32,
natural log) or None. Entries of the block table past a sequence's last block are never read.
``max_seqlen``, when the caller knows it, spares the device-to-host read of ``seqlens`` (one
synchronisation per call): the table width is then checked against it instead of every length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from impls.attention.api import write_into  # noqa: F401 - re-exported for paged adapters
from impls.base import Implementation
from reference.attention import AttentionOptions

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class PagedCase:
    """Everything an implementation may need to decide whether it supports a call."""

    batch: int
    heads_q: int
    heads_kv: int
    seqlen_q: int
    max_seqlen_k: int
    head_dim: int
    block_size: int
    num_blocks: int
    dtype: str  # query/output dtype: "float16", "bfloat16" or "float32"
    kv_dtype: str  # the pools' dtype; "float8_e4m3fn" with a per-tensor scale
    device: str
    options: AttentionOptions
    needs_lse: bool = False


class PagedAttentionImpl(Implementation):
    """Attention of the queries over K/V gathered through a block table, as the reference defines it.

    When ``out`` is passed the result is written into it and that tensor returned (the suite
    fills it with NaN first). ``k_scale``/``v_scale`` dequantize an fp8 cache (values = pool · scale).
    """

    area: ClassVar[str] = "paged"
    block_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)  # the block sizes it supports

    def forward(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, block_table: torch.Tensor,
                seqlens: torch.Tensor, opts: AttentionOptions, out: torch.Tensor | None = None,
                k_scale: float = 1.0, v_scale: float = 1.0,
                max_seqlen: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def unsupported(self, case: PagedCase) -> list[str]:
        reasons = []
        if case.block_size not in self.block_sizes:
            reasons.append(f"block size {case.block_size} is not one of {self.block_sizes}")
        return reasons + self.unsupported_extra(case)

    def unsupported_extra(self, case: PagedCase) -> list[str]:
        return []


def validate_paged(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, block_table: torch.Tensor,
                   seqlens: torch.Tensor, opts: AttentionOptions, max_seqlen: int | None = None) -> int:
    """Reject bad calls with an error naming the constraint and the values given; returns the longest length.

    With ``max_seqlen`` given, the lengths stay on the device: it stands in for each of them.
    """
    import numpy as np
    import torch

    from reference.paged_attention import validate_shapes

    if k_cache.shape != v_cache.shape or k_cache.dtype != v_cache.dtype:
        raise ValueError(f"k_cache and v_cache must match; got {tuple(k_cache.shape)} {k_cache.dtype} and "
                         f"{tuple(v_cache.shape)} {v_cache.dtype}")
    if block_table.dtype != torch.int32 or seqlens.dtype != torch.int32:
        raise TypeError(f"block_table and seqlens must be int32; got {block_table.dtype} and {seqlens.dtype}")
    devices = {t.device for t in (q, k_cache, v_cache, block_table, seqlens)}
    if len(devices) != 1:
        raise ValueError(f"all inputs must be on one device; got {sorted(map(str, devices))}")
    if seqlens.shape != (q.shape[0],):
        raise ValueError(f"seqlens must have one entry per sequence ({q.shape[0]}); got shape {tuple(seqlens.shape)}")
    lengths = seqlens.cpu().numpy() if max_seqlen is None else np.full(q.shape[0], max_seqlen)
    validate_shapes(tuple(q.shape), tuple(k_cache.shape), tuple(block_table.shape), lengths, opts)
    if opts.alibi_slopes is not None and len(opts.alibi_slopes) != q.shape[2]:
        raise ValueError(f"alibi_slopes has {len(opts.alibi_slopes)} entries but there are {q.shape[2]} query heads")
    return int(lengths.max(initial=0))

"""The plain baseline: gather each sequence's K/V through the block table into a padded dense batch,
then ``torch.nn.functional.scaled_dot_product_attention`` with a mask built by ``impls.attention._masks``
(boolean, or additive with the ALiBi penalty). An fp8 cache is dequantized (pool · scale) in the query dtype
after the gather. Attention sinks are one more key with k = v = 0 whose additive mask is the sink logit (its
score is then exactly the sink: a term e^sink in the denominator and no value). No LSE (SDPA returns none)
and no softcap (not an additive bias)."""

from __future__ import annotations

from typing import cast

import torch

from impls.attention._masks import modified_score, window_keep
from impls.base import Requirements
from impls.paged.api import FP8_DTYPES, PagedAttentionImpl, PagedCase, write_into
from impls.registry import register
from reference.attention import AttentionOptions

DENSE_LIMIT_BYTES = 8 * 2**30  # the gathered K and V, repeated per query head


def gather_dense(cache: torch.Tensor, block_table: torch.Tensor, max_len: int) -> torch.Tensor:
    """[B, Hkv, max_len, D]: the first max_len token slots of every row of the table (pad entries read block 0)."""
    block_size = cache.shape[1]
    n_blocks = -(-max_len // block_size)
    idx = block_table[:, :n_blocks].clamp(min=0).long()
    dense = cache[idx]  # [B, n_blocks, block_size, Hkv, D]
    return dense.flatten(1, 2)[:, :max_len].transpose(1, 2)


def positions(seqlens: torch.Tensor, sq: int, max_len: int,
              opts: AttentionOptions) -> tuple[torch.Tensor, torch.Tensor]:
    """(diag [B, Sq, 1], key [1, 1, max_len]): each query's diagonal key position, per sequence."""
    lengths = cast(int, seqlens.long()[:, None, None])  # diagonal_offset is elementwise arithmetic
    diag = torch.arange(sq, device=seqlens.device)[None, :, None] + opts.diagonal_offset(sq, lengths)
    return diag, torch.arange(max_len, device=seqlens.device)[None, None, :]


def visible_mask(seqlens: torch.Tensor, sq: int, max_len: int, opts: AttentionOptions) -> torch.Tensor:
    """Boolean [B, 1, Sq, max_len]: key j is one of the sequence's and visible to query i."""
    diag, key = positions(seqlens, sq, max_len, opts)
    return window_keep(opts, key, diag, key < seqlens.long()[:, None, None])[:, None]


def alibi_bias(seqlens: torch.Tensor, sq: int, max_len: int, opts: AttentionOptions, visible: torch.Tensor,
               dtype: torch.dtype) -> torch.Tensor:
    """[B, Hq, Sq, max_len] additive mask: −inf where not visible, minus the ALiBi distance penalty."""
    assert opts.alibi_slopes is not None
    diag, key = positions(seqlens, sq, max_len, opts)
    slopes = torch.tensor(opts.alibi_slopes, dtype=torch.float32, device=seqlens.device)[None, :, None, None]
    zero = torch.zeros(visible.shape, dtype=torch.float32, device=seqlens.device).masked_fill(~visible, float("-inf"))
    return modified_score(AttentionOptions(), zero, slopes, (diag - key).abs()[:, None].float()).to(dtype)


def with_sink_key(k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, sinks: tuple[float, ...],
                   dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """K and V [B, Hq, L + 1, D] with a zero key and value appended; the additive mask [B, Hq, Sq, L + 1] with
    the sink logit of each head in the new column."""
    bsz, hq, _, dim = k.shape
    zero = torch.zeros(bsz, hq, 1, dim, dtype=k.dtype, device=k.device)
    if mask.dtype == torch.bool:
        mask = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, float("-inf"))
    mask = mask.expand(bsz, hq, *mask.shape[2:])
    column = torch.tensor(sinks, dtype=dtype, device=mask.device)[None, :, None, None].expand(bsz, hq, mask.shape[2], 1)
    return torch.cat([k, zero], 2), torch.cat([v, zero], 2), torch.cat([mask, column], -1)


class GatherSdpa(PagedAttentionImpl):
    name = "paged-gather-sdpa"
    description = ("gather through the block table into dense K/V, then torch SDPA with a boolean or additive "
                   "(ALiBi) mask (baseline)")
    requires = Requirements(modules=("torch",))
    lacks = {"softcap": "SDPA has no softcap (it is not an additive bias)",
             "lse": "SDPA does not return the LSE"}

    def limits(self, case: PagedCase) -> list[str]:
        reasons = []
        if case.cache_dtype != case.dtype and case.cache_dtype not in FP8_DTYPES:
            reasons.append(f"the cache must be in the query dtype or fp8; got {case.cache_dtype} for {case.dtype}")
        elt = 4 if case.dtype == "float32" else 2
        dense = 2 * case.batch * case.max_seqlen_k * case.heads_q * case.head_dim * elt
        if dense > DENSE_LIMIT_BYTES:
            reasons.append(f"the gathered K/V per query head would take {dense / 2**30:.1f} GiB "
                           f"(limit {DENSE_LIMIT_BYTES / 2**30:.0f} GiB)")
        return reasons

    def forward(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, block_table: torch.Tensor,
                seqlens: torch.Tensor, opts: AttentionOptions, out: torch.Tensor | None = None,
                k_scale: float = 1.0, v_scale: float = 1.0, max_seqlen: int | None = None, *,
                need_lse: bool = False, sinks: tuple[float, ...] | None = None) -> tuple[torch.Tensor,
                                                                                           torch.Tensor | None]:
        longest = self.admit(q, k_cache, v_cache, block_table, seqlens, opts, max_seqlen, need_lse, sinks)
        sq, hq, hkv = q.shape[1], q.shape[2], k_cache.shape[2]
        max_len = max(longest, 1)
        k = gather_dense(k_cache, block_table, max_len).repeat_interleave(hq // hkv, dim=1)
        v = gather_dense(v_cache, block_table, max_len).repeat_interleave(hq // hkv, dim=1)
        if k.dtype != q.dtype:  # fp8: dequantize after the gather
            k, v = k.to(q.dtype) * k_scale, v.to(q.dtype) * v_scale
        elif k_scale != 1.0 or v_scale != 1.0:
            raise ValueError(f"scales dequantize an fp8 cache; got k_scale {k_scale}, v_scale {v_scale} for a "
                             f"{k_cache.dtype} cache")
        visible = visible_mask(seqlens, sq, max_len, opts)
        mask = visible if opts.alibi_slopes is None else alibi_bias(seqlens, sq, max_len, opts, visible, q.dtype)
        if sinks is not None:
            k, v, mask = with_sink_key(k, v, mask, sinks, q.dtype)
        o = torch.nn.functional.scaled_dot_product_attention(q.transpose(1, 2), k, v, attn_mask=mask,
                                                             scale=opts.resolved_scale(q.shape[-1]))
        o = torch.where(visible.any(-1, keepdim=True), o, torch.zeros((), dtype=o.dtype, device=o.device))
        return write_into(out, o.transpose(1, 2).contiguous()), None


register(GatherSdpa())

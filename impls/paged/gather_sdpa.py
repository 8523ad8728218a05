"""The plain baseline: gather each sequence's K/V through the block table into a padded dense batch,
then ``torch.nn.functional.scaled_dot_product_attention`` with a boolean mask. No LSE."""

from __future__ import annotations

import torch

from impls.attention._masks import window_keep
from impls.base import Requirements
from impls.paged.api import PagedAttentionImpl, PagedCase, validate_paged, write_into
from impls.registry import register
from reference.attention import AttentionOptions


def gather_dense(cache: torch.Tensor, block_table: torch.Tensor, max_len: int) -> torch.Tensor:
    """[B, Hkv, max_len, D]: the first max_len token slots of every row of the table (pad entries read block 0)."""
    block_size = cache.shape[1]
    n_blocks = -(-max_len // block_size)
    idx = block_table[:, :n_blocks].clamp(min=0).long()
    dense = cache[idx]  # [B, n_blocks, block_size, Hkv, D]
    return dense.flatten(1, 2)[:, :max_len].transpose(1, 2)


def visible_mask(seqlens: torch.Tensor, sq: int, max_len: int, opts: AttentionOptions) -> torch.Tensor:
    """Boolean [B, 1, Sq, max_len], bottom-right aligned per sequence."""
    j = torch.arange(max_len, device=seqlens.device)[None, None, :]
    n = seqlens.long()[:, None, None]
    diag = n - sq + torch.arange(sq, device=seqlens.device)[None, :, None]
    return window_keep(opts, j, diag, j < n)[:, None]


class GatherSdpa(PagedAttentionImpl):
    name = "paged-gather-sdpa"
    description = "gather through the block table into dense K/V, then torch SDPA with a boolean mask (baseline)"
    requires = Requirements(modules=("torch",))

    def unsupported_extra(self, case: PagedCase) -> list[str]:
        reasons = []
        if case.options.softcap is not None or case.options.alibi_slopes is not None:
            reasons.append("SDPA has no softcap or ALiBi (this baseline does not build score biases)")
        if case.needs_lse:
            reasons.append("SDPA does not return the LSE")
        if case.kv_dtype != case.dtype:
            reasons.append(f"this baseline needs the cache in the query dtype; got {case.kv_dtype} for {case.dtype}")
        return reasons

    def forward(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, block_table: torch.Tensor,
                seqlens: torch.Tensor, opts: AttentionOptions, out: torch.Tensor | None = None,
                k_scale: float = 1.0, v_scale: float = 1.0,
                max_seqlen: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        longest = validate_paged(q, k_cache, v_cache, block_table, seqlens, opts, max_seqlen)
        if k_scale != 1.0 or v_scale != 1.0:
            raise ValueError(f"gather_sdpa takes no dequantization scales; got k_scale {k_scale}, v_scale {v_scale}")
        sq, hq, hkv = q.shape[1], q.shape[2], k_cache.shape[2]
        max_len = max(longest, 1)
        k = gather_dense(k_cache, block_table, max_len).repeat_interleave(hq // hkv, dim=1)
        v = gather_dense(v_cache, block_table, max_len).repeat_interleave(hq // hkv, dim=1)
        mask = visible_mask(seqlens, sq, max_len, opts)
        o = torch.nn.functional.scaled_dot_product_attention(q.transpose(1, 2), k, v, attn_mask=mask,
                                                             scale=opts.resolved_scale(q.shape[-1]))
        o = torch.where(mask.any(-1, keepdim=True), o, torch.zeros((), dtype=o.dtype, device=o.device))  # empty rows
        return write_into(out, o.transpose(1, 2).contiguous()), None


register(GatherSdpa())

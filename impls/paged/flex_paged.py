"""FlexAttention over the physical pool: the block table becomes a mask_mod.

The pools are viewed as one key sequence of num_blocks·block_size slots; a per-sequence map
slot → logical position (−1 for slots the sequence does not own) turns the causal, window and
ALiBi rules into a ``mask_mod`` and ``score_mod`` on logical positions. This is the mechanism of
torch's experimental ``PagedAttention`` (torch/nn/attention/experimental/_paged_attention.py),
written against our own block table. Eager (the unfused path, which scores every pool slot) for pools of at
most ``EAGER_SLOTS`` batch × slots; above that compiled on CUDA (``torch.compile``, once per shape) and declined
on the CPU.
"""

from __future__ import annotations

from functools import cache
from typing import Any, cast

import torch

from impls.attention._masks import modified_score, window_keep
from impls.base import Requirements
from impls.paged.api import PagedAttentionImpl, PagedCase, write_into
from impls.registry import register
from reference.attention import AttentionOptions


def logical_positions(block_table: torch.Tensor, seqlens: torch.Tensor, num_slots: int,
                      block_size: int) -> torch.Tensor:
    """int64 [B, num_slots]: the logical position each pool slot holds for each sequence, or −1."""
    bsz = block_table.shape[0]
    pos = torch.full((bsz, num_slots), -1, dtype=torch.int64, device=block_table.device)
    for b, n in enumerate(seqlens.tolist()):
        t = torch.arange(n, device=block_table.device)
        slots = block_table[b, t // block_size].long() * block_size + t % block_size
        pos[b, slots] = t
    return pos


EAGER_SLOTS = 2**16


@cache
def _compiled() -> Any:
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


class FlexPaged(PagedAttentionImpl):
    name = "paged-flex"
    description = ("FlexAttention on the physical pool with the block table as a mask_mod (torch's PagedAttention "
                   "mechanism); eager for small pools, compiled on CUDA for large ones")
    requires = Requirements(modules=("torch", "torch.nn.attention.flex_attention"))
    lacks = {"fp8": "this adapter takes the cache in the query dtype (no dequantization scales)",
             "sinks": "FlexAttention has no attention sinks (a score_mod cannot add a term to the denominator)"}
    example_budget = 3  # eager FlexAttention on the CPU scores every pool slot: about a second a call here

    def not_a_timing_target(self) -> str | None:
        if torch.cuda.is_available():
            return ("torch.compile(dynamic=False) compiles FlexAttention once per shape, tens of seconds for each "
                    "case of the sweep: not benchmarked in the session")
        return None

    def limits(self, case: PagedCase) -> list[str]:
        reasons = []
        if case.head_dim < 16:
            reasons.append(f"FlexAttention needs head_dim >= 16; got {case.head_dim}")
        if case.cache_dtype != case.dtype and case.cache_dtype not in ("float8_e4m3fn", "float8_e5m2"):
            reasons.append(f"needs the cache in the query dtype; got {case.cache_dtype} for {case.dtype}")
        if case.device != "cpu" and case.num_blocks * case.block_size * case.batch > 2**26:
            reasons.append("the slot → position map (batch × pool slots) would exceed 2^26 entries")
        if case.device == "cpu" and case.num_blocks * case.block_size * case.batch > EAGER_SLOTS:
            reasons.append("eager FlexAttention on the CPU scores every pool slot; pool too large for a CPU check")
        return reasons

    def forward(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, block_table: torch.Tensor,
                seqlens: torch.Tensor, opts: AttentionOptions, out: torch.Tensor | None = None,
                k_scale: float = 1.0, v_scale: float = 1.0,
                max_seqlen: int | None = None, *, need_lse: bool = False,
                sinks: tuple[float, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        from torch.nn.attention.flex_attention import AuxRequest, create_block_mask, flex_attention

        self.admit(q, k_cache, v_cache, block_table, seqlens, opts, max_seqlen, need_lse, sinks)
        if k_scale != 1.0 or v_scale != 1.0:
            raise ValueError(f"paged-flex takes no dequantization scales; got k_scale {k_scale}, v_scale {v_scale}")
        bsz, sq, hq, dim = q.shape
        num_blocks, block_size, hkv, _ = k_cache.shape
        num_slots = num_blocks * block_size
        pos = logical_positions(block_table, seqlens, num_slots, block_size)
        # key position of query 0, per sequence (0 without an alignment: nothing then depends on it)
        offset = opts.diagonal_offset(sq, cast(int, seqlens.long()))  # elementwise arithmetic
        diag0 = torch.broadcast_to(torch.as_tensor(offset, device=q.device), (bsz,))
        slopes = (torch.tensor(opts.alibi_slopes, device=q.device, dtype=torch.float32)
                  if opts.alibi_slopes is not None else None)

        def mask_mod(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
            p = pos[b, kv_idx]
            return window_keep(opts, p, diag0[b] + q_idx, p >= 0)

        def score_mod(s: Any, b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
            distance = (diag0[b] + q_idx - pos[b, kv_idx]).abs()
            return modified_score(opts, s, None if slopes is None else slopes[h], distance)

        block_mask = create_block_mask(mask_mod, bsz, None, sq, num_slots, device=q.device)
        k = k_cache.reshape(1, num_slots, hkv, dim).transpose(1, 2).expand(bsz, -1, -1, -1)
        v = v_cache.reshape(1, num_slots, hkv, dim).transpose(1, 2).expand(bsz, -1, -1, -1)
        attend = _compiled() if q.is_cuda and bsz * num_slots > EAGER_SLOTS else flex_attention
        result, aux = attend(q.transpose(1, 2), k, v, block_mask=block_mask,
                             score_mod=score_mod if (opts.softcap is not None or slopes is not None) else None,
                             scale=opts.resolved_scale(dim), enable_gqa=hq != hkv, return_aux=AuxRequest(lse=True))
        lse = aux.lse.transpose(1, 2).float()
        return write_into(out, result.transpose(1, 2)), lse


register(FlexPaged())

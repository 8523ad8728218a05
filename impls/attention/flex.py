"""FlexAttention: the options as a score_mod (softcap, ALiBi) and a block mask (causal, window).

Compiled with torch.compile on CUDA, as its documentation requires for speed; run eagerly on the
CPU, where torch has no FlexAttention backward.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import torch

from impls.attention._masks import modified_score, window_keep
from impls.attention.api import AttentionCase, AttentionImpl, varlen_by_sequence, write_into
from impls.base import Requirements
from impls.registry import register
from reference.attention import AttentionOptions


def _mask_mod(opts: AttentionOptions, sq: int, sk: int) -> Any:
    offset = opts.diagonal_offset(sq, sk)

    def mask(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
        return window_keep(opts, kv_idx, q_idx + offset, kv_idx >= 0)

    return mask


def _score_mod(opts: AttentionOptions, sq: int, sk: int, slopes: torch.Tensor | None) -> Any:
    offset = opts.diagonal_offset(sq, sk)

    def score(s: Any, b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
        return modified_score(opts, s, None if slopes is None else slopes[h], (q_idx + offset - kv_idx).abs())

    return score


@cache
def _compiled() -> Any:
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=True)


class FlexAttention(AttentionImpl):
    name = "flex"
    description = "torch.nn.attention.flex_attention; torch.compile'd on CUDA, eager on the CPU"
    requires = Requirements(modules=("torch",))

    example_budget = 4  # eager FlexAttention on the CPU is slow, and every new shape compiles on CUDA

    def unsupported(self, case: AttentionCase) -> list[str]:
        reasons = []
        if case.needs_grad and case.device == "cpu":
            reasons.append("FlexAttention has no backward on the CPU (torch raises NotImplementedError)")
        if case.head_dim < 16:
            reasons.append(f"FlexAttention needs head_dim >= 16; got {case.head_dim}")
        return reasons

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions,
                out: torch.Tensor | None = None, *, need_lse: bool = False,
                need_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        from torch.nn.attention.flex_attention import AuxRequest, create_block_mask, flex_attention

        self.admit(q, k, v, opts, need_lse=need_lse, need_grad=need_grad)
        sq, sk = q.shape[2], k.shape[2]
        masked = opts.causal or opts.window_left is not None or opts.window_right is not None
        block_mask = create_block_mask(_mask_mod(opts, sq, sk), None, None, sq, sk, device=q.device) \
            if masked else None
        slopes = torch.tensor(opts.alibi_slopes, device=q.device, dtype=torch.float32) \
            if opts.alibi_slopes is not None else None
        score_mod = _score_mod(opts, sq, sk, slopes) if (opts.softcap is not None or slopes is not None) else None
        attend = _compiled() if q.is_cuda else flex_attention
        result, aux = attend(q, k, v, score_mod=score_mod, block_mask=block_mask,
                             scale=opts.resolved_scale(q.shape[-1]), enable_gqa=q.shape[1] != k.shape[1],
                             return_aux=AuxRequest(lse=True))
        return write_into(out, result), aux.lse

    def forward_varlen(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens_q: torch.Tensor,
                       cu_seqlens_k: torch.Tensor, max_seqlen_q: int, max_seqlen_k: int, opts: AttentionOptions,
                       out: torch.Tensor | None = None, *, need_lse: bool = False
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return varlen_by_sequence(self, q, k, v, cu_seqlens_q, cu_seqlens_k, opts, out, need_lse)


register(FlexAttention())

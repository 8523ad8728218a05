"""Eager PyTorch attention: the textbook formula in the input dtype, one matrix of scores."""

from __future__ import annotations

import torch

from impls.attention import _masks as masks
from impls.attention.api import AttentionImpl, validate, varlen_by_sequence, write_into
from impls.base import Requirements
from impls.registry import register
from reference.attention import AttentionOptions


class EagerAttention(AttentionImpl):
    name = "eager"
    description = "softmax(scale·QKᵀ + bias)·V in the input dtype with torch ops; masks built with torch.arange"
    requires = Requirements(modules=("torch",))

    def visible(self, sq: int, sk: int, opts: AttentionOptions, device: torch.device) -> torch.Tensor:
        return masks.visible(sq, sk, opts, device)

    def scores(self, q: torch.Tensor, k: torch.Tensor, opts: AttentionOptions) -> torch.Tensor:
        return masks.scores(q, k, opts)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions,
                out: torch.Tensor | None = None, *, need_lse: bool = False,
                need_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        validate(q, k, v, opts)
        group = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        mask = self.visible(q.shape[-2], k.shape[-2], opts, q.device)
        s = self.scores(q, k, opts).masked_fill(~mask, float("-inf"))
        has_key = mask.any(dim=-1)[:, None]  # a row with no visible key gets 0 and lse −inf
        s = torch.where(has_key, s, torch.zeros((), dtype=s.dtype, device=s.device))
        p = torch.softmax(s, dim=-1) * has_key
        lse = torch.logsumexp(s, dim=-1).masked_fill(~has_key[..., 0], float("-inf"))
        return write_into(out, p @ v), lse

    def forward_varlen(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens_q: torch.Tensor,
                       cu_seqlens_k: torch.Tensor, max_seqlen_q: int, max_seqlen_k: int, opts: AttentionOptions,
                       out: torch.Tensor | None = None, *, need_lse: bool = False
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return varlen_by_sequence(self, q, k, v, cu_seqlens_q, cu_seqlens_k, opts, out, need_lse)


register(EagerAttention())

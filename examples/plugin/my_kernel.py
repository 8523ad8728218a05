"""An attention kernel that lives outside tokenspec, validated without editing the repository:

    python -m pytest --impl-module examples/plugin/my_kernel.py --impl chunked-example

It computes attention over key chunks with a running max and sum (the online softmax of
FlashAttention), in float32 whatever the input dtype, then casts back.
"""

from __future__ import annotations

import torch

from impls.attention.api import AttentionImpl, write_into
from impls.base import Requirements
from reference.attention import AttentionOptions


class ChunkedAttention(AttentionImpl):
    name = "chunked-example"
    description = "online softmax over chunks of 16 keys, fp32 accumulation; plain and causal only"
    requires = Requirements(modules=("torch",))
    chunk = 16

    lacks = {"window": "no sliding window", "alibi": "no ALiBi", "softcap": "no softcap",
             "varlen": "no packed variable-length batches", "grad": "forward only"}

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions,
                out: torch.Tensor | None = None, *, need_lse: bool = False,
                need_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        self.admit(q, k, v, opts, need_lse=need_lse, need_grad=need_grad)
        group = q.shape[1] // k.shape[1]
        qf = q.float() * opts.resolved_scale(q.shape[-1])
        kf, vf = k.float().repeat_interleave(group, 1), v.float().repeat_interleave(group, 1)
        sq, sk = q.shape[2], k.shape[2]
        row_max = torch.full(q.shape[:3], float("-inf"))
        row_sum = torch.zeros(q.shape[:3])
        acc = torch.zeros(qf.shape)
        diag = torch.arange(sq)[:, None] + (sk - sq if opts.alignment == "bottom_right" else 0)
        for start in range(0, sk, self.chunk):
            keys = torch.arange(start, min(start + self.chunk, sk))
            s = qf @ kf[:, :, keys].transpose(-1, -2)
            if opts.causal:
                s = s.masked_fill(keys[None, :] > diag, float("-inf"))
            new_max = torch.maximum(row_max, s.amax(-1))
            safe = torch.where(torch.isinf(new_max), torch.zeros_like(new_max), new_max)
            p = torch.exp(s - safe[..., None])
            correction = torch.exp(row_max - safe)
            row_sum = row_sum * correction + p.sum(-1)
            acc = acc * correction[..., None] + p @ vf[:, :, keys]
            row_max = new_max
        empty = row_sum == 0
        result = torch.where(empty[..., None], 0.0, acc / row_sum.clamp_min(1e-30)[..., None]).to(q.dtype)
        lse = torch.where(empty, float("-inf"), row_max + torch.log(row_sum.clamp_min(1e-30)))
        return write_into(out, result), lse


def implementations() -> list[AttentionImpl]:
    return [ChunkedAttention()]

"""vLLM's v1 rejection sampler (``vllm.v1.sample.rejection_sampler.rejection_sample``), where installed.

Written against the function as published in vllm-project/vllm (v1 engine): flattened ``draft_token_ids``
[num_tokens], ``num_draft_tokens`` list, ``max_spec_len``, ``cu_num_draft_tokens`` [B], ``draft_probs``
[num_tokens, V] or None (n-gram), ``target_probs`` [num_tokens, V], ``bonus_token_ids`` [B, 1] and a
sampling-metadata object (all_greedy, all_random, temperature with -1 for greedy rows, generators).
Output [B, max_spec_len + 1] with -1 placeholders. vLLM samples the bonus token outside this function,
so the adapter draws it from p_{γ+1} itself. Its kernels are Triton: a CUDA device is required. vLLM
is not installed in this project's environment, so this adapter has not been run here.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from impls.base import Requirements
from impls.registry import register
from impls.speculative.api import SpecCase, SpecResult, SpeculativeImpl, check_shapes


class VllmRejectionSampler(SpeculativeImpl):
    name = "vllm-rejection-sampler"
    description = "vllm.v1.sample.rejection_sampler.rejection_sample (Triton kernels)"
    requires = Requirements(modules=("vllm",), device="cuda")

    def unsupported(self, case: SpecCase) -> list[str]:
        if case.explicit_uniforms:
            return ["rejection_sample draws its own uniforms (generate_uniform_probs); it takes none"]
        return []

    def verify(self, target_probs, draft_probs, draft_tokens, draft_lengths, *, greedy=False, generator=None,
               accept_uniforms=None, emit_uniforms=None):  # type: ignore[no-untyped-def]
        from vllm.v1.sample.rejection_sampler import rejection_sample

        b, g, _ = check_shapes(target_probs, draft_probs, draft_tokens, draft_lengths)
        dev = target_probs.device
        lengths = [int(x) for x in draft_lengths]
        keep = torch.arange(g, device=dev).unsqueeze(0) < draft_lengths.to(dev).unsqueeze(1)
        flat_ids = draft_tokens[keep].contiguous()
        flat_p = target_probs[:, :g][keep].float().contiguous()
        flat_q = None if draft_probs is None else draft_probs[keep].float().contiguous()
        bonus_p = target_probs[torch.arange(b, device=dev), draft_lengths.to(dev)].float()
        bonus = torch.multinomial(bonus_p, 1, generator=generator) if not greedy else bonus_p.argmax(-1, keepdim=True)
        cu = torch.tensor(lengths, device=dev).cumsum(0).to(torch.int32)
        meta = SimpleNamespace(all_greedy=greedy, all_random=not greedy,
                               temperature=torch.full((b,), -1.0 if greedy else 1.0, device=dev),
                               generators={i: generator for i in range(b)} if generator is not None else {},
                               top_k=None, top_p=None)
        out = rejection_sample(flat_ids, lengths, g, cu, flat_q, flat_p, bonus.contiguous(), meta)
        valid = (out != -1).sum(-1)
        emitted = out.gather(1, (valid - 1).clamp_min(0).unsqueeze(1).long()).squeeze(1)
        return SpecResult((valid - 1).long(), emitted.long())


register(VllmRejectionSampler())

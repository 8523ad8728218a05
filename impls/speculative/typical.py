"""Typical acceptance (Medusa, Cai et al. 2024, §2.3.1): a declared-lossy verification rule, in PyTorch.

A drafted token x at position i is accepted when p_i(x) > min(ε, δ·exp(−H(p_i))), H the entropy of p_i in
nats (Medusa's ``posterior_threshold`` ε = 0.09 and ``posterior_alpha`` δ = 0.3 = √ε by default, as in
``evaluate_posterior`` of FasterDecoding/Medusa, medusa/model/utils.py). Acceptance stops at the first token
that fails; the emitted token is then drawn from p at that position (from the bonus position when every
draft passes). The draft distribution plays no part, so the step does not keep the target law: the suite
never holds it to the exact law; it measures the trade (TV from the target, tokens per step).
"""

from __future__ import annotations

import torch

from impls.registry import register
from impls.speculative.api import SpecResult, SpeculativeImpl, validate
from impls.speculative.batched import inverse_cdf


def typical_accept(target_probs: torch.Tensor, draft_tokens: torch.Tensor, draft_lengths: torch.Tensor, *,
                   threshold: float, alpha: float, generator: torch.Generator | None = None) -> SpecResult:
    b, g, _ = target_probs.shape[0], target_probs.shape[1] - 1, target_probs.shape[2]
    dev = target_probs.device
    p = target_probs[:, :g]
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum(-1)  # 0·log 0 = 0
    bar = torch.minimum(torch.full_like(entropy, threshold), alpha * torch.exp(-entropy))
    p_x = p.gather(-1, draft_tokens.to(torch.int64).clamp_min(0).unsqueeze(-1)).squeeze(-1)
    in_draft = torch.arange(g, device=dev).unsqueeze(0) < draft_lengths.unsqueeze(1)
    ok = (p_x > bar) | ~in_draft
    accepted = torch.where((~ok).any(-1), (~ok).to(torch.int64).argmax(-1), torch.full((b,), g, device=dev))
    accepted = torch.minimum(accepted, draft_lengths.to(torch.int64))
    stop = target_probs[torch.arange(b, device=dev), accepted]
    u = torch.rand((b,), device=dev, generator=generator, dtype=torch.float64)
    return SpecResult(accepted, inverse_cdf(stop, u))


class TypicalAcceptance(SpeculativeImpl):
    name = "typical-acceptance"
    description = "Medusa's typical acceptance (ε = 0.09, δ = 0.3), in-repo PyTorch; lossy by design"
    threshold, alpha = 0.09, 0.3
    lacks = {**SpeculativeImpl.lacks,
             "exact": "declared lossy: typical acceptance keeps a draft token when p(x) > min(0.09, 0.3·exp(−H(p))), "
                      "whatever q (Medusa §2.3.1)",
             "uniforms": "typical acceptance draws no acceptance uniforms",
             "greedy": "at temperature 0 typical acceptance is greedy verification; only the sampled rule is here"}
    call_cost_s = 2e-7

    def verify(self, target_probs, draft_probs, draft_tokens, draft_lengths, *, greedy=False, generator=None,
               accept_uniforms=None, emit_uniforms=None):  # type: ignore[no-untyped-def]
        validate(target_probs, draft_probs, draft_tokens, draft_lengths)
        if greedy or accept_uniforms is not None or emit_uniforms is not None:
            raise NotImplementedError(f"{self.name}: {self.lacks['greedy']}; {self.lacks['uniforms']}")
        return typical_accept(target_probs, draft_tokens, draft_lengths, threshold=self.threshold, alpha=self.alpha,
                              generator=generator)


register(TypicalAcceptance())

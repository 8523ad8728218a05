"""The in-repo batched rejection sampler (PyTorch): one speculative step for B requests at once.

Requests may draft different numbers of tokens; greedy and random verification; seeded through a
``torch.Generator``; explicit uniforms replace the random draws so a decision can be checked exactly.
Works on whatever device the tensors are on.
"""

from __future__ import annotations

import torch

from impls.registry import register
from impls.speculative.api import SpecResult, SpeculativeImpl, validate


def inverse_cdf(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Per row, the smallest t with cumsum(probs)[t] > u (unnormalised rows allowed: u is scaled by the total)."""
    c = probs.cumsum(-1)
    target = uniforms.to(c.dtype) * c[:, -1]
    idx = torch.searchsorted(c, target.unsqueeze(-1), right=True).squeeze(-1)
    last = probs.shape[-1] - 1 - (probs.flip(-1) > 0).to(torch.int64).argmax(-1)  # last token with mass
    return torch.minimum(idx, last)


def rejection_sample(target_probs: torch.Tensor, draft_probs: torch.Tensor | None, draft_tokens: torch.Tensor,
                     draft_lengths: torch.Tensor, *, greedy: bool = False, generator: torch.Generator | None = None,
                     accept_uniforms: torch.Tensor | None = None, emit_uniforms: torch.Tensor | None = None
                     ) -> SpecResult:
    b, g, v = validate(target_probs, draft_probs, draft_tokens, draft_lengths)
    dev = target_probs.device
    rows = torch.arange(b, device=dev)
    positions = torch.arange(g, device=dev)
    in_draft = positions.unsqueeze(0) < draft_lengths.unsqueeze(1)  # [B, G]
    tok = draft_tokens.clamp(0, v - 1)
    if greedy:
        ok = target_probs[:, :g].argmax(-1) == draft_tokens
    else:
        p_x = target_probs[:, :g].gather(-1, tok.unsqueeze(-1)).squeeze(-1)
        if draft_probs is None:  # n-gram draft: q(x) = 1
            ratio = p_x
        else:
            q_x = draft_probs.gather(-1, tok.unsqueeze(-1)).squeeze(-1)
            ratio = torch.where(q_x > 0, p_x / q_x, torch.ones_like(p_x))
        if accept_uniforms is None:
            accept_uniforms = torch.rand((b, g), device=dev, generator=generator, dtype=ratio.dtype)
        ok = accept_uniforms.to(ratio.dtype) < ratio
    ok = ok | ~in_draft  # positions past a request's draft never reject: the bonus takes over there
    rejected = ~ok
    accepted = torch.where(rejected.any(-1), rejected.to(torch.int64).argmax(-1), torch.full_like(rows, g))
    accepted = torch.minimum(accepted, draft_lengths.to(torch.int64))
    p_stop = target_probs[rows, accepted]  # [B, V]: residual's p at a rejection, bonus p otherwise
    if greedy:
        return SpecResult(accepted, p_stop.argmax(-1))
    was_rejected = accepted < draft_lengths
    pos = accepted.clamp(max=max(g - 1, 0))
    if draft_probs is None:
        q_stop = torch.zeros_like(p_stop)
        if g:
            q_stop[rows, tok[rows, pos]] = 1.0
    else:
        q_stop = draft_probs[rows, pos] if g else torch.zeros_like(p_stop)
    res = (p_stop - q_stop).clamp_min(0)
    res_ok = res.sum(-1) > 0
    dist = torch.where((was_rejected & res_ok).unsqueeze(-1), res, p_stop)
    if emit_uniforms is None:
        emit_uniforms = torch.rand((b,), device=dev, generator=generator, dtype=torch.float64)
    return SpecResult(accepted, inverse_cdf(dist, emit_uniforms))


class BatchedRejectionSampler(SpeculativeImpl):
    name = "tokenspec-batched"
    description = "in-repo batched rejection sampler (PyTorch); explicit uniforms; any device"
    call_cost_s = 2e-7  # per request, at batch 65,536 (V 6, G 3) on an idle 2-core CPU

    def verify(self, target_probs, draft_probs, draft_tokens, draft_lengths, *, greedy=False, generator=None,
               accept_uniforms=None, emit_uniforms=None):  # type: ignore[no-untyped-def]
        return rejection_sample(target_probs, draft_probs, draft_tokens, draft_lengths, greedy=greedy,
                                generator=generator, accept_uniforms=accept_uniforms, emit_uniforms=emit_uniforms)


register(BatchedRejectionSampler())

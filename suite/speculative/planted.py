"""Broken samplers, each with one classic bug, that the distribution test must reject.

Each is a plain vectorised sampler with the same ``verify`` signature as the real ones (no explicit
uniforms, no greedy path), and each comes with a step on which its bug changes the outcome law.
"""

from __future__ import annotations

import numpy as np
import torch

from impls.speculative.api import SpecResult, SpeculativeImpl, check_shapes
from suite.speculative.cases import Step

BUGS = (
    "accept_when_p_gt_q",  # accept iff p(x) > q(x) instead of with probability min(1, p/q)
    "residual_not_normalised",  # inverse CDF over max(0, p − q) without dividing by its total
    "residual_is_p",  # after a rejection sample from p instead of max(0, p − q)
    "no_bonus_token",  # all γ accepted: stop without the bonus token (last draft reported as the emitted one)
    "bonus_from_q",  # all γ accepted: the bonus comes from the draft distribution
    "accepted_off_by_one",  # the rejected position is counted as accepted
    "q_after_top_k",  # ratio and residual use top-k(q) although the draft came from the raw q
)
TOP_K = 2


def _top_k(q: torch.Tensor, k: int) -> torch.Tensor:
    kept = torch.zeros_like(q).scatter(-1, q.topk(k, dim=-1).indices, 1.0) * q
    return kept / kept.sum(-1, keepdim=True)


class PlantedSampler(SpeculativeImpl):
    def __init__(self, bug: str) -> None:
        if bug not in BUGS:
            raise ValueError(f"unknown planted bug {bug!r}; known: {BUGS}")
        self.bug = bug
        self.name = f"planted-{bug}"

    def verify(self, target_probs, draft_probs, draft_tokens, draft_lengths, *, greedy=False, generator=None,
               accept_uniforms=None, emit_uniforms=None):  # type: ignore[no-untyped-def]
        b, g, v = check_shapes(target_probs, draft_probs, draft_tokens, draft_lengths)
        assert draft_probs is not None and not greedy and int(draft_lengths.min()) == g, "planted: full drafts only"
        rows = torch.arange(b)
        q_used = _top_k(draft_probs, TOP_K) if self.bug == "q_after_top_k" else draft_probs
        p_x = target_probs[:, :g].gather(-1, draft_tokens.unsqueeze(-1)).squeeze(-1)
        q_x = q_used.gather(-1, draft_tokens.unsqueeze(-1)).squeeze(-1)
        u = torch.rand((b, g), generator=generator)
        ok = p_x > q_x if self.bug == "accept_when_p_gt_q" else u < torch.where(q_x > 0, p_x / q_x, 1.0)
        rej = ~ok
        accepted = torch.where(rej.any(-1), rej.to(torch.int64).argmax(-1), torch.full((b,), g))
        rejected = accepted < g
        pos = accepted.clamp(max=g - 1)
        p_stop = target_probs[rows, accepted]
        res = p_stop if self.bug == "residual_is_p" else (p_stop - q_used[rows, pos]).clamp_min(0)
        bonus = q_used[rows, g - 1] if self.bug == "bonus_from_q" else p_stop
        dist = torch.where(rejected.unsqueeze(-1), res, bonus)
        e = torch.rand((b,), generator=generator, dtype=dist.dtype)
        if self.bug == "residual_not_normalised":
            c = dist.cumsum(-1)
            emitted = torch.searchsorted(c, e.unsqueeze(-1), right=True).squeeze(-1).clamp(max=v - 1)
        else:
            safe = torch.where(dist.sum(-1, keepdim=True) > 0, dist, target_probs[rows, accepted])
            emitted = torch.multinomial(safe, 1, generator=generator).squeeze(-1)
        if self.bug == "no_bonus_token":
            emitted = torch.where(rejected, emitted, draft_tokens[:, g - 1])
            accepted = torch.where(rejected, accepted, accepted - 1)
        if self.bug == "accepted_off_by_one":
            accepted = torch.where(rejected, accepted + 1, accepted)
        return SpecResult(accepted, emitted)


def _step(p: list[list[float]], q: list[list[float]], draft: tuple[int, ...]) -> Step:
    return Step(np.array(p), np.array(q), draft, "planted")


# One step per bug, each moving at least 0.04 of probability (hand-checked in the comments).
P3 = [[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]
Q3 = [[0.5, 0.3, 0.2]]
PLANTED_STEPS: dict[str, Step] = {
    # draft 0: p/q = 0.4; the bug always rejects (p < q): P(accept) 0.4 → 0
    "accept_when_p_gt_q": _step(P3, Q3, (0,)),
    # residual max(0, p − q) = [0, .35, .35] (total .7): unnormalised, token 1 gets u < .35 and token 2 the rest
    # (the index is clamped), so .35/.65 instead of .5/.5 after a rejection of weight 7/8
    "residual_not_normalised": _step([[0.1, 0.45, 0.45], [0.3, 0.3, 0.4]], [[0.8, 0.1, 0.1]], (0,)),
    # rejection (P = 0.6) then p = [.2, .3, .5] instead of [0, 0, 1]
    "residual_is_p": _step(P3, Q3, (0,)),
    # accepted with P = 0.4, then the bonus from p₂ is replaced by the draft token itself (outcome (0, 0), P = 0)
    "no_bonus_token": _step(P3, Q3, (0,)),
    # bonus from q₁ = [.5, .3, .2] instead of p₂ = [.9, .05, .05], weight 0.4: TV moved 0.16
    "bonus_from_q": _step([[0.2, 0.3, 0.5], [0.9, 0.05, 0.05]], Q3, (0,)),
    # P(0 accepted) = 0.6 reported as 1 accepted
    "accepted_off_by_one": _step(P3, Q3, (0,)),
    # q = [.4, .3, .3]; top-2 drops token 2, the drafted one: ratio p/q → ∞ (always accept) instead of .1/.3
    "q_after_top_k": _step([[0.5, 0.4, 0.1], [0.6, 0.3, 0.1]], [[0.4, 0.3, 0.3]], (2,)),
}

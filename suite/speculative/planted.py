"""Broken samplers, each with one classic bug, that the checks must reject.

Each is a plain vectorised sampler with the same ``verify`` signature as the real ones (no explicit
uniforms, no greedy path), and each comes with a hand-made step (``PLANTED_CASES``) on which its bug shows:
the law check rejects all but ``u_le_ratio``, whose departure has probability 2⁻²⁴ and which the zero-uniform
trap catches.
"""

from __future__ import annotations

import torch

from impls.speculative.api import SpecCase, SpecResult, SpeculativeImpl, validate

BUGS = (
    "accept_when_p_gt_q",  # accept iff p(x) > q(x) instead of with probability min(1, p/q)
    "residual_not_normalised",  # inverse CDF over max(0, p − q) without dividing by its total
    "residual_is_p",  # after a rejection sample from p instead of max(0, p − q)
    "no_bonus_token",  # all γ accepted: stop without the bonus token (last draft reported as the emitted one)
    "bonus_from_q",  # all γ accepted: the bonus comes from the draft distribution
    "accepted_off_by_one",  # the rejected position is counted as accepted
    "q_after_top_k",  # ratio and residual use top-k(q) although the draft came from the raw q
    "emits_minus_one",  # a rejection emits the placeholder -1 instead of a token
    "u_le_ratio",  # accept iff u <= p/q: a uniform of exactly 0.0 accepts a draft the target gives probability 0
)
TOP_K = 2


def _top_k(q: torch.Tensor, k: int) -> torch.Tensor:
    kept = torch.zeros_like(q).scatter(-1, q.topk(k, dim=-1).indices, 1.0) * q
    return kept / kept.sum(-1, keepdim=True)


class PlantedSampler(SpeculativeImpl):
    lacks = {**SpeculativeImpl.lacks, "greedy": "planted: sampled verification only",
             "uniforms": "planted: draws its own uniforms", "ngram": "planted: needs draft probabilities",
             "ragged": "planted: full drafts only"}

    def __init__(self, bug: str) -> None:
        if bug not in BUGS:
            raise ValueError(f"unknown planted bug {bug!r}; known: {BUGS}")
        self.bug = bug
        self.name = f"planted-{bug}"

    def verify(self, target_probs, draft_probs, draft_tokens, draft_lengths, *, greedy=False, generator=None,
               accept_uniforms=None, emit_uniforms=None):  # type: ignore[no-untyped-def]
        b, g, v = validate(target_probs, draft_probs, draft_tokens, draft_lengths)
        assert draft_probs is not None and not greedy and int(draft_lengths.min()) == g, "planted: full drafts only"
        rows = torch.arange(b)
        q_used = _top_k(draft_probs, TOP_K) if self.bug == "q_after_top_k" else draft_probs
        p_x = target_probs[:, :g].gather(-1, draft_tokens.unsqueeze(-1)).squeeze(-1)
        q_x = q_used.gather(-1, draft_tokens.unsqueeze(-1)).squeeze(-1)
        u = torch.rand((b, g), generator=generator)
        ratio = torch.where(q_x > 0, p_x / q_x, 1.0)
        ok = p_x > q_x if self.bug == "accept_when_p_gt_q" else (u <= ratio if self.bug == "u_le_ratio" else u < ratio)
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
        if self.bug == "emits_minus_one":
            emitted = torch.where(rejected, torch.full_like(emitted, -1), emitted)
        if self.bug == "accepted_off_by_one":
            accepted = torch.where(rejected, accepted + 1, accepted)
        return SpecResult(accepted, emitted)


# One hand-made step per bug (suite.speculative.cases.HAND), each moving at least 0.04 of probability.
PLANTED_CASES: dict[str, SpecCase] = {
    # draft 0: p/q = 0.4; the bug always rejects (p < q): P(accept) 0.4 → 0
    "accept_when_p_gt_q": SpecCase(3, 1, "hand:p3"),
    # residual [0, .35, .35]/.7 read unnormalised: token 1 gets u < .35 and token 2 the rest (.35/.65, not .5/.5)
    "residual_not_normalised": SpecCase(3, 1, "hand:unnormalised_residual"),
    # rejection (P = 0.6) then p = [.2, .3, .5] instead of [0, 0, 1]
    "residual_is_p": SpecCase(3, 1, "hand:p3"),
    # accepted with P = 0.4, then the bonus from p₂ is replaced by the draft token itself (outcome (0, 0), P = 0)
    "no_bonus_token": SpecCase(3, 1, "hand:p3"),
    # bonus from q₁ = [.5, .3, .2] instead of p₂ = [.9, .05, .05], weight 0.4: TV moved 0.16
    "bonus_from_q": SpecCase(3, 1, "hand:bonus_far_from_q"),
    # P(0 accepted) = 0.6 reported as 1 accepted
    "accepted_off_by_one": SpecCase(3, 1, "hand:p3"),
    # q = [.4, .3, .3]; top-2 drops token 2, the drafted one: ratio p/q → ∞ (always accept) instead of .1/.3
    "q_after_top_k": SpecCase(3, 1, "hand:draft_outside_top_2"),
    # emits -1 after every rejection: an id outside the vocabulary
    "emits_minus_one": SpecCase(3, 1, "hand:p3"),
    # the law is right but for a set of probability 2^-24: only the zero-uniform trap catches it
    "u_le_ratio": SpecCase(2, 1, "hand:zero_target_draft"),
}

"""Outside speculative samplers that exercise the verdicts: a declined capability, a declared cost, a declared
non-conformance. None of them is part of tokenspec; run them as a user would:

    python -m pytest suite/test_conformance.py --impl-module examples/plugin/samplers.py --impl 'outside-*' \\
        -k speculative

- ``outside-no-greedy-example``: a correct sampler without a greedy path (``lacks["greedy"]``). Its greedy
  items are skipped with that reason; where greedy and sampled draws are mixed, every sampled draw is checked.
- ``outside-slow-example``: the same sampler declaring 0.5 ms per request; the law checks size N from that and
  their verdicts state the power they keep.
- ``outside-xfail-example``: after rejecting an n-gram draft it samples from p instead of p without the
  drafted token, and declares that known non-conformance: its n-gram law cases are xfailed, the others pass.
"""

from __future__ import annotations

import torch

from impls.base import ExpectedFailure
from impls.speculative.api import SpecCase, SpecResult, SpeculativeImpl, validate


def _inverse_cdf(rows: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    c = rows.cumsum(-1)
    idx = torch.searchsorted(c, (u.to(c.dtype) * c[:, -1]).unsqueeze(-1), right=True).squeeze(-1)
    last = rows.shape[-1] - 1 - (rows.flip(-1) > 0).to(torch.int64).argmax(-1)
    return torch.minimum(idx, last)


class LoopSampler(SpeculativeImpl):
    """Rejection sampling one draft position at a time, vectorised over the batch."""

    name = "outside-no-greedy-example"
    lacks = {**SpeculativeImpl.lacks, "greedy": "this sampler has no greedy path"}
    keep_drafted_token = False  # the declared bug: an n-gram rejection keeps the drafted token in the residual

    def verify(self, target_probs, draft_probs, draft_tokens, draft_lengths, *, greedy=False, generator=None,
               accept_uniforms=None, emit_uniforms=None):  # type: ignore[no-untyped-def]
        b, g, _ = validate(target_probs, draft_probs, draft_tokens, draft_lengths)
        if greedy:
            raise NotImplementedError(self.lacks["greedy"])
        if accept_uniforms is None:
            accept_uniforms = torch.rand((b, g), generator=generator, dtype=target_probs.dtype)
        if emit_uniforms is None:
            emit_uniforms = torch.rand((b,), generator=generator, dtype=torch.float64)
        rows = torch.arange(b)
        accepted = torch.zeros(b, dtype=torch.int64)
        stop = draft_lengths.clone().to(torch.int64)  # where each request stops: first rejection, or its length
        rejected = torch.zeros(b, dtype=torch.bool)
        for i in range(g):
            live = (~rejected) & (i < draft_lengths)
            x = draft_tokens[:, i].to(torch.int64)
            p_x = target_probs[rows, i, x]
            q_x = torch.ones_like(p_x) if draft_probs is None else draft_probs[rows, i, x]
            ok = accept_uniforms[:, i].to(p_x.dtype) < p_x / q_x
            newly = live & ~ok
            stop = torch.where(newly, i, stop)
            rejected |= newly
            accepted += (live & ok).to(torch.int64)
        p_stop = target_probs[rows, stop]
        if draft_probs is None:
            q_stop = torch.zeros_like(p_stop)
            if g:
                x_stop = draft_tokens[rows, stop.clamp(max=g - 1)].to(torch.int64)
                q_stop[rows, x_stop] = 0.0 if self.keep_drafted_token else 1.0
        else:
            q_stop = draft_probs[rows, stop.clamp(max=max(g - 1, 0))] if g else torch.zeros_like(p_stop)
        residual = (p_stop - q_stop).clamp_min(0)
        use_residual = rejected & (residual.sum(-1) > 0)
        dist = torch.where(use_residual.unsqueeze(-1), residual, p_stop)
        return SpecResult(accepted, _inverse_cdf(dist, emit_uniforms))


class SlowSampler(LoopSampler):
    name = "outside-slow-example"
    call_cost_s = 5e-4  # as declared by its author: 0.5 ms per request


class DeclaredSampler(LoopSampler):
    name = "outside-xfail-example"
    keep_drafted_token = True
    lacks = {**LoopSampler.lacks, "uniforms": "this sampler draws its own uniforms"}
    expected_failures = (ExpectedFailure(
        test="*law*", reason="after rejecting an n-gram draft it samples from p, not p without the drafted token",
        link="https://example.invalid/sampler/issue/3", when=lambda case: case.ngram,
        example=SpecCase(3, 1, "random", draws=3, ngram=True)),)


def implementations() -> list[object]:
    return [LoopSampler(), SlowSampler(), DeclaredSampler()]

"""Hugging Face transformers' ``_speculative_sampling`` (transformers.generation.utils), one request per call.

Its signature in transformers 5.x: ``(candidate_input_ids [1, L+γ], candidate_logits [1, γ, V],
candidate_length γ, new_logits [1, γ+1, V], assistant_ensemble_weight=None) -> (valid_tokens [1, n+1],
n_matches)``. It takes logits, so the adapter passes log-probabilities (softmax(log p) = p), one row at a
time (its indexing assumes batch 1). Randomness comes from torch's global generator, so the adapter seeds
it from the caller's generator; explicit uniforms and greedy verification (a separate code path in
``_assisted_decoding``) are not available through this function.
"""

from __future__ import annotations

import torch

from impls.base import Requirements
from impls.registry import register
from impls.speculative.api import SpecCase, SpecResult, SpeculativeImpl, check_shapes


class TransformersSpeculativeSampling(SpeculativeImpl):
    name = "hf-transformers"
    description = "transformers.generation.utils._speculative_sampling (batch 1 per call)"
    requires = Requirements(modules=("transformers",))

    def unsupported(self, case: SpecCase) -> list[str]:
        reasons = []
        if case.greedy:
            reasons.append("greedy verification is not done by _speculative_sampling (it is inline in _assisted_decoding)")
        if case.explicit_uniforms:
            reasons.append("_speculative_sampling draws from torch's global generator; it takes no uniforms")
        return reasons

    def verify(self, target_probs, draft_probs, draft_tokens, draft_lengths, *, greedy=False, generator=None,
               accept_uniforms=None, emit_uniforms=None):  # type: ignore[no-untyped-def]
        from transformers.generation.utils import _speculative_sampling

        if greedy or accept_uniforms is not None or emit_uniforms is not None:
            raise NotImplementedError("; ".join(self.unsupported(SpecCase(1, 1, 1, greedy, True, True))))
        b, _, v = check_shapes(target_probs, draft_probs, draft_tokens, draft_lengths)
        if generator is not None:
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        accepted = torch.empty(b, dtype=torch.int64)
        emitted = torch.empty(b, dtype=torch.int64)
        with torch.no_grad():
            target_logits = target_probs.log()  # softmax(log p) = p; computed once for the whole batch
            if draft_probs is None:
                draft_probs = torch.nn.functional.one_hot(draft_tokens, v).to(target_probs.dtype)
            draft_logits = draft_probs.log()
            lengths = draft_lengths.tolist()
            for i in range(b):
                g = lengths[i]
                if g == 0:  # with candidate_length 0 its ids[:, -0:] slice would take the whole sequence
                    accepted[i] = 0
                    emitted[i] = int(torch.multinomial(target_probs[i, 0].float(), 1))
                    continue
                tokens, n = _speculative_sampling(draft_tokens[i:i + 1, :g], draft_logits[i:i + 1, :g], g,
                                                  target_logits[i:i + 1, :g + 1])
                accepted[i] = int(n)
                emitted[i] = int(tokens[0, -1])
        return SpecResult(accepted.to(target_probs.device), emitted.to(target_probs.device))


register(TransformersSpeculativeSampling())

"""Hugging Face transformers' ``_speculative_sampling`` (transformers.generation.utils), one request per call.

Its signature in transformers 5.x: ``(candidate_input_ids [1, L+γ], candidate_logits [1, γ, V],
candidate_length γ, new_logits [1, γ+1, V], assistant_ensemble_weight=None) -> (valid_tokens [1, n+1],
n_matches)``. It takes logits, so the adapter passes log-probabilities (softmax(log p) = p up to float32
rounding), one row at a time (its indexing ``p[:, arange(γ), ids]`` assumes batch 1).

Randomness: the function draws from torch's global generator (``rand_like`` for the acceptance tests, then
``multinomial``). The adapter runs it with the caller's generator state swapped into the global generator
and swapped back afterwards, so its draws are exactly the caller's generator's, and the global stream is left
as it was. Each call is a dozen tiny tensor operations, so the adapter runs them on one intra-op thread (on a
loaded 2-core machine, 2 threads made one call 20 times slower: 1.7 ms against 85 µs) and restores the count.
Greedy verification (inline in ``_assisted_decoding``) and explicit uniforms are not available through this
function.

``assistant_ensemble_weight`` (DIVERSE static ensemble verification) accepts with v = w·p + (1 − w)·q in place
of p: declared lossy, registered as its own implementation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from impls.base import ExpectedFailure, Requirements
from impls.registry import register
from impls.speculative.api import SpecCase, SpecResult, SpeculativeImpl, validate

_SOURCE = "https://github.com/huggingface/transformers/blob/v5.23.0/src/transformers/generation/utils.py"

ZERO_UNIFORM = ExpectedFailure(
    test="zero_uniform",
    reason="accepts a draft token to which the target gives probability 0 when torch.rand returns exactly 0.0: "
           "its test is `r_i <= probability_ratio` (0 <= 0), where the rule needs u < p/q; torch.rand's float32 "
           "draws are 0.0 with probability 2^-24 each, so a top-k/top-p-truncated target emits a token outside its "
           "support about once per 17 million verified draft tokens",
    link=f"{_SOURCE}#L4465",
    example=SpecCase(2, 1, kind="hand:zero_target_draft"))  # with the generator seeded ZERO_UNIFORM_SEED


@contextmanager
def caller_randomness(generator: torch.Generator | None) -> Iterator[None]:
    """Run with ``generator``'s state as torch's global state (then hand each its own back), on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    saved = torch.default_generator.get_state() if generator is not None else None
    try:
        if generator is not None:
            torch.default_generator.set_state(generator.get_state())
        yield
    finally:
        if generator is not None and saved is not None:
            generator.set_state(torch.default_generator.get_state())
            torch.default_generator.set_state(saved)
        torch.set_num_threads(threads)


class TransformersSpeculativeSampling(SpeculativeImpl):
    name = "hf-transformers"
    description = "transformers.generation.utils._speculative_sampling (batch 1 per call)"
    requires = Requirements(modules=("transformers",))
    lacks = {**SpeculativeImpl.lacks,
             "greedy": "greedy verification is not done by _speculative_sampling (it is inline in _assisted_decoding)",
             "uniforms": "_speculative_sampling draws from torch's global generator; it takes no uniforms"}
    call_cost_s = 1.2e-4  # per request through the adapter, one thread, V 3, G 1 (85 µs of it in the function)
    example_budget = 3  # one request per Python call: its law properties are smoke runs anyway
    expected_failures: tuple[ExpectedFailure, ...] = (ZERO_UNIFORM,)
    ensemble_weight: float | None = None

    def verify(self, target_probs, draft_probs, draft_tokens, draft_lengths, *, greedy=False, generator=None,
               accept_uniforms=None, emit_uniforms=None):  # type: ignore[no-untyped-def]
        from transformers.generation.utils import _speculative_sampling

        if greedy or accept_uniforms is not None or emit_uniforms is not None:
            raise NotImplementedError(f"{self.name}: {self.lacks['greedy']}; {self.lacks['uniforms']}")
        b, _, v = validate(target_probs, draft_probs, draft_tokens, draft_lengths)
        accepted = [0] * b
        emitted = [0] * b
        with torch.inference_mode(), caller_randomness(generator):
            target_logits = target_probs.cpu().log()  # softmax(log p) = p; computed once for the whole batch
            if draft_probs is None:
                draft_probs = torch.nn.functional.one_hot(draft_tokens.cpu().to(torch.int64), v).to(target_logits.dtype)
            draft_logits = draft_probs.cpu().log()
            ids = draft_tokens.cpu().to(torch.int64)
            for i, g in enumerate(draft_lengths.tolist()):
                if g == 0:  # with candidate_length 0 its ids[:, -0:] slice would take the whole sequence
                    emitted[i] = int(torch.multinomial(target_logits[i, 0].exp(), 1))
                    continue
                tokens, n = _speculative_sampling(ids[i:i + 1, :g], draft_logits[i:i + 1, :g], g,
                                                  target_logits[i:i + 1, :g + 1],
                                                  assistant_ensemble_weight=self.ensemble_weight)
                accepted[i] = int(n)
                emitted[i] = int(tokens[0, -1])
        dev = target_probs.device
        return SpecResult(torch.tensor(accepted, device=dev), torch.tensor(emitted, device=dev))


class TransformersEnsembleVerification(TransformersSpeculativeSampling):
    """DIVERSE static ensemble verification: lossy by design (the issue's declared-lossy methods)."""

    name = "hf-transformers-ensemble-0.5"
    description = "_speculative_sampling with assistant_ensemble_weight = 0.5 (DIVERSE; lossy by design)"
    ensemble_weight = 0.5
    lacks = {**TransformersSpeculativeSampling.lacks,
             "exact": "declared lossy: accepts with v = 0.5·p + 0.5·q in place of p (DIVERSE static ensemble "
                      "verification, arXiv 2604.07622), trading the target law for acceptance"}
    expected_failures: tuple[ExpectedFailure, ...] = ()


register(TransformersSpeculativeSampling())
register(TransformersEnsembleVerification())

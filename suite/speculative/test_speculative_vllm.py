"""vLLM's rejection sampler at full stated power on this CPU: every request's output replayed against the reference.

The generic law checks give vLLM (about 3 ms per request in Triton's interpreter) a short smoke run whose verdict
states its low power. Here the test is exact instead. vLLM draws its randomness from the generator each request
is given (``generate_uniform_probs``: one float64 uniform per drafted token; ``sample_recovered_tokens``: V
float32 exponentials per request), in an order its code fixes; this test hands it a seeded generator, replays
those draws from a copy, and computes what the reference rule (``reference.speculative.decide_race``: accept iff
u < p/q, the recovered token by the exponential race) gives for them. Every request must agree.

Power: by the coupling inequality, TV(vLLM's law, the rule's) ≤ P(the two maps differ), so a law off by TV 0.01
makes each request disagree with probability ≥ 0.01, and N agreeing requests happen with probability ≤ 0.99^N:
N = 688 catches it with probability ≥ 0.999. A correct sampler never disagrees (false alarm 0), except where
float32 rounding decides: requests within 1e-6 of an acceptance boundary or with two race scores within 1e-5
(relative) are set aside and counted (they are rare: the test requires 688 decided requests). Each path's batch mixes
draft lengths 0, 1 and 2 (ragged), so the requests drafting 2 are the plain path; greedy is exact (no randomness)
and is held by the generic decision checks.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from impls import registry
from impls.speculative.api import SpecCase
from impls.speculative.vllm_sampler import INTERPRETED, VllmRejectionSampler, outcome_of
from reference import speculative as ref
from suite.speculative import cases as cs
from suite.speculative.check import one_thread

DECIDED = math.ceil(math.log(1 - 0.999) / math.log(1 - 0.01))  # 688
PATHS = {  # each batch mixes draft lengths 0, 1 and 2: the requests drafting 2 are the plain (non-ragged) path
    "draft_probs": SpecCase(4, 2, "random", draws=51, ragged=True),
    "ngram": SpecCase(4, 2, "random", draws=53, ngram=True, ragged=True),  # no draft probabilities
}


def _vllm() -> VllmRejectionSampler:
    impl = next(i for i in registry.all_implementations("speculative") if type(i) is VllmRejectionSampler)
    reasons = impl.unavailable()
    if reasons:
        pytest.skip(f"{impl.name} unavailable: {'; '.join(reasons)}")
    return impl  # type: ignore[return-value]


def replay(impl: VllmRejectionSampler, case: SpecCase, n: int, seed: int,
           rule: object = ref.decide_race) -> tuple[list[str], int]:
    """(disagreements, requests set aside) over n requests of the case's steps, interleaved."""
    steps = cs.law_steps(case)
    order = np.arange(n) % len(steps)
    p, q, d, lengths = cs.chain_tensors(steps, order, case)
    gen = torch.Generator().manual_seed(seed)
    bonus = torch.multinomial(p[torch.arange(n), lengths].float(), 1, generator=gen).squeeze(-1)
    copy = torch.Generator()
    copy.set_state(gen.get_state())
    with one_thread():
        got = outcome_of(impl.run(p, q, d, lengths, bonus, generator=gen))
    uniforms = {b: torch.empty(int(lengths[b]), dtype=torch.float64).uniform_(generator=copy).numpy()
                for b in range(n) if lengths[b] > 0}
    races = {b: torch.empty(case.vocab, dtype=torch.float32).exponential_(generator=copy).numpy()
             for b in range(n) if lengths[b] > 0}
    wrong, aside = [], 0
    for b in range(n):
        s, g = steps[order[b]], int(lengths[b])
        if g == 0:
            want = (0, int(bonus[b]))
        else:
            if _fragile(s, uniforms[b], races[b]):
                aside += 1
                continue
            k, t = rule(s.p, s.q, s.draft, uniforms[b], races[b])  # type: ignore[operator]
            want = (k, int(bonus[b]) if k == g else t)
        have = (int(got.accepted[b]), int(got.emitted[b]))
        if have != want:
            wrong.append(f"request {b} (draft {s.draft}, u {np.round(uniforms.get(b, []), 6).tolist()}): vLLM {have}, "
                         f"the rule {want}")
    return wrong, aside


def _fragile(s: cs.Step, u: np.ndarray, e: np.ndarray) -> bool:
    for k in range(s.gamma):
        a = ref.acceptance_probability(s.p[k], s.q[k], s.draft[k])
        if abs(u[k] - a) < 1e-6:
            return True
        if not u[k] < a:
            score = np.sort(np.where(ref.residual(s.p[k], s.q[k]) > 0, ref.residual(s.p[k], s.q[k]) / e, -1.0))
            return bool(score[-1] - score[-2] < 1e-5 * score[-1])
    return False


@pytest.mark.parametrize("path", list(PATHS))
def test_vllm_replayed_at_full_power(path: str) -> None:
    impl = _vllm()
    n = DECIDED + 32
    wrong, aside = replay(impl, PATHS[path], n, seed=2026)
    assert not wrong, f"{len(wrong)} of {n} requests disagree with the rule:\n" + "\n".join(wrong[:10])
    assert n - aside >= DECIDED, f"only {n - aside} requests away from rounding boundaries; need {DECIDED}"


def test_the_replay_catches_a_wrong_rule() -> None:
    """The same replay against a rule that samples the residual's complement: most requests disagree."""
    impl = _vllm()

    def wrong_rule(p, q, draft, u, e):  # type: ignore[no-untyped-def]
        k, t = ref.decide_race(p, q, draft, u, e)
        return k, (t + 1) % len(p[0])

    wrong, _ = replay(impl, PATHS["draft_probs"], 64, seed=1, rule=wrong_rule)
    assert len(wrong) > 16


@pytest.mark.skipif(not INTERPRETED, reason="checks the interpreter path; on a GPU vLLM's kernels are compiled")
def test_vllm_runs_its_own_kernels_in_the_interpreter() -> None:
    _vllm()
    import vllm.triton_utils
    from triton.runtime.interpreter import InterpretedFunction
    from vllm.v1.sample import rejection_sampler as rs

    assert vllm.triton_utils.HAS_TRITON
    for kernel in (rs.rejection_random_sample_kernel, rs.rejection_greedy_sample_kernel,
                   rs.sample_recovered_tokens_kernel):
        assert isinstance(kernel, InterpretedFunction), type(kernel)
    assert type(rs._rejection_random_sample).__module__ == "vllm.model_executor.warmup.jit_warmup_triton_helper"

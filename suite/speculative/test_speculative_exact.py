"""Decisions for explicit uniforms, checked exactly against the reference (float64 inputs).

Batches mix draft lengths (0…γ) and vocabularies run from 2 to 50,000; uniforms closer than 1e-9 to a
decision boundary (an acceptance ratio or a CDF breakpoint) are redrawn, since there float rounding,
not the rule, decides.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from impls.speculative.api import SpecCase, SpeculativeImpl
from reference import speculative as ref
from suite.speculative.cases import KINDS, make_distributions

MARGIN = 1e-9


def _skip_unless(impl: SpeculativeImpl, case: SpecCase) -> None:
    reasons = impl.unsupported(case)
    if reasons:
        pytest.skip(f"{impl.name}: {'; '.join(reasons)}")


def _near_boundary(r: np.ndarray, v: float) -> bool:
    return bool(np.any(np.abs(np.cumsum(r) - v) < MARGIN))


@given(st.sampled_from(KINDS), st.integers(2, 50_000), st.integers(1, 4), st.integers(1, 4), st.booleans(),
       st.integers(0, 2**32 - 1))
def test_speculative_uniform_decisions(speculative_impl: SpeculativeImpl, kind: str, vocab: int, batch: int,
                                       gamma: int, greedy: bool, seed: int) -> None:
    ngram = kind == "one_hot_draft"
    _skip_unless(speculative_impl, SpecCase(batch, vocab, gamma, greedy=greedy, draft_probs=not ngram,
                                            explicit_uniforms=True, variable_lengths=True))
    rng = np.random.default_rng(seed)
    ps, qs, drafts, lengths = [], [], [], []
    for _ in range(batch):
        p, q = make_distributions(rng, kind, gamma, vocab)
        d = [int(rng.choice(vocab, p=q[i])) if not ngram else int(rng.integers(vocab)) for i in range(gamma)]
        if ngram:
            q = np.stack([ref.one_hot(vocab, x) for x in d])
        ps.append(p)
        qs.append(q)
        drafts.append(d)
        lengths.append(int(rng.integers(0, gamma + 1)))
    u = rng.random((batch, gamma))
    v = rng.random(batch)
    want = []
    for b in range(batch):
        g = lengths[b]
        p, q, d = ps[b][: g + 1], qs[b][:g], drafts[b][:g]
        if greedy:
            tops = [np.sort(x)[-2:] for x in p]
            assume(all(x[1] - x[0] > MARGIN for x in tops))  # a tie in argmax is a convention, not the rule
            want.append(ref.greedy(p, d))
            continue
        for k in range(g):
            assume(abs(u[b, k] - ref.acceptance_probability(p[k], q[k], d[k])) > MARGIN)
        k, _ = ref.decide(p, q, d, u[b], v[b])
        stop = ref.residual(p[k], q[k]) if k < g else p[g]
        assume(not _near_boundary(stop, v[b]))
        want.append(ref.decide(p, q, d, u[b], v[b]))
    t = torch.float64
    res = speculative_impl.verify(
        torch.tensor(np.stack(ps), dtype=t), None if ngram else torch.tensor(np.stack(qs), dtype=t),
        torch.tensor(drafts, dtype=torch.int64).reshape(batch, gamma), torch.tensor(lengths),
        greedy=greedy, accept_uniforms=torch.tensor(u, dtype=t), emit_uniforms=torch.tensor(v, dtype=t))
    got = list(zip(res.accepted.tolist(), res.emitted.tolist(), strict=True))
    assert got == want, f"draft lengths {lengths}"


def test_speculative_bad_shapes_are_named(speculative_impl: SpeculativeImpl) -> None:
    p = torch.full((2, 3, 4), 0.25)
    with pytest.raises(ValueError, match=r"draft_tokens has shape \(2, 3\); .* needs \(2, 2\)"):
        speculative_impl.verify(p, None, torch.zeros(2, 3, dtype=torch.int64), torch.tensor([2, 2]))
    with pytest.raises(ValueError, match=r"draft_lengths must lie in 0..2; got \[3, 0\]"):
        speculative_impl.verify(p, None, torch.zeros(2, 2, dtype=torch.int64), torch.tensor([3, 0]))

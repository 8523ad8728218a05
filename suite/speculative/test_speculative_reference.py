"""The reference against hand computation, the design brief's figures and the losslessness theorem."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference import speculative as ref
from suite.speculative.cases import KINDS, make_step, steps


def test_speculative_brief_figures() -> None:
    # α = 0.8, γ = 4: (1 − 0.8⁵)/(1 − 0.8) = (1 − 0.32768)/0.2 = 3.3616 ≈ 3.36 tokens per target call
    assert ref.expected_tokens_per_call(0.8, 4) == pytest.approx(3.3616, abs=1e-12)
    # γ → ∞: 1/(1 − α) = 5
    assert ref.expected_tokens_per_call(0.8, 200) == pytest.approx(5.0, abs=1e-12)
    assert ref.expected_tokens_per_call(1.0, 4) == 5.0  # every draft accepted: γ + 1
    assert ref.expected_tokens_per_call(0.0, 4) == 1.0


def test_speculative_walltime_and_optimal_gamma() -> None:
    # α = 0.8, c = 0.1: factor(γ) = tokens(γ)/(0.1γ + 1):
    # γ=4: 3.3616/1.4 = 2.4011; γ=5: 3.68928/1.5 = 2.4595; γ=6: 3.951424/1.6 = 2.4696; γ=7: 4.1611392/1.7 = 2.4477
    assert ref.walltime_factor(0.8, 4, 0.1) == pytest.approx(3.3616 / 1.4)
    assert ref.walltime_factor(0.8, 6, 0.1) == pytest.approx(3.951424 / 1.6)
    assert ref.optimal_gamma(0.8, 0.1) == 6
    assert ref.optimal_gamma(0.8, 0.0, max_gamma=10) == 10  # a free draft: longer is always better
    assert ref.optimal_gamma(0.1, 1.0) == 0  # α = .1, c = 1: γ = 1 gives 1.1/2 < 1, drafting loses


def test_speculative_hand_outcomes() -> None:
    # p₁ = [.5, .3, .2], q₁ = [.2, .6, .2], draft 1: accept .3/.6 = .5; residual max(0, p − q) = [.3, 0, 0] → [1, 0, 0]
    # bonus p₂ = [.1, .1, .8] after acceptance (P = .5)
    got = ref.outcome_distribution([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]], [[0.2, 0.6, 0.2]], [1])
    want = {(0, 0): 0.5, (1, 0): 0.05, (1, 1): 0.05, (1, 2): 0.4}
    assert got.keys() == want.keys()
    assert all(got[k] == pytest.approx(v, abs=1e-15) for k, v in want.items())
    assert ref.beta([0.5, 0.3, 0.2], [0.2, 0.6, 0.2]) == pytest.approx(0.2 + 0.3 + 0.2)
    # n-gram draft (q one-hot on token 2): acceptance = p(2) = .2; residual = p without token 2 → [.625, .375, 0]
    q = ref.one_hot(3, 2)
    assert ref.acceptance_probability([0.5, 0.3, 0.2], q, 2) == pytest.approx(0.2)
    np.testing.assert_allclose(ref.residual([0.5, 0.3, 0.2], q), [0.625, 0.375, 0.0])


def test_speculative_hand_decisions() -> None:
    p, q = [[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]], [[0.2, 0.6, 0.2]]
    assert ref.decide(p, q, [1], [0.49], 0.15) == (1, 1)  # .49 < .5 accepts; bonus cdf [.1, .2, 1]: .15 → token 1
    assert ref.decide(p, q, [1], [0.49], 0.2) == (1, 2)  # cumsum must exceed v: .2 is not > .2 → token 2
    assert ref.decide(p, q, [1], [0.5], 0.99) == (0, 0)  # .5 is not < .5: rejected; residual is all token 0
    assert ref.greedy([[0.1, 0.7, 0.2], [0.3, 0.3, 0.4], [0.6, 0.2, 0.2]], [1, 0]) == (1, 2)
    assert ref.greedy([[0.1, 0.7, 0.2], [0.3, 0.3, 0.4], [0.6, 0.2, 0.2]], [1, 2]) == (2, 0)


def test_speculative_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="2 drafted tokens need 2 draft and 3 target"):
        ref.outcome_distribution([[1.0, 0.0]] * 2, [[1.0, 0.0]] * 2, [0, 0])
    with pytest.raises(ValueError, match="sums to"):
        ref.beta([0.5, 0.6], [0.5, 0.5])
    with pytest.raises(ValueError, match="drafted token 1 has q = 0"):
        ref.acceptance_probability([0.5, 0.5], [1.0, 0.0], 1)


@given(steps())
def test_speculative_outcomes_sum_to_one(step) -> None:
    dist = ref.outcome_distribution(step.p, step.q, step.draft)
    assert math.fsum(dist.values()) == pytest.approx(1.0, abs=1e-12)
    assert all(0 <= k <= step.gamma and 0 <= t < step.vocab for k, t in dist)


@given(st.sampled_from(KINDS), st.integers(2, 5), st.integers(1, 2), st.integers(0, 2**32 - 1))
def test_speculative_first_token_is_distributed_as_p(kind: str, vocab: int, gamma: int, seed: int) -> None:
    """The theorem: with drafts drawn from q, the first emitted token has law p₁ exactly; so does the whole step."""
    step = make_step(seed, kind, vocab, gamma)
    if step.ngram:  # an n-gram draft is one fixed draft: the conditional law is the marginal one
        return
    seqs = ref.marginal_over_drafts(step.p, step.q)
    first = np.zeros(vocab)
    for seq, w in seqs.items():
        first[seq[0]] += w
    np.testing.assert_allclose(first, step.p[0], atol=1e-12)
    if gamma == 2:  # the second token, given the first, has law p₂ (contexts here do not depend on the prefix)
        for a in range(vocab):
            both = np.array([sum(w for s, w in seqs.items() if s[:2] == (a, b)) for b in range(vocab)])
            longer = sum(w for s, w in seqs.items() if s[0] == a and len(s) >= 2)
            if longer > 1e-9:
                np.testing.assert_allclose(both / longer, step.p[1], atol=1e-9)


@given(st.integers(2, 6), st.integers(0, 4), st.integers(0, 2**32 - 1))
def test_speculative_expected_tokens_formula(vocab: int, gamma: int, seed: int) -> None:
    """Same p and q at every position, drafts from q: E[tokens] = (1 − β^(γ+1)) / (1 − β)."""
    rng = np.random.default_rng(seed)
    p1, q1 = rng.dirichlet(np.ones(vocab)), rng.dirichlet(np.ones(vocab))
    expected = 0.0
    for seq, w in ref.marginal_over_drafts([p1] * (gamma + 1), [q1] * gamma).items():
        expected += w * len(seq)
    assert expected == pytest.approx(ref.expected_tokens_per_call(ref.beta(p1, q1), gamma), rel=1e-12)

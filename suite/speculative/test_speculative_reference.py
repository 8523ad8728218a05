"""The chain reference against hand computation, the design brief's figures and the losslessness theorem."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from impls.speculative.api import SpecCase
from reference import speculative as ref
from suite.speculative.cases import KINDS, law_steps, on_lattice
from suite.speculative.stats import chi_square

SEEDS = st.integers(0, 2**32 - 1)


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
    assert ref.decide([[0.0, 1.0], [0.5, 0.5]], [[0.5, 0.5]], [0], [0.0], 0.3) == (0, 1)  # u = 0 rejects p(x) = 0
    assert ref.greedy([[0.1, 0.7, 0.2], [0.3, 0.3, 0.4], [0.6, 0.2, 0.2]], [1, 0]) == (1, 2)
    assert ref.greedy([[0.1, 0.7, 0.2], [0.3, 0.3, 0.4], [0.6, 0.2, 0.2]], [1, 2]) == (2, 0)


def test_speculative_race_by_hand() -> None:
    # r = [.5, .25, .25], E = [1, .2, 2]: scores .5, 1.25, .125 → token 1; tokens with r = 0 never win
    assert ref.sample_by_race([0.5, 0.25, 0.25], [1.0, 0.2, 2.0]) == 1
    assert ref.sample_by_race([0.0, 0.5, 0.5], [1e-9, 1.0, 2.0]) == 1
    p, q = [[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]], [[0.2, 0.6, 0.2]]
    assert ref.decide_race(p, q, [1], [0.6], [5.0, 0.1, 0.1]) == (0, 0)  # rejected: the residual is all token 0
    assert ref.decide_race(p, q, [1], [0.4], [5.0, 0.1, 1.0]) == (1, 1)  # accepted: bonus scores .02, 1, .8


def test_speculative_race_has_the_law_of_its_distribution() -> None:
    """argmax r/E with E ~ Exp(1) is distributed as r: chi-square at 1e-6 over 200,000 races (numpy, seeded)."""
    rng = np.random.default_rng(3)
    r = np.array([0.4, 0.3, 0.2, 0.1, 0.0])
    e = rng.exponential(size=(200_000, r.size))
    winners = np.argmax(np.where(r > 0, r / e, -np.inf), axis=1)
    assert winners.max() < 4  # the zero-probability token never wins
    counts = {0: {(0, int(t)): int(c) for t, c in zip(*np.unique(winners, return_counts=True), strict=True)}}
    exact = {0: {(0, t): float(w) for t, w in enumerate(r) if w > 0}}
    test = chi_square(counts, exact)
    assert not test.rejects, test.describe()


def test_speculative_impossible_outcomes_are_named() -> None:
    p, draft = [[0.0, 0.6, 0.4], [0.3, 0.0, 0.7]], [2]
    assert ref.impossible(p, draft, (2, 0)) == "2 drafted tokens accepted, but the draft has 1"
    assert ref.impossible(p, draft, (0, -1)) == "emitted token id -1 is outside the vocabulary of 3"
    assert "token 0 emitted at position 0" in str(ref.impossible(p, draft, (0, 0)))
    assert "token 1 emitted at position 1" in str(ref.impossible(p, draft, (1, 1)))
    assert "draft token 0 accepted at position 0" in str(ref.impossible([[0.0, 1.0], [0.5, 0.5]], [0], (1, 1)))
    assert ref.impossible(p, draft, (1, 2)) is None
    # a cancellation zero is not structural: p = q leaves no residual, yet (0, t) is not "impossible"
    assert ref.outcome_distribution([[0.5, 0.5], [0.5, 0.5]], [[0.5, 0.5]], [0]).get((0, 1), 0.0) == 0.0
    assert ref.impossible([[0.5, 0.5], [0.5, 0.5]], [0], (0, 1)) is None


def test_speculative_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="2 drafted tokens need 2 draft and 3 target"):
        ref.outcome_distribution([[1.0, 0.0]] * 2, [[1.0, 0.0]] * 2, [0, 0])
    with pytest.raises(ValueError, match="sums to"):
        ref.beta([0.5, 0.6], [0.5, 0.5])
    with pytest.raises(ValueError, match="drafted token 1 has q = 0"):
        ref.acceptance_probability([0.5, 0.5], [1.0, 0.0], 1)
    with pytest.raises(ValueError, match="3 probabilities need 3 exponentials; got 2"):
        ref.sample_by_race([0.5, 0.25, 0.25], [1.0, 1.0])


def test_speculative_lattice_is_exact_in_float32() -> None:
    rows = on_lattice(np.random.default_rng(0).dirichlet(np.ones(7), size=5))
    assert (rows.sum(-1) == 1.0).all()
    assert np.array_equal(rows.astype(np.float32).astype(np.float64), rows)


@given(st.sampled_from(KINDS), st.integers(2, 8), st.integers(1, 3), st.booleans(), SEEDS)
def test_speculative_outcomes_sum_to_one(kind: str, vocab: int, gamma: int, ngram: bool, seed: int) -> None:
    (step,) = law_steps(SpecCase(vocab, gamma, kind, draws=seed, ngram=ngram))
    dist = ref.outcome_distribution(step.p, step.q, step.draft)
    assert math.fsum(dist.values()) == pytest.approx(1.0, abs=1e-12)
    assert all(0 <= k <= step.gamma and 0 <= t < step.vocab for k, t in dist)
    assert all(ref.impossible(step.p, step.draft, o) is None for o in dist)  # structural zeros have no mass


@given(st.sampled_from(KINDS), st.integers(2, 5), st.integers(1, 2), SEEDS)
def test_speculative_first_token_is_distributed_as_p(kind: str, vocab: int, gamma: int, seed: int) -> None:
    """The theorem: with drafts drawn from q, the first emitted token has law p₁ exactly; so does the whole step."""
    (step,) = law_steps(SpecCase(vocab, gamma, kind, draws=seed))
    seqs = ref.marginal_over_drafts(step.p, step.q)
    first = np.zeros(vocab)
    for seq, w in seqs.items():
        first[seq[0]] += w
    np.testing.assert_allclose(first, step.p[0], atol=1e-12)
    # the whole step, continued by the target, is the target's law of γ + 1 tokens
    continued = ref.continued(seqs, step.p, gamma + 1)
    assert ref.total_variation(continued, ref.product_law(step.p, gamma + 1)) < 1e-12


@given(st.integers(2, 6), st.integers(0, 4), SEEDS)
def test_speculative_expected_tokens_formula(vocab: int, gamma: int, seed: int) -> None:
    """Same p and q at every position, drafts from q: E[tokens] = (1 − β^(γ+1)) / (1 − β)."""
    rng = np.random.default_rng(seed)
    p1, q1 = rng.dirichlet(np.ones(vocab)), rng.dirichlet(np.ones(vocab))
    expected = 0.0
    for seq, w in ref.marginal_over_drafts([p1] * (gamma + 1), [q1] * gamma).items():
        expected += w * len(seq)
    assert expected == pytest.approx(ref.expected_tokens_per_call(ref.beta(p1, q1), gamma), rel=1e-12)


def test_speculative_a_lossy_rule_is_measured_away_from_the_target() -> None:
    """continued/product/TV by hand: always accepting the draft (q = [1, 0], p = [.5, .5]) gives TV 0.5."""
    law: dict[tuple[int, ...], float] = {(0, 0): 0.5, (0, 1): 0.5}  # the draft token 0 always, then the bonus from p₂
    target = ref.product_law([[0.5, 0.5], [0.5, 0.5]], 2)
    assert target == {(0, 0): 0.25, (0, 1): 0.25, (1, 0): 0.25, (1, 1): 0.25}
    assert ref.total_variation(ref.continued(law, [[0.5, 0.5], [0.5, 0.5]], 2), target) == pytest.approx(0.5)

"""Planted bugs are caught every run (seeded), the correct verifiers pass the same cases, and bad outputs are named."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from impls.speculative.api import ZERO_UNIFORM_SEED, SpecCase
from impls.speculative.batched import BatchedRejectionSampler
from impls.speculative.tree import TreeVerifier
from reference import speculative as ref
from reference import speculative_tree as tree_ref
from reference.speculative import total_variation
from suite.speculative import cases as cs
from suite.speculative.check import check_law, check_trade, check_zero_uniform, one_thread, sample
from suite.speculative.planted import BUGS, PLANTED_CASES, PlantedSampler
from suite.speculative.planted_tree import PLANTED_TREE_CASES, TREE_BUGS, PlantedTreeVerifier

CORRECT = (BatchedRejectionSampler(), TreeVerifier())
SEED = 7


@pytest.mark.parametrize("bug", [b for b in BUGS if b != "u_le_ratio"])
def test_planted_chain_bug_is_caught(bug: str) -> None:
    case = PLANTED_CASES[bug]
    result = check_law(PlantedSampler(bug), case, SEED)
    assert not result.ok, result.describe()
    for impl in CORRECT:
        assert check_law(impl, case, SEED).ok, impl.name


def test_a_zero_uniform_bug_is_caught_by_its_trap() -> None:
    """`u <= p/q` differs from the rule on a set of probability 2^-24: the law check cannot see it; the trap does."""
    case = PLANTED_CASES["u_le_ratio"]
    buggy = PlantedSampler("u_le_ratio")
    assert check_law(buggy, case, SEED).ok  # its law is right but for 2^-24
    trap = check_zero_uniform(buggy, case, ZERO_UNIFORM_SEED)
    assert not trap.ok and "where the target gives it probability 0" in trap.describe(), trap.describe()
    for impl in CORRECT:
        assert check_zero_uniform(impl, case, ZERO_UNIFORM_SEED).ok, impl.name


def test_an_id_outside_the_vocabulary_is_named() -> None:
    result = check_law(PlantedSampler("emits_minus_one"), PLANTED_CASES["emits_minus_one"], SEED)
    text = result.describe()
    assert not result.ok and "emitted token id -1" in text and "outside the vocabulary of 3" in text, text


def test_a_structural_zero_fails_at_once_naming_the_outcome() -> None:
    """A bonus drawn from q where the bonus row is all token 0: a token of target probability 0, named."""
    case = SpecCase(3, 1, "hand:bonus_row_one_hot")
    result = check_law(PlantedSampler("bonus_from_q"), case, SEED)
    zeros = next(c for c in result.checks if c.name == "structural_zeros")
    assert not zeros.ok and "emitted at position 1, where the target gives it probability 0" in zeros.describe()
    assert "law" not in {c.name for c in result.checks}  # no chi-square needed, nor run


@pytest.mark.parametrize("bug", TREE_BUGS)
def test_planted_tree_bug_is_caught(bug: str) -> None:
    case = PLANTED_TREE_CASES[bug]
    step = cs.law_tree(case)
    exact = tree_ref.outcome_distribution(step.tree, step.p, step.q, case.rule)
    counts, _ = sample(PlantedTreeVerifier(bug), case, 20_000, SEED)
    moved = total_variation({k: v / 20_000 for k, v in counts[0].items()}, exact)
    assert moved > 0.04, f"the case moves only {moved:.3f} of probability: pick a sharper one"
    result = check_law(PlantedTreeVerifier(bug), case, SEED)
    assert not result.ok, result.describe()
    assert check_law(TreeVerifier(), case, SEED).ok


@pytest.mark.parametrize("gamma", [1, 4])
def test_mean_tokens_per_step_monte_carlo(gamma: int) -> None:
    """Same p, q at every position, drafts drawn from q by torch: mean emitted tokens vs (1 − β^(γ+1))/(1 − β).

    The emitted count is k + 1 with P(k) = β^k (1 − β) for k < γ and β^γ for k = γ, so its exact variance is
    known; |z| ≤ 4.89 is the two-sided 1e-6 normal bound (N = 200,000 makes the CLT accurate here).
    """
    n, vocab = 200_000, 5
    rng = np.random.default_rng(5)
    p1, q1 = rng.dirichlet(np.ones(vocab)), rng.dirichlet(np.ones(vocab))
    b = ref.beta(p1, q1)
    law = np.array([b**k * (1 - b) for k in range(gamma)] + [b**gamma])
    mean = float(np.dot(law, np.arange(1, gamma + 2)))
    var = float(np.dot(law, np.arange(1, gamma + 2) ** 2)) - mean**2
    assert mean == pytest.approx(ref.expected_tokens_per_call(b, gamma), rel=1e-12)
    for impl in CORRECT:
        gen = torch.Generator().manual_seed(99)
        p = torch.tensor(p1, dtype=torch.float64).expand(n, gamma + 1, vocab)
        q = torch.tensor(q1, dtype=torch.float64).expand(n, gamma, vocab)
        drafts = torch.multinomial(q[:, 0], gamma, replacement=True, generator=gen)
        with one_thread():
            res = impl.verify(p, q, drafts, torch.full((n,), gamma), generator=gen)
        z = (float((res.accepted + 1).double().mean()) - mean) / math.sqrt(var / n)
        assert abs(z) <= 4.89, f"{impl.name}: mean tokens off by z = {z:.2f} (β = {b:.4f}, formula {mean:.4f})"


def test_mean_accepted_length_of_a_tree_monte_carlo() -> None:
    """The tree verifier's mean accepted depth against the tree formula fed with the exact per-node rates (z-test
    at two-sided 1e-6, exact variance from the law)."""
    case = SpecCase(4, 5, "random", draws=77, tree=(-1, 0, 0, 1, 1, 3), rule="with_replacement")
    step = cs.law_tree(case)
    law = tree_ref.outcome_distribution(step.tree, step.p, step.q, case.rule)
    formula = tree_ref.expected_accepted(case.tree, tree_ref.acceptance_rates(step.tree, step.p, step.q, case.rule))
    depth = {node: step.tree.depth(node) for node in range(step.tree.size)}
    var = sum(depth[k] ** 2 * w for (k, _), w in law.items()) - formula**2
    n = 100_000
    counts, _ = sample(TreeVerifier(), case, n, SEED)
    mean = sum(depth[k] * c for (k, _), c in counts[0].items()) / n
    z = (mean - formula) / math.sqrt(var / n)
    assert abs(z) <= 4.89, f"mean accepted depth {mean:.4f} against the formula's {formula:.4f} (z = {z:.2f})"


def test_the_trade_of_a_lossy_method_is_measured() -> None:
    """Typical acceptance moves away from the target; the in-repo rejection sampler, measured the same way, does not
    (its TV is sampling noise). Measured, never asserted equal: the bounds here only show the measure works."""
    from impls.speculative.typical import TypicalAcceptance

    case = SpecCase(4, 2, "random", draws=31, measure=True)
    lossy = check_trade(TypicalAcceptance(), case, 41, 100_000)
    exact = check_trade(BatchedRejectionSampler(), case, 41, 100_000)
    assert lossy.ok and exact.ok
    tv = [float(v.checks[0].describe().split("TV from the target ")[1].split()[0]) for v in (lossy, exact)]
    assert tv[0] > 3 * tv[1], (lossy.describe(), exact.describe())

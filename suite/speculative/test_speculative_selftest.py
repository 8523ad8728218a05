"""Planted bugs are caught every run (seeded), the correct verifiers pass the same cases, and bad outputs are named."""

from __future__ import annotations

import pytest

from impls.speculative.api import SpecCase
from impls.speculative.batched import BatchedRejectionSampler
from impls.speculative.hf_transformers import ZERO_UNIFORM_SEED
from impls.speculative.tree import TreeVerifier
from reference import speculative_tree as tree_ref
from reference.speculative import total_variation
from suite.speculative import cases as cs
from suite.speculative.check import check_law, check_zero_uniform, sample
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
    counts, _ = sample(PlantedTreeVerifier(bug), case, 50_000, SEED)
    moved = total_variation({k: v / 50_000 for k, v in counts[0].items()}, exact)
    assert moved > 0.04, f"the case moves only {moved:.3f} of probability: pick a sharper one"
    result = check_law(PlantedTreeVerifier(bug), case, SEED)
    assert not result.ok, result.describe()
    assert check_law(TreeVerifier(), case, SEED).ok

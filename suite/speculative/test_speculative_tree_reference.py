"""The token-tree reference: hand computation, the theorem by enumeration, expected accepted length."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import speculative as chain
from reference import speculative_tree as tree

P = [[0.6, 0.4], [0.5, 0.5], [0.9, 0.1]]  # the target at the root, after node 1, after node 2
Q = [[0.2, 0.8], [0.5, 0.5], [0.5, 0.5]]  # the root's children were drawn from Q[0]


def _close(got: dict, want: dict) -> None:
    assert got.keys() == want.keys(), (got, want)
    assert all(got[k] == pytest.approx(v, abs=1e-15) for k, v in want.items()), (got, want)


def test_tree_with_replacement_by_hand() -> None:
    # both children drew token 1: the first is accepted with .4/.8 = .5 (then node 1's bonus from P[1]); after its
    # rejection the residual is norm(max(0, [.6, .4] − [.2, .8])) = [1, 0], so the second (token 1) has ratio 0,
    # and the residual stays [1, 0]: token 0 is emitted at the root
    t = tree.TokenTree((-1, 0, 0), (-1, 1, 1))
    _close(tree.outcome_distribution(t, P, Q, "with_replacement"), {(1, 0): 0.25, (1, 1): 0.25, (0, 0): 0.5})


def test_tree_without_replacement_by_hand() -> None:
    # children 1 then 0: token 1 accepted with .5; after its rejection the residual is [1, 0] and the next draft law is
    # q without token 1, [1, 0]: token 0 is accepted with ratio 1, then node 2's bonus from P[2] = [.9, .1]
    t = tree.TokenTree((-1, 0, 0), (-1, 1, 0))
    _close(tree.outcome_distribution(t, P, Q, "without_replacement"),
           {(1, 0): 0.25, (1, 1): 0.25, (2, 0): 0.45, (2, 1): 0.05})
    # with replacement the same tree tests token 0 against q = [.2, .8]: ratio 1/.2 ≥ 1, accepted too
    _close(tree.outcome_distribution(t, P, Q, "with_replacement"),
           {(1, 0): 0.25, (1, 1): 0.25, (2, 0): 0.45, (2, 1): 0.05})


def test_tree_target_only_and_greedy_by_hand() -> None:
    t = tree.TokenTree((-1, 0, 0), (-1, 1, 0))
    # y ~ [.6, .4]: y = 0 is node 2 (bonus [.9, .1]); y = 1 is node 1 (bonus [.5, .5])
    _close(tree.outcome_distribution(t, P, None, "target_only"),
           {(2, 0): 0.54, (2, 1): 0.06, (1, 0): 0.2, (1, 1): 0.2})
    assert tree.greedy(t, P) == (2, 0)
    assert tree.decide(t, P, None, "target_only", [0, 0, 0], [0.7, 0.95, 0.0]) == (1, 1)  # y = 1, then bonus .95 → 1


def test_tree_decisions_by_hand() -> None:
    t = tree.TokenTree((-1, 0, 0), (-1, 1, 0))
    assert tree.decide(t, P, Q, "without_replacement", [0, 0.49, 0.0], [0, 0.3, 0]) == (1, 0)  # .49 < .5
    assert tree.decide(t, P, Q, "without_replacement", [0, 0.5, 0.99], [0, 0, 0.95]) == (2, 1)  # .5 rejects; ratio 1
    t2 = tree.TokenTree((-1, 0, 0), (-1, 1, 1))
    assert tree.decide(t2, P, Q, "with_replacement", [0, 0.7, 0.0], [0.999, 0, 0]) == (0, 0)  # u = 0 rejects ratio 0


def test_tree_impossible_outcomes_are_named() -> None:
    t = tree.TokenTree((-1, 0, 0), (-1, 1, 0))
    p = [[0.0, 1.0], [0.5, 0.5], [0.0, 1.0]]
    assert "node 2 (token 0) accepted" in str(tree.impossible(t, p, (2, 1)))
    assert "token 0 emitted at node 0" in str(tree.impossible(t, p, (0, 0)))
    assert tree.impossible(t, p, (5, 0)) == "node 5 is not in the tree of 3 nodes"
    assert tree.impossible(t, p, (1, 2)) == "emitted token id 2 is outside the vocabulary of 2"
    assert tree.impossible(t, p, (1, 1)) is None


def test_tree_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="node 2 has parent 2; a parent must be an earlier node"):
        tree.TokenTree((-1, 0, 2), (-1, 0, 0))
    with pytest.raises(ValueError, match="node 0 is the root, its parent must be -1; got 0"):
        tree.TokenTree((0, 0), (-1, 0))
    t = tree.TokenTree((-1, 0, 0), (-1, 1, 1))
    with pytest.raises(ValueError, match=r"children of node 0 repeat a token \(\[1, 1\]\)"):
        tree.outcome_distribution(t, P, Q, "without_replacement")
    with pytest.raises(ValueError, match="each must have q\\[0\\] > 0"):
        tree.outcome_distribution(t, P, [[1.0, 0.0]] * 3, "with_replacement")
    with pytest.raises(ValueError, match="unknown tree rule 'sideways'"):
        tree.outcome_distribution(t, P, Q, "sideways")


SHAPES = [(2,), (3,), (2, 1), (1, 2), (2, 2), (1, 1, 1)]


@settings(max_examples=12, deadline=None)
@given(st.sampled_from(tree.RULES), st.sampled_from(SHAPES), st.integers(0, 2**32 - 1))
def test_tree_rules_keep_the_target_law(rule: str, branching: tuple[int, ...], seed: int) -> None:
    """Summed over every tree drawn from q: the first token has law p(·|()) and the second, given the first,
    p(·|first), exactly (each rule, trees up to 7 nodes, V = 3)."""
    vocab = 3
    rng = np.random.default_rng(seed)
    store: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}

    def dist(which: str, prefix: tuple[int, ...]) -> np.ndarray:
        if (which, prefix) not in store:
            store[(which, prefix)] = rng.dirichlet(np.full(vocab, 0.7))
        return store[(which, prefix)]

    law = tree.marginal_over_draft_trees(branching, vocab, functools.partial(dist, "p"), functools.partial(dist, "q"),
                                         rule)
    assert math.fsum(law.values()) == pytest.approx(1.0, abs=1e-12)
    first = np.zeros(vocab)
    for seq, w in law.items():
        first[seq[0]] += w
    np.testing.assert_allclose(first, dist("p", ()), atol=1e-12)
    for a in range(vocab):
        longer = sum(w for s, w in law.items() if s[0] == a and len(s) >= 2)
        if longer > 1e-12:
            second = np.array([sum(w for s, w in law.items() if s[:2] == (a, b)) for b in range(vocab)]) / longer
            np.testing.assert_allclose(second, dist("p", (a,)), atol=1e-9)


def test_tree_with_q_not_renormalised_breaks_the_law() -> None:
    """The theorem needs each rule's draft law: distinct siblings tested as if drawn with replacement are biased."""
    # after a rejection the residual [.89, .11, 0] has a token (1) with 0 < r ≤ q: there the two draft laws differ
    vocab, p0, q0 = 3, np.array([0.5, 0.3, 0.2]), np.array([0.1, 0.25, 0.65])
    first = np.zeros(vocab)
    for a in range(vocab):  # two distinct children drawn without replacement, verified as with replacement
        for b in range(vocab):
            if a == b:
                continue
            w = q0[a] * q0[b] / (1 - q0[a])
            t = tree.TokenTree((-1, 0, 0), (-1, a, b))
            for (node, tok), pr in tree.outcome_distribution(t, [p0, p0, p0], [q0, q0, q0], "with_replacement").items():
                first[t.sequence((node, tok))[0]] += w * pr
    assert np.abs(first - p0).max() > 0.01  # not p0: the rule and the draft law must agree


def test_tree_expected_accepted_length() -> None:
    alpha, gamma = 0.8, 4
    chain_parents = (-1, 0, 1, 2, 3)
    got = tree.expected_accepted(chain_parents, [1.0] + [alpha] * gamma)
    assert got == pytest.approx(alpha * (1 - alpha**gamma) / (1 - alpha), abs=1e-12)  # 0.8 + .64 + .512 + .4096
    assert tree.expected_tokens_per_step(chain_parents, [1.0] + [alpha] * gamma) == pytest.approx(
        chain.expected_tokens_per_call(alpha, gamma), abs=1e-12)  # 3.3616, the brief's figure
    # a root with children of rates .5 and .3, and a grandchild (under the first) of rate .6: .5 + .3 + .5·.6 = 1.1
    assert tree.expected_accepted((-1, 0, 0, 1), [1.0, 0.5, 0.3, 0.6]) == pytest.approx(1.1)
    with pytest.raises(ValueError, match=r"rates summing to 1\.2"):
        tree.expected_accepted((-1, 0, 0), [1.0, 0.6, 0.6])


@given(st.sampled_from(tree.RULES), st.integers(0, 2**32 - 1))
def test_tree_expected_length_matches_the_exact_law(rule: str, seed: int) -> None:
    """E[depth of the accepted node] from the exact law equals the formula fed with the law's own node rates."""
    rng = np.random.default_rng(seed)
    parents, vocab = (-1, 0, 0, 1, 1, 2), 4
    p, q = rng.dirichlet(np.ones(vocab), size=6), rng.dirichlet(np.ones(vocab), size=6)
    tokens = [-1]
    for node in range(6):
        kids = [c for c in range(1, 6) if parents[c] == node]
        tokens += list(rng.choice(vocab, size=len(kids), replace=rule != "without_replacement", p=q[node]))
    t = tree.TokenTree(parents, tuple(int(x) for x in tokens))
    law = tree.outcome_distribution(t, p, q, rule)
    direct = sum(t.depth(node) * w for (node, _), w in law.items())
    assert tree.expected_accepted(parents, tree.acceptance_rates(t, p, q, rule)) == pytest.approx(direct, abs=1e-12)

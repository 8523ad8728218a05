"""Token-tree verification, the spec (SpecInfer, Miao et al. 2024, §4; the without-replacement variant as in
recursive speculative decoding, Jeon et al. 2024). ``p`` is the target, ``q`` the draft, as in
``reference.speculative``.

A tree: node 0 is the root (the last committed token); every other node n has a parent ``parents[n] < n``
and a drafted token ``tokens[n]``. ``p[n]`` is the target's distribution of the token that follows node n's
path, ``q[n]`` the draft distribution that n's children were drawn from. Children are tried in index order.

Rules, for the children c₁, c₂, … of the current node with running residual r (r = p[node] on arrival):

- ``with_replacement`` (siblings drawn independently from q[node], as in SpecInfer): accept cᵢ with
  probability min(1, r(xᵢ)/q(xᵢ)); on a rejection r ← norm(max(0, r − q)) and the next sibling is tried.
- ``without_replacement`` (distinct siblings, each drawn from q without the earlier ones, as for top-k
  children): the same with qᵢ = q renormalised without x₁…xᵢ₋₁ in place of q, both in the ratio and in the
  residual update.
- ``target_only``: draw y from p[node]; descend into the first child whose token is y, else emit y.

Accepting cᵢ moves to node cᵢ (r = p[cᵢ]); when every child is rejected, or the node has none, one token is
emitted from r and the step ends. Each rule leaves the law of the emitted sequence exactly the target's
(tested by enumeration in suite/speculative/test_speculative_tree_reference.py). Greedy verification
(temperature 0) is ``target_only`` with y = argmax p[node] (lowest index on ties).

Outcome of a step: ``(node, t)`` — the deepest accepted node (0: none) and the emitted token t. Explicit
uniforms: ``accept_uniforms[c]`` decides child c's test (accept iff u < ratio), ``emit_uniforms[n]`` draws the
token emitted at node n, or target_only's y at n (inverse CDF, as ``reference.speculative.sample_index``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from reference.speculative import Rows, residual, sample_index

RULES = ("with_replacement", "without_replacement", "target_only")
TreeOutcome = tuple[int, int]  # (deepest accepted node, emitted token)


@dataclass(frozen=True)
class TokenTree:
    parents: tuple[int, ...]  # parents[0] = -1 (the root); parents[n] < n
    tokens: tuple[int, ...]  # tokens[n]: the draft token at node n; tokens[0] is unused

    def __post_init__(self) -> None:
        validate_tree(self.parents, self.tokens)

    @property
    def size(self) -> int:
        return len(self.parents)

    def children(self, node: int) -> list[int]:
        return [c for c in range(1, self.size) if self.parents[c] == node]

    def path(self, node: int) -> list[int]:
        """The nodes from the root's child down to ``node`` (empty for the root)."""
        out = []
        while node > 0:
            out.append(node)
            node = self.parents[node]
        return out[::-1]

    def depth(self, node: int) -> int:
        return len(self.path(node))

    def sequence(self, outcome: TreeOutcome) -> tuple[int, ...]:
        """The tokens an outcome emits: the accepted path's tokens, then the emitted token."""
        node, t = outcome
        return (*(self.tokens[n] for n in self.path(node)), t)


def validate_tree(parents: Sequence[int], tokens: Sequence[int]) -> None:
    if len(parents) != len(tokens) or not parents:
        raise ValueError(f"parents and tokens must be non-empty and of one length; got {len(parents)} and "
                         f"{len(tokens)}")
    if parents[0] != -1:
        raise ValueError(f"node 0 is the root, its parent must be -1; got {parents[0]}")
    for n in range(1, len(parents)):
        if not 0 <= parents[n] < n:
            raise ValueError(f"node {n} has parent {parents[n]}; a parent must be an earlier node (0…{n - 1})")


def validate_distributions(tree: TokenTree, p: Rows, q: Rows | None, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """(p, q) as float64 [N, V] after checking that the drafted tokens could have been drawn under ``rule``."""
    if rule not in RULES:
        raise ValueError(f"unknown tree rule {rule!r}; known: {RULES}")
    p_ = np.asarray(p, dtype=np.float64)
    if p_.ndim != 2 or p_.shape[0] != tree.size:
        raise ValueError(f"a tree of {tree.size} nodes needs p of shape [{tree.size}, V]; got {p_.shape}")
    if (p_ < 0).any() or not np.isfinite(p_).all() or (np.abs(p_.sum(-1) - 1) > 1e-6).any():
        raise ValueError("every row of p must be a distribution (non-negative, summing to 1 within 1e-6)")
    vocab = p_.shape[1]
    for n in range(1, tree.size):
        if not 0 <= tree.tokens[n] < vocab:
            raise ValueError(f"node {n} has token {tree.tokens[n]}, outside the vocabulary of {vocab}")
    if rule == "target_only":
        return p_, np.zeros_like(p_)
    if q is None:
        raise ValueError(f"rule {rule!r} needs the draft distributions q")
    q_ = np.asarray(q, dtype=np.float64)
    if q_.shape != p_.shape:
        raise ValueError(f"q must have the shape of p {p_.shape}; got {q_.shape}")
    for node in range(tree.size):
        kids = tree.children(node)
        if not kids:
            continue
        if (q_[node] < 0).any() or abs(q_[node].sum() - 1) > 1e-6:
            raise ValueError(f"q[{node}] must be a distribution; it sums to {q_[node].sum()!r}")
        drawn = [tree.tokens[c] for c in kids]
        if any(q_[node, x] <= 0 for x in drawn):
            raise ValueError(f"children {kids} of node {node} have tokens {drawn}; each must have q[{node}] > 0")
        if rule == "without_replacement" and len(set(drawn)) != len(drawn):
            raise ValueError(f"children of node {node} repeat a token ({drawn}); without replacement they are "
                             "distinct")
    return p_, q_


def _without(q: np.ndarray, token: int) -> np.ndarray:
    out = q.copy()
    out[token] = 0.0
    total = out.sum()
    return out / total if total > 0 else out


def _accept_probability(r: np.ndarray, q: np.ndarray, token: int) -> float:
    return float(min(1.0, r[token] / q[token]))


def outcome_distribution(tree: TokenTree, p: Rows, q: Rows | None, rule: str) -> dict[TreeOutcome, float]:
    """Exact probability of every outcome (node, t), given the tree; outcomes of probability 0 are left out."""
    p_, q_ = validate_distributions(tree, p, q, rule)
    out: dict[TreeOutcome, float] = {}

    def emit(node: int, r: np.ndarray, weight: float) -> None:
        for t in np.flatnonzero(r > 0):
            if weight * r[t] > 0:
                out[(node, int(t))] = out.get((node, int(t)), 0.0) + weight * float(r[t])

    def visit(node: int, weight: float) -> None:
        if weight <= 0:
            return
        kids = tree.children(node)
        if rule == "target_only":
            first: dict[int, int] = {}
            for c in kids:
                first.setdefault(tree.tokens[c], c)
            for y in np.flatnonzero(p_[node] > 0):
                w = weight * float(p_[node, y])
                if int(y) in first:
                    visit(first[int(y)], w)
                else:
                    out[(node, int(y))] = out.get((node, int(y)), 0.0) + w
            return
        r, q_used, stay = p_[node], q_[node], weight
        for c in kids:
            x = tree.tokens[c]
            a = _accept_probability(r, q_used, x)
            visit(c, stay * a)
            stay *= 1.0 - a
            if stay <= 0:
                return
            r = _residual(r, q_used)
            if rule == "without_replacement":
                q_used = _without(q_used, x)
        emit(node, r, stay)

    visit(0, 1.0)
    return out


def _residual(r: np.ndarray, q: np.ndarray) -> np.ndarray:
    """norm(max(0, r − q)) for the running residual r and the sibling's draft distribution q (both normalised)."""
    return residual(r, q)


def decide(tree: TokenTree, p: Rows, q: Rows | None, rule: str, accept_uniforms: Sequence[float] | np.ndarray,
           emit_uniforms: Sequence[float] | np.ndarray) -> TreeOutcome:
    """The outcome the rule gives for explicit uniforms (one per child test, one per node's emission)."""
    p_, q_ = validate_distributions(tree, p, q, rule)
    if len(accept_uniforms) != tree.size or len(emit_uniforms) != tree.size:
        raise ValueError(f"a tree of {tree.size} nodes needs {tree.size} accept and {tree.size} emit uniforms; got "
                         f"{len(accept_uniforms)} and {len(emit_uniforms)}")
    node = 0
    while True:
        kids = tree.children(node)
        if rule == "target_only":
            y = sample_index(p_[node], emit_uniforms[node])
            nxt = next((c for c in kids if tree.tokens[c] == y), None)
            if nxt is None:
                return node, y
            node = nxt
            continue
        r, q_used = p_[node], q_[node]
        for c in kids:
            x = tree.tokens[c]
            if accept_uniforms[c] < _accept_probability(r, q_used, x):
                node = c
                break
            r = _residual(r, q_used)
            if rule == "without_replacement":
                q_used = _without(q_used, x)
        else:
            return node, sample_index(r, emit_uniforms[node])


def greedy(tree: TokenTree, p: Rows) -> TreeOutcome:
    """Temperature 0: descend while some child's token is argmax p[node]; then emit that argmax."""
    p_ = np.asarray(p, dtype=np.float64)
    node = 0
    while True:
        y = int(np.argmax(p_[node]))
        nxt = next((c for c in tree.children(node) if tree.tokens[c] == y), None)
        if nxt is None:
            return node, y
        node = nxt


def impossible(tree: TokenTree, p: Rows, outcome: TreeOutcome) -> str | None:
    """Why ``outcome`` can never occur whatever the rounding of nonzero probabilities, or None (the supports)."""
    node, t = outcome
    p_ = np.asarray(p, dtype=np.float64)
    if not 0 <= node < tree.size:
        return f"node {node} is not in the tree of {tree.size} nodes"
    if not 0 <= t < p_.shape[1]:
        return f"emitted token id {t} is outside the vocabulary of {p_.shape[1]}"
    for n in tree.path(node):
        if p_[tree.parents[n], tree.tokens[n]] == 0:
            return f"node {n} (token {tree.tokens[n]}) accepted, where the target gives it probability 0"
    if p_[node, t] == 0:
        return f"token {t} emitted at node {node}, where the target gives it probability 0"
    return None


# ---- the theorem, by enumeration ------------------------------------------------------------------------------------

def shape_parents(branching: Sequence[int]) -> tuple[int, ...]:
    """The parents of a full tree with ``branching[d]`` children per node at depth d (breadth-first order)."""
    parents, level = [-1], [0]
    for k in branching:
        nxt = []
        for node in level:
            for _ in range(k):
                parents.append(node)
                nxt.append(len(parents) - 1)
        level = nxt
    return tuple(parents)


def marginal_over_draft_trees(branching: Sequence[int], vocab: int,
                              p_of: Callable[[tuple[int, ...]], np.ndarray],
                              q_of: Callable[[tuple[int, ...]], np.ndarray],
                              rule: str) -> dict[tuple[int, ...], float]:
    """Law of the emitted token sequence when every tree of the shape is drawn from the draft, summed exactly.

    ``p_of(prefix)`` / ``q_of(prefix)`` give the target / draft distribution after a token prefix. Children of
    a node are drawn from q_of(its path): independently (with replacement) or one after another without the
    earlier ones (without replacement; target_only draws them as with_replacement does). Exponential in the
    tree size: for small trees only.
    """
    parents = shape_parents(branching)
    size = len(parents)
    out: dict[tuple[int, ...], float] = {}

    def prefix_of(tokens: list[int], node: int) -> tuple[int, ...]:
        seq = []
        while node > 0:
            seq.append(tokens[node])
            node = parents[node]
        return tuple(seq[::-1])

    def draws(q: np.ndarray, count: int) -> list[tuple[tuple[int, ...], float]]:
        """Every ordered draw of ``count`` siblings from q, with its probability."""
        found = []
        for combo in itertools.product(range(vocab), repeat=count):
            weight, left = 1.0, q.copy()
            for x in combo:
                if left[x] <= 0:
                    weight = 0.0
                    break
                weight *= float(left[x] / left.sum())
                if rule == "without_replacement":
                    left[x] = 0.0
            if weight > 0:
                found.append((combo, weight))
        return found

    def build(node: int, tokens: list[int], weight: float) -> None:
        if node == size:
            tree = TokenTree(parents, tuple(tokens))
            p = np.stack([p_of(prefix_of(tokens, n)) for n in range(size)])
            q = np.stack([q_of(prefix_of(tokens, n)) for n in range(size)])
            for outcome, w in outcome_distribution(tree, p, q, rule).items():
                seq = tree.sequence(outcome)
                out[seq] = out.get(seq, 0.0) + weight * w
            return
        parent = parents[node]
        count = sum(1 for c in range(node, size) if parents[c] == parent)  # this node and its later siblings
        for combo, w in draws(q_of(prefix_of(tokens, parent)), count):
            build(node + count, tokens + list(combo), weight * w)

    build(1, [-1], 1.0)
    return out


# ---- theory ---------------------------------------------------------------------------------------------------------

def expected_accepted(parents: Sequence[int], rates: Sequence[float]) -> float:
    """E[accepted drafted tokens] = Σₙ P(reach n) with P(reach n) = Π of ``rates`` along n's path.

    ``rates[n]`` is the probability that node n is accepted once its parent is reached (rates[0] is unused);
    siblings exclude each other, so their rates may sum to at most 1. For a chain with every rate α it is
    α(1 − α^γ)/(1 − α), one less than ``reference.speculative.expected_tokens_per_call``.
    """
    validate_tree(parents, [0] * len(parents))
    if len(rates) != len(parents):
        raise ValueError(f"{len(parents)} nodes need {len(parents)} rates; got {len(rates)}")
    for node in range(len(parents)):
        kids = [c for c in range(1, len(parents)) if parents[c] == node]
        total = sum(rates[c] for c in kids)
        if any(not 0 <= rates[c] <= 1 for c in kids) or total > 1 + 1e-12:
            raise ValueError(f"the children {kids} of node {node} have rates summing to {total}; siblings exclude "
                             "each other, so at most 1")
    reach = [1.0] * len(parents)
    for n in range(1, len(parents)):
        reach[n] = reach[parents[n]] * rates[n]
    return float(sum(reach[1:]))


def expected_tokens_per_step(parents: Sequence[int], rates: Sequence[float]) -> float:
    """Accepted drafted tokens plus the one emitted token."""
    return 1.0 + expected_accepted(parents, rates)


def acceptance_rates(tree: TokenTree, p: Rows, q: Rows | None, rule: str) -> list[float]:
    """Each node's probability of acceptance once its parent is reached, from the exact law."""
    law = outcome_distribution(tree, p, q, rule)
    reach = [0.0] * tree.size
    for (node, _), w in law.items():
        for n in (0, *tree.path(node)):
            reach[n] += w
    return [1.0] + [reach[n] / reach[tree.parents[n]] if reach[tree.parents[n]] > 0 else 0.0
                    for n in range(1, tree.size)]

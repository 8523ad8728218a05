"""Speculative steps from a case: target and draft distributions of a chosen kind, drafts, trees, tensors.

Every probability lies on the lattice of multiples of 2⁻²⁴ and every row sums to exactly 1, so a float32
sampler sees exactly the numbers the float64 reference uses (differences p − q are exact too): a zero is a
zero for both. A case is reproducible from its fields: ``case.draws`` seeds everything drawn here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from impls.speculative.api import SpecCase
from impls.tensors import torch_dtype
from reference.speculative import one_hot
from reference.speculative_tree import TokenTree

KINDS = ("random", "disjoint", "identical", "tiny", "peaked")
LATTICE = 2**24


def on_lattice(x: np.ndarray) -> np.ndarray:
    """Rows rounded to multiples of 2⁻²⁴ that sum to exactly 1 (largest remainders get the spare units)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    scaled = x / x.sum(-1, keepdims=True) * LATTICE
    units = np.floor(scaled)
    spare = (LATTICE - units.sum(-1)).astype(np.int64)
    for row, extra in enumerate(spare):
        order = np.argsort(-(scaled[row] - units[row]), kind="stable")
        units[row, order[:extra]] += 1
    return units / LATTICE


def make_distributions(rng: np.random.Generator, kind: str, rows: int, vocab: int) -> tuple[np.ndarray, np.ndarray]:
    """(p [rows+1, V], q [rows, V]) of the given kind, on the lattice."""
    p = rng.dirichlet(np.full(vocab, 0.7), size=rows + 1)
    q = rng.dirichlet(np.full(vocab, 0.7), size=rows)
    if kind == "disjoint" and vocab >= 2:  # p and q on complementary halves: every draft has p(x) = 0
        half = rng.permutation(vocab)[: vocab // 2]
        p[:, half] = 0
        mask = np.ones(vocab, bool)
        mask[half] = False
        q[:, mask] = 0
    elif kind == "identical":
        q = p[:rows].copy()
    elif kind == "tiny":  # one dominant target token; the rest ~1e-6 or less
        p[np.arange(rows + 1), rng.integers(0, vocab, rows + 1)] += 1e6
        q = q**4
    elif kind == "peaked":
        q = 0.5 * q + 0.5 * p[:rows]
    elif kind != "random":
        raise ValueError(f"unknown kind {kind!r}; known: {KINDS} and hand:<name> ({sorted(HAND)})")
    return on_lattice(p), (on_lattice(q) if rows else np.zeros((0, vocab)))


@dataclass(frozen=True)
class Step:
    """One speculative step of one request: p [g+1, V], q [g, V] (one-hot rows for n-gram), drafts."""

    p: np.ndarray
    q: np.ndarray
    draft: tuple[int, ...]
    ngram: bool = False

    @property
    def vocab(self) -> int:
        return int(self.p.shape[1])

    @property
    def gamma(self) -> int:
        return len(self.draft)


# Hand-made steps (traps and planted-bug witnesses): name → (p, q, draft).
P3 = [[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]
Q3 = [[0.5, 0.3, 0.2]]
HAND: dict[str, tuple[list[list[float]], list[list[float]], tuple[int, ...]]] = {
    # the drafted token has target probability 0: only a zero uniform with `u <= p/q` could accept it
    "zero_target_draft": ([[0.0, 1.0], [0.5, 0.5]], [[0.5, 0.5]], (0,)),
    # draft 0: p/q = 0.4, residual max(0, p − q) = [0, 0, .3] → token 2; bonus p₂
    "p3": (P3, Q3, (0,)),
    # residual max(0, p − q) = [0, .35, .35] (total .7): unnormalised, token 1 gets u < .35 and token 2 the rest
    "unnormalised_residual": ([[0.1, 0.45, 0.45], [0.3, 0.3, 0.4]], [[0.8, 0.1, 0.1]], (0,)),
    # bonus p₂ = [.9, .05, .05] far from q₁ = [.5, .3, .2]
    "bonus_far_from_q": ([[0.2, 0.3, 0.5], [0.9, 0.05, 0.05]], Q3, (0,)),
    # the draft is always accepted and the bonus row is all token 0: any other bonus is a structural zero
    "bonus_row_one_hot": ([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]], [[0.5, 0.5, 0.0]], (0,)),
    # q = [.4, .3, .3]: top-2 drops token 2, the drafted one
    "draft_outside_top_2": ([[0.5, 0.4, 0.1], [0.6, 0.3, 0.1]], [[0.4, 0.3, 0.3]], (2,)),
}


def _hand(name: str) -> Step:
    if name not in HAND:
        raise ValueError(f"unknown hand-made step {name!r}; known: {sorted(HAND)}")
    p, q, draft = HAND[name]
    return Step(on_lattice(np.array(p)), on_lattice(np.array(q)), draft)


def _step(rng: np.random.Generator, case: SpecCase, length: int) -> Step:
    if case.kind.startswith("hand:"):
        return _hand(case.kind.removeprefix("hand:"))
    p, q = make_distributions(rng, case.kind, length, case.vocab)
    if case.ngram:
        draft = tuple(int(rng.integers(0, case.vocab)) for _ in range(length))
        q = np.stack([one_hot(case.vocab, x) for x in draft]) if length else np.zeros((0, case.vocab))
        return Step(p, q, draft, ngram=True)
    return Step(p, q, tuple(int(rng.choice(case.vocab, p=q[i])) for i in range(length)))


def law_steps(case: SpecCase) -> list[Step]:
    """The steps a law check repeats: one of length G, or (ragged) one of each length 0…G."""
    rng = np.random.default_rng(case.draws)
    lengths = range(case.max_draft + 1) if case.ragged else [case.max_draft]
    return [_step(rng, case, g) for g in lengths]


def decision_steps(case: SpecCase) -> list[Step]:
    """``case.batch`` different requests; ragged: lengths drawn from 0…G."""
    rng = np.random.default_rng(case.draws)
    return [_step(rng, case, int(rng.integers(0, case.max_draft + 1)) if case.ragged else case.max_draft)
            for _ in range(case.batch)]


def pad_distribution(case: SpecCase) -> np.ndarray:
    """What fills the rows past a request's draft: a distribution of its own, so that reading one shows."""
    return on_lattice(np.random.default_rng(case.draws + 1).dirichlet(np.ones(case.vocab)))[0]


def chain_tensors(steps: list[Step], order: np.ndarray, case: SpecCase, device: str = "cpu"
                  ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Request b is ``steps[order[b]]``; (target_probs, draft_probs or None, draft_tokens, draft_lengths)."""
    g, v = case.max_draft, case.vocab
    pad = pad_distribution(case)
    ps = np.stack([np.concatenate([s.p, np.tile(pad, (g + 1 - len(s.p), 1))]) for s in steps])
    qs = np.stack([np.concatenate([s.q, np.tile(pad, (g - len(s.q), 1))]) for s in steps])
    ds = np.array([list(s.draft) + [0] * (g - s.gamma) for s in steps], dtype=np.int64).reshape(len(steps), g)
    lengths = np.array([s.gamma for s in steps], dtype=np.int64)
    dtype = torch_dtype(case.dtype)
    index = torch.from_numpy(np.asarray(order, dtype=np.int64))

    def put(x: np.ndarray, dt: torch.dtype) -> torch.Tensor:
        return torch.from_numpy(x).to(dt)[index].to(device)

    ngram = any(s.ngram for s in steps)
    return (put(ps, dtype), None if ngram else put(qs.reshape(len(steps), g, v), dtype), put(ds, torch.int64),
            put(lengths, torch.int64))


# ---- trees ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TreeStep:
    tree: TokenTree
    p: np.ndarray  # [N, V]
    q: np.ndarray  # [N, V]


def _children_tokens(rng: np.random.Generator, q: np.ndarray, count: int, distinct: bool) -> list[int]:
    if not distinct:
        return [int(rng.choice(q.size, p=q)) for _ in range(count)]
    left, out = q.copy(), []
    for _ in range(count):
        x = int(rng.choice(q.size, p=left / left.sum()))
        out.append(x)
        left[x] = 0.0
    return out


def tree_step(rng: np.random.Generator, case: SpecCase) -> TreeStep:
    """Distributions for every node and children drawn from their parent's q, as the case's rule draws them."""
    parents = case.tree
    size = len(parents)
    p, q = make_distributions(rng, case.kind, size, case.vocab)
    p = p[:size]  # row n: the target after node n; q row n: the draft that n's children were drawn from
    distinct = case.rule == "without_replacement"
    tokens = [-1] * size
    for node in range(size):
        kids = [c for c in range(1, size) if parents[c] == node]
        if not kids:
            continue
        if distinct and np.count_nonzero(q[node]) < len(kids):  # too little support for distinct children
            q[node] = on_lattice(0.5 * q[node] + 0.5 / case.vocab)[0]
        for c, x in zip(kids, _children_tokens(rng, q[node], len(kids), distinct), strict=True):
            tokens[c] = x
    return TreeStep(TokenTree(tuple(parents), tuple(tokens)), p, q)


def law_tree(case: SpecCase) -> TreeStep:
    return tree_step(np.random.default_rng(case.draws), case)


def decision_trees(case: SpecCase) -> list[TreeStep]:
    rng = np.random.default_rng(case.draws)
    return [tree_step(rng, case) for _ in range(case.batch)]


def tree_tensors(steps: list[TreeStep], order: np.ndarray, case: SpecCase, device: str = "cpu"
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(target_probs [B, N, V], draft_probs [B, N, V], tokens [B, N], parents [B, N]) with request b = steps[order[b]]."""
    dtype = torch_dtype(case.dtype)
    index = torch.from_numpy(np.asarray(order, dtype=np.int64))
    ps = torch.from_numpy(np.stack([s.p for s in steps])).to(dtype)[index].to(device)
    qs = torch.from_numpy(np.stack([s.q for s in steps])).to(dtype)[index].to(device)
    toks = torch.tensor([[max(t, 0) for t in s.tree.tokens] for s in steps], dtype=torch.int64)[index].to(device)
    pars = torch.tensor([list(s.tree.parents) for s in steps], dtype=torch.int64)[index].to(device)
    return ps, qs, toks, pars

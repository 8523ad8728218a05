"""Speculative steps to test: target/draft distributions of chosen kinds, drafted tokens, and runners."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
from hypothesis import strategies as st

from impls.speculative.api import SpecCase, SpeculativeImpl
from reference.speculative import Outcome, one_hot

KINDS = ("random", "disjoint", "identical", "one_hot_draft", "tiny", "peaked")


@dataclass(frozen=True)
class Step:
    """One speculative step of one request: p [γ+1, V], q [γ, V] (one-hot rows for n-gram), drafts."""

    p: np.ndarray
    q: np.ndarray
    draft: tuple[int, ...]
    kind: str
    ngram: bool = False

    @property
    def vocab(self) -> int:
        return self.p.shape[1]

    @property
    def gamma(self) -> int:
        return len(self.draft)


def _normalise(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32).astype(np.float64)  # what a float32 sampler sees, renormalised exactly here
    return x / x.sum(-1, keepdims=True)


def make_distributions(rng: np.random.Generator, kind: str, rows: int, vocab: int) -> tuple[np.ndarray, np.ndarray]:
    """(p [rows+1, V], q [rows, V]) of the given kind."""
    p = rng.dirichlet(np.full(vocab, 0.7), size=rows + 1)
    q = rng.dirichlet(np.full(vocab, 0.7), size=rows)
    if kind == "disjoint" and vocab >= 2:
        half = rng.permutation(vocab)[: vocab // 2]
        p[:, half] = 0
        mask = np.ones(vocab, bool)
        mask[half] = False
        q[:, mask] = 0
    elif kind == "identical":
        q = p[:rows].copy()
    elif kind == "tiny":
        p[:, rng.integers(0, vocab)] += 1e6  # the rest of the vocabulary is ~1e-6 or less
        q = q ** 4
    elif kind == "peaked":
        q = 0.5 * q + 0.5 * p[:rows]
    return _normalise(p), _normalise(q)


def make_step(seed: int, kind: str, vocab: int, gamma: int) -> Step:
    rng = np.random.default_rng(seed)
    p, q = make_distributions(rng, kind, gamma, vocab)
    if kind == "one_hot_draft":
        draft = tuple(int(rng.integers(0, vocab)) for _ in range(gamma))
        q = np.stack([one_hot(vocab, x) for x in draft]) if gamma else np.zeros((0, vocab))
        return Step(p, q, draft, kind, ngram=True)
    draft = tuple(int(rng.choice(vocab, p=q[i])) for i in range(gamma))
    return Step(p, q, draft, kind)


@st.composite
def steps(draw: st.DrawFn, max_vocab: int = 8, max_gamma: int = 3) -> Step:
    kind = draw(st.sampled_from(KINDS))
    vocab = draw(st.integers(2, max_vocab))
    gamma = draw(st.integers(1, max_gamma))
    return make_step(draw(st.integers(0, 2**32 - 1)), kind, vocab, gamma)


def tensors(step: Step, n: int, dtype: torch.dtype = torch.float32, device: str = "cpu"
            ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """The step repeated over a batch of n requests (expanded views: no copies)."""
    p = torch.tensor(step.p, dtype=dtype, device=device).unsqueeze(0).expand(n, -1, -1)
    q = None if step.ngram else torch.tensor(step.q, dtype=dtype, device=device).unsqueeze(0).expand(n, -1, -1)
    d = torch.tensor(step.draft, dtype=torch.int64, device=device).unsqueeze(0).expand(n, -1)
    lengths = torch.full((n,), step.gamma, dtype=torch.int64, device=device)
    return p, q, d, lengths


def spec_case(step: Step, n: int, **kw: bool) -> SpecCase:
    return SpecCase(batch=n, vocab=step.vocab, max_draft=step.gamma, draft_probs=not step.ngram, **kw)


def sample_outcomes(impl: SpeculativeImpl, step: Step, n: int, seed: int) -> Counter[Outcome]:
    """Counts of (accepted, emitted) over n independent runs of the step, in chunks."""
    gen = torch.Generator().manual_seed(seed)
    counts: Counter[Outcome] = Counter()
    chunk = 65_536
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        res = impl.verify(*tensors(step, m), generator=gen)
        code = (res.accepted.cpu() * step.vocab + res.emitted.cpu()).numpy()
        if code.min() < 0:
            raise ValueError(f"{impl.name} returned a negative accepted count or token")
        freq = np.bincount(code)
        counts.update({(int(c) // step.vocab, int(c) % step.vocab): int(freq[c]) for c in np.flatnonzero(freq)})
    return counts

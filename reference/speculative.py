"""Speculative acceptance, the spec (Leviathan et al. 2023, Algorithm 1; Chen et al. 2023 swap p and q).

Names: ``p`` is the *target* model's distribution, ``q`` the *draft* model's. One speculative step
of one request sees target distributions p₁…p_{γ+1} (one per drafted position plus the bonus
position), draft distributions q₁…q_γ and drafted tokens x₁…x_γ. Position i accepts xᵢ with
probability min(1, pᵢ(xᵢ)/qᵢ(xᵢ)); at the first rejection k it emits one token from
norm(max(0, p_k − q_k)) and stops; if all γ are accepted it emits a bonus token from p_{γ+1}.

Outcome of a step: ``(k, t)`` — k drafted tokens accepted (0…γ), then the emitted token t, so the
step emits ``x₁…x_k, t``. Given the drafts, :func:`outcome_distribution` gives the exact probability
of every outcome. Plain float64 numpy; no tuning.

Decisions from explicit uniforms (for exact checks): position i accepts iff ``u_i < min(1, p/q)``;
a token is drawn from a distribution r with uniform v as the smallest t with ``cumsum(r)[t] > v``.
Greedy (temperature 0): accept xᵢ iff xᵢ = argmax pᵢ (lowest index on ties); emit argmax at the
first mismatch, or argmax p_{γ+1} after all are accepted.

A second way to spend randomness on the emitted token, the exponential race (vLLM's): with independent
Eₜ ~ Exp(1), argmaxₜ r(t)/Eₜ has law norm(r); :func:`decide_race` is :func:`decide` with that draw.
Token trees are in ``reference.speculative_tree``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

Outcome = tuple[int, int]  # (accepted draft tokens k, emitted token t)
Rows = Sequence[Any] | np.ndarray  # one distribution per position


def _dist(x: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or a.size < 1:
        raise ValueError(f"{what} must be a 1-D distribution; got shape {a.shape}")
    if (a < 0).any() or not np.isfinite(a).all():
        raise ValueError(f"{what} has negative or non-finite entries")
    if abs(a.sum() - 1.0) > 1e-6:
        raise ValueError(f"{what} sums to {a.sum()!r}, expected 1 (within 1e-6)")
    return a


def one_hot(vocab: int, token: int) -> np.ndarray:
    """The draft distribution of a draft without probabilities (n-gram / prompt lookup): q = δ_token."""
    if not 0 <= token < vocab:
        raise ValueError(f"token {token} outside vocabulary of {vocab}")
    q = np.zeros(vocab)
    q[token] = 1.0
    return q


def acceptance_probability(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray, token: int) -> float:
    """min(1, p(x)/q(x)) for drafted token x; q(x) must be positive (x was drawn from q)."""
    p, q = _dist(p, "p"), _dist(q, "q")
    if q[token] <= 0:
        raise ValueError(f"drafted token {token} has q = {q[token]}; a token drawn from q has q > 0")
    return float(min(1.0, p[token] / q[token]))


def residual(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> np.ndarray:
    """norm(max(0, p − q)), the distribution sampled at the first rejection.

    When p = q there is no mass left; no rejection can happen then, and p itself is returned.
    """
    p, q = _dist(p, "p"), _dist(q, "q")
    r = np.maximum(p - q, 0.0)
    total = r.sum()
    return p.copy() if total <= 0 else r / total


def beta(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Expected acceptance rate of one position with x ~ q: Σ min(p, q) = 1 − TV(p, q)."""
    return float(np.minimum(_dist(p, "p"), _dist(q, "q")).sum())


def _check_step(p: Rows, q: Rows, draft: Sequence[int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    gamma = len(draft)
    if len(q) != gamma or len(p) != gamma + 1:
        raise ValueError(f"{gamma} drafted tokens need {gamma} draft and {gamma + 1} target distributions; "
                         f"got {len(q)} and {len(p)}")
    ps = [_dist(x, f"p[{i}]") for i, x in enumerate(p)]
    qs = [_dist(x, f"q[{i}]") for i, x in enumerate(q)]
    vocab = ps[0].size
    if any(x.size != vocab for x in ps + qs):
        raise ValueError(f"all distributions need the vocabulary size {vocab}; got {[x.size for x in ps + qs]}")
    return ps, qs


def outcome_distribution(p: Rows, q: Rows, draft: Sequence[int]) -> dict[Outcome, float]:
    """Exact probability of every outcome (k, t) of one step, given the drafted tokens.

    P(k, t) = Π_{i<k} aᵢ · (1 − a_k) · residual_k(t) for k < γ, and Π_{i<γ} aᵢ · p_{γ+1}(t) for k = γ,
    where aᵢ = min(1, pᵢ(xᵢ)/qᵢ(xᵢ)). Outcomes of probability 0 are left out.
    """
    ps, qs = _check_step(p, q, draft)
    gamma = len(draft)
    out: dict[Outcome, float] = {}
    reach = 1.0  # probability that positions 0..k-1 were all accepted
    for k in range(gamma + 1):
        if k == gamma:
            emit, stop = ps[gamma], reach
        else:
            a = acceptance_probability(ps[k], qs[k], draft[k])
            emit, stop = residual(ps[k], qs[k]), reach * (1.0 - a)
        for t in np.flatnonzero(emit > 0):
            prob = stop * float(emit[t])
            if prob > 0:
                out[(k, int(t))] = prob
        if k < gamma:
            reach *= a
    return out


def expected_emitted(p: Rows, q: Rows, draft: Sequence[int]) -> float:
    """Exact expected number of tokens emitted by one step (accepted + 1), given the drafts."""
    return sum((k + 1) * w for (k, _), w in outcome_distribution(p, q, draft).items())


def marginal_over_drafts(p: Rows, q: Rows) -> dict[tuple[int, ...], float]:
    """Probability of each emitted token sequence when the drafts are drawn from q (contexts fixed).

    Sums :func:`outcome_distribution` over every draft sequence; exponential in γ, for small checks
    of the theorem that the first emitted token is distributed exactly as p₁.
    """
    gamma = len(q)
    qs = [_dist(x, f"q[{i}]") for i, x in enumerate(q)]
    out: dict[tuple[int, ...], float] = {}

    def walk(prefix: list[int], weight: float) -> None:
        if len(prefix) == gamma:
            for (k, t), w in outcome_distribution(p, q, prefix).items():
                key = (*prefix[:k], t)
                out[key] = out.get(key, 0.0) + weight * w
            return
        qi = qs[len(prefix)]
        for x in np.flatnonzero(qi > 0):
            walk([*prefix, int(x)], weight * float(qi[x]))

    walk([], 1.0)
    return out


def sample_index(r: Sequence[float] | np.ndarray, v: float) -> int:
    """Inverse-CDF draw: the smallest t with cumsum(r)[t] > v, for v in [0, 1)."""
    c = np.cumsum(np.asarray(r, dtype=np.float64))
    t = int(np.searchsorted(c, v, side="right"))
    return min(t, int(np.flatnonzero(np.asarray(r) > 0)[-1]))  # v beyond a rounded total: last token with mass


def sample_by_race(r: Sequence[float] | np.ndarray, exponentials: Sequence[float] | np.ndarray) -> int:
    """The exponential race: argmax over tokens with r(t) > 0 of r(t)/E_t (smallest index on ties).

    With E_t independent Exp(1), P(token t wins) = r(t)/Σr: min_t E_t/r(t) is the first arrival of
    independent Poisson clocks of rates r(t).
    """
    r, e = np.asarray(r, dtype=np.float64), np.asarray(exponentials, dtype=np.float64)
    if r.shape != e.shape:
        raise ValueError(f"{r.size} probabilities need {r.size} exponentials; got {e.size}")
    score = np.where(r > 0, r / e, -np.inf)
    return int(np.argmax(score))


def decide(p: Rows, q: Rows, draft: Sequence[int], accept_uniforms: Sequence[float] | np.ndarray,
           emit_uniform: float) -> Outcome:
    """The outcome the rule gives for explicit uniforms: uᵢ per drafted position, v for the emitted token."""
    return _decide(p, q, draft, accept_uniforms, lambda r: sample_index(r, emit_uniform))


def decide_race(p: Rows, q: Rows, draft: Sequence[int], accept_uniforms: Sequence[float] | np.ndarray,
                exponentials: Sequence[float] | np.ndarray) -> Outcome:
    """:func:`decide` with the emitted token drawn by :func:`sample_by_race` from ``exponentials`` [V]."""
    return _decide(p, q, draft, accept_uniforms, lambda r: sample_by_race(r, exponentials))


def _decide(p: Rows, q: Rows, draft: Sequence[int], accept_uniforms: Sequence[float] | np.ndarray,
            draw: Callable[[np.ndarray], int]) -> Outcome:
    ps, qs = _check_step(p, q, draft)
    gamma = len(draft)
    if len(accept_uniforms) < gamma:
        raise ValueError(f"{gamma} drafted tokens need {gamma} acceptance uniforms; got {len(accept_uniforms)}")
    for k in range(gamma):
        if not accept_uniforms[k] < acceptance_probability(ps[k], qs[k], draft[k]):
            return k, draw(residual(ps[k], qs[k]))
    return gamma, draw(ps[gamma])


def impossible(p: Rows, draft: Sequence[int], outcome: Outcome) -> str | None:
    """Why ``outcome`` can never occur whatever the rounding of nonzero probabilities, or None.

    Structural zeros are those of the supports: an accepted count outside 0…γ, a token id outside the
    vocabulary, an accepted draft token or an emitted token to which its target distribution gives 0. (An
    outcome whose probability is 0 only by cancellation — p = q, or a residual p − q ≤ 0 at a token with
    p > 0 — is not structural: a sampler that recomputes p from logits may give it a probability of ~1e-7.)
    """
    k, t = outcome
    gamma, vocab = len(draft), len(p[0])
    if not 0 <= k <= gamma:
        return f"{k} drafted tokens accepted, but the draft has {gamma}"
    if not 0 <= t < vocab:
        return f"emitted token id {t} is outside the vocabulary of {vocab}"
    for i in range(k):
        if p[i][draft[i]] == 0:
            return f"draft token {draft[i]} accepted at position {i}, where the target gives it probability 0"
    if p[k][t] == 0:
        return f"token {t} emitted at position {k}, where the target gives it probability 0"
    return None


def greedy(p: Rows, draft: Sequence[int]) -> Outcome:
    """Temperature-0 verification: accept while xᵢ = argmax pᵢ, then emit the target's argmax."""
    ps = [_dist(x, f"p[{i}]") for i, x in enumerate(p)]
    if len(ps) != len(draft) + 1:
        raise ValueError(f"{len(draft)} drafted tokens need {len(draft) + 1} target distributions; got {len(ps)}")
    for k, x in enumerate(draft):
        best = int(np.argmax(ps[k]))
        if x != best:
            return k, best
    return len(draft), int(np.argmax(ps[-1]))


# ---- theory -------------------------------------------------------------------------------------------------------

def expected_tokens_per_call(alpha: float, gamma: int) -> float:
    """(1 − α^(γ+1)) / (1 − α): expected tokens per target call at i.i.d. acceptance rate α (γ + 1 at α = 1)."""
    if not 0 <= alpha <= 1 or gamma < 0:
        raise ValueError(f"need 0 <= alpha <= 1 and gamma >= 0; got alpha={alpha}, gamma={gamma}")
    if alpha == 1:
        return float(gamma + 1)
    return (1 - alpha ** (gamma + 1)) / (1 - alpha)


def walltime_factor(alpha: float, gamma: int, cost_ratio: float) -> float:
    """Speed-up over plain decoding: (1 − α^(γ+1)) / ((1 − α)(γc + 1)), c = draft cost / target cost per token."""
    if cost_ratio < 0:
        raise ValueError(f"cost ratio must be >= 0; got {cost_ratio}")
    return expected_tokens_per_call(alpha, gamma) / (gamma * cost_ratio + 1)


def optimal_gamma(alpha: float, cost_ratio: float, max_gamma: int = 64) -> int:
    """The γ in 0…max_gamma maximising :func:`walltime_factor` (the smallest on ties), by search."""
    return max(range(max_gamma + 1), key=lambda g: (walltime_factor(alpha, g, cost_ratio), -g))


# ---- comparing a step's law with the target's -----------------------------------------------------------------------

def continued(law: Mapping[tuple[int, ...], float], p: Rows, length: int) -> dict[tuple[int, ...], float]:
    """The law of the first ``length`` tokens when each emitted sequence is continued by sampling the target.

    ``law`` gives the probability of each emitted sequence; ``p[i]`` is the target's distribution at position
    i whatever the prefix (the contexts of these checks). For a lossless step the result is the product law
    Π pᵢ: the measure of a lossy method's departure is the total variation between the two.
    """
    ps = [_dist(x, f"p[{i}]") for i, x in enumerate(p)]
    if len(ps) < length:
        raise ValueError(f"{length} positions need {length} target distributions; got {len(ps)}")
    out: dict[tuple[int, ...], float] = {}

    def extend(seq: tuple[int, ...], weight: float) -> None:
        if len(seq) >= length:
            key = seq[:length]
            out[key] = out.get(key, 0.0) + weight
            return
        row = ps[len(seq)]
        for t in np.flatnonzero(row > 0):
            extend((*seq, int(t)), weight * float(row[t]))

    for seq, w in law.items():
        extend(tuple(seq), w)
    return out


def product_law(p: Rows, length: int) -> dict[tuple[int, ...], float]:
    """Π pᵢ over the first ``length`` positions: the target's own law of a sequence."""
    return continued({(): 1.0}, p, length)


def total_variation(a: Mapping[Any, float], b: Mapping[Any, float]) -> float:
    """½ Σ |a − b| over the union of the outcomes."""
    return 0.5 * float(sum(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b)))

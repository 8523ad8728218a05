"""The speculative area's call API: verify one speculative step for a batch of requests, as a chain or a tree.

Chain (``verify``): ``target_probs`` [B, G+1, V] (position G+1 is the bonus position), ``draft_probs``
[B, G, V] or None for drafts without probabilities (n-gram: q is one-hot), ``draft_tokens`` [B, G] int64,
``draft_lengths`` [B] int64 with 0 <= length <= G (request b uses its first ``draft_lengths[b]`` positions, and
its bonus distribution is ``target_probs[b, length]``). Result: ``accepted`` [B] (drafted tokens accepted) and
``emitted`` [B] (the token emitted after them: a residual sample, or the bonus). Explicit uniforms:
``accept_uniforms`` [B, G] and ``emit_uniforms`` [B], with the reference's rule (accept iff u < p/q; inverse CDF
for the emitted token).

Tree (``verify_tree``, see ``reference.speculative_tree``): ``target_probs`` [B, N, V] (row n: the target after
node n's path), ``draft_probs`` [B, N, V] (row n: the draft distribution node n's children were drawn from) or
None (only the target_only rule and greedy need none), ``tokens`` [B, N] int64 (column 0, the root, is unused),
``parents`` [B, N] int64 (``parents[b, 0] = -1``; for n >= 1 an earlier node, or -1 for a padding node that is not
in request b's tree). ``rule`` is one of ``reference.speculative_tree.RULES``. Result: ``node`` [B] (the deepest
accepted node) and ``emitted`` [B]. Explicit uniforms: ``accept_uniforms`` [B, N] (child n's test) and
``emit_uniforms`` [B, N] (the draw at node n).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from impls.base import Implementation
from reference.speculative_tree import RULES

ZERO_UNIFORM_SEED = 5528393  # torch.Generator().manual_seed(5528393): its first float32 uniform is exactly 0.0


@dataclass(frozen=True)
class SpecCase:
    """One speculative step to verify, as the suite draws it; reproducible from its fields alone.

    ``draws`` seeds the distributions and the drafts (``suite.speculative.cases``); ``kind`` says how they are
    drawn. ``batch`` is the number of requests of a decision check (a law check sizes its own N). A tree case
    names the parents of its nodes and its rule; a chain case has ``tree == ()``.
    """

    vocab: int
    max_draft: int  # G: drafted tokens of the longest request (a tree: its node count − 1)
    kind: str = "random"
    draws: int = 0
    batch: int = 1
    greedy: bool = False
    ngram: bool = False  # drafts without probabilities
    uniforms: bool = False  # the call passes explicit uniforms
    ragged: bool = False  # requests of different draft lengths in one batch
    tree: tuple[int, ...] = ()
    rule: str = ""
    dtype: str = "float32"
    measure: bool = False  # a declared-lossy method's trade (TV from the target, tokens per step) is measured

    def __post_init__(self) -> None:
        if self.tree and self.rule not in RULES:
            raise ValueError(f"a tree case needs a rule from {RULES}; got {self.rule!r}")

    def features(self) -> set[str]:
        """The names an implementation's ``lacks`` may use."""
        named = {"tree": bool(self.tree), "chain": not self.tree, "greedy": self.greedy, "random": not self.greedy,
                 "uniforms": self.uniforms, "ngram": self.ngram, "ragged": self.ragged, "exact": not self.measure,
                 "trade": self.measure}
        return {f for f, on in named.items() if on} | ({self.rule} if self.tree and not self.greedy else set())

    def __str__(self) -> str:
        shape = f"tree {list(self.tree)} {self.rule}" if self.tree else f"G{self.max_draft}"
        flags = [f for f in ("greedy", "ngram", "uniforms", "ragged", "measure") if getattr(self, f)]
        return " ".join([f"V{self.vocab}", shape, self.kind, f"draws={self.draws}", f"B{self.batch}", self.dtype,
                         *flags])


@dataclass(frozen=True)
class SpecResult:
    accepted: torch.Tensor  # [B] int64
    emitted: torch.Tensor  # [B] int64


@dataclass(frozen=True)
class TreeResult:
    node: torch.Tensor  # [B] int64: the deepest accepted node (0: none)
    emitted: torch.Tensor  # [B] int64


class SpeculativeImpl(Implementation):
    """Verifies speculative steps. Capabilities, besides those of ``impls.base.Implementation``:

    - ``lacks`` names from :data:`FEATURES`. The default lacks ``tree`` (a chain sampler); a tree verifier
      declares its own ``lacks``; extend the default with ``{**SpeculativeImpl.lacks, "greedy": "why"}``.
    - ``lacks["exact"]``: a declared-lossy method (typical acceptance, synthetic acceptance) says so here, with
      its rule; it is never held to the exact law, and its trade (TV from the target, acceptance length) is
      measured instead (a subclass that overrides ``unsupported`` keeps that by calling ``super().unsupported``).
    - ``call_cost_s``: seconds to verify one request (one draw of the outcome law), at large batch: the unit
      the statistical checks size their sample in.
    """

    area: ClassVar[str] = "speculative"
    lacks = {"tree": "verifies chains only (no verify_tree)"}

    @property
    def lossless(self) -> bool:
        return "exact" not in self.lacks

    def unsupported(self, case: SpecCase) -> list[str]:
        """A lossless method is held to the exact law; the trade is measured for declared-lossy ones only."""
        if case.measure and self.lossless:
            return [f"{self.name} is lossless: held to the exact law, so there is no trade to measure"]
        return []

    def verify(self, target_probs: torch.Tensor, draft_probs: torch.Tensor | None, draft_tokens: torch.Tensor,
               draft_lengths: torch.Tensor, *, greedy: bool = False, generator: torch.Generator | None = None,
               accept_uniforms: torch.Tensor | None = None, emit_uniforms: torch.Tensor | None = None
               ) -> SpecResult:
        raise NotImplementedError(f"{self.name} verifies no chains")

    def verify_tree(self, target_probs: torch.Tensor, draft_probs: torch.Tensor | None, tokens: torch.Tensor,
                    parents: torch.Tensor, *, rule: str, greedy: bool = False,
                    generator: torch.Generator | None = None, accept_uniforms: torch.Tensor | None = None,
                    emit_uniforms: torch.Tensor | None = None) -> TreeResult:
        raise NotImplementedError(f"{self.name} verifies no trees")


FEATURES = ("chain", "tree", "greedy", "random", "uniforms", "ngram", "ragged", "exact", "trade", *RULES)


def validate(target_probs: torch.Tensor, draft_probs: torch.Tensor | None, draft_tokens: torch.Tensor,
             draft_lengths: torch.Tensor | None = None, *, parents: torch.Tensor | None = None,
             rule: str | None = None) -> tuple[int, int, int]:
    """Check a chain call (``draft_lengths``) or a tree call (``parents``); returns (B, G or N, V).

    Errors name the constraint and the values given.
    """
    if target_probs.dim() != 3:
        what = "[B, N, V]" if parents is not None else "[B, G+1, V]"
        raise ValueError(f"target_probs must be {what}; got shape {tuple(target_probs.shape)}")
    b, rows, v = target_probs.shape
    if draft_tokens.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"draft tokens must be int64 or int32; got {draft_tokens.dtype}")
    if parents is not None:
        return _validate_tree(target_probs, draft_probs, draft_tokens, parents, rule)
    if draft_lengths is None:
        raise ValueError("a chain call needs draft_lengths (a tree call, parents)")
    g = rows - 1
    if tuple(draft_tokens.shape) != (b, g):
        raise ValueError(f"draft_tokens has shape {tuple(draft_tokens.shape)}; target_probs {tuple(target_probs.shape)} "
                         f"needs ({b}, {g})")
    if draft_probs is not None and tuple(draft_probs.shape) != (b, g, v):
        raise ValueError(f"draft_probs has shape {tuple(draft_probs.shape)}; expected ({b}, {g}, {v})")
    if tuple(draft_lengths.shape) != (b,):
        raise ValueError(f"draft_lengths has shape {tuple(draft_lengths.shape)}; expected ({b},)")
    if b and (int(draft_lengths.min()) < 0 or int(draft_lengths.max()) > g):
        raise ValueError(f"draft_lengths must lie in 0..{g}; got {draft_lengths.tolist()[:8]}")
    if b and g:
        used = torch.arange(g, device=draft_tokens.device).unsqueeze(0) < draft_lengths.unsqueeze(1)
        _tokens_in_vocabulary(draft_tokens, used, v)
    return b, g, v


def _validate_tree(target_probs: torch.Tensor, draft_probs: torch.Tensor | None, tokens: torch.Tensor,
                   parents: torch.Tensor, rule: str | None) -> tuple[int, int, int]:
    b, n, v = target_probs.shape
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}; got {rule!r}")
    if tuple(tokens.shape) != (b, n) or tuple(parents.shape) != (b, n):
        raise ValueError(f"tokens {tuple(tokens.shape)} and parents {tuple(parents.shape)} must both be ({b}, {n}) "
                         f"for target_probs {tuple(target_probs.shape)}")
    if draft_probs is None and rule != "target_only":
        raise ValueError(f"rule {rule!r} needs draft_probs; only target_only (and greedy) verify without them")
    if draft_probs is not None and tuple(draft_probs.shape) != (b, n, v):
        raise ValueError(f"draft_probs has shape {tuple(draft_probs.shape)}; expected ({b}, {n}, {v})")
    if b and bool((parents[:, 0] != -1).any()):
        raise ValueError(f"node 0 is the root: parents[:, 0] must be -1; got {parents[:, 0].tolist()[:8]}")
    index = torch.arange(n, device=parents.device).unsqueeze(0)
    bad = (parents < -1) | (parents >= index)
    bad[:, 0] = False
    if bool(bad.any()):
        r, c = (int(i) for i in bad.nonzero()[0])
        raise ValueError(f"parents[{r}, {c}] = {int(parents[r, c])}; a node's parent is an earlier node (0..{c - 1}) "
                         "or -1 for a padding node")
    real = parents >= 0
    real[:, 0] = True
    orphan = real & (parents >= 0) & ~real.gather(1, parents.clamp_min(0))
    if bool(orphan.any()):
        r, c = (int(i) for i in orphan.nonzero()[0])
        raise ValueError(f"node {c} of request {r} has the padding node {int(parents[r, c])} as its parent")
    _tokens_in_vocabulary(tokens, real & (index > 0), v)
    return b, n, v


def _tokens_in_vocabulary(tokens: torch.Tensor, used: torch.Tensor, vocab: int) -> None:
    bad = used & ((tokens < 0) | (tokens >= vocab))
    if bool(bad.any()):
        r, c = (int(i) for i in bad.nonzero()[0])
        raise ValueError(f"draft token [{r}, {c}] = {int(tokens[r, c])} is outside the vocabulary of {vocab}")

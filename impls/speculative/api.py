"""The speculative area's call API: verify one speculative step for a batch of requests.

Tensors (on one device): ``target_probs`` [B, G+1, V] (position G+1 is the bonus position),
``draft_probs`` [B, G, V] or None for drafts without probabilities (n-gram: q is one-hot),
``draft_tokens`` [B, G] int64, ``draft_lengths`` [B] int64 with 0 <= length <= G (request b uses its
first ``draft_lengths[b]`` positions, and its bonus distribution is ``target_probs[b, length]``).

The result: ``accepted`` [B] (drafted tokens accepted) and ``emitted`` [B] (the token emitted after
them: residual sample, or bonus). Explicit uniforms, where an implementation takes them:
``accept_uniforms`` [B, G] and ``emit_uniforms`` [B], with the reference's rule (accept iff u < p/q;
inverse CDF for the emitted token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from impls.base import Implementation


@dataclass(frozen=True)
class SpecCase:
    """What a test is about to ask, so that an implementation can decline with reasons."""

    batch: int
    vocab: int
    max_draft: int
    greedy: bool = False
    draft_probs: bool = True
    explicit_uniforms: bool = False
    variable_lengths: bool = False


@dataclass(frozen=True)
class SpecResult:
    accepted: torch.Tensor  # [B] int64
    emitted: torch.Tensor  # [B] int64


class SpeculativeImpl(Implementation):
    area: ClassVar[str] = "speculative"
    lossless: bool = True  # False for declared-lossy modes (typical acceptance): never tested for equality
    takes_uniforms: bool = False

    def verify(self, target_probs: torch.Tensor, draft_probs: torch.Tensor | None, draft_tokens: torch.Tensor,
               draft_lengths: torch.Tensor, *, greedy: bool = False, generator: torch.Generator | None = None,
               accept_uniforms: torch.Tensor | None = None, emit_uniforms: torch.Tensor | None = None
               ) -> SpecResult:
        raise NotImplementedError


def check_shapes(target_probs: torch.Tensor, draft_probs: torch.Tensor | None, draft_tokens: torch.Tensor,
                 draft_lengths: torch.Tensor) -> tuple[int, int, int]:
    """(B, G, V) after checking that the tensors agree; errors name the constraint and the values."""
    if target_probs.dim() != 3:
        raise ValueError(f"target_probs must be [B, G+1, V]; got shape {tuple(target_probs.shape)}")
    b, g1, v = target_probs.shape
    g = g1 - 1
    if tuple(draft_tokens.shape) != (b, g):
        raise ValueError(f"draft_tokens has shape {tuple(draft_tokens.shape)}; target_probs {tuple(target_probs.shape)} "
                         f"needs ({b}, {g})")
    if draft_probs is not None and tuple(draft_probs.shape) != (b, g, v):
        raise ValueError(f"draft_probs has shape {tuple(draft_probs.shape)}; expected ({b}, {g}, {v})")
    if tuple(draft_lengths.shape) != (b,):
        raise ValueError(f"draft_lengths has shape {tuple(draft_lengths.shape)}; expected ({b},)")
    if b and (int(draft_lengths.min()) < 0 or int(draft_lengths.max()) > g):
        raise ValueError(f"draft_lengths must lie in 0..{g}; got {draft_lengths.tolist()[:8]}")
    return b, g, v

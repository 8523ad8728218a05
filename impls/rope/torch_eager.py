"""Eager PyTorch rotary embedding with the spec's frequencies: the reference-backed implementation.

The frequencies and the attention factor come from ``reference.rope`` (float64, rounded once to fp32); the
angle product m·θ, cos, sin and the rotation run in fp32; the result is rounded once to the input dtype.
That is the careful recipe the tolerance rule holds every implementation to (docs/rope.md). Each step is a
method, so the planted bugs of the self-test (suite/rope/planted.py) can change one of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from impls.base import Requirements
from impls.registry import register
from impls.rope.api import RopeImpl, validate
from reference import rope as ref

if TYPE_CHECKING:
    from reference.rope import RopeConfig


def pair_slices(rotary_dim: int, layout: str) -> tuple[slice, slice]:
    """The dimensions of the first and of the second member of every pair, as strided views."""
    if layout == ref.HALF_SPLIT:
        return slice(0, rotary_dim // 2), slice(rotary_dim // 2, rotary_dim)
    return slice(0, rotary_dim, 2), slice(1, rotary_dim, 2)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, scale: float, layout: str, in_place: bool
           ) -> torch.Tensor:
    """x [T, H, D] rotated by cos, sin [T, d/2] (fp32) in fp32, times ``scale``, rounded once to x's dtype."""
    a, b = pair_slices(2 * cos.shape[-1], layout)
    xa, xb = x[..., a].float(), x[..., b].float()
    c, s = cos[:, None, :], sin[:, None, :]
    out_a, out_b = (xa * c - xb * s) * scale, (xb * c + xa * s) * scale  # both computed before any write
    out = x if in_place else x.clone()
    out[..., a] = out_a.to(x.dtype)
    out[..., b] = out_b.to(x.dtype)
    return out


class TorchRope(RopeImpl):
    name = "rope-torch"
    description = ("eager PyTorch with the spec's frequencies (float64 → fp32): fp32 angle product, cos, sin "
                   "and rotation, rounded once to the dtype; both layouts, partial rotary, in place or not")
    requires = Requirements(modules=("torch",))

    def embedding(self, config: RopeConfig, dtype: str, device: str) -> TorchEmbedding:
        return TorchEmbedding(self, config)

    def frequencies(self, config: RopeConfig, seq_len: int) -> tuple[np.ndarray, float]:
        return self.inv_freq(config, seq_len), self.scales(config)[0]

    # ---- the steps (a planted bug overrides one) ----
    def layout(self, config: RopeConfig) -> str:
        return config.layout

    def inv_freq(self, config: RopeConfig, seq_len: int | None) -> np.ndarray:
        return ref.inv_freq(config, seq_len)

    def scales(self, config: RopeConfig) -> tuple[float, float]:
        """(factor on q, factor on k)."""
        a = ref.attention_factor(config)
        return a, a

    def angles(self, positions: torch.Tensor, inv: torch.Tensor) -> torch.Tensor:
        return positions.float()[:, None] * inv[None, :]

    def length_for(self, emb: TorchEmbedding, seq_len: int) -> int:
        """The length the frequencies are computed for (the current one: the embedding keeps no state)."""
        return seq_len


class TorchEmbedding:
    def __init__(self, impl: TorchRope, config: RopeConfig) -> None:
        self.impl, self.config = impl, config
        self.longest = 0  # only a planted bug reads it
        self._inv: dict[tuple[int | None, str], torch.Tensor] = {}

    def inv_freq(self, positions: torch.Tensor) -> torch.Tensor:
        length: int | None = None
        if self.config.rope_type in ref.LENGTH_DEPENDENT:
            length = self.impl.length_for(self, int(positions.max()) + 1 if positions.numel() else 0)
        key = (length, str(positions.device))
        if key not in self._inv:
            self._inv[key] = torch.tensor(self.impl.inv_freq(self.config, length), dtype=torch.float32,
                                          device=positions.device)
        return self._inv[key]

    def apply(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, *,
              in_place: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        validate(q, k, positions, self.config)
        phi = self.impl.angles(positions, self.inv_freq(positions))
        cos, sin = phi.cos(), phi.sin()
        scale_q, scale_k = self.impl.scales(self.config)
        layout = self.impl.layout(self.config)
        return (rotate(q, cos, sin, scale_q, layout, in_place), rotate(k, cos, sin, scale_k, layout, in_place))


register(TorchRope())

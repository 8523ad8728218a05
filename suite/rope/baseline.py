"""The rope area's low-precision baseline: plain eager PyTorch in the inputs' dtype, with one careful step.

The spec's frequencies (float64, rounded to fp32) times the positions in fp32 — the angle product every
careful implementation does in fp32 — then cos and sin (times the attention factor) rounded to the dtype
and the rotation done in the dtype, as transformers' models do it. Nothing is shared with an
implementation under test: the frequencies are the reference's.
"""

from __future__ import annotations

import torch

from reference import rope as ref
from reference.rope import RopeConfig


def baseline_angles(positions: torch.Tensor, config: RopeConfig, seq_len: int | None = None) -> torch.Tensor:
    """m·θ'_i [T, d/2] in fp32, from the spec's frequencies rounded to fp32."""
    length = ref.current_length(positions.cpu().numpy()) if seq_len is None else seq_len
    inv = torch.tensor(ref.inv_freq(config, length), dtype=torch.float32)
    return positions.cpu().float()[:, None] * inv[None, :]


def eager_rotate(x: torch.Tensor, positions: torch.Tensor, config: RopeConfig,
                 seq_len: int | None = None) -> torch.Tensor:
    """x [T, H, D] in its dtype, rotated on the CPU; the result is a new contiguous tensor."""
    x = x.detach().cpu()
    phi = baseline_angles(positions, config, seq_len)
    a = ref.attention_factor(config)
    cos, sin = ((phi.cos() * a).to(x.dtype)[:, None, :], (phi.sin() * a).to(x.dtype)[:, None, :])
    half, d = config.rotary_dim // 2, config.rotary_dim
    first, second = (slice(0, half), slice(half, d)) if config.layout == ref.HALF_SPLIT else \
        (slice(0, d, 2), slice(1, d, 2))
    xa, xb = x[..., first], x[..., second]
    out = x.clone()
    out[..., first] = xa * cos - xb * sin
    out[..., second] = xb * cos + xa * sin
    return out

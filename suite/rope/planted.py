"""Deliberately broken rotary embeddings: the suite must reject every one, every run.

Each is rope-torch (the reference-backed eager implementation) with one classic mistake. They are not
registered; the self-test runs them through the same checks as the real implementations.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from impls.rope.torch_eager import TorchEmbedding, TorchRope
from reference import rope as ref
from reference.rope import RopeConfig


class HalfSplitOnInterleaved(TorchRope):
    """Rotates (x_i, x_{i+d/2}) whatever the model's layout: GPT-NeoX pairs on a GPT-J / DeepSeek model."""

    name = "planted-half-split-on-interleaved"

    def layout(self, config: RopeConfig) -> str:
        return ref.HALF_SPLIT


class ExponentIOverD(TorchRope):
    """θ_i = base^(−i/d) instead of base^(−2i/d): the frequencies fall half as fast."""

    name = "planted-exponent-i-over-d"

    def inv_freq(self, config: RopeConfig, seq_len: int | None) -> np.ndarray:
        base, d = ref.effective_base(config, seq_len), config.rotary_dim
        wrong = np.array([base ** (-i / d) for i in range(d // 2)])
        return super().inv_freq(config, seq_len) * wrong / ref.default_inv_freq(base, d)


class YarnTemperatureLeftOut(TorchRope):
    name = "planted-yarn-temperature-left-out"

    def scales(self, config: RopeConfig) -> tuple[float, float]:
        return (1.0, 1.0) if config.rope_type == "yarn" else super().scales(config)


class YarnTemperatureOnQOnly(TorchRope):
    """√(1/t) on q but not on k: the logits scale by √(1/t) instead of 1/t."""

    name = "planted-yarn-temperature-on-q-only"

    def scales(self, config: RopeConfig) -> tuple[float, float]:
        a, _ = super().scales(config)
        return (a, 1.0) if config.rope_type == "yarn" else (a, a)


class Llama3BandInverted(TorchRope):
    """Inside the smoothing band, the weights of θ/s and θ swapped: the band's long end keeps θ."""

    name = "planted-llama3-band-inverted"

    def inv_freq(self, config: RopeConfig, seq_len: int | None) -> np.ndarray:
        s = config.scaling
        if s is None or s.rope_type != "llama3":
            return super().inv_freq(config, seq_len)
        assert s.original_max_position_embeddings and s.low_freq_factor and s.high_freq_factor
        old, low, high = s.original_max_position_embeddings, s.low_freq_factor, s.high_freq_factor
        out = []
        for freq in ref.default_inv_freq(config.base, config.rotary_dim):
            wavelen = 2 * math.pi / freq
            if wavelen < old / high:
                out.append(freq)
            elif wavelen > old / low:
                out.append(freq / s.factor)
            else:
                smooth = (old / wavelen - low) / (high - low)
                out.append(smooth * freq / s.factor + (1 - smooth) * freq)
        return np.array(out)


class DynamicNeverResets(TorchRope):
    """Dynamic NTK that keeps the longest length's base for every later, shorter call."""

    name = "planted-dynamic-never-resets"

    def length_for(self, emb: TorchEmbedding, seq_len: int) -> int:
        emb.longest = max(emb.longest, seq_len)
        return emb.longest


class Bf16AngleProduct(TorchRope):
    """Positions and inverse frequencies multiplied in bf16 (8 significant bits: position 100003 is 99840)."""

    name = "planted-bf16-angle-product"

    def angles(self, positions: torch.Tensor, inv: torch.Tensor) -> torch.Tensor:
        return (positions.to(torch.bfloat16)[:, None] * inv.to(torch.bfloat16)[None, :]).float()


PLANTED = [HalfSplitOnInterleaved(), ExponentIOverD(), YarnTemperatureLeftOut(), YarnTemperatureOnQOnly(),
           Llama3BandInverted(), DynamicNeverResets(), Bf16AngleProduct()]

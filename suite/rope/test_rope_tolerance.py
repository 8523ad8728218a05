"""The tolerance rule, measured: fp32 angle products against float64 at every position up to 128K.

The rule (suite.rope.check): an implementation in dtype T is held to what a careful fp32 angle costs,
A_i(φ) = u·(|φ|·(3 + (2i/d)·ln base') + 2) radians per pair. These tests measure the fp32 recipes real
code uses (the spec's θ rounded to fp32; transformers' ``1 / base ** (arange / d)`` in fp32; vLLM's
``positions / s`` before the product) and check the bound holds for every position and pair, that it is
not vacuous (the measured error reaches a good fraction of it), and that the bf16 product is outside it
by orders of magnitude.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reference import rope as ref
from suite.rope.check import angle_bound

# every position below 2048, then every 7th up to 128K and the last 64 (about 21K positions)
POSITIONS = np.unique(np.concatenate([np.arange(0, 2048), np.arange(2048, 131072, 7), np.arange(131008, 131072)]))
LAST = len(POSITIONS) - 1
CONFIGS = [ref.load_rope_config(n) for n in ("llama-2-7b", "llama-3.1-8b", "qwen2.5-7b-instruct-yarn",
                                             "phi-3.5-mini-instruct")]


def spec_theta_fp32(config: ref.RopeConfig) -> torch.Tensor:
    return torch.tensor(ref.inv_freq(config, 131072), dtype=torch.float32)


def transformers_theta_fp32(config: ref.RopeConfig) -> torch.Tensor:
    """``1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))`` times the scaling's fp32 ratio."""
    d = config.rotary_dim
    plain = 1.0 / (config.base ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    ratio = torch.tensor(ref.inv_freq(config, 131072) / ref.default_inv_freq(config.base, d), dtype=torch.float32)
    return plain * ratio


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
@pytest.mark.parametrize("recipe", [spec_theta_fp32, transformers_theta_fp32], ids=lambda f: f.__name__)
def test_fp32_angles_stay_inside_the_bound_up_to_128k(config: ref.RopeConfig, recipe) -> None:  # type: ignore[no-untyped-def]
    exact = ref.angles(POSITIONS, config, 131072)
    fp32 = (torch.from_numpy(POSITIONS).float()[:, None] * recipe(config)[None, :]).double().numpy()
    ratio = np.abs(fp32 - exact) / angle_bound(exact, config.base)
    assert ratio.max() <= 1.0, f"fp32 angle error reaches {ratio.max():.2f}× the bound"
    assert ratio.max() >= 0.2, f"the bound is vacuous: the measured error reaches only {ratio.max():.2f}× it"


def test_position_interpolation_before_the_product_stays_inside_the_bound() -> None:
    """vLLM's linear scaling divides the positions in fp32 (t / s), then multiplies by θ."""
    config = ref.config_variant("llama-2-7b", "linear-3", {"rope_type": "linear", "factor": 3.0})
    theta = torch.tensor(ref.default_inv_freq(config.base, config.rotary_dim), dtype=torch.float32)
    fp32 = ((torch.from_numpy(POSITIONS).float() / 3.0)[:, None] * theta[None, :]).double().numpy()
    exact = ref.angles(POSITIONS, config)
    assert (np.abs(fp32 - exact) / angle_bound(exact, config.base)).max() <= 1.0


def test_bf16_angle_products_miss_by_radians() -> None:
    config = CONFIGS[1]
    exact = ref.angles(POSITIONS, config)
    theta = spec_theta_fp32(config).to(torch.bfloat16)
    bf16 = (torch.from_numpy(POSITIONS).to(torch.bfloat16)[:, None] * theta[None, :]).double().numpy()
    err = np.abs(bf16 - exact)
    assert err[1000].max() > 1.0 and err[LAST].max() > 100.0  # 8 significant bits: 100003 → 99840
    assert (err / angle_bound(exact, config.base)).max() > 1e4


def test_the_fp32_angle_error_at_128k_is_what_the_docs_say() -> None:
    """docs/rope.md quotes these: the error a careful fp32 implementation carries at the end of 128K."""
    config = CONFIGS[1]
    exact = ref.angles(POSITIONS, config)
    fp32 = (torch.from_numpy(POSITIONS).float()[:, None] * spec_theta_fp32(config)[None, :]).double().numpy()
    err = np.abs(fp32 - exact)
    assert POSITIONS[LAST] == 131071 and 2e-3 < err[LAST].max() < 4e-3  # radians, at position 131071
    assert 4e-3 < err.max() < 1e-2  # the worst over all positions < 128K and all pairs

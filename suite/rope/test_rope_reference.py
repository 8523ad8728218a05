"""The rope spec against hand computation and the source documents' figures, and its invariants.

Figures: θ_i = base^(−2i/d) (RoFormer eq. 15); NTK-aware base' = base·α^(d/(d−2)); YaRN's √(1/t) =
0.1·ln(s) + 1 and DeepSeek's mscale; Llama 3.1's three bands; Phi-3's LongRoPE factor √(1 + ln s / ln L).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference import rope as ref
from reference.rope import RopeConfig, RopeConfigError, Scaling

LLAMA2, LLAMA31 = ref.load_rope_config("llama-2-7b"), ref.load_rope_config("llama-3.1-8b")
QWEN_YARN, DEEPSEEK = ref.load_rope_config("qwen2.5-7b-instruct-yarn"), ref.load_rope_config("deepseek-v3")
PHI = ref.load_rope_config("phi-3.5-mini-instruct")
LINEAR = ref.config_variant("llama-2-7b", "linear-4", {"rope_type": "linear", "factor": 4.0})
DYNAMIC = ref.config_variant("llama-2-7b", "dynamic-2", {"rope_type": "dynamic", "factor": 2.0})
NTK = ref.config_variant("llama-2-7b", "ntk-8", {"rope_type": "ntk", "factor": 8.0})
PARTIAL = ref.config_variant("llama-2-7b", "partial", QWEN_YARN.source["rope_scaling"], partial_rotary_factor=0.5,
                             max_position_embeddings=32768)
STATIC = (LLAMA2, LLAMA31, QWEN_YARN, DEEPSEEK, LINEAR, NTK, PARTIAL)


# ---- the figures ------------------------------------------------------------------------------------------------

def test_theta_is_base_to_the_minus_two_i_over_d() -> None:
    theta = ref.default_inv_freq(10000.0, 128)
    assert theta.shape == (64,)
    assert theta[0] == 1.0
    assert theta[1] == pytest.approx(math.exp(-math.log(10000) / 64), rel=1e-15)  # 0.8659643…
    assert theta[1] == pytest.approx(0.8659643233600653, rel=1e-12)
    assert theta[63] == pytest.approx(10 ** (-4 * 63 / 64), rel=1e-12)  # 1.1548e-4: the slowest pair
    assert theta[32] == pytest.approx(0.01, rel=1e-12)  # 10000^(−64/128) = 1/100


def test_ntk_aware_base_keeps_the_fastest_pair_and_divides_the_slowest_by_alpha() -> None:
    assert ref.ntk_aware_base(10000, 8, 128) == pytest.approx(10000 * 8 ** (128 / 126), rel=1e-15)
    assert ref.ntk_aware_base(10000, 8, 128) == pytest.approx(82684.62, rel=1e-7)
    assert ref.ntk_aware_base(10000, 4, 128) == pytest.approx(40889.94, rel=1e-7)
    for alpha, d in ((8.0, 128), (4.0, 96), (2.0, 64)):
        scaled = ref.default_inv_freq(ref.ntk_aware_base(10000, alpha, d), d)
        plain = ref.default_inv_freq(10000, d)
        assert scaled[0] == plain[0] == 1.0
        assert plain[-1] / scaled[-1] == pytest.approx(alpha, rel=1e-12)


def test_ntk_config_uses_the_ntk_aware_base() -> None:
    assert ref.inv_freq(NTK) == pytest.approx(ref.default_inv_freq(ref.ntk_aware_base(10000, 8, 128), 128), rel=1e-15)


def test_dynamic_ntk_depends_on_the_current_length() -> None:
    plain = ref.default_inv_freq(10000, 128)
    for length in (1, 4095, 4096):
        assert np.array_equal(ref.inv_freq(DYNAMIC, length), plain)
    # at twice max_position_embeddings with s = 2: α = 2·2 − 1 = 3
    assert ref.effective_base(DYNAMIC, 8192) == pytest.approx(10000 * 3 ** (128 / 126), rel=1e-15)
    assert ref.dynamic_alpha(2.0, 6144, 4096) == pytest.approx(2.0)


def test_linear_divides_every_frequency_by_the_factor() -> None:
    assert ref.inv_freq(LINEAR) == pytest.approx(ref.default_inv_freq(10000, 128) / 4, rel=1e-15)
    # position interpolation: position m with factor s rotates as position m / s does unscaled
    assert ref.angles([4000], LINEAR) == pytest.approx(ref.angles([1000], LLAMA2), rel=1e-15)


def test_yarn_temperature_and_logit_scale() -> None:
    a = 0.1 * math.log(4) + 1  # √(1/t) for s = 4 (YaRN eq. 22)
    assert ref.attention_factor(QWEN_YARN) == pytest.approx(a, rel=1e-15) == pytest.approx(1.1386294, rel=1e-7)
    assert ref.logit_scale(QWEN_YARN) == pytest.approx(a * a) == pytest.approx(1.2964770, rel=1e-7)  # 1/t
    # DeepSeek-V3: mscale = mscale_all_dim = 1, so nothing on q and k, and the softmax scale carries (0.1·ln40+1)²
    assert ref.attention_factor(DEEPSEEK) == 1.0
    assert ref.softmax_scale_multiplier(DEEPSEEK) == pytest.approx((0.1 * math.log(40) + 1) ** 2, rel=1e-15)
    assert ref.logit_scale(DEEPSEEK) == pytest.approx(1.8738542, rel=1e-7)
    # DeepSeek-V2-Lite's 0.707 / 0.707 is also 1 on q and k; mscale alone scales them (DeepSeek's formula)
    s = Scaling("yarn", 4.0, 4096, mscale=0.707)
    assert ref.attention_factor(RopeConfig(64, 64, scaling=s)) == pytest.approx(0.1 * 0.707 * math.log(4) + 1)
    explicit = RopeConfig(64, 64, scaling=Scaling("yarn", 4.0, 4096, attention_factor=1.25))
    assert ref.attention_factor(explicit) == 1.25


def test_yarn_ramp_for_qwen_by_hand() -> None:
    # pair i turns L·θ_i/2π times over L = 32768; that count is 32 at i = 23.60 and 1 at i = 39.65
    d, base, original = 128, 1e6, 32768
    assert ref.yarn_correction_dim(32, d, base, original) == pytest.approx(
        d * math.log(original / (32 * 2 * math.pi)) / (2 * math.log(base)))
    yarn = QWEN_YARN.scaling
    assert yarn is not None
    assert ref.yarn_ramp_range(yarn, d, base) == (23, 40)  # floored, ceiled
    w = ref.yarn_extrapolation_weights(yarn, d, base)
    assert np.all(w[:24] == 1) and np.all(w[40:] == 0) and np.all(np.diff(w) <= 0)
    theta = ref.default_inv_freq(base, d)
    rotations = original * theta / (2 * math.pi)
    got = ref.inv_freq(QWEN_YARN)
    assert np.array_equal(got[rotations >= 32], theta[rotations >= 32])  # fast pairs extrapolate
    assert got[rotations <= 1] == pytest.approx(theta[rotations <= 1] / 4, rel=1e-15)  # slow pairs interpolate
    assert w[31] == pytest.approx(1 - (31 - 23) / (40 - 23))


def test_llama3_bands_by_hand() -> None:
    # base 500000, d 128, L_orig 8192, low 1, high 4: wavelengths below 2048 kept, above 8192 divided by 8
    theta = ref.default_inv_freq(500000.0, 128)
    wavelen = 2 * math.pi / theta
    got = ref.inv_freq(LLAMA31)
    kept, divided = wavelen < 2048, wavelen > 8192
    assert (kept.sum(), (~kept & ~divided).sum(), divided.sum()) == (29, 6, 29)  # pairs 0–28, 29–34, 35–63
    assert np.array_equal(got[kept], theta[kept])
    assert got[divided] == pytest.approx(theta[divided] / 8, rel=1e-15)
    band = ~kept & ~divided
    smooth = (8192 / wavelen[band] - 1) / 3
    assert got[band] == pytest.approx((1 - smooth) * theta[band] / 8 + smooth * theta[band], rel=1e-15)
    assert np.all(np.diff(got) < 0)  # still a decreasing ladder
    assert ref.attention_factor(LLAMA31) == 1.0


def test_longrope_factors_and_switch() -> None:
    s = PHI.scaling
    assert s is not None and s.rope_type == "longrope" and PHI.rotary_dim == 96 and PHI.original_max == 4096
    assert len(s.short_factor) == len(s.long_factor) == 48
    # s = 131072 / 4096 = 32 = 2^5 and L = 4096 = 2^12, so ln s / ln L = 5/12
    assert ref.attention_factor(PHI) == pytest.approx(math.sqrt(17 / 12), rel=1e-15) == pytest.approx(1.1902381)
    theta = ref.default_inv_freq(10000.0, 96)
    assert ref.inv_freq(PHI, 4096) == pytest.approx(theta / np.array(s.short_factor), rel=1e-15)
    assert ref.inv_freq(PHI, 4097) == pytest.approx(theta / np.array(s.long_factor), rel=1e-15)
    assert ref.current_length([4095]) == 4096 and ref.current_length([3, 4096, 7]) == 4097


# ---- reading config.json ------------------------------------------------------------------------------------------

def test_configs_are_read_as_the_files_spell_them() -> None:
    assert (LLAMA2.rope_type, LLAMA2.base, LLAMA2.head_dim, LLAMA2.layout) == ("default", 10000.0, 128, "half_split")
    s = LLAMA31.scaling
    assert s is not None and (s.factor, s.low_freq_factor, s.high_freq_factor, s.original_max_position_embeddings) == \
        (8.0, 1.0, 4.0, 8192)
    assert QWEN_YARN.rope_type == "yarn" and QWEN_YARN.scaling.factor == 4.0  # type: ignore[union-attr]
    assert QWEN_YARN.original_max == 32768 and QWEN_YARN.base == 1e6
    assert (DEEPSEEK.head_dim, DEEPSEEK.rotary_dim, DEEPSEEK.layout) == (64, 64, "interleaved")  # qk_rope_head_dim
    assert DEEPSEEK.scaling.mscale == DEEPSEEK.scaling.mscale_all_dim == 1.0  # type: ignore[union-attr]
    assert PHI.scaling.factor == 32.0  # type: ignore[union-attr]  # max_position / original, as Phi-3 reads it
    old = ref.rope_config_from_hf({**PHI.source, "rope_scaling": {**PHI.source["rope_scaling"], "type": "su"}})
    assert old == ref.rope_config_from_hf(PHI.source)  # "su" is the older spelling of longrope
    gptj = ref.rope_config_from_hf({"model_type": "gptj", "hidden_size": 4096, "num_attention_heads": 16,
                                    "rotary_dim": 64})
    assert (gptj.head_dim, gptj.rotary_dim, gptj.layout) == (256, 64, "interleaved")
    v5 = ref.rope_config_from_hf({"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32,
                                  "rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 5e5}})
    assert (v5.rope_type, v5.base, v5.scaling.factor) == ("linear", 5e5, 2.0)  # type: ignore[union-attr]


@pytest.mark.parametrize("make,fragments", [
    (lambda: RopeConfig(128, 127), ("even", "127")),
    (lambda: RopeConfig(64, 128), ("head_dim=64", "128")),
    (lambda: RopeConfig(128, 128, base=1.0), ("base", "1.0")),
    (lambda: RopeConfig(128, 128, layout="gptj"), ("gptj",)),
    (lambda: RopeConfig(128, 128, scaling=Scaling("linear", 0.5)), ("factor", "0.5")),
    (lambda: RopeConfig(128, 128, scaling=Scaling("yarn", 4.0)), ("original_max_position_embeddings",)),
    (lambda: RopeConfig(128, 128, scaling=Scaling("llama3", 8.0, 8192, 4.0, 1.0)), ("high_freq_factor", "4.0")),
    (lambda: RopeConfig(96, 96, scaling=Scaling("longrope", 32.0, 4096, short_factor=(1.0,) * 47,
                                                long_factor=(1.0,) * 48)), ("47", "48")),
    (lambda: RopeConfig(128, 128, scaling=Scaling("su", 2.0)), ("su",)),
    (lambda: ref.apply(np.zeros((2, 1, 128)), [0.5, 1.5], LLAMA2), ("integers",)),
    (lambda: ref.apply(np.zeros((2, 1, 128)), [0, 1, 2], LLAMA2), ("2 tokens", "(3,)")),
    (lambda: ref.apply(np.zeros((2, 1, 64)), [0, 1], LLAMA2), ("head_dim=128", "64")),
])
def test_bad_configs_and_calls_are_rejected_naming_the_constraint(make, fragments) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RopeConfigError) as err:
        make()
    assert all(f in str(err.value) for f in fragments), str(err.value)


# ---- the invariants ------------------------------------------------------------------------------------------------

POSITIONS = st.integers(-(2**20), 2**20)


@given(m=POSITIONS, n=POSITIONS, shift=POSITIONS, seed=st.integers(0, 2**32 - 1))
def test_logits_depend_on_the_position_difference_only(m: int, n: int, shift: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for config in (LLAMA2, LINEAR, QWEN_YARN, DEEPSEEK, PARTIAL):
        q, k = rng.standard_normal((2, 1, 1, config.head_dim))
        here = ref.apply(q, [m], config, 1)[0, 0] @ ref.apply(k, [n], config, 1)[0, 0]
        there = ref.apply(q, [m + shift], config, 1)[0, 0] @ ref.apply(k, [n + shift], config, 1)[0, 0]
        scale = np.linalg.norm(q) * np.linalg.norm(k)
        assert abs(here - there) <= 1e-12 * (abs(m) + abs(n) + abs(shift) + 1) * scale, config


def test_dynamic_ntk_is_not_shift_invariant_across_its_threshold() -> None:
    """Why the relative-position property is stated for one call: dynamic's base follows the length."""
    rng = np.random.default_rng(0)
    q, k = rng.standard_normal((2, 1, 1, 128))
    near = ref.apply(q, [10], DYNAMIC)[0, 0] @ ref.apply(k, [0], DYNAMIC)[0, 0]
    far = ref.apply(q, [10010], DYNAMIC)[0, 0] @ ref.apply(k, [10000], DYNAMIC)[0, 0]
    assert abs(near - far) > 1e-3


@pytest.mark.parametrize("config", [*STATIC, PHI, DYNAMIC], ids=lambda c: c.name)
def test_rotation_matrices_are_scaled_rotations(config: RopeConfig) -> None:
    a, d = ref.attention_factor(config), config.rotary_dim
    for m in (0, 1, 4097, 131071, -77):
        r = ref.rotation_matrix(m, config)
        rot = r[:d, :d]
        assert np.abs(rot @ rot.T - a * a * np.eye(d)).max() < 1e-12  # norms kept, times a
        assert np.array_equal(r[d:, d:], np.eye(config.head_dim - d)) and not r[:d, d:].any() and not r[d:, :d].any()
        if config.rope_type not in ref.LENGTH_DEPENDENT:  # R_{−m} R_m = a²·I
            back = ref.rotation_matrix(-m, config)
            assert np.abs((back @ r)[:d, :d] - a * a * np.eye(d)).max() < 1e-12


def test_interleaved_is_half_split_under_a_permutation() -> None:
    config = ref.config_variant("llama-2-7b", "x", None, layout=ref.INTERLEAVED)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 128))
    to_half = np.concatenate([np.arange(0, 128, 2), np.arange(1, 128, 2)])  # (x0, x2, …, x1, x3, …)
    expected = np.empty_like(x)
    expected[..., to_half] = ref.apply(x[..., to_half], [0, 5, 9000], LLAMA2)
    assert np.abs(ref.apply(x, [0, 5, 9000], config) - expected).max() < 1e-12


def test_position_zero_is_the_identity_and_partial_dims_pass_through_unscaled() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 3, 128))
    assert np.array_equal(ref.apply(x, [0], LLAMA2), x)
    assert ref.attention_factor(PARTIAL) > 1
    out = ref.apply(x, [1234], PARTIAL)
    assert np.array_equal(out[..., 64:], x[..., 64:])
    assert np.abs(np.linalg.norm(out[..., :64], axis=-1) - ref.attention_factor(PARTIAL) *
                  np.linalg.norm(x[..., :64], axis=-1)).max() < 1e-12

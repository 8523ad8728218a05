"""Rotary position embedding (RoPE) and its long-context scalings: the spec, in float64.

Rotation. Each rotated dimension pair i = 0 … d/2 − 1 (d = ``rotary_dim``) of a query or key at position m
is turned by the angle m·θ_i, θ_i = base^(−2i/d) (RoFormer, Su et al. 2021, arXiv:2104.09864, eq. 15; the
paper counts i from 1 and writes −2(i−1)/d):

    (x_a, x_b) ↦ a · (x_a cos mθ_i − x_b sin mθ_i,  x_b cos mθ_i + x_a sin mθ_i)

where ``a`` is the attention factor (1 unless a scaling says otherwise). Two layouts say which dimensions
form pair i: **half-split** (GPT-NeoX, Hugging Face Llama: a = i, b = i + d/2) and **interleaved** (GPT-J,
the paper: a = 2i, b = 2i + 1). Dimensions d … head_dim − 1 (partial rotary) pass through unchanged,
unscaled. Positions are any integers (an offset when decoding, restarts in packed sequences, negatives).

Scalings, as ``config.json`` spells them (``rope_scaling`` / ``rope_parameters``):

- ``linear`` (position interpolation, Chen et al. 2023, arXiv:2306.15595): θ_i / s.
- ``ntk`` (NTK-aware base scaling, bloc97 2023): base' = base · α^(d/(d−2)); the highest frequency is
  kept and the lowest is divided by exactly α.
- ``dynamic`` (dynamic NTK, emozilla 2023; transformers' ``_compute_dynamic_ntk_parameters``): NTK-aware
  with α = s·L/L_max − (s − 1) for the current length L = max(position) + 1 > L_max, unscaled otherwise.
- ``yarn`` (Peng et al. 2023, arXiv:2309.00071; the authors' code github.com/jquesnelle/yarn): per pair,
  θ'_i = (1 − w_i)·θ_i/s + w_i·θ_i with w_i = 1 − ramp(i) and ramp linear in the pair index between the
  pairs where the original context L_orig makes β_fast and β_slow rotations (floored / ceiled unless
  ``truncate`` is false); attention factor √(1/t) = 0.1·ln(s) + 1 on both q and k, so logits scale by
  1/t. DeepSeek's ``mscale`` / ``mscale_all_dim`` (DeepSeek-V2 code, ``yarn_get_mscale``): the factor is
  (0.1·mscale·ln s + 1) / (0.1·mscale_all_dim·ln s + 1) (mscale defaults to 1, mscale_all_dim to 0),
  and the attention module multiplies its softmax scale by (0.1·mscale_all_dim·ln s + 1)².
- ``llama3`` (Llama 3.1, ``apply_scaling`` in github.com/meta-llama/llama-models): wavelengths 2π/θ
  shorter than L_orig/high_freq_factor are kept, longer than L_orig/low_freq_factor are divided by s,
  and in between θ' = (1 − γ)·θ/s + γ·θ with γ = (L_orig/λ − low) / (high − low).
- ``longrope`` (Ding et al. 2024, arXiv:2402.13753; Phi-3 ``su`` / ``longrope``): θ'_i = θ_i / λ_i with the
  long factors when L > L_orig, the short ones otherwise; attention factor √(1 + ln s / ln L_orig) with
  s = max_position_embeddings / L_orig unless the config gives ``factor`` or ``attention_factor``.

The current length L of a call is max(position) + 1 (transformers' ``dynamic_rope_update`` reads the same).
Nothing here is fast: it is written to be checked by reading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

HALF_SPLIT, INTERLEAVED = "half_split", "interleaved"
LAYOUTS = (HALF_SPLIT, INTERLEAVED)
DEFAULT = "default"
SCALINGS = ("linear", "ntk", "dynamic", "yarn", "llama3", "longrope")
LENGTH_DEPENDENT = ("dynamic", "longrope")  # frequencies that depend on the current length
ALIASES = {"su": "longrope", "deepseek_yarn": "yarn"}  # older or library-specific spellings of the same method
# Which pairs a model family rotates. The config does not say; the model code does (sources in docs/rope.md).
LAYOUT_BY_MODEL_TYPE = {
    "llama": HALF_SPLIT, "mistral": HALF_SPLIT, "mixtral": HALF_SPLIT, "qwen2": HALF_SPLIT, "phi3": HALF_SPLIT,
    "gemma2": HALF_SPLIT, "gpt_neox": HALF_SPLIT, "deepseek_v2": INTERLEAVED, "deepseek_v3": INTERLEAVED,
    "gptj": INTERLEAVED, "glm": INTERLEAVED, "cohere": INTERLEAVED,
}


class RopeConfigError(ValueError):
    """A rotary configuration that violates a constraint of the spec; the message names it."""


@dataclass(frozen=True)
class Scaling:
    """One ``rope_scaling`` block. Fields a type does not use keep their defaults."""

    rope_type: str
    factor: float = 1.0
    original_max_position_embeddings: int | None = None
    low_freq_factor: float | None = None  # llama3
    high_freq_factor: float | None = None  # llama3
    beta_fast: float = 32.0  # yarn
    beta_slow: float = 1.0  # yarn
    mscale: float | None = None  # yarn (DeepSeek)
    mscale_all_dim: float | None = None  # yarn (DeepSeek)
    attention_factor: float | None = None  # yarn, longrope: overrides the default factor
    truncate: bool = True  # yarn
    short_factor: tuple[float, ...] = ()  # longrope
    long_factor: tuple[float, ...] = ()  # longrope


@dataclass(frozen=True)
class RopeConfig:
    """What the rotation of one model needs. ``name`` and ``model_type`` only say where it came from."""

    head_dim: int
    rotary_dim: int
    base: float = 10000.0
    layout: str = HALF_SPLIT
    max_position_embeddings: int = 4096
    scaling: Scaling | None = None
    name: str = ""
    model_type: str = ""
    source: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        validate_config(self)

    @property
    def rope_type(self) -> str:
        return self.scaling.rope_type if self.scaling else DEFAULT

    @property
    def partial(self) -> bool:
        return self.rotary_dim < self.head_dim

    @property
    def original_max(self) -> int:
        """L_orig: the pre-training context the scaling extends (max_position_embeddings when unscaled)."""
        s = self.scaling
        if s is not None and s.original_max_position_embeddings is not None:
            return s.original_max_position_embeddings
        return self.max_position_embeddings

    def __str__(self) -> str:
        what = self.name or self.rope_type
        if self.scaling and self.name and not self.name.endswith(self.rope_type):
            what += f"({self.rope_type})"
        dims = f"D{self.head_dim}" + (f"/rot{self.rotary_dim}" if self.partial else "")
        return f"{what} {dims} base={self.base:g} {self.layout}"


def with_scaling(config: RopeConfig, scaling: Scaling | None, name: str = "") -> RopeConfig:
    return replace(config, scaling=scaling, name=name or config.name)


# ---- validation ------------------------------------------------------------------------------------------------

def validate_config(c: RopeConfig) -> None:
    """Reject a configuration the spec does not define, naming the constraint and the values given."""
    if c.layout not in LAYOUTS:
        raise RopeConfigError(f"layout {c.layout!r} is not one of {LAYOUTS}")
    if not 0 < c.rotary_dim <= c.head_dim:
        raise RopeConfigError(f"rotary_dim must be in (0, head_dim={c.head_dim}]; got {c.rotary_dim}")
    if c.rotary_dim % 2:
        raise RopeConfigError(f"rotary_dim must be even (it is rotated in pairs); got {c.rotary_dim}")
    if not c.base > 1:
        raise RopeConfigError(f"base (rope_theta) must be > 1; got {c.base}")
    if c.max_position_embeddings < 1:
        raise RopeConfigError(f"max_position_embeddings must be >= 1; got {c.max_position_embeddings}")
    s = c.scaling
    if s is None:
        return
    if s.rope_type not in SCALINGS:
        raise RopeConfigError(f"rope_type {s.rope_type!r} is not one of {(DEFAULT, *SCALINGS)}")
    if s.rope_type != "longrope" and not s.factor >= 1:
        raise RopeConfigError(f"{s.rope_type} factor must be >= 1; got {s.factor}")
    if s.rope_type in ("yarn", "llama3", "longrope") and s.original_max_position_embeddings is None:
        raise RopeConfigError(f"{s.rope_type} needs original_max_position_embeddings")
    if s.rope_type == "ntk" and c.rotary_dim <= 2:
        raise RopeConfigError(f"ntk needs rotary_dim > 2 (the exponent is d/(d-2)); got {c.rotary_dim}")
    if s.rope_type == "llama3":
        if s.low_freq_factor is None or s.high_freq_factor is None:
            raise RopeConfigError("llama3 needs low_freq_factor and high_freq_factor")
        if not s.high_freq_factor > s.low_freq_factor:
            raise RopeConfigError(f"llama3 needs high_freq_factor > low_freq_factor; got high "
                                  f"{s.high_freq_factor}, low {s.low_freq_factor}")
    if s.rope_type == "longrope":
        for which, factors in (("short_factor", s.short_factor), ("long_factor", s.long_factor)):
            if len(factors) != c.rotary_dim // 2:
                raise RopeConfigError(f"longrope {which} has {len(factors)} entries but rotary_dim "
                                      f"{c.rotary_dim} has {c.rotary_dim // 2} pairs")
            if not all(f > 0 for f in factors):
                raise RopeConfigError(f"longrope {which} entries must be > 0")


def validate_positions(positions: Any, tokens: int) -> np.ndarray:
    """Integer positions, one per token, as an int64 array."""
    pos = np.asarray(positions)
    if pos.ndim != 1 or pos.shape[0] != tokens:
        raise RopeConfigError(f"positions must be one integer per token: {tokens} tokens, positions of shape "
                              f"{pos.shape}")
    if pos.size and not np.issubdtype(pos.dtype, np.integer):
        raise RopeConfigError(f"positions must be integers; got dtype {pos.dtype}")
    return pos.astype(np.int64)


# ---- reading config.json -----------------------------------------------------------------------------------------

def rope_config_from_hf(config: dict[str, Any], name: str = "", layout: str | None = None) -> RopeConfig:
    """The rotary configuration of a Hugging Face ``config.json`` dict.

    Reads ``head_dim`` (else hidden_size / num_attention_heads; DeepSeek's rotary part is
    ``qk_rope_head_dim``), ``partial_rotary_factor`` or GPT-J's ``rotary_dim``, ``rope_theta`` (default
    10000), ``rope_scaling`` (or v5's ``rope_parameters``; ``type`` or ``rope_type``) and Phi-3's top-level
    ``original_max_position_embeddings``. The layout comes from the model type unless given.
    """
    model_type = str(config.get("model_type", ""))
    if config.get("qk_rope_head_dim"):
        head_dim = int(config["qk_rope_head_dim"])
    elif config.get("head_dim"):
        head_dim = int(config["head_dim"])
    else:
        head_dim = int(config["hidden_size"]) // int(config["num_attention_heads"])
    params = dict(config.get("rope_scaling") or config.get("rope_parameters") or {})
    if config.get("rotary_dim"):
        rotary_dim = int(config["rotary_dim"])
    else:
        rotary_dim = int(head_dim * float(params.get("partial_rotary_factor", config.get("partial_rotary_factor", 1))))
    base = float(params.get("rope_theta", config.get("rope_theta", 10000.0)))
    if layout is None:
        layout = LAYOUT_BY_MODEL_TYPE.get(model_type, HALF_SPLIT)
    rope_type = str(params.get("rope_type", params.get("type", DEFAULT)))
    rope_type = ALIASES.get(rope_type, rope_type)
    max_pos = int(config.get("max_position_embeddings", 4096))
    scaling = None
    if rope_type != DEFAULT:
        original = params.get("original_max_position_embeddings", config.get("original_max_position_embeddings"))
        if original is None and rope_type in ("yarn", "llama3", "longrope"):
            original = max_pos
        factor = params.get("factor")
        if factor is None:
            factor = max_pos / int(original) if original else 1.0
        scaling = Scaling(
            rope_type, float(factor), None if original is None else int(original),
            low_freq_factor=_opt(params.get("low_freq_factor")), high_freq_factor=_opt(params.get("high_freq_factor")),
            beta_fast=float(params.get("beta_fast") or 32), beta_slow=float(params.get("beta_slow") or 1),
            mscale=_opt(params.get("mscale")), mscale_all_dim=_opt(params.get("mscale_all_dim")),
            attention_factor=_opt(params.get("attention_factor")), truncate=bool(params.get("truncate", True)),
            short_factor=tuple(float(x) for x in params.get("short_factor", ())),
            long_factor=tuple(float(x) for x in params.get("long_factor", ())))
        if rope_type == "longrope" and "factor" not in params:
            scaling = replace(scaling, factor=max_pos / scaling.original_max_position_embeddings)  # type: ignore[operator]
    return RopeConfig(head_dim, rotary_dim, base, layout, max_pos, scaling, name, model_type, source=dict(config))


def config_variant(preset: str, label: str, rope_scaling: dict[str, Any] | None, layout: str | None = None,
                   **fields: Any) -> RopeConfig:
    """A vendored config.json with its ``rope_scaling`` replaced (None: removed) and other fields changed.

    For the scalings and layouts no vendored model uses; the result keeps the edited dict as its source,
    so an adapter reads what a library would read from such a file.
    """
    from reference.model_config import load_config

    data = {**load_config(preset), **fields}
    data.pop("rope_scaling", None)
    if rope_scaling is not None:
        data["rope_scaling"] = dict(rope_scaling)
    return rope_config_from_hf(data, label, layout)


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def load_rope_config(name: str) -> RopeConfig:
    """A vendored preset from reference/data/models (see SOURCES.json there)."""
    from reference.model_config import load_config

    return rope_config_from_hf(load_config(name), name)


# ---- frequencies -------------------------------------------------------------------------------------------------

def default_inv_freq(base: float, rotary_dim: int) -> np.ndarray:
    """θ_i = base^(−2i/d), i = 0 … d/2 − 1."""
    return np.array([base ** (-2.0 * i / rotary_dim) for i in range(rotary_dim // 2)], dtype=np.float64)


def ntk_aware_base(base: float, alpha: float, rotary_dim: int) -> float:
    """NTK-aware scaling: base' = base · α^(d/(d−2))."""
    return base * alpha ** (rotary_dim / (rotary_dim - 2))


def dynamic_alpha(factor: float, seq_len: int, max_position_embeddings: int) -> float:
    """Dynamic NTK's α for the current length: s·L/L_max − (s − 1) beyond L_max, else 1."""
    if seq_len <= max_position_embeddings:
        return 1.0
    return factor * seq_len / max_position_embeddings - (factor - 1.0)


def yarn_get_mscale(scale: float, mscale: float = 1.0) -> float:
    """0.1·mscale·ln(s) + 1 for s > 1, else 1 (YaRN's √(1/t), DeepSeek's ``yarn_get_mscale``)."""
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def yarn_correction_dim(rotations: float, rotary_dim: int, base: float, original_max: int) -> float:
    """The (fractional) pair index i at which L_orig·θ_i / 2π = ``rotations``."""
    return rotary_dim * math.log(original_max / (rotations * 2 * math.pi)) / (2 * math.log(base))


def yarn_ramp_range(s: Scaling, rotary_dim: int, base: float) -> tuple[float, float]:
    """(low, high): pairs up to ``low`` extrapolate (w = 1), from ``high`` on interpolate (w = 0)."""
    assert s.original_max_position_embeddings is not None
    low = yarn_correction_dim(s.beta_fast, rotary_dim, base, s.original_max_position_embeddings)
    high = yarn_correction_dim(s.beta_slow, rotary_dim, base, s.original_max_position_embeddings)
    if s.truncate:
        low, high = math.floor(low), math.ceil(high)
    return max(low, 0), min(high, rotary_dim - 1)


def yarn_extrapolation_weights(s: Scaling, rotary_dim: int, base: float) -> np.ndarray:
    """w_i = 1 − clip((i − low)/(high − low), 0, 1) per pair."""
    low, high = yarn_ramp_range(s, rotary_dim, base)
    if high == low:
        high += 0.001  # as the authors' code: a one-pair ramp is a step
    return np.array([1.0 - min(max((i - low) / (high - low), 0.0), 1.0) for i in range(rotary_dim // 2)])


def llama3_inv_freq(theta: np.ndarray, s: Scaling) -> np.ndarray:
    """Llama 3.1's ``apply_scaling``, pair by pair."""
    assert s.original_max_position_embeddings is not None and s.low_freq_factor and s.high_freq_factor
    old, low, high = s.original_max_position_embeddings, s.low_freq_factor, s.high_freq_factor
    low_freq_wavelen, high_freq_wavelen = old / low, old / high
    out = []
    for freq in theta:
        wavelen = 2 * math.pi / freq
        if wavelen < high_freq_wavelen:
            out.append(freq)
        elif wavelen > low_freq_wavelen:
            out.append(freq / s.factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append((1 - smooth) * freq / s.factor + smooth * freq)
    return np.array(out)


def effective_base(config: RopeConfig, seq_len: int | None = None) -> float:
    """The base the frequencies are computed from (changed by ``ntk`` and ``dynamic`` only)."""
    s = config.scaling
    if s is not None and s.rope_type == "ntk":
        return ntk_aware_base(config.base, s.factor, config.rotary_dim)
    if s is not None and s.rope_type == "dynamic":
        length = config.max_position_embeddings if seq_len is None else seq_len
        return ntk_aware_base(config.base, dynamic_alpha(s.factor, length, config.max_position_embeddings),
                              config.rotary_dim)
    return config.base


def uses_long_factors(config: RopeConfig, seq_len: int | None) -> bool:
    """LongRoPE: the long factors apply when the current length exceeds L_orig."""
    return seq_len is not None and seq_len > config.original_max


def inv_freq(config: RopeConfig, seq_len: int | None = None) -> np.ndarray:
    """θ'_i of every rotated pair for a call whose current length is ``seq_len`` (None: at most L_orig)."""
    s, d = config.scaling, config.rotary_dim
    theta = default_inv_freq(effective_base(config, seq_len), d)
    if s is None or s.rope_type in ("ntk", "dynamic"):
        return theta
    if s.rope_type == "linear":
        return theta / s.factor
    if s.rope_type == "yarn":
        w = yarn_extrapolation_weights(s, d, config.base)
        return (1 - w) * theta / s.factor + w * theta
    if s.rope_type == "llama3":
        return llama3_inv_freq(theta, s)
    if s.rope_type == "longrope":
        factors = s.long_factor if uses_long_factors(config, seq_len) else s.short_factor
        return theta / np.asarray(factors, dtype=np.float64)
    raise RopeConfigError(f"rope_type {s.rope_type!r} has no frequencies")


def attention_factor(config: RopeConfig) -> float:
    """``a``: the factor on the rotated part of q and of k (so the logits scale by a²)."""
    s = config.scaling
    if s is None or s.rope_type not in ("yarn", "longrope"):
        return 1.0
    if s.attention_factor is not None:
        return s.attention_factor
    if s.rope_type == "yarn":
        return yarn_get_mscale(s.factor, 1.0 if s.mscale is None else s.mscale) / \
            yarn_get_mscale(s.factor, 0.0 if s.mscale_all_dim is None else s.mscale_all_dim)
    scale = s.factor
    if scale <= 1:
        return 1.0
    return math.sqrt(1 + math.log(scale) / math.log(config.original_max))


def softmax_scale_multiplier(config: RopeConfig) -> float:
    """What DeepSeek's attention multiplies 1/√d_qk by for YaRN with ``mscale_all_dim``: mscale_all_dim's mscale²."""
    s = config.scaling
    if s is None or s.rope_type != "yarn" or not s.mscale_all_dim:
        return 1.0
    return yarn_get_mscale(s.factor, s.mscale_all_dim) ** 2


def logit_scale(config: RopeConfig) -> float:
    """The total factor on q·kᵀ that the scaling causes: a² times the softmax-scale multiplier (1/t for YaRN)."""
    return attention_factor(config) ** 2 * softmax_scale_multiplier(config)


# ---- the rotation --------------------------------------------------------------------------------------------------

def current_length(positions: Any) -> int:
    pos = np.asarray(positions)
    return int(pos.max()) + 1 if pos.size else 0


def pair_indices(rotary_dim: int, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """(a, b): the two dimensions of each pair i."""
    i = np.arange(rotary_dim // 2)
    if layout == HALF_SPLIT:
        return i, i + rotary_dim // 2
    if layout == INTERLEAVED:
        return 2 * i, 2 * i + 1
    raise RopeConfigError(f"layout {layout!r} is not one of {LAYOUTS}")


def angles(positions: Any, config: RopeConfig, seq_len: int | None = None) -> np.ndarray:
    """m·θ'_i [T, d/2] in float64 (integer positions are exact in float64 up to 2^53)."""
    pos = np.asarray(positions, dtype=np.int64)
    length = current_length(pos) if seq_len is None else seq_len
    return pos.astype(np.float64)[:, None] * inv_freq(config, length)[None, :]


def apply(x: np.ndarray, positions: Any, config: RopeConfig, seq_len: int | None = None) -> np.ndarray:
    """Rotate x [T, H, head_dim] (float64) at ``positions`` [T]; ``seq_len`` defaults to max(positions) + 1."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != config.head_dim:
        raise RopeConfigError(f"x must be [tokens, heads, head_dim={config.head_dim}]; got shape {x.shape}")
    pos = validate_positions(positions, x.shape[0])
    phi = angles(pos, config, seq_len)[:, None, :]  # [T, 1, d/2]
    a_idx, b_idx = pair_indices(config.rotary_dim, config.layout)
    xa, xb = x[..., a_idx], x[..., b_idx]
    scale = attention_factor(config)
    out = x.copy()
    out[..., a_idx] = scale * (xa * np.cos(phi) - xb * np.sin(phi))
    out[..., b_idx] = scale * (xb * np.cos(phi) + xa * np.sin(phi))
    return out


def rotation_matrix(position: int, config: RopeConfig, seq_len: int | None = None) -> np.ndarray:
    """R [head_dim, head_dim] with apply(x)[t, h] = R @ x[t, h] at this position (attention factor included)."""
    eye = np.eye(config.head_dim)[:, None, :]  # head_dim "tokens", one head, the unit vectors
    length = current_length([position]) if seq_len is None else seq_len
    rotated = apply(eye, [position] * config.head_dim, config, seq_len=length)
    return rotated[:, 0, :].T

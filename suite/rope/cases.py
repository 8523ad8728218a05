"""The rope area's configurations and case strategies.

Configurations are the vendored config.json presets (reference/data/models) and variants of them for the
scalings, layouts and partial rotary no vendored model uses (``reference.rope.config_variant``: the edited
dict stays the source, so adapters read it as a library reads a config.json). The pool is finite, so
libraries that build per-config caches (vLLM's cos/sin tables) build each one once.

Positions are drawn per configuration: half the time inside the model's trained range, otherwise anywhere
up to 128K (the long-context regime the scalings exist for), in the shapes real calls take: a prefill from
0, a prefill at an offset, one decode token, a packed batch restarting at 0, scattered ids.
"""

from __future__ import annotations

from itertools import pairwise

from hypothesis import strategies as st

from impls.rope.api import DTYPES, RopeCase
from impls.tensors import default_device
from reference import rope as ref
from reference.rope import RopeConfig

DEVICE = default_device()
MAX_POSITION = 131072  # 128K

PRESETS = {name: ref.load_rope_config(name) for name in (
    "llama-2-7b", "llama-3-8b", "gemma-2-9b", "llama-3.1-8b", "qwen2.5-7b-instruct-yarn", "deepseek-v3",
    "phi-3.5-mini-instruct")}
VARIANTS = {c.name: c for c in (
    ref.config_variant("llama-2-7b", "llama-2-7b-linear-4", {"rope_type": "linear", "factor": 4.0}),
    ref.config_variant("llama-2-7b", "llama-2-7b-dynamic-2", {"rope_type": "dynamic", "factor": 2.0}),
    ref.config_variant("llama-2-7b", "llama-2-7b-ntk-8", {"rope_type": "ntk", "factor": 8.0}),
    ref.config_variant("llama-2-7b", "llama-2-7b-interleaved", None, layout=ref.INTERLEAVED),
    ref.config_variant("llama-3-8b", "llama-3-8b-partial-0.5", None, partial_rotary_factor=0.5),
    ref.config_variant("llama-2-7b", "glm-style-interleaved-partial-0.5", None, layout=ref.INTERLEAVED,
                       partial_rotary_factor=0.5),
    ref.config_variant("llama-3-8b", "llama-3-8b-yarn-4-untruncated-partial-0.75",
                       {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8192,
                        "truncate": False}, partial_rotary_factor=0.75, max_position_embeddings=32768),
    ref.config_variant("llama-3-8b", "llama-3-8b-dynamic-4-interleaved", {"rope_type": "dynamic", "factor": 4.0},
                       layout=ref.INTERLEAVED),
    ref.config_variant("llama-3.1-8b", "llama-3.1-8b-interleaved-partial-0.5",
                       PRESETS["llama-3.1-8b"].source["rope_scaling"], layout=ref.INTERLEAVED,
                       partial_rotary_factor=0.5),
)}
CONFIGS: dict[str, RopeConfig] = {**PRESETS, **VARIANTS}
STATIC = {n: c for n, c in CONFIGS.items() if c.rope_type not in ref.LENGTH_DEPENDENT}
LENGTH_DEPENDENT = {n: c for n, c in CONFIGS.items() if c.rope_type in ref.LENGTH_DEPENDENT}


@st.composite
def positions(draw: st.DrawFn, config: RopeConfig, tokens: int) -> tuple[int, ...]:
    top = config.max_position_embeddings if draw(st.booleans()) else MAX_POSITION
    top = max(top, tokens)
    shape = draw(st.sampled_from(["prefill", "offset", "decode", "packed", "scattered"]))
    if shape == "prefill":
        return tuple(range(tokens))
    if shape in ("offset", "decode"):
        start = draw(st.integers(0, top - tokens))
        return tuple(range(start, start + tokens))
    if shape == "packed":
        cuts = sorted(draw(st.sets(st.integers(1, tokens - 1), max_size=3))) if tokens > 1 else []
        bounds = [0, *cuts, tokens]
        return tuple(p for a, b in pairwise(bounds) for p in range(b - a))
    return tuple(draw(st.lists(st.integers(0, top - 1), min_size=tokens, max_size=tokens)))


def heads(draw: st.DrawFn) -> tuple[int, int]:
    kv = draw(st.sampled_from([1, 2]))
    return kv * draw(st.sampled_from([1, 2, 4])), kv


@st.composite
def rotation_cases(draw: st.DrawFn, dtype: str) -> RopeCase:
    config = CONFIGS[draw(st.sampled_from(tuple(CONFIGS)))]
    tokens = draw(st.one_of(st.just(1), st.integers(2, 24)))  # one decode token is the commonest call
    hq, hkv = heads(draw)
    return RopeCase(tokens, hq, hkv, dtype, config, draw(positions(config, tokens)), DEVICE,
                    in_place=draw(st.booleans()), fused_qkv=draw(st.booleans()))


@st.composite
def relative_cases(draw: st.DrawFn) -> RopeCase:
    """Positions p then p + s (the check compares the two halves' logits)."""
    config = CONFIGS[draw(st.sampled_from(tuple(CONFIGS)))]
    half = draw(st.integers(1, 6))
    first = draw(positions(config, half))
    room = max(max(first), config.max_position_embeddings, 2) if draw(st.booleans()) else MAX_POSITION
    shift = draw(st.integers(1, max(1, room - max(first) - 1)))
    hq, hkv = heads(draw)
    return RopeCase(2 * half, hq, hkv, draw(st.sampled_from(DTYPES)), config,
                    first + tuple(p + shift for p in first), DEVICE)


@st.composite
def plain_cases(draw: st.DrawFn, pool: tuple[str, ...], round_trip: bool = False) -> RopeCase:
    """Any dtype, any config of ``pool``: for the norm and inverse properties."""
    config = CONFIGS[draw(st.sampled_from(pool))]
    tokens = draw(st.integers(1, 12))
    hq, hkv = heads(draw)
    return RopeCase(tokens, hq, hkv, draw(st.sampled_from(DTYPES)), config, draw(positions(config, tokens)), DEVICE,
                    round_trip=round_trip)


@st.composite
def schedule_cases(draw: st.DrawFn) -> RopeCase:
    """Successive calls of growing and shrinking lengths on one embedding (dynamic NTK, LongRoPE)."""
    config = CONFIGS[draw(st.sampled_from(tuple(LENGTH_DEPENDENT)))]
    around = config.original_max if config.rope_type == "longrope" else config.max_position_embeddings
    lengths = st.one_of(st.integers(1, 4 * around), st.sampled_from([around - 1, around, around + 1, 2 * around]))
    schedule = tuple(draw(st.lists(lengths, min_size=2, max_size=4)))
    hq, hkv = heads(draw)
    return RopeCase(draw(st.integers(1, 4)), hq, hkv, "float32", config, (), DEVICE, schedule=schedule)


@st.composite
def frequency_cases(draw: st.DrawFn) -> RopeCase:
    config = CONFIGS[draw(st.sampled_from(tuple(CONFIGS)))]
    around = config.original_max
    length = draw(st.one_of(st.integers(1, MAX_POSITION), st.sampled_from([around, around + 1, 2 * around])))
    return RopeCase(1, 1, 1, "float32", config, (length - 1,), DEVICE, needs_frequencies=True)

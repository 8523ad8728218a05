"""The cases the KV-cache area draws: measurable versions of the vendored configs, and planner questions.

:func:`measurable` shrinks a preset to what a CPU can build in milliseconds without changing what its cache
depends on: the head_dim stays, the kv heads and the query heads per kv head are capped at 2, the layers are cut
to one of each kind (in the order the model has them), experts, vocabulary and MLP are made small, and a sliding
window is shrunk to 6 so that a short prompt crosses it. The reference sizes exactly the shrunk config, so any
consistent shrink is fair; a preset whose shrunk config would change its layer kinds is refused loudly. It works
for any valid vendored config, including ones added later.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from hypothesis import strategies as st

from impls.kv_cache.api import KvCase, PlanCase
from reference.kv_plan import hybrid_block_size
from reference.model_config import (
    ALTERNATING_MODEL_TYPES,
    MAMBA,
    MLA,
    SLIDING,
    load_config,
    preset_names,
    shape_from_config,
)

PRESETS = tuple(preset_names())
VOCAB = 128
WINDOW = 6  # a shrunk sliding window: prompts of 7+ tokens cross it
HELD_DTYPES = ("float32", "float16", "bfloat16", "float8_e4m3fn")
SMALL = {  # applied only where the config has the key: experts, low-rank projections, the Mamba dt rank
    "num_local_experts": 2, "num_experts": 2, "n_routed_experts": 4, "num_experts_per_tok": 2,
    "moe_intermediate_size": 32, "q_lora_rank": 32, "n_group": 1, "topk_group": 1, "first_k_dense_replace": 1,
    "mamba_dt_rank": 8, "n_shared_experts": 1,
}
WITH = {"n_routed_experts": {"n_group": 1, "topk_group": 1}}  # experts routed in groups: one group of all


def _shrunk_layers(config: dict[str, Any], name: str) -> dict[str, Any]:
    """Fields that keep one layer of each kind, in the model's order."""
    shape = shape_from_config(config, name)
    model_type = config.get("model_type", "")
    if config.get("layer_types") is not None:
        first: dict[str, str] = {}
        for t in config["layer_types"]:
            first.setdefault(t, t)
        return {"num_hidden_layers": len(first), "layer_types": list(first)}
    if model_type == "jamba":
        return {"num_hidden_layers": 2, "attn_layer_period": 2, "attn_layer_offset": 1, "expert_layer_period": 2,
                "expert_layer_offset": 1}
    if model_type in ALTERNATING_MODEL_TYPES:
        return {"num_hidden_layers": 2}
    if model_type == "qwen2" and SLIDING in shape.layer_kinds:
        both = len(set(shape.layer_kinds)) > 1
        return {"num_hidden_layers": 2, "max_window_layers": 1 if both else 0}
    return {"num_hidden_layers": 2}


@cache
def measurable(name: str) -> dict[str, Any]:
    """A preset shrunk to a measurable size with the same layer kinds (see the module docstring)."""
    config = config_of(name)
    shape = shape_from_config(config, name)
    kv = min(shape.num_kv_heads, 2)
    heads = kv * min(shape.num_heads // shape.num_kv_heads, 2)
    small = {**config, "num_attention_heads": heads, "num_key_value_heads": kv, "intermediate_size": 64,
             "vocab_size": VOCAB, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}  # ids inside the vocabulary
    if MLA in shape.layer_kinds:
        small["hidden_size"] = 64
    else:  # hidden = heads × head_dim, so a model that ignores head_dim still gets the real one
        small |= {"head_dim": shape.head_dim, "hidden_size": heads * shape.head_dim}
    small |= {k: v for k, v in SMALL.items() if k in config}
    small |= {k: v for key, more in WITH.items() if key in config for k, v in more.items()}
    small |= _shrunk_layers(config, name)
    if shape.sliding_window is not None:
        small["sliding_window"] = WINDOW
    got = shape_from_config(small, name)
    if set(got.layer_kinds) != set(shape.layer_kinds) or (got.head_dim != shape.head_dim and MLA not in got.kinds):
        raise AssertionError(f"shrinking {name} changed its shape: {shape.kinds} -> {got.kinds}, head_dim "
                             f"{shape.head_dim} -> {got.head_dim}; teach suite/kv_cache/cases.py its layer rule")
    return small


@cache
def config_of(name: str) -> dict[str, Any]:
    """A preset's config, read once (callers must not change it)."""
    return load_config(name)


@cache
def held_case(name: str, batch: int, prompt: int, steps: int, dtype: str) -> KvCase:
    return KvCase(name, batch, prompt, steps, dtype, measurable(name))


@st.composite
def held_cases(draw: st.DrawFn, dtype: str) -> KvCase:
    name = draw(st.sampled_from(PRESETS))
    return held_case(name, draw(st.integers(1, 2)), draw(st.integers(1, 3 * WINDOW)), draw(st.integers(0, 3)),
                     dtype)


# ---- planner questions --------------------------------------------------------------------------------------------

PLAN_DTYPES = ("bfloat16", "float16", "float32", "float8_e4m3fn")
GB = 10**9


@cache
def _shape(name: str) -> Any:
    return shape_from_config(config_of(name), name)


@cache
def plan_case(name: str, *, dtype: str = "bfloat16", block_size: int | None = None, max_model_len: int = 8192,
              kv_budget: int = 40 * GB, in_flight_tokens: int = 4096, hybrid_groups: bool = True,
              prefix_tokens: int = 0, draft: str = "") -> PlanCase:
    """A planner question on the real (unshrunk) preset; ``block_size`` None: the engine's choice (16, or the
    size that lets an attention page cover a Mamba page)."""
    model_dtype = dtype if dtype in ("float32", "float16", "bfloat16") else "bfloat16"
    if block_size is None:
        block_size = hybrid_block_size(_shape(name), dtype, 16, (model_dtype, model_dtype))
    return PlanCase(name, dtype, block_size, max_model_len, kv_budget, config_of(name), model_dtype=model_dtype,
                    in_flight_tokens=in_flight_tokens, hybrid_groups=hybrid_groups, prefix_tokens=prefix_tokens,
                    draft=draft, draft_config=config_of(draft) if draft else None)


@st.composite
def plan_cases(draw: st.DrawFn) -> PlanCase:
    name = draw(st.sampled_from(PRESETS))
    dtype = draw(st.sampled_from(PLAN_DTYPES))
    block = draw(st.one_of(st.none(), st.sampled_from([1, 8, 16, 32, 64, 128]), st.integers(1, 256)))
    length = draw(st.one_of(st.sampled_from([1, 15, 16, 17, 4095, 4096, 8192, 32768, 131072]),
                            st.integers(1, 200_000)))
    budget = draw(st.integers(20, 37).map(lambda e: 2**e)) + draw(st.integers(0, 2**20))
    in_flight = 2 * draw(st.one_of(st.just(2048), st.integers(128, 8192)))
    hybrid = draw(st.booleans())
    draft = draw(st.one_of(st.just(""), st.sampled_from(PRESETS)))
    if draft and MAMBA in _shape(draft).layer_kinds:
        draft = ""
    return plan_case(name, dtype=dtype, block_size=block, max_model_len=length, kv_budget=budget,
                     in_flight_tokens=in_flight, hybrid_groups=hybrid, draft=draft)


def pinned_plans() -> tuple[PlanCase, ...]:
    """Every vendored config at the engine's defaults, then the traps: an unaligned hybrid block, the hybrid
    manager off, a draft model, an fp8 KV, a window that never slides inside max_model_len, a budget too small."""
    traps = [plan_case("jamba-v0.1", block_size=16), plan_case("gemma-2-9b", hybrid_groups=False),
             plan_case("llama-3-70b", draft="llama-3-8b"), plan_case("llama-3-8b", dtype="float8_e4m3fn"),
             plan_case("mistral-7b-v0.1", max_model_len=32768), plan_case("llama-3.1-405b", kv_budget=10**9)]
    return tuple(plan_case(name) for name in PRESETS) + tuple(traps)

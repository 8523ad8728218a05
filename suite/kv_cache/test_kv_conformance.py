"""Real caches against the reference: the bytes they hold for a prefilled batch, on each preset.

Each preset is made measurable by shrinking what the cache does not depend on (hidden size, MLP,
vocabulary, experts) and the layer count and sliding window (so a short prefill crosses it); the
reference sizes exactly the same config. Differences are findings, declared as expected failures.
"""

from __future__ import annotations

from typing import Any

import pytest

from impls.kv_cache.api import KvCacheImpl, KvCase
from reference.kv_cache import cache_bytes, paged_sequence_bytes
from reference.model_config import load_config, preset_names, shape_from_config

SHRINK: dict[str, dict[str, Any]] = {
    "jamba": {"num_hidden_layers": 8, "num_experts": 2, "mamba_dt_rank": 8},
    "deepseek_v3": {"num_hidden_layers": 2, "first_k_dense_replace": 1, "n_routed_experts": 4,
                    "num_experts_per_tok": 2, "moe_intermediate_size": 32, "q_lora_rank": 32, "n_group": 1,
                    "topk_group": 1},
    "mixtral": {"num_hidden_layers": 2, "num_local_experts": 2},
    "gemma2": {"num_hidden_layers": 4},
    # Phi3Config checks the LongRoPE factor lists against hidden_size / heads (not head_dim): keep that ratio 96
    "phi3": {"num_hidden_layers": 2, "hidden_size": 192, "num_attention_heads": 2, "num_key_value_heads": 2,
             "pad_token_id": 0},  # and its default pad id (32000) must fit the shrunk vocabulary
}


def measurable(name: str) -> dict[str, Any]:
    config = load_config(name)
    small = {**config, "hidden_size": 256 if config["num_attention_heads"] > 64 else 64, "intermediate_size": 64, "vocab_size": 128, "max_position_embeddings": 4096}
    if config["model_type"] != "deepseek_v3":  # keep the real head_dim, not 64 / heads
        small["head_dim"] = shape_from_config(config, name).head_dim
    small |= SHRINK.get(config["model_type"], {"num_hidden_layers": 2})
    if config.get("sliding_window") and config["model_type"] != "qwen2":
        small["sliding_window"] = 6
    return small


@pytest.mark.parametrize("batch,tokens,kv_dtype", [(1, 5, "bf16"), (2, 13, "bf16"), (2, 13, "fp32")])
@pytest.mark.parametrize("model", preset_names())
def test_cache_bytes_match_the_reference(kv_cache_impl: KvCacheImpl, model: str, batch: int, tokens: int,
                                         kv_dtype: str) -> None:
    case = KvCase(model, batch, tokens, kv_dtype, measurable(model))
    reasons = kv_cache_impl.unsupported(case)
    if reasons:
        pytest.skip(f"{kv_cache_impl.name}: " + "; ".join(reasons))
    shape = shape_from_config(case.config, model)
    block_size = getattr(kv_cache_impl, "block_size", None)  # paged implementations hold whole blocks
    want = batch * paged_sequence_bytes(shape, tokens, block_size, kv_dtype) if block_size else \
        cache_bytes(shape, batch, tokens, kv_dtype)
    got = kv_cache_impl.cache_bytes(case)
    known = kv_cache_impl.expected_failure("test_cache_bytes_match_the_reference", case)
    if known is not None:
        if got == want:
            pytest.fail(f"stale expected failure: {kv_cache_impl.name} now matches on {case} ({known.link})")
        pytest.xfail(f"{known.reason} (measured {got:,} B, reference {want:,} B)")
    assert got == want, f"{kv_cache_impl.name} holds {got:,} B for {case}; the reference says {want:,} B"

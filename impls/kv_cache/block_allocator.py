"""The in-repo paged block allocator's accounting, as a KV-cache implementation.

Every sequence gets whole blocks of ``block_size`` token slots; one slot holds a token's K and V for
every layer that caches (its byte size is computed here from the config). The allocator keeps every
block of a sequence, so models with sliding-window layers are declared unsupported: it has no
per-layer eviction.
"""

from __future__ import annotations

from typing import Any

from impls.base import Requirements
from impls.kv_cache.api import KvCacheImpl, KvCase
from impls.registry import register

ELEMENT_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "fp8": 1}


def slot_bytes(config: dict[str, Any], kv_dtype: str) -> int:
    """K+V bytes of one token over all caching layers, straight from the config fields."""
    layers = config["num_hidden_layers"]
    element = ELEMENT_BYTES[kv_dtype]
    if config["model_type"] in ("deepseek_v2", "deepseek_v3"):  # one latent vector, no separate K and V
        return layers * (config["kv_lora_rank"] + config["qk_rope_head_dim"]) * element
    if config["model_type"] == "jamba":
        layers = sum(1 for i in range(layers) if i % config["attn_layer_period"] == config["attn_layer_offset"])
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    return layers * 2 * config.get("num_key_value_heads", heads) * head_dim * element


class BlockAllocatorAccounting(KvCacheImpl):
    name = "block-allocator"
    description = "impls.paged.allocator.BlockAllocator: blocks_used × block_size × bytes per slot"
    requires = Requirements(modules=("torch",))
    block_size = 16

    def unsupported(self, case: KvCase) -> list[str]:
        reasons = []
        if case.kv_dtype not in ELEMENT_BYTES:
            reasons.append(f"no element size for {case.kv_dtype} (scaled formats are not modelled here)")
        sliding = case.config.get("sliding_window") and (case.config["model_type"] in ("mistral", "gemma2") or
                                                         case.config.get("use_sliding_window"))
        if sliding:
            reasons.append("the allocator keeps every block of a sequence; it has no sliding-window eviction")
        return reasons

    def cache_bytes(self, case: KvCase) -> int:
        return self.allocator_for(case).bytes_used

    def allocator_for(self, case: KvCase) -> Any:
        from impls.paged.allocator import BlockAllocator

        per_sequence = -(-case.tokens // self.block_size)
        allocator = BlockAllocator(case.batch * per_sequence + 1, self.block_size, slot_bytes(case.config,
                                                                                              case.kv_dtype))
        for seq in range(case.batch):
            allocator.allocate(seq, case.tokens)
        return allocator


register(BlockAllocatorAccounting())

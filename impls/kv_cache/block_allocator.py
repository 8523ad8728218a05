"""The in-repo paged block allocator's accounting, as a KV-cache implementation.

Every sequence gets whole blocks of ``block_size`` token slots; one slot holds a token's K and V for every layer
that caches (its byte size is computed here from the config fields). The batch is allocated its prompt, then
appended one token per decode step; what is held is the allocator's ``bytes_used``. The allocator keeps every
block of a sequence (no per-layer eviction) and holds KV only, so sliding-window and Mamba models are declared
unsupported.
"""

from __future__ import annotations

from typing import Any

from impls.base import Requirements
from impls.kv_cache.api import Held, KvCacheImpl, KvCase, Snapshot
from impls.registry import register
from impls.tensors import torch_dtype

MLA_MODEL_TYPES = ("deepseek_v2", "deepseek_v3")


def slot_bytes(config: dict[str, Any], kv_dtype: str) -> int:
    """K+V bytes of one token over all caching layers, straight from the config fields."""
    layers = config["num_hidden_layers"]
    element = torch_dtype(kv_dtype).itemsize
    if config["model_type"] in MLA_MODEL_TYPES:  # one latent vector, no separate K and V
        return layers * (config["kv_lora_rank"] + config["qk_rope_head_dim"]) * element
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    return layers * 2 * (config.get("num_key_value_heads") or heads) * head_dim * element


class BlockAllocatorAccounting(KvCacheImpl):
    name = "block-allocator"
    description = "impls.paged.allocator.BlockAllocator: blocks_used × block_size × bytes per slot"
    requires = Requirements(modules=("torch",))
    block_size = 16
    dtypes = ("float32", "float16", "bfloat16")
    lacks = {"planner": "the allocator hands out blocks; it plans no capacity",
             "sliding": "the allocator keeps every block of a sequence; it has no sliding-window eviction",
             "hybrid": "the allocator holds KV blocks only; a Mamba layer's state lives elsewhere"}

    def measure(self, case: KvCase) -> list[Snapshot]:
        from impls.paged.allocator import BlockAllocator

        self.refuse(case)
        per_slot = slot_bytes(case.config, case.dtype)
        per_sequence = -(-case.max_cache_len // self.block_size)
        allocator = BlockAllocator(case.batch * per_sequence + 1, self.block_size, per_slot)
        kind = case.shape.layer_kinds[0]
        for seq in range(case.batch):
            allocator.allocate(seq, case.prompt)
        snapshots = [Snapshot(case.prompt, {kind: Held(allocator.bytes_used, case.batch * case.prompt * per_slot)})]
        for step in range(1, case.decode_steps + 1):
            for seq in range(case.batch):
                allocator.append(seq, 1)
            tokens = case.prompt + step
            snapshots.append(Snapshot(tokens, {kind: Held(allocator.bytes_used, case.batch * tokens * per_slot)}))
        return snapshots


    def decode_append(self, case: KvCase) -> tuple[Any, Any]:
        from impls.paged.allocator import BlockAllocator

        self.refuse(case)
        per_slot = slot_bytes(case.config, case.dtype)

        def make_inputs() -> tuple[Any, ...]:
            allocator = BlockAllocator(case.batch * (-(-(case.prompt + 64) // self.block_size)) + 1, self.block_size,
                                       per_slot)
            for seq in range(case.batch):
                allocator.allocate(seq, case.prompt)
            return (allocator,)

        def run(allocator: Any) -> None:
            for seq in range(case.batch):
                allocator.append(seq, 1)

        return make_inputs, run


register(BlockAllocatorAccounting())

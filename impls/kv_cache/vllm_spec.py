"""vLLM's KV-cache spec (``vllm.v1.kv_cache_interface``): the page size it gives a layer, times pages.

Each caching layer becomes a ``FullAttentionSpec`` (an MLA layer: one kv head of
``kv_lora_rank + qk_rope_head_dim`` with ``use_mla``); a sequence takes ceil(tokens / block_size) pages per
layer of ``page_size_bytes`` each. Sliding-window layers are left out: vLLM sizes them from the scheduler's
batch budget, which a single workload does not fix.
"""

from __future__ import annotations

from typing import Any

from impls.base import Requirements
from impls.kv_cache.api import KvCacheImpl, KvCase
from impls.registry import register

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "fp8": "float8_e4m3fn"}


class VllmKvSpec(KvCacheImpl):
    name = "vllm-kv-spec"
    description = "vllm.v1.kv_cache_interface page sizes × pages per sequence (block size 16)"
    requires = Requirements(modules=("vllm", "torch"))
    block_size = 16

    def unsupported(self, case: KvCase) -> list[str]:
        reasons = []
        if case.kv_dtype not in DTYPES:
            reasons.append(f"no torch dtype for {case.kv_dtype} here")
        if case.config.get("sliding_window") and (case.config["model_type"] in ("mistral", "gemma2") or
                                                  case.config.get("use_sliding_window")):
            reasons.append("vLLM sizes sliding-window layers from the scheduler's token budget, not one workload")
        if case.config["model_type"] == "jamba":
            reasons.append("hybrid Mamba models use vLLM's MambaSpec, not modelled by this adapter")
        return reasons

    def _spec(self, heads: int, head_size: int, dtype: Any, mla: bool) -> Any:
        from vllm.v1 import kv_cache_interface as kv

        fields = {"block_size": self.block_size, "num_kv_heads": heads, "head_size": head_size, "dtype": dtype}
        if mla and hasattr(kv, "MLAAttentionSpec"):
            return kv.MLAAttentionSpec(**fields)
        try:
            return kv.FullAttentionSpec(**fields, use_mla=mla)  # type: ignore[call-arg]
        except TypeError:  # versions without the use_mla field
            return kv.FullAttentionSpec(**fields)

    def cache_bytes(self, case: KvCase) -> int:
        import torch

        config, dtype = case.config, getattr(torch, DTYPES[case.kv_dtype])
        layers = config["num_hidden_layers"]
        if config["model_type"] in ("deepseek_v2", "deepseek_v3"):
            spec = self._spec(1, config["kv_lora_rank"] + config["qk_rope_head_dim"], dtype, mla=True)
        else:
            heads = config["num_attention_heads"]
            head_size = config.get("head_dim") or config["hidden_size"] // heads
            spec = self._spec(config.get("num_key_value_heads", heads), head_size, dtype, mla=False)
        pages = -(-case.tokens // self.block_size)
        return case.batch * layers * pages * int(spec.page_size_bytes)


register(VllmKvSpec())

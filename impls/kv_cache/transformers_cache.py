"""Hugging Face transformers caches, measured: build the model from the config (random weights, no
download), prefill the batch, and add up the bytes of the K and V tensors the cache holds."""

from __future__ import annotations

from typing import Any

from impls.base import ExpectedFailure, Requirements
from impls.kv_cache.api import KvCacheImpl, KvCase
from impls.registry import register

TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def held_kv_bytes(cache: Any) -> int:
    """Bytes of the key and value tensors in a transformers cache (Mamba states are not KV)."""
    import torch

    tensors = [getattr(layer, name, None) for layer in getattr(cache, "layers", []) for name in ("keys", "values")]
    for name in ("key_cache", "value_cache"):  # older and hybrid caches keep lists
        tensors += list(getattr(cache, name, None) or [])
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


def _sliding_layers_keep_window_minus_one(case: KvCase) -> bool:
    from reference.model_config import SLIDING, shape_from_config

    shape = shape_from_config(case.config)
    return SLIDING in shape.layer_kinds and shape.sliding_window is not None and case.tokens >= shape.sliding_window


class TransformersCache(KvCacheImpl):
    requires = Requirements(modules=("torch", "transformers"))

    def __init__(self, name: str, static: bool, expected: tuple[ExpectedFailure, ...] = ()) -> None:
        self.name, self.static = name, static
        self.description = ("transformers StaticCache (preallocated to the length)" if static
                            else "transformers DynamicCache (grown as tokens arrive)")
        self.expected_failures = expected

    def unsupported(self, case: KvCase) -> list[str]:
        if case.kv_dtype not in TORCH_DTYPES:
            return [f"transformers caches hold the model dtype; {case.kv_dtype} needs a quantized cache"]
        return []

    def cache_bytes(self, case: KvCase) -> int:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, StaticCache

        fields = {k: v for k, v in case.config.items() if k != "model_type"}
        config = AutoConfig.for_model(case.config["model_type"], **fields)
        config._attn_implementation = "eager"
        dtype = getattr(torch, TORCH_DTYPES[case.kv_dtype])
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config, dtype=dtype).eval()
        ids = torch.randint(0, int(config.vocab_size), (case.batch, case.tokens))
        cache = StaticCache(config=config, max_cache_len=case.tokens) if self.static else None
        with torch.no_grad():
            out = model(ids, past_key_values=cache, use_cache=True)
        return held_kv_bytes(cache if self.static else out.past_key_values)


_DYNAMIC_SLIDING = ExpectedFailure(
    test="test_cache_bytes_match_the_reference",
    reason="DynamicCache's sliding layers keep sliding_window - 1 tokens between steps (transformers counts the "
           "current token inside the window), one token less than the reference's cap; measured with "
           "transformers 5.23",
    link="https://github.com/huggingface/transformers/blob/main/src/transformers/cache_utils.py",
    when=_sliding_layers_keep_window_minus_one)

register(TransformersCache("transformers-dynamic", static=False, expected=(_DYNAMIC_SLIDING,)))
register(TransformersCache("transformers-static", static=True))

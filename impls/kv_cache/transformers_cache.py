"""Hugging Face transformers caches, measured: the memory they hold after the prefill and after each decode step.

The model is built from the config (random weights, no download), the batch is prefilled, then decoded one token
per step. After each step every layer's cache tensors are collected and the bytes of their *storages* are added
up, each storage once (a view of a larger buffer holds the whole buffer), next to the bytes of the tensors
themselves. Book-keeping tensors (the sliding window length, the cumulative length counters) are not KV and are
left out; a layer attribute holding another tensor is an error, so new storage cannot go unnoticed.

- ``transformers-dynamic``: DynamicCache, as the model creates it (config-aware: sliding and Mamba layers).
- ``transformers-static``: StaticCache, preallocated to prompt + decode steps.
- ``transformers-quantized-fp8``: QuantizedCache(backend="fp8"), K and V in float8_e4m3fn with one per-tensor
  scale each per layer; the model computes in bfloat16.
- ``transformers-offloaded``: DynamicCache(offloading=True); it needs CUDA streams, so it runs only on a GPU (not
  measured in this project's CPU runs; the W − 1 tokens it declares for a sliding layer are read from the code).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from impls.base import ExpectedFailure, Requirements
from impls.kv_cache.api import Held, KvCacheImpl, KvCase, Snapshot
from impls.registry import register
from impls.tensors import default_device, torch_dtype
from reference.model_config import SLIDING, load_config

KV_ATTRIBUTES = ("keys", "values", "_quantized_keys", "_quantized_values", "conv_states", "recurrent_states")
BOOKKEEPING = ("cumulative_length", "_sliding_window_tensor", "_sliding_window")  # counters, not KV
_CACHE_UTILS = "https://github.com/huggingface/transformers/blob/v5.23.0/src/transformers/cache_utils.py"


def _tensors(value: Any) -> list[Any]:
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def layer_tensors(layer: Any) -> list[Any]:
    """The KV (or state) tensors of one cache layer; a tensor under any other attribute is an error."""
    import torch

    found = []
    for name, value in vars(layer).items():
        tensors = _tensors(value)
        if name in KV_ATTRIBUTES:
            found += tensors
        elif tensors and name not in BOOKKEEPING and any(t.numel() > 1 for t in tensors if isinstance(t, torch.Tensor)):
            raise RuntimeError(f"{type(layer).__name__}.{name} holds tensors this measurement does not classify "
                               f"(shapes {[tuple(t.shape) for t in tensors]}); add it to KV_ATTRIBUTES or BOOKKEEPING")
    return found


def held_by_layer(cache: Any) -> list[tuple[int, int, int]]:
    """Per cache layer: (bytes of storages first seen in it, bytes of its tensors, bytes of those on the device)."""
    seen: set[tuple[str, int]] = set()
    out = []
    for layer in cache.layers:
        held = logical = on_device = 0
        distinct = {id(t): t for t in layer_tensors(layer)}
        for t in distinct.values():
            logical += t.numel() * t.element_size()
            storage = t.untyped_storage()
            key = (str(t.device), storage.data_ptr())
            if key in seen or storage.nbytes() == 0:
                continue
            seen.add(key)
            held += storage.nbytes()
            on_device += storage.nbytes() if t.device.type != "cpu" else 0
        out.append((held, logical, on_device))
    return out


@lru_cache(maxsize=64)
def _hf_config(config_json: str) -> Any:
    from transformers import AutoConfig

    config = json.loads(config_json)
    hf_config = AutoConfig.for_model(config["model_type"], **{k: v for k, v in config.items() if k != "model_type"})
    hf_config._attn_implementation = "eager"
    return hf_config


@lru_cache(maxsize=64)
def _model(config_json: str, dtype: str, device: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    hf_config = _hf_config(config_json)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(hf_config, dtype=torch_dtype(dtype)).to(device).eval()
    return model, hf_config


@contextmanager
def one_thread() -> Iterator[None]:
    """The shrunk models are tiny: on the CPU, intra-op threads only add contention (10-40x slower under load)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def known_model_type(model_type: str) -> bool:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    return model_type in CONFIG_MAPPING


class TransformersCache(KvCacheImpl):
    requires = Requirements(modules=("torch", "transformers"))
    example_budget = 6  # each drawn case builds (or reuses) a model and runs prefill plus decode steps
    call_cost_s = 0.05
    mamba_ssm_dtype = "float32"  # transformers' Jamba keeps the SSM state in the float32 its scan returns
    compute_dtype: str | None = None  # None: the model computes in the KV dtype

    def __init__(self, name: str, kind: str, description: str, *, dtypes: tuple[str, ...],
                 lacks: dict[str, str] | None = None, requires: Requirements | None = None,
                 expected: tuple[ExpectedFailure, ...] = ()) -> None:
        self.name, self.kind, self.description, self.dtypes = name, kind, description, dtypes
        self.lacks = {"planner": "a cache holds memory; it plans no capacity", **(lacks or {})}
        self.preallocates = kind == "static"
        # Offloading copies each layer to the host after its update: a sliding layer's copy is its view of the
        # last W - 1 tokens (cache_utils: CacheLayerMixin.offload after DynamicSlidingWindowLayer.update).
        self.window_minimum = kind == "offloaded"
        self.compute_dtype = "bfloat16" if kind == "fp8" else None
        self.expected_failures = expected
        if requires is not None:
            self.requires = requires

    def unsupported(self, case: Any) -> list[str]:
        model_type = case.config.get("model_type", "")
        if isinstance(case, KvCase) and not known_model_type(model_type):
            return [f"transformers has no model type {model_type!r}"]
        return []

    def _new_cache(self, hf_config: Any, case: KvCase, room: int = 0) -> Any:
        from transformers import DynamicCache, QuantizedCache, StaticCache

        if self.kind == "static":
            return StaticCache(config=hf_config, max_cache_len=case.max_cache_len + room)
        if self.kind == "fp8":
            return QuantizedCache("fp8", hf_config)
        if self.kind == "offloaded":
            return DynamicCache(config=hf_config, offloading=True)
        return None  # the model creates its own DynamicCache(config=...)

    def measure(self, case: KvCase) -> list[Snapshot]:
        import torch

        self.refuse(case)
        device = default_device()
        model, hf_config = _model(json.dumps(case.config, sort_keys=True), self.compute_dtype or case.dtype, device)
        generator = torch.Generator().manual_seed(case.prompt * 31 + case.batch)
        ids = torch.randint(0, int(hf_config.vocab_size), (case.batch, case.max_cache_len), generator=generator)
        cache = self._new_cache(hf_config, case)
        snapshots = []
        with torch.no_grad(), one_thread():
            for start, stop in [(0, case.prompt)] + [(t, t + 1) for t in range(case.prompt, case.max_cache_len)]:
                out = model(ids[:, start:stop].to(device), past_key_values=cache, use_cache=True)
                cache = out.past_key_values
                snapshots.append(self._snapshot(cache, case, stop))
        return snapshots

    def decode_append(self, case: KvCase) -> tuple[Any, Any]:
        """Each layer's cache filled with ``case.prompt`` random tokens through ``update``; ``run`` appends one."""
        import torch

        self.refuse(case)
        hf_config = _hf_config(json.dumps(case.config, sort_keys=True))
        device, dtype = default_device(), torch_dtype(self.compute_dtype or case.dtype)
        shape = case.shape
        kv = (case.batch, shape.num_kv_heads, 1, shape.head_dim)

        def make_inputs() -> tuple[Any, ...]:
            from transformers import DynamicCache

            cache = self._new_cache(hf_config, case, room=64) or DynamicCache(config=hf_config)
            prompt = (case.batch, shape.num_kv_heads, case.prompt, shape.head_dim)
            for layer in range(shape.num_layers):
                cache.update(torch.randn(prompt, device=device, dtype=dtype),
                             torch.randn(prompt, device=device, dtype=dtype), layer)
            return cache, torch.randn(kv, device=device, dtype=dtype), torch.randn(kv, device=device, dtype=dtype)

        def run(cache: Any, k: Any, v: Any) -> None:
            for layer in range(shape.num_layers):
                cache.update(k, v, layer)

        return make_inputs, run

    def _snapshot(self, cache: Any, case: KvCase, tokens: int) -> Snapshot:
        kinds = case.shape.layer_kinds
        per_layer = held_by_layer(cache)
        if len(per_layer) != len(kinds):
            raise RuntimeError(f"the cache has {len(per_layer)} layers but {case.model} has {len(kinds)}")
        by_kind: dict[str, Held] = {}
        on_device = 0
        for kind, (held, logical, device_bytes) in zip(kinds, per_layer, strict=True):
            before = by_kind.get(kind, Held(0, 0))
            by_kind[kind] = Held(before.held + held, before.logical + logical)
            on_device += device_bytes
        note = f"{on_device:,} B of it on the device" if self.kind == "offloaded" else ""
        return Snapshot(tokens, by_kind, note)


def _prompt_longer_than_window(case: Any) -> bool:
    shape = case.shape
    return isinstance(case, KvCase) and SLIDING in shape.layer_kinds and shape.sliding_window is not None and \
        case.prompt > shape.sliding_window


def _mistral_window_6() -> KvCase:
    """The issue's case: Mistral-7B's shape, two layers, window shrunk to 6, 13 prompt tokens, batch 2."""
    config = {**load_config("mistral-7b-v0.1"), "num_hidden_layers": 2, "num_attention_heads": 2,
              "num_key_value_heads": 1, "head_dim": 128, "hidden_size": 256, "intermediate_size": 64,
              "vocab_size": 128, "sliding_window": 6}
    return KvCase("mistral-7b-v0.1", 2, 13, 1, "bfloat16", config)


DYNAMIC_SLIDING_PREFILL = ExpectedFailure(
    test="held*",
    reason="after a prefill longer than the window, DynamicCache's sliding layers hold the whole prompt: "
           "DynamicSlidingWindowLayer.update concatenates the prompt's K and V, then keeps a *view* of the last "
           "window - 1 tokens, so the storage of every prompt token stays allocated until the next step (the "
           "class documents min(seq_len, sliding_window)); after one decode step the layer holds the window. "
           "Measured with transformers 5.23",
    link=f"{_CACHE_UTILS}#L196-L262",
    when=_prompt_longer_than_window, example=_mistral_window_6())
_FULL_ONLY = "QuantizedCache supports only models whose layers are all full attention (it raises ValueError)"
_NOT_QUANTIZED = "transformers' plain caches hold the model dtype; a float8 or int8 KV needs QuantizedCache"

register(TransformersCache("transformers-dynamic", "dynamic", "transformers DynamicCache (grown as tokens arrive; "
                           "config-aware sliding and Mamba layers)", dtypes=("float32", "float16", "bfloat16"),
                           expected=(DYNAMIC_SLIDING_PREFILL,)))
register(TransformersCache("transformers-static", "static", "transformers StaticCache (preallocated to prompt + "
                           "decode steps; sliding layers to the window)", dtypes=("float32", "float16", "bfloat16")))
register(TransformersCache("transformers-quantized-fp8", "fp8", "transformers QuantizedCache(backend='fp8'): "
                           "float8_e4m3fn K and V with per-tensor scales; bfloat16 compute",
                           dtypes=("float8_e4m3fn",), lacks={"sliding": _FULL_ONLY, "hybrid": _FULL_ONLY}))
register(TransformersCache("transformers-offloaded", "offloaded", "transformers DynamicCache(offloading=True): "
                           "layers moved to host memory between uses", dtypes=("float32", "float16", "bfloat16"),
                           requires=Requirements(modules=("torch", "transformers"), device="cuda")))

"""vLLM's KV-cache planner (``vllm.v1.kv_cache_interface``, ``vllm.v1.core.kv_cache_planning``,
``vllm.v1.core.kv_cache_utils``), driven the way its engine core drives it, without a model or a GPU.

Per layer, the adapter builds the spec vLLM's layer would report (``Attention.get_kv_cache_spec``:
``FullAttentionSpec`` / ``SlidingWindowSpec``; ``MLAAttention``: ``MLAAttentionSpec`` with one kv head of
``kv_lora_rank + qk_rope_head_dim``; a Mamba-1 mixer: ``MambaSpec`` from vLLM's ``MambaStateShapeCalculator`` and
``MambaStateDtypeCalculator``), then calls what ``EngineCore._initialize_kv_caches`` calls: the layout
resolution (with no backend declaring a preference), ``get_global_kv_cache_groups``, ``get_kv_cache_configs``
with the budget as the available memory, ``generate_scheduler_kv_cache_config`` and
``get_max_concurrency_for_kv_cache_config``. The engine's ``VllmConfig`` is a real one (CPU device, no model); the
model config is a stand-in carrying ``max_model_len`` only, which is all the planner reads of it.

What the adapter cannot hand to vLLM it declares unsupported: the block size a hybrid model's platform step
picks (``Platform._align_hybrid_block_size`` needs the model class; vLLM's Jamba class does not import here, it
needs einops) is an input of the case, as for every model; a prefix-sharing credit is not part of vLLM's plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from impls.base import ExpectedFailure, Requirements
from impls.kv_cache.api import CannotPlan, KvCacheImpl, NoRoom, PlanCase, PlanResult
from impls.registry import register
from impls.tensors import torch_dtype
from reference.model_config import FULL, MAMBA, MLA, SLIDING, ModelShape, load_config

_VLLM = "https://github.com/vllm-project/vllm/blob/v0.33.0/vllm"
CACHE_DTYPES = {"float8_e4m3fn": "fp8_e4m3"}  # vLLM's --kv-cache-dtype for a quantized KV; else "auto"


@dataclass
class _ModelLength:
    """The part of vLLM's ModelConfig the planner reads."""

    max_model_len: int
    original_max_model_len: int
    supports_kv_cache_grouping: bool = False


def _vllm_config(case: PlanCase) -> Any:
    from vllm.config import CacheConfig, DeviceConfig, SchedulerConfig, VllmConfig
    from vllm.v1.attention.backends.utils import _DEFAULT_LAYOUT_PREFERENCE  # type: ignore[attr-defined]

    if case.in_flight_tokens % 2:
        raise ValueError(f"in_flight_tokens must be even here (2 concurrent batches); got {case.in_flight_tokens}")
    cache = CacheConfig(block_size=case.block_size, cache_dtype=CACHE_DTYPES.get(case.dtype, "auto"),
                        mamba_block_size=case.max_model_len)
    scheduler = SchedulerConfig(max_model_len=case.max_model_len, is_encoder_decoder=False,
                                max_num_batched_tokens=case.in_flight_tokens // 2, enable_chunked_prefill=True,
                                max_num_seqs=min(128, case.in_flight_tokens // 2),
                                disable_hybrid_kv_cache_manager=True)
    config = VllmConfig(device_config=DeviceConfig(device="cpu"), cache_config=cache, scheduler_config=scheduler)
    # This CPU platform has no hybrid KV cache manager, so VllmConfig refuses to enable it; a CUDA engine enables
    # it unless told not to (--disable-hybrid-kv-cache-manager), which is what the case says.
    config.scheduler_config.disable_hybrid_kv_cache_manager = not case.hybrid_groups
    object.__setattr__(config, "model_config", _ModelLength(case.max_model_len, case.max_model_len))
    if config.max_in_flight_tokens != case.in_flight_tokens:
        raise ValueError(f"vLLM derives {config.max_in_flight_tokens} in-flight tokens, not the case's "
                         f"{case.in_flight_tokens}")
    config.cache_config.kv_cache_layout = None
    return config, [layout.name for layout in _DEFAULT_LAYOUT_PREFERENCE]


def layer_specs(shape: ModelShape, case: PlanCase, prefix: str, draft: bool = False) -> dict[str, Any]:
    """The spec each layer of ``shape`` reports to vLLM's planner (see the module docstring)."""
    from vllm.model_executor.layers.mamba.mamba_utils import MambaStateDtypeCalculator, MambaStateShapeCalculator
    from vllm.v1 import kv_cache_interface as kv

    cache_dtype = CACHE_DTYPES.get(case.dtype, "auto")
    quant = kv.get_kv_quant_mode(cache_dtype)
    dtype = torch_dtype(case.dtype)
    common: dict[str, Any] = {"block_size": case.block_size, "dtype": dtype, "kv_quant_mode": quant, "is_draft": draft}
    specs: dict[str, Any] = {}
    for i, kind in enumerate(shape.layer_kinds):
        name = f"{prefix}.layers.{i}"
        if kind == FULL:
            specs[name] = kv.FullAttentionSpec(num_kv_heads=shape.num_kv_heads, head_size=shape.head_dim, **common)
        elif kind == SLIDING:
            assert shape.sliding_window is not None
            specs[name] = kv.SlidingWindowSpec(num_kv_heads=shape.num_kv_heads, head_size=shape.head_dim,
                                               sliding_window=shape.sliding_window, **common)
        elif kind == MLA:
            specs[name] = kv.MLAAttentionSpec(num_kv_heads=1, max_tp_shards=1, cache_dtype_str=cache_dtype,
                                              head_size=shape.kv_lora_rank + shape.qk_rope_head_dim, **common)
        elif kind == MAMBA:
            assert shape.mamba is not None
            m, model_dtype = shape.mamba, torch_dtype(case.model_dtype)
            specs[name] = kv.MambaSpec(
                shapes=MambaStateShapeCalculator.mamba1_state_shape(1, m.inner, m.state, m.conv_kernel),
                dtypes=MambaStateDtypeCalculator.mamba1_state_dtype(model_dtype, "auto", "auto"),
                block_size=case.max_model_len, is_draft=draft)
    return specs


def _page(spec: Any) -> int:
    return int(spec.page_size_bytes)


class VllmKvPlanner(KvCacheImpl):
    name = "vllm-kv-planner"
    description = ("vLLM's KV-cache planner: per-layer specs, page-size unification, block groups, the pool "
                   "(get_kv_cache_configs) and max concurrency, as EngineCore._initialize_kv_caches calls them")
    requires = Requirements(modules=("vllm", "torch"))
    lacks = {"held": "vLLM's planner sizes pages and the block pool; the memory a request holds is its KV cache "
                     "manager's, which needs a running engine",
             "prefix": "vLLM's plan gives no prefix-sharing credit (prefix caching shares blocks at run time only)"}
    dtypes = ("float32", "float16", "bfloat16", "float8_e4m3fn")

    def __init__(self, expected_failures: tuple[ExpectedFailure, ...] = ()) -> None:
        self.expected_failures = expected_failures

    def unsupported(self, case: object) -> list[str]:
        if isinstance(case, PlanCase) and not case.hybrid_groups and MAMBA in case.shape.layer_kinds:
            return ["vLLM needs its hybrid KV cache manager for Mamba layers: without it, get_kv_cache_groups "
                    "cannot promote the specs to one type and raises (config/vllm.py: hybrid SSM models require HMA)"]
        return []

    def plan(self, case: PlanCase) -> PlanResult:
        from vllm.v1.attention.backends.utils import resolve_kv_cache_layout
        from vllm.v1.core.kv_cache_planning import get_global_kv_cache_groups, get_kv_cache_configs
        from vllm.v1.core.kv_cache_utils import (
            generate_scheduler_kv_cache_config,
            get_max_concurrency_for_kv_cache_config,
        )
        from vllm.v1.kv_cache_interface import UniformTypeKVCacheSpecs

        self.refuse(case)
        config, layouts = _vllm_config(case)
        specs = layer_specs(case.shape, case, "model")
        if case.draft_shape is not None:
            specs |= layer_specs(case.draft_shape, case, "draft", draft=True)
        pages = tuple(_page(s) for s in specs.values())
        resolve_kv_cache_layout(config, [layouts], list(specs.values()))
        names = list(specs)
        try:
            groups = get_global_kv_cache_groups(config, [dict(specs)])
        except NotImplementedError as err:
            raise CannotPlan(str(err)) from None
        try:
            configs = get_kv_cache_configs(config, [dict(specs)], [case.kv_budget], groups)
        except ValueError as err:
            if "No available memory" in str(err) or "KV cache is needed" in str(err):
                raise NoRoom(str(err)) from None
            raise
        scheduler = generate_scheduler_kv_cache_config(configs)
        unified: dict[str, int] = {}
        for group in configs[0].kv_cache_groups:
            spec = group.kv_cache_spec
            for layer in group.layer_names:
                unified[layer] = _page(spec.kv_cache_specs[layer] if isinstance(spec, UniformTypeKVCacheSpecs)
                                       else spec)
        per_request = sum(-(-int(g.kv_cache_spec.max_memory_usage_bytes(config)) // _page(g.kv_cache_spec))
                          for g in scheduler.kv_cache_groups)
        tensors = {t.size for t in configs[0].kv_cache_tensors}
        num_blocks = configs[0].num_blocks
        bytes_per_block = max(tensors) // num_blocks if tensors and num_blocks else 0
        return PlanResult(pages, tuple(unified[n] for n in names), len(configs[0].kv_cache_groups), bytes_per_block,
                          num_blocks, per_request, get_max_concurrency_for_kv_cache_config(config, scheduler))


def _over_reserve(case: object) -> tuple[int, int, int] | None:
    """(exact blocks per request, vLLM's, usable blocks) where SlidingWindowSpec.max_admission_blocks_per_request,
    ceil(min(W - 1 + in-flight, max_model_len) / block) + 1, exceeds the most blocks such a window can touch
    inside max_model_len (the reference's figure); None where they agree."""
    if not isinstance(case, PlanCase) or case.prefix_tokens:
        return None
    from reference.kv_plan import PlanInputs, plan

    try:
        want = plan(case.shape, PlanInputs(case.max_model_len, case.kv_budget, case.dtype, case.block_size,
                                           case.in_flight_tokens, case.hybrid_groups,
                                           state_dtypes=(case.model_dtype, case.model_dtype), draft=case.draft_shape))
    except ValueError:  # the reference refuses the model (Unplannable): nothing to over-reserve
        return None
    extra = sum(1 for g in want.groups for layer in [want.layers[g[0]]] if layer.kind == SLIDING and
                -(-layer.reserve_tokens // layer.block_size) + 1 != layer.blocks_per_request)
    return (want.blocks_per_request, want.blocks_per_request + extra, want.usable_blocks) if extra else None


def _sliding_overreserves(case: object) -> bool:
    return _over_reserve(case) is not None


def _over_reserve_refuses(case: object) -> bool:
    """The over-reservation makes vLLM refuse a budget in which one request does fit."""
    found = _over_reserve(case)
    return found is not None and found[0] <= found[2] < found[1]


def _gemma_at_its_length() -> PlanCase:
    return PlanCase("gemma-2-9b", "bfloat16", 16, 8192, 40 * 10**9, load_config("gemma-2-9b"))


NULL_BLOCK = ExpectedFailure(
    test="plan_concurrency",
    reason="get_max_concurrency_for_kv_cache_config divides kv_cache_config.num_blocks, which counts the null block "
           "BlockPool holds back for ever, so the maximum concurrency it reports (and logs at start-up, with the "
           "token capacity derived from it) is one block too generous: (num_blocks - 1) / blocks_per_request is what "
           "can be admitted, e.g. Llama-3-8B bfloat16 at 8192 tokens in 40 GB: 19,073 blocks / 512 = 37.2520 reported, "
           "19,072 / 512 = 37.2500 admissible. Measured with vllm 0.33",
    link=f"{_VLLM}/v1/core/kv_cache_utils.py#L1061-L1093")
SLIDING_OVER_RESERVE_REFUSES = ExpectedFailure(
    test="plan_pages",
    reason="the sliding-window over-reservation (see plan_blocks) makes get_kv_cache_configs refuse a budget in "
           "which one request fits: e.g. Mistral-7B at max_model_len 1 with 4,194,304 B (two 2,097,152 B blocks, one "
           "held back): vLLM asks for ceil(1 / 16) + 1 = 2 blocks per request, the request holds 1. Measured with "
           "vllm 0.33",
    link=f"{_VLLM}/v1/core/kv_cache_planning.py#L50-L87",
    when=_over_reserve_refuses, example=PlanCase("mistral-7b-v0.1", "bfloat16", 16, 1, 4_194_304,
                                                  load_config("mistral-7b-v0.1")))
SLIDING_OVER_RESERVE = ExpectedFailure(
    test="plan_blocks",
    reason="a sliding-window layer reserves ceil(min(W - 1 + in-flight tokens, max_model_len) / block) + 1 blocks "
           "per request; the +1 covers a window that starts inside a block, but when the window never slides within "
           "max_model_len (W - 1 + in-flight >= max_model_len) the request holds exactly ceil(max_model_len / block) "
           "blocks, and an interval of r = 1 (mod block) tokens touches at most ceil((r - 1) / block) + 1: one block "
           "per sliding group per request too many, e.g. Gemma-2-9B at its 8192 tokens: 1,025 blocks reserved per "
           "request where 1,024 suffice. Measured with vllm 0.33",
    link=f"{_VLLM}/v1/kv_cache_interface.py#L918-L944",
    when=_sliding_overreserves, example=_gemma_at_its_length())

register(VllmKvPlanner(expected_failures=(NULL_BLOCK, SLIDING_OVER_RESERVE, SLIDING_OVER_RESERVE_REFUSES)))

"""Deliberately wrong sizing: the checks must reject every one, every run."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from typing import Any

from impls.kv_cache.api import Held, KvCacheImpl, KvCase, NoRoom, PlanCase, PlanResult, Snapshot
from reference import kv_cache as ref
from reference import kv_plan
from reference.model_config import MLA, SLIDING, shape_from_config


def _config_with(config: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**config, **changes}


def query_heads_for_kv(config: dict[str, Any], batch: int, tokens: int, kv: str, tp: int) -> int:
    """Counts query heads where kv heads belong: 4× too much on GQA-8 models with 32 heads."""
    return ref.cache_bytes(shape_from_config(_config_with(config, num_key_value_heads=config["num_attention_heads"])),
                           batch, tokens, kv, tp)


def head_dim_from_hidden(config: dict[str, Any], batch: int, tokens: int, kv: str, tp: int) -> int:
    """Ignores the config's head_dim (Gemma-2: 256) and uses hidden / heads (224)."""
    return ref.cache_bytes(shape_from_config(_config_with(config, head_dim=None)), batch, tokens, kv, tp)


def factor_two_on_mla(config: dict[str, Any], batch: int, tokens: int, kv: str, tp: int) -> int:
    shape = shape_from_config(config)
    extra = batch * tokens * shape.count(MLA) * ref.kv_format(kv).vector_bytes(shape.kv_lora_rank +
                                                                               shape.qk_rope_head_dim)
    return ref.cache_bytes(shape, batch, tokens, kv, tp) + extra


def sliding_window_ignored(config: dict[str, Any], batch: int, tokens: int, kv: str, tp: int) -> int:
    shape = shape_from_config(config)
    full = tuple("full" if kind == SLIDING else kind for kind in shape.layer_kinds)
    return ref.cache_bytes(shape.__class__(**{**shape.__dict__, "layer_kinds": full}), batch, tokens, kv, tp)


def tp_replication_ignored(config: dict[str, Any], batch: int, tokens: int, kv: str, tp: int) -> int:
    """Divides kv heads by the ranks even when there are more ranks than heads."""
    shape = shape_from_config(config)
    per_rank = max(1, shape.num_kv_heads // tp) if tp <= shape.num_kv_heads else shape.num_kv_heads / tp
    return int(ref.cache_bytes(shape, batch, tokens, kv, 1) * per_rank / shape.num_kv_heads)


def gib_reported_as_gb(n_bytes: int) -> float:
    return n_bytes / 2**30


PLANTED_SIZERS = [query_heads_for_kv, head_dim_from_hidden, factor_two_on_mla, sliding_window_ignored,
                  tp_replication_ignored]


# ---- planted caches and planners: the area's checks must reject each --------------------------------------------

class _Wrapped(KvCacheImpl):
    """A real implementation's answers, bent by one classic mistake."""

    def __init__(self, inner: KvCacheImpl, name: str) -> None:
        self.inner, self.name = inner, name
        self.dtypes, self.lacks, self.block_size = inner.dtypes, inner.lacks, inner.block_size
        self.preallocates, self.mamba_ssm_dtype = inner.preallocates, inner.mamba_ssm_dtype
        self.window_minimum = inner.window_minimum


class ViewsAsHeld(_Wrapped):
    """The issue's original measurement: the elements of the tensor views, not the storages behind them."""

    def measure(self, case: KvCase) -> list[Snapshot]:
        return [Snapshot(s.tokens, {k: Held(h.logical, h.logical) for k, h in s.by_kind.items()})
                for s in self.inner.measure(case)]


class PrefillOnly(_Wrapped):
    """Measures after the prefill and never again."""

    def measure(self, case: KvCase) -> list[Snapshot]:
        return self.inner.measure(case)[:1]


class QueryHeads(_Wrapped):
    """Scales the bytes to the query heads (4× too much on a GQA-4 model)."""

    def measure(self, case: KvCase) -> list[Snapshot]:
        ratio = case.shape.num_heads // case.shape.num_kv_heads
        return [Snapshot(s.tokens, {k: Held(h.held * ratio, h.logical * ratio) for k, h in s.by_kind.items()})
                for s in self.inner.measure(case)]


class _ReferencePlanner(KvCacheImpl):
    """The reference plan with one mistake; ``bend(plan, case)`` returns the result it reports."""

    lacks = {"held": "a planner"}

    def __init__(self, name: str, bend: Any, inputs: Any = None) -> None:
        self.name, self.bend, self.inputs = name, bend, inputs

    def plan(self, case: PlanCase) -> PlanResult:
        from suite.kv_cache.check import plan_inputs

        inputs = plan_inputs(case) if self.inputs is None else self.inputs(case)
        p = kv_plan.plan(case.shape, inputs)
        if p.max_requests == 0:
            raise NoRoom(f"{p.blocks_per_request} blocks per request, {p.usable_blocks} usable")
        first = kv_plan.layer_plans(case.shape, inputs) + (kv_plan.layer_plans(case.draft_shape, inputs)
                                                           if case.draft_shape is not None else [])
        honest = PlanResult(tuple(x.page_bytes for x in first), tuple(x.page_bytes for x in p.layers),
                            len(p.groups), p.bytes_per_block, p.num_blocks, p.blocks_per_request, p.max_concurrency)
        return self.bend(honest, p, case)


def _null_block_counted(r: PlanResult, p: Any, case: PlanCase) -> PlanResult:
    return replace(r, max_concurrency=Fraction(p.num_blocks, p.blocks_per_request))


def _query_head_pages(r: PlanResult, p: Any, case: PlanCase) -> PlanResult:
    ratio = case.shape.num_heads // case.shape.num_kv_heads
    return replace(r, layer_pages=tuple(x * ratio for x in r.layer_pages))


def _one_group_per_kind(r: PlanResult, p: Any, case: PlanCase) -> PlanResult:
    return replace(r, num_groups=len(set(x.kind for x in p.layers)))


def _windows_as_full(case: PlanCase) -> Any:
    from suite.kv_cache.check import plan_inputs

    return replace(plan_inputs(case), hybrid_groups=False)


PLANTED_CACHES = (ViewsAsHeld, PrefillOnly, QueryHeads)
PLANTED_PLANNERS = (("counts_the_null_block", _null_block_counted, None),
                    ("pages_from_query_heads", _query_head_pages, None),
                    ("one_group_per_kind", _one_group_per_kind, None),
                    ("windows_sized_as_full", lambda r, p, case: r, _windows_as_full))

"""The KV-cache area's declaration: memory held step by step, capacity plans, bad calls, the decode-step benchmark.

- ``held`` (a property per dtype) and ``held_preset`` (an example per vendored config and dtype): the bytes a
  cache holds after the prefill and after each decode step, per layer kind, against the reference.
- ``plan_pages``, ``plan_blocks``, ``plan_concurrency``: a planner against :func:`reference.kv_plan.plan`, on
  drawn questions and pinned on every vendored config at the engine's defaults.
- errors: cases that mean nothing must be refused naming the field, the value and the constraint.
- ``decode_append``: the cost of appending one decode token to a cache already holding ``tokens``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from impls.base import declared_reasons
from impls.kv_cache.api import FEATURES, KvCacheImpl, KvCase
from impls.tensors import default_device
from reference.kv_cache import bytes_by_kind
from reference.model_config import load_config
from suite.engine.area import Area, Benchmark, ErrorInput, Example, Property
from suite.engine.verdict import Verdict, raises, verdict
from suite.kv_cache.cases import HELD_DTYPES, PRESETS, held_case, held_cases, pinned_plans, plan_case, plan_cases
from suite.kv_cache.check import check_held, check_plan_blocks, check_plan_concurrency, check_plan_pages

DEVICE = default_device()
PLAN_CHECKS = (("plan_pages", check_plan_pages), ("plan_blocks", check_plan_blocks),
               ("plan_concurrency", check_plan_concurrency))


def _properties() -> list[Property]:
    props = [Property("held", held_cases(dtype), check_held, variant=dtype, needs=("held",), dtype=dtype)
             for dtype in HELD_DTYPES]
    pins = pinned_plans()
    props += [Property(name, plan_cases(), check, pinned=pins, needs=("planner",)) for name, check in PLAN_CHECKS]
    return props


def _examples() -> list[Example]:
    """Every vendored config, prompt 13 (past the shrunk window of 6), three decode steps, batch 2."""
    return [Example("held_preset", held_case(name, 2, 13, 3, "bfloat16"), check_held, variant=name)
            for name in PRESETS] + [Example("held_quantized", held_case("llama-3-8b", 2, 13, 3, "float8_e4m3fn"),
                                            check_held)]


# ---- bad calls ------------------------------------------------------------------------------------------------------

def _held_dtype(impl: KvCacheImpl) -> str | None:
    return next((d for d in HELD_DTYPES if not declared_reasons(impl, held_case("llama-3-8b", 1, 4, 1, d))), None)


def _bad_held(name: str, fields: dict[str, Any], fragments: tuple[str, ...],
              config: dict[str, Any] | None = None) -> ErrorInput:
    def run(impl: KvCacheImpl) -> Verdict:
        good = held_case("llama-3-8b", 1, 4, 1, _held_dtype(impl) or "bfloat16")
        bad = replace(good, config={**good.config, **(config or {})}, **fields)
        return verdict(f"{name}: {fields or config}", raises("error", lambda: impl.measure(bad), (ValueError,),
                                                              fragments))

    def applies(impl: KvCacheImpl) -> list[str]:
        return [] if _held_dtype(impl) else declared_reasons(impl, held_case("llama-3-8b", 1, 4, 1, "bfloat16"))

    return ErrorInput(f"held_refuses.{name}", run, applies)


def _bad_plan(name: str, fields: dict[str, Any], fragments: tuple[str, ...],
              config: dict[str, Any] | None = None) -> ErrorInput:
    def run(impl: KvCacheImpl) -> Verdict:
        good = plan_case("llama-3-8b")
        bad = replace(good, config={**good.config, **(config or {})}, **fields)
        return verdict(f"{name}: {fields or config}", raises("error", lambda: impl.plan(bad), (ValueError,),
                                                              fragments))

    return ErrorInput(f"plan_refuses.{name}", run, lambda impl: declared_reasons(impl, plan_case("llama-3-8b")))


def _errors() -> list[ErrorInput]:
    return [
        _bad_held("batch_0", {"batch": 0}, ("batch", "0")),
        _bad_held("prompt_0", {"prompt": 0}, ("prompt", "0")),
        _bad_held("negative_steps", {"decode_steps": -1}, ("decode_steps", "-1")),
        _bad_held("short_dtype_name", {"dtype": "bf16"}, ("bf16", "bfloat16")),
        _bad_held("zero_kv_heads", {}, ("num_key_value_heads", "0"), {"num_key_value_heads": 0}),
        _bad_held("negative_window", {}, ("sliding_window", "-4"), {"sliding_window": -4}),
        _bad_plan("block_size_0", {"block_size": 0}, ("block_size", "0")),
        _bad_plan("negative_budget", {"kv_budget": -1}, ("kv_budget", "-1")),
        _bad_plan("short_dtype_name", {"dtype": "fp8"}, ("fp8", "float8_e4m3fn")),
        _bad_plan("string_layer_count", {}, ("num_hidden_layers", "'32'"), {"num_hidden_layers": "32"}),
    ]


# ---- benchmark ------------------------------------------------------------------------------------------------------

BENCH_TOKENS = (1024, 8192, 32768) if DEVICE == "cuda" else (128, 512, 2048)


def _bench_case(tokens: int) -> KvCase:
    """Llama-3-8B's layer shape (8 kv heads × 128), two layers, batch 2, bfloat16, holding ``tokens``."""
    config = {**load_config("llama-3-8b"), "num_hidden_layers": 2, "num_attention_heads": 16, "hidden_size": 2048,
              "intermediate_size": 64, "vocab_size": 128, "head_dim": 128}
    return KvCase("llama-3-8b", 2, tokens, 1, "bfloat16", config)


def _prepare(impl: KvCacheImpl, case: KvCase) -> tuple[Any, Any, dict[str, int]]:
    make_inputs, run = impl.decode_append(case)
    one_token = sum(bytes_by_kind(case.shape, case.batch, {k: 1 for k in case.shape.kinds}, case.dtype).values())
    return make_inputs, run, {"min_bytes": one_token, "items": case.batch}


def _describe(case: KvCase) -> dict[str, Any]:
    return {"tokens": case.prompt, "batch": case.batch, "dtype": case.dtype, "model": case.model}


AREA = Area(
    id="kv_cache", impl_type=KvCacheImpl, features=FEATURES,
    properties=tuple(_properties()), examples=tuple(_examples()), errors=tuple(_errors()),
    benchmarks=(Benchmark("decode_append", [_bench_case(t) for t in BENCH_TOKENS], _prepare, x="tokens",
                          metrics=("gbps", "per_second", "speedup"),
                          baseline={"cpu": "transformers-static", "cuda": "transformers-static"},
                          series=("dtype",), describe=_describe),),
)

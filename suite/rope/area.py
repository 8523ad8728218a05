"""The rope area, declared: cases, property checks, pinned traps, bad calls, benchmarks.

Properties: the rotation itself in each dtype; the frequencies and attention factor for implementations
that expose them; successive calls of changing length on one embedding (dynamic NTK, LongRoPE); and the
three invariants the spec guarantees for every implementation: ⟨R_m q, R_n k⟩ depends on m − n only,
pair norms are kept (times the attention factor), R_{−m} R_m = a²·I. Pinned traps: 128K positions, an
interleaved model, the YaRN temperature, the Llama-3 smoothing band, the LongRoPE switch, in place on
views of a fused qkv, and inputs left untouched by an out-of-place call.
"""

from __future__ import annotations

from typing import Any

import torch

from impls.base import declared_reasons
from impls.rope.api import DTYPES, FEATURES, RopeCase, RopeImpl
from impls.tensors import default_device, torch_dtype
from reference import rope as ref
from suite.engine.area import Area, Benchmark, ErrorInput, Example, Property
from suite.engine.verdict import raises, verdict
from suite.rope import cases
from suite.rope.cases import CONFIGS, DEVICE, STATIC
from suite.rope.check import (
    check_frequencies,
    check_inputs_untouched,
    check_inverse,
    check_norms,
    check_relative_position,
    check_rotation,
    check_schedule,
)

LLAMA31, QWEN_YARN, DEEPSEEK, PHI = (CONFIGS[n] for n in ("llama-3.1-8b", "qwen2.5-7b-instruct-yarn", "deepseek-v3",
                                                          "phi-3.5-mini-instruct"))
DYNAMIC = CONFIGS["llama-2-7b-dynamic-2"]
AT_128K = (131071, 131000, 100003, 65537)


def _case(config: ref.RopeConfig, positions: tuple[int, ...], dtype: str = "float32", **kw: Any) -> RopeCase:
    hq, hkv = kw.pop("heads", (4, 2))
    return RopeCase(len(positions), hq, hkv, dtype, config, positions, DEVICE, **kw)


def _rotation_pins(dtype: str) -> tuple[RopeCase, ...]:
    return (_case(LLAMA31, AT_128K, dtype), _case(DEEPSEEK, (0, 1, 4097, 163839), dtype, fused_qkv=True),
            _case(CONFIGS["llama-3-8b-partial-0.5"], (7, 8191), dtype, in_place=True))


def _properties() -> list[Property]:
    props = [Property("rotation", cases.rotation_cases(dtype), check_rotation, variant=dtype,
                      pinned=_rotation_pins(dtype)) for dtype in DTYPES]
    props += [
        Property("frequencies", cases.frequency_cases(), check_frequencies, pinned=(
            RopeCase(1, 1, 1, "float32", LLAMA31, (131071,), DEVICE, needs_frequencies=True),
            RopeCase(1, 1, 1, "float32", PHI, (4096,), DEVICE, needs_frequencies=True))),
        Property("length_schedule", cases.schedule_cases(), check_schedule, pinned=(
            RopeCase(1, 1, 1, "float32", DYNAMIC, (), DEVICE, schedule=(2048, 8192, 6144, 2048)),
            RopeCase(2, 1, 1, "float32", PHI, (), DEVICE, schedule=(4097, 4096, 8192, 100)))),
        Property("relative_position", cases.relative_cases(), check_relative_position, pinned=(
            _case(CONFIGS["llama-2-7b"], (0, 5, 1000, 1005)), _case(CONFIGS["llama-2-7b-linear-4"], (3, 9, 120003,
                                                                                                     120009)))),
        Property("norms", cases.plain_cases(tuple(CONFIGS)), check_norms),
        Property("inverse", cases.plain_cases(tuple(STATIC), round_trip=True), check_inverse),
    ]
    return props


def _examples() -> list[Example]:
    out = []
    for dtype in DTYPES:
        out.append(Example("angle_at_128k", _case(LLAMA31, AT_128K, dtype), check_rotation, variant=dtype, seed=1))
        out.append(Example("yarn_temperature", _case(QWEN_YARN, (0, 1, 32767, 32768, 100000), dtype),
                           check_rotation, variant=dtype, seed=2))
    out += [
        Example("interleaved_model", _case(DEEPSEEK, (3, 4096, 100000)), check_rotation, seed=3),
        Example("llama3_smoothing_band", _case(LLAMA31, (2047, 8191, 8192, 30000, 131071)), check_rotation, seed=4),
        Example("longrope_at_original_length", _case(PHI, (4093, 4094, 4095)), check_rotation, seed=5),
        Example("longrope_past_original_length", _case(PHI, (4094, 4095, 4096)), check_rotation, seed=6),
        Example("in_place_on_fused_qkv", _case(CONFIGS["glm-style-interleaved-partial-0.5"], (0, 9, 70000),
                                               in_place=True, fused_qkv=True), check_rotation, seed=7),
        Example("inputs_untouched", _case(CONFIGS["llama-2-7b"], (0, 1, 2)), check_inputs_untouched, seed=8),
        Example("inputs_untouched", _case(CONFIGS["llama-2-7b"], (0, 1, 2), fused_qkv=True), check_inputs_untouched,
                variant="fused_qkv", seed=8),
    ]
    return out


# ---- bad calls ------------------------------------------------------------------------------------------------

LLAMA2 = CONFIGS["llama-2-7b"]
PLAIN_CONFIGS = (LLAMA2, CONFIGS["llama-2-7b-interleaved"])  # every implementation takes one of the two


def _plain_call(impl: RopeImpl) -> tuple[ref.RopeConfig, str] | None:
    """A config and dtype ``impl`` takes for a plain Llama-2 call (D 128), or None."""
    return next(((c, d) for c in PLAIN_CONFIGS for d in ("float32", "bfloat16", "float16")
                 if not declared_reasons(impl, _case(c, (0, 1, 2), d))), None)


def _tensors(impl: RopeImpl, q_dim: int = 128, tokens: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    plain = _plain_call(impl)
    dtype = torch_dtype(plain[1] if plain else "float32")
    return (torch.randn(tokens, 2, q_dim, dtype=dtype, device=DEVICE),
            torch.randn(tokens, 1, q_dim, dtype=dtype, device=DEVICE))


def _bad(name: str, make: Any, errors: tuple[type[BaseException], ...], fragments: tuple[str, ...]) -> ErrorInput:
    def run(impl: RopeImpl) -> Any:
        q, k, positions, described = make(impl)
        config = _plain_call(impl)[0]  # type: ignore[index]
        return verdict(described, raises("error", lambda: impl.apply(q, k, positions, config), errors, fragments))

    return ErrorInput(f"bad_call.{name}", run,
                      lambda impl: [] if _plain_call(impl) else [f"{impl.name} takes no plain Llama-2 call"])


def _head_dim_mismatch(impl: RopeImpl) -> Any:
    q, k = _tensors(impl, q_dim=64)
    return q, k, torch.arange(3, device=DEVICE), "q and k with head_dim 64, config head_dim 128"


def _positions_length(impl: RopeImpl) -> Any:
    q, k = _tensors(impl, tokens=5)
    return q, k, torch.arange(4, device=DEVICE), "5 tokens, 4 positions"


def _float_positions(impl: RopeImpl) -> Any:
    q, k = _tensors(impl)
    return q, k, torch.arange(3, device=DEVICE, dtype=torch.float32), "positions as float32"


def _mixed_dtypes(impl: RopeImpl) -> Any:
    q, _ = _tensors(impl)
    k = torch.randn(3, 1, 128, dtype=torch.float16 if q.dtype != torch.float16 else torch.float32, device=DEVICE)
    return q, k, torch.arange(3, device=DEVICE), f"q {q.dtype}, k {k.dtype}"


def _refused(feature: str, case: RopeCase) -> ErrorInput:
    """A call the implementation declares unsupported must raise, not return something."""

    def run(impl: RopeImpl) -> Any:
        q, k = (torch.randn(case.tokens, h, case.head_dim, dtype=torch_dtype(case.dtype), device=DEVICE)
                for h in (case.heads_q, case.heads_kv))
        positions = torch.tensor(case.positions, device=DEVICE)
        return verdict(f"{feature} on {impl.name}, which declares it unsupported", raises(
            "error", lambda: impl.apply(q, k, positions, case.config, in_place=case.in_place),
            (NotImplementedError, ValueError, TypeError)))

    def applies(impl: RopeImpl) -> list[str]:
        return [] if feature in impl.lacks else [f"{impl.name} declares {feature} supported (nothing to refuse)"]

    return ErrorInput(f"unsupported_raises.{feature}", run, applies)


def _errors() -> list[ErrorInput]:
    return [
        _bad("head_dim_mismatch", _head_dim_mismatch, (ValueError,), ("64", "128")),
        _bad("positions_length", _positions_length, (ValueError,), ("5", "4")),
        _bad("float_positions", _float_positions, (TypeError,), ("float32",)),
        _bad("mixed_dtypes", _mixed_dtypes, (TypeError,), ("float",)),
        _refused("in_place", _case(LLAMA2, (0, 1), in_place=True)),
        _refused("interleaved", _case(CONFIGS["llama-2-7b-interleaved"], (0, 1))),
        _refused("half_split", _case(LLAMA2, (0, 1))),
    ]


# ---- benchmarks ------------------------------------------------------------------------------------------------

CUDA = default_device() == "cuda"
if CUDA:  # Llama-3.1-8B's attention: 32 query heads, 8 kv heads, D 128, bf16
    TOKENS, HEADS, BENCH_DTYPE = [1024, 4096, 16384, 65536], (32, 8), "bfloat16"
else:  # a quarter of the heads, in fp32: CPU figures are for the record, not a target
    TOKENS, HEADS, BENCH_DTYPE = [128, 512, 2048], (8, 2), "float32"


def _bench_cases() -> list[RopeCase]:
    return [RopeCase(t, *HEADS, BENCH_DTYPE, LLAMA31, tuple(range(t)), DEVICE, in_place=in_place)
            for t in TOKENS for in_place in (False, True)]


def _prepare(impl: RopeImpl, case: RopeCase) -> tuple[Any, Any, dict[str, int]]:
    dtype = torch_dtype(case.dtype)
    emb = impl.embedding(case.config, case.dtype, case.device)

    def make_inputs() -> tuple[torch.Tensor, ...]:
        q = torch.randn(case.tokens, case.heads_q, case.head_dim, device=case.device, dtype=dtype)
        k = torch.randn(case.tokens, case.heads_kv, case.head_dim, device=case.device, dtype=dtype)
        return q, k, torch.arange(case.tokens, device=case.device)

    def run(q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor) -> None:
        emb.apply(q, k, positions, in_place=case.in_place)

    elt = torch.tensor([], dtype=dtype).element_size()
    moved = 2 * case.tokens * (case.heads_q + case.heads_kv) * case.head_dim * elt  # read q, k; write q', k'
    return make_inputs, run, {"min_bytes": moved + 8 * case.tokens, "items": case.tokens}


def _describe(case: RopeCase) -> dict[str, Any]:
    return {"tokens": case.tokens, "heads_q": case.heads_q, "heads_kv": case.heads_kv, "head_dim": case.head_dim,
            "dtype": case.dtype, "in_place": case.in_place, "config": case.config.name}


AREA = Area(
    id="rope", impl_type=RopeImpl, features=FEATURES,
    properties=tuple(_properties()), examples=tuple(_examples()), errors=tuple(_errors()),
    benchmarks=(Benchmark("apply", _bench_cases(), _prepare, x="tokens",
                          metrics=("gbps", "fraction_of_peak", "speedup"),
                          baseline={"cuda": "rope-torch", "cpu": "rope-torch"}, series=("in_place",),
                          describe=_describe),),
)

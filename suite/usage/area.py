"""The usage area, declared: golden bodies, the same request in every shape, fuzzing, bad payloads, benchmarks.

Check names carry the format, so a declared non-conformance can name the formats it is about.

- ``golden.<fmt>``: every hand-worked body of the format (``suite.usage.corpus.GOLDEN``) is pinned;
- ``same_request.<fmt>``: a drawn record (every count the shape can carry, up to 10¹⁵, and a tier it reports)
  written in the format's shape must parse back to itself;
- ``fuzz.<fmt>``: mutated payloads may only parse or raise ``UsageError`` (sized from ``call_cost_s``);
- ``malformed.<fmt>.<what>``: a bad payload must raise ``UsageError`` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from hypothesis import strategies as st

from impls.base import declared_reasons
from impls.usage.api import FEATURES, FuzzCase, MalformedCase, UsageCase, UsageImpl
from reference.usage import FORMATS, Usage
from suite.engine.area import Area, Benchmark, ErrorInput, Example, Property
from suite.usage.check import check, check_fuzz, check_malformed
from suite.usage.corpus import EXPRESSES, GOLDEN, MODELS, REPORTED_TIERS, render, whole

BIG = 10**15  # the largest count drawn: far beyond any real request, still an exact int everywhere
COUNTS = st.one_of(st.integers(0, 2_000_000), st.integers(0, BIG), st.sampled_from([0, 1, BIG]))


def golden_cases(fmt: str) -> tuple[UsageCase, ...]:
    return tuple(UsageCase(f, payload, expected, why) for f, payload, expected, why in GOLDEN if f == fmt)


@st.composite
def records(draw: st.DrawFn, fmt: str) -> Usage:
    """A usage record with every count ``fmt`` can carry (the rest 0), and a tier it reports (or none)."""
    can = EXPRESSES[fmt]
    counts = {c: draw(COUNTS) if c in can else 0 for c in ("input_uncached", "cache_read", "cache_write_5m",
                                                          "cache_write_1h", "output")}
    reasoning = draw(st.integers(0, counts["output"])) if "reasoning" in can else 0
    searches = draw(st.integers(0, 50)) if "web_searches" in can else 0
    tier = draw(st.sampled_from((None, *REPORTED_TIERS.get(fmt, ()))))
    return Usage(**counts, reasoning=reasoning, web_searches=searches, service_tier=tier)


def rendered(fmt: str, u: Usage) -> UsageCase:
    return UsageCase(fmt, render(u, fmt, MODELS[fmt]), u)


def _pinned_records(fmt: str) -> tuple[UsageCase, ...]:
    """The traps: nothing at all; every output token a reasoning token; the whole prompt cached; 10¹⁵ everywhere."""
    can = EXPRESSES[fmt]

    def only(**counts: int) -> Usage:
        return Usage(**{k: v for k, v in counts.items() if k in can})  # type: ignore[arg-type]

    return tuple(rendered(fmt, u) for u in (
        Usage(), only(input_uncached=3, output=7, reasoning=7), only(cache_read=4096, output=1),
        only(input_uncached=BIG, cache_read=BIG, cache_write_5m=BIG, cache_write_1h=BIG, output=BIG, reasoning=BIG)))


def parses(fmt: str) -> Any:
    """Reasons an implementation cannot be asked about ``fmt`` at all (it does not parse it)."""
    return lambda impl: declared_reasons(impl, UsageCase(fmt, None, None))


def _properties() -> list[Property]:
    props = []
    for fmt in FORMATS:
        golden = golden_cases(fmt)
        props.append(Property(f"golden.{fmt}", st.sampled_from(golden), check, pinned=golden, applies=parses(fmt)))
        props.append(Property(f"same_request.{fmt}", records(fmt).map(partial(rendered, fmt)), check,
                              pinned=_pinned_records(fmt), applies=parses(fmt)))
    return props


# (format, what, payload, the field the error must name)
BAD_PAYLOADS: list[tuple[str, str, Any, str]] = [
    ("openai.chat", "negative_prompt",
     {"usage": {"prompt_tokens": -1, "completion_tokens": 2, "total_tokens": 1}}, "usage.prompt_tokens"),
    ("openai.chat", "fractional_prompt",
     {"usage": {"prompt_tokens": 1.5, "completion_tokens": 2, "total_tokens": 3}}, "usage.prompt_tokens"),
    ("openai.chat", "string_prompt",
     {"usage": {"prompt_tokens": "10", "completion_tokens": 2, "total_tokens": 12}}, "usage.prompt_tokens"),
    ("openai.chat", "cached_above_prompt",
     {"usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12,
                "prompt_tokens_details": {"cached_tokens": 11}}}, "cached_tokens"),
    ("openai.chat", "reasoning_above_completion",
     {"usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12,
                "completion_tokens_details": {"reasoning_tokens": 3}}}, "reasoning_tokens"),
    ("openai.chat", "wrong_total",
     {"usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 13}}, "total_tokens"),
    ("openai.responses", "bool_output",
     {"usage": {"input_tokens": 10, "output_tokens": True, "total_tokens": 11,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0}}}, "usage.output_tokens"),
    ("anthropic.messages", "missing_output", {"usage": {"input_tokens": 10}}, "usage.output_tokens"),
    ("anthropic.messages", "negative_cache_read",
     {"usage": {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": -5}}, "cache_read_input_tokens"),
    ("anthropic.messages", "ttl_parts_differ",
     {"usage": {"input_tokens": 1, "output_tokens": 1, "cache_creation_input_tokens": 100,
                "cache_creation": {"ephemeral_5m_input_tokens": 30, "ephemeral_1h_input_tokens": 60}}},
     "cache_creation"),
    ("anthropic.messages", "thinking_above_output",
     {"usage": {"input_tokens": 1, "output_tokens": 5, "output_tokens_details": {"thinking_tokens": 6}}},
     "thinking_tokens"),
    ("anthropic.messages.stream", "count_goes_down",
     [{"type": "message_start", "message": {"usage": {"input_tokens": 25, "output_tokens": 1}}},
      {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 40}},
      {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 30}}],
     "output_tokens"),
    ("anthropic.messages.stream", "delta_before_start",
     [{"type": "message_delta", "delta": {}, "usage": {"output_tokens": 40}}], "events[0]"),
    ("gemini", "cached_above_prompt",
     {"usageMetadata": {"promptTokenCount": 10, "cachedContentTokenCount": 20}}, "cachedContentTokenCount"),
    ("gemini", "metadata_not_an_object", {"usageMetadata": [1, 2]}, "usageMetadata"),
    ("gemini", "wrong_total",
     {"usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 3,
                        "totalTokenCount": 15}}, "totalTokenCount"),
    ("bedrock.converse", "negative_input", {"usage": {"inputTokens": -3, "outputTokens": 1}}, "usage.inputTokens"),
    ("bedrock.converse", "ttl_parts_differ",
     {"usage": {"inputTokens": 1, "outputTokens": 1, "cacheWriteInputTokens": 100,
                "cacheDetails": [{"ttl": "5m", "inputTokens": 30}]}}, "cacheDetails"),
    ("bedrock.converse", "wrong_total",
     {"usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 99, "cacheReadInputTokens": 7}}, "totalTokens"),
    ("deepseek.chat", "hit_plus_miss_differs",
     {"usage": {"prompt_tokens": 100, "completion_tokens": 1, "total_tokens": 101, "prompt_cache_hit_tokens": 60,
                "prompt_cache_miss_tokens": 50}}, "prompt_cache_hit_tokens"),
]


def _bad(fmt: str, what: str, payload: Any, field: str) -> ErrorInput:
    case = MalformedCase(fmt, whole(fmt, payload), field, what)
    return ErrorInput(f"malformed.{fmt}.{what}", lambda impl: check_malformed(impl, case),
                      lambda impl: declared_reasons(impl, case))


MALFORMED = {f"malformed.{fmt}.{what}": MalformedCase(fmt, whole(fmt, payload), field, what)
             for fmt, what, payload, field in BAD_PAYLOADS}


# ---- benchmarks ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ParseBench:
    fmt: str
    payloads: int

    def features(self) -> set[str]:
        return {self.fmt}


BENCH_RECORD = Usage(input_uncached=1200, cache_read=30_000, output=800, reasoning=300)


def _prepare(impl: UsageImpl, case: ParseBench) -> tuple[Any, Any, dict[str, int]]:
    payload = render(BENCH_RECORD, case.fmt, MODELS[case.fmt])

    def run(*payloads: Any) -> None:
        for p in payloads:
            impl.parse(case.fmt, p)

    return (lambda: [payload] * case.payloads), run, {"items": case.payloads}


BENCH_FORMATS = ("openai.chat", "anthropic.messages", "gemini")
AREA = Area(
    id="usage", impl_type=UsageImpl, features=FEATURES,
    properties=tuple(_properties()),
    examples=tuple(Example(f"fuzz.{fmt}", FuzzCase(fmt), check_fuzz) for fmt in FORMATS),
    errors=tuple(_bad(*bad) for bad in BAD_PAYLOADS),
    benchmarks=(Benchmark("parse", [ParseBench(fmt, 200) for fmt in BENCH_FORMATS], _prepare, x="payloads",
                          metrics=("per_second",), baseline={"cpu": "usage-reference", "cuda": "usage-reference"},
                          series=("fmt",)),),
)

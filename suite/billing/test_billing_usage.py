"""Usage mapping: golden bodies, the same request in every shape, streams, GenerationResult, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from impls.usage.api import UsageCase, UsageImpl
from reference import usage as ref
from reference.usage import GenerationResult, Usage, UsageError
from suite.billing.checks import BAD_PAYLOADS, golden_failures, malformed_failures
from suite.billing.corpus import expressible, render
from suite.billing.fuzz import malformed

FUZZ_COUNT = 10_000


def _skip_unless(impl: UsageImpl, case: UsageCase, test: str = "") -> None:
    reasons = impl.unsupported(case)
    expected = impl.expected_failure(test, case) if test else None
    if expected is not None:  # a property test: its stale check is the deterministic golden test of the format
        reasons.append(f"expected failure (checked by test_usage_golden_corpus): {expected.reason}")
    if reasons:
        pytest.skip("; ".join(reasons))


def _settle(impl: UsageImpl, test: str, case: UsageCase, failures: list[str]) -> None:
    """Pass, or xfail as declared by the adapter (failing as stale if the declared failure is gone)."""
    expected = impl.expected_failure(test, case)
    if expected is not None and expected.when is not None:
        if not failures:
            pytest.fail(f"stale expected failure: {expected.reason} -- this entry no longer fails; remove it")
        pytest.xfail(f"{expected.reason} ({expected.link}): {failures[0][:300]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("fmt", ref.FORMATS)
def test_usage_golden_corpus(usage_impl: UsageImpl, fmt: str) -> None:
    case = UsageCase(fmt)
    _skip_unless(usage_impl, case)
    _settle(usage_impl, "test_usage_golden_corpus", case, golden_failures(usage_impl.parse, (fmt,),
                                                                                 usage_impl.reports_service_tier))


@pytest.mark.parametrize("fmt", sorted({f for f, _, _ in BAD_PAYLOADS}))
def test_usage_rejects_malformed(usage_impl: UsageImpl, fmt: str) -> None:
    case = UsageCase(fmt, malformed=True)
    _skip_unless(usage_impl, case)
    _settle(usage_impl, "test_usage_rejects_malformed", case, malformed_failures(usage_impl.parse, (fmt,)))


@st.composite
def plain_requests(draw: st.DrawFn) -> Usage:
    """A request every shape can express: no cache writes, no web searches, no reasoning."""
    return Usage(input_uncached=draw(st.integers(0, 10**7)), cache_read=draw(st.integers(0, 10**7)),
                 output=draw(st.integers(0, 10**6)))


@pytest.mark.parametrize("fmt", ref.FORMATS)
@given(u=plain_requests())
def test_usage_same_request_every_shape(usage_impl: UsageImpl, fmt: str, u: Usage) -> None:
    _skip_unless(usage_impl, UsageCase(fmt), "test_usage_golden_corpus")
    assert usage_impl.parse(fmt, render(u, fmt)) == u


@pytest.mark.parametrize("fmt", [f for f in ref.FORMATS if not f.startswith("anthropic")])
@given(data=st.data())
def test_usage_reasoning_inside_output(usage_impl: UsageImpl, fmt: str, data: st.DataObject) -> None:
    _skip_unless(usage_impl, UsageCase(fmt), "test_usage_golden_corpus")
    output = data.draw(st.integers(0, 10**6))
    u = Usage(input_uncached=data.draw(st.integers(0, 10**6)), output=output,
              reasoning=data.draw(st.integers(0, output)))
    assert usage_impl.parse(fmt, render(u, fmt)) == u


@pytest.mark.parametrize("fmt", ["anthropic.messages", "anthropic.messages.stream"])
@given(data=st.data())
def test_usage_anthropic_cache_writes_and_searches(usage_impl: UsageImpl, fmt: str, data: st.DataObject) -> None:
    _skip_unless(usage_impl, UsageCase(fmt), "test_usage_golden_corpus")
    n = st.integers(0, 10**6)
    u = Usage(input_uncached=data.draw(n), cache_read=data.draw(n), cache_write_5m=data.draw(n),
              cache_write_1h=data.draw(n), output=data.draw(n), web_searches=data.draw(st.integers(0, 20)))
    assert usage_impl.parse(fmt, render(u, fmt)) == expressible(u, fmt)


def test_usage_design_brief_figures() -> None:
    openai = {"usage": {"prompt_tokens": 13, "completion_tokens": 7, "total_tokens": 20}}
    anthropic = {"usage": {"input_tokens": 12, "output_tokens": 6}}
    assert ref.generation_result("a", "gpt-5", ref.parse("openai.chat", openai)) == \
        GenerationResult("a", "gpt-5", 13, 7, 20)
    assert ref.generation_result("a", "claude", ref.parse("anthropic.messages", anthropic)) == \
        GenerationResult("a", "claude", 12, 6, 18)


def test_usage_generation_result_unknown_is_not_zero() -> None:
    interrupted = [{"type": "message_start", "message": {"usage": {"input_tokens": 5, "output_tokens": 1}}}]
    result = ref.generation_result("partial", "claude", ref.parse("anthropic.messages.stream", interrupted))
    assert result == GenerationResult("partial", "claude", None, None, None)


def test_usage_generation_result_counts_cached_prompt() -> None:
    # Anthropic: 50 uncached + 10000 read + 2048 written = 12098 prompt tokens; + 500 output = 12598
    body = {"usage": {"input_tokens": 50, "cache_read_input_tokens": 10000, "cache_creation_input_tokens": 2048,
                      "output_tokens": 500}}
    assert ref.generation_result("x", "m", ref.parse("anthropic.messages", body)) == \
        GenerationResult("x", "m", 12098, 500, 12598)


def test_usage_error_names_field_and_value() -> None:
    with pytest.raises(UsageError) as info:
        ref.parse("openai.chat", {"usage": {"prompt_tokens": 10, "completion_tokens": 2,
                                            "prompt_tokens_details": {"cached_tokens": 11}}})
    assert info.value.field == "usage.prompt_tokens_details.cached_tokens"
    assert "11" in str(info.value) and "10" in str(info.value)


def test_usage_ttl_parts_must_match_creation_total() -> None:
    body = {"usage": {"input_tokens": 1, "output_tokens": 1, "cache_creation_input_tokens": 100,
                      "cache_creation": {"ephemeral_5m_input_tokens": 30, "ephemeral_1h_input_tokens": 60}}}
    with pytest.raises(UsageError, match="cache_creation"):
        ref.parse("anthropic.messages", body)


@pytest.mark.parametrize("fmt", ref.FORMATS)
def test_usage_fuzz_only_documented_error(usage_impl: UsageImpl, fmt: str) -> None:
    case = UsageCase(fmt, malformed=True)
    _skip_unless(usage_impl, case)
    count = getattr(usage_impl, "fuzz_count", FUZZ_COUNT)
    failures: list[str] = []
    for payload, definite in malformed(fmt, count):
        try:
            usage_impl.parse(fmt, payload)
        except UsageError:
            continue
        except Exception as err:  # anything else is the failure this test looks for
            failures.append(f"{fmt}: {type(err).__name__}: {err} on {payload}")
            continue
        if definite:
            failures.append(f"{fmt}: malformed payload accepted: {payload}")
    _settle(usage_impl, "test_usage_fuzz_only_documented_error", case, failures)

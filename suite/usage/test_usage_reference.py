"""The usage reference against the source documents' figures and its own contract (unknown is not zero)."""

from __future__ import annotations

import pytest

from reference import usage as ref
from reference.usage import GenerationResult, UsageError
from suite.usage.corpus import GOLDEN


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


def test_usage_stream_count_going_down_names_event_and_counts() -> None:
    events = [{"type": "message_start", "message": {"usage": {"input_tokens": 25, "output_tokens": 1}}},
              {"type": "message_delta", "usage": {"output_tokens": 40}},
              {"type": "message_delta", "usage": {"output_tokens": 30}}]
    with pytest.raises(UsageError, match=r"events\[2\]\.usage\.output_tokens.*from 40 to 30"):
        ref.parse("anthropic.messages.stream", events)


@pytest.mark.parametrize("entry", [g for g in GOLDEN if g[2] is not None], ids=lambda g: f"{g[0]}:{g[3][:30]}")
def test_usage_format_is_detected_from_the_shape(entry: tuple) -> None:  # type: ignore[type-arg]
    fmt, payload, _, _ = entry
    assert ref.detect_format(payload) == fmt


def test_usage_model_of_a_response() -> None:
    assert ref.model_of({"model": "gpt-5-2025-08-07", "usage": {}}) == "gpt-5-2025-08-07"
    assert ref.model_of({"modelVersion": "gemini-2.5-pro"}) == "gemini-2.5-pro"
    assert ref.model_of([{"type": "message_start", "message": {"model": "claude-haiku-4-5"}}]) == "claude-haiku-4-5"
    assert ref.model_of({"usage": {}}) is None

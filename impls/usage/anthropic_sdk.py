"""The anthropic SDK: payload → ``anthropic.types.Usage`` → canonical record; streams through the SDK's own
accumulator (``anthropic.lib.streaming._messages.accumulate_event``, what ``MessageStream`` runs)."""

from __future__ import annotations

from functools import cache
from typing import Any

from impls.base import ExpectedFailure, Requirements
from impls.registry import register
from impls.usage._sdk import body_usage, count, validated
from impls.usage.api import MalformedCase, UsageImpl, validate
from reference.usage import Usage, UsageError

LAX = ("its pydantic models validate in lax mode: 3.0, the string '12', True and False are accepted as integer "
       "token counts")
FLOAT_COUNT = MalformedCase("anthropic.messages", {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
    "stop_reason": "end_turn", "stop_sequence": None, "usage": {"input_tokens": 3.0, "output_tokens": 6}},
    "usage.input_tokens", "float_input")
ACCUMULATE = "https://github.com/anthropics/anthropic-sdk-python/blob/main/src/anthropic/lib/streaming/_messages.py"


class AnthropicSdkUsage(UsageImpl):
    name = "anthropic-sdk-usage"
    description = "anthropic.types.Usage; streams through the SDK's accumulate_event"
    requires = Requirements(modules=("anthropic",))
    formats = ("anthropic.messages", "anthropic.messages.stream")
    call_cost_s = 1.3e-4  # the stream path; a body is 1e-5 (measured under load)
    expected_failures = (
        ExpectedFailure(test="fuzz.anthropic.*", reason=LAX,
                        link="https://docs.pydantic.dev/latest/concepts/conversion_table/", example=FLOAT_COUNT),
        ExpectedFailure(test="malformed.anthropic.messages.stream.count_goes_down",
                        reason="accumulate_event overwrites the snapshot's output_tokens with each message_delta's "
                               "cumulative count without checking it: 1, 40, then 30 ends at 30 output tokens, no error",
                        link=ACCUMULATE + "#L542"),
    )

    def parse(self, fmt: str, payload: Any) -> Usage | None:
        from anthropic.types import Usage as SdkUsage

        validate(fmt, payload)
        if fmt == "anthropic.messages.stream":
            return self._stream(payload)
        raw = body_usage(payload, "usage", "body")
        if raw is None:
            return None
        return self._record(validated(lambda: SdkUsage.model_validate(raw), "usage"))

    @staticmethod
    def _record(u: Any) -> Usage:
        created = count(u.cache_creation_input_tokens, "usage.cache_creation_input_tokens")
        w5, w1h = created, 0
        if u.cache_creation is not None:
            w5 = count(u.cache_creation.ephemeral_5m_input_tokens, "usage.cache_creation.ephemeral_5m_input_tokens")
            w1h = count(u.cache_creation.ephemeral_1h_input_tokens, "usage.cache_creation.ephemeral_1h_input_tokens")
            if w5 + w1h != created:
                raise UsageError("usage.cache_creation", f"TTL parts {w5} + {w1h} differ from {created}")
        searches = u.server_tool_use.web_search_requests if u.server_tool_use else 0
        for name, value in (u.server_tool_use.model_dump() if u.server_tool_use else {}).items():
            count(value, f"usage.server_tool_use.{name}")  # every per-request count must be a count
        output = count(u.output_tokens, "usage.output_tokens")
        thinking = count(u.output_tokens_details.thinking_tokens if u.output_tokens_details else 0,
                         "usage.output_tokens_details.thinking_tokens")
        if thinking > output:
            raise UsageError("usage.output_tokens_details.thinking_tokens",
                             f"{thinking} exceeds its parent output_tokens = {output}")
        return Usage(input_uncached=count(u.input_tokens, "usage.input_tokens"),
                     cache_read=count(u.cache_read_input_tokens, "usage.cache_read_input_tokens"),
                     cache_write_5m=w5, cache_write_1h=w1h, output=output, reasoning=thinking,
                     web_searches=count(searches, "usage.server_tool_use.web_search_requests"),
                     service_tier=u.service_tier)

    @staticmethod
    def _stream(events: list[Any]) -> Usage | None:
        """The SDK's snapshot after every event; usage is known once a message_delta has arrived."""
        from anthropic.lib.streaming._messages import accumulate_event

        adapter = _event_adapter()
        snapshot = None
        delta_seen = False
        for i, raw in enumerate(events):
            if not isinstance(raw, dict):
                raise UsageError(f"events[{i}]", f"must be an object; got {type(raw).__name__}")
            if raw.get("type") not in ("message_start", "message_delta"):
                continue  # content events carry no usage (and their text is not what is checked here)
            event = validated(lambda r=raw: adapter.validate_python(r), f"events[{i}]")  # type: ignore[misc]
            try:
                snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs={})
            except (RuntimeError, TypeError, ValueError) as err:
                raise UsageError(f"events[{i}]", f"anthropic SDK: {err}") from None
            AnthropicSdkUsage._record(snapshot.usage)  # every state of the stream is validated as it arrives
            delta_seen = delta_seen or raw["type"] == "message_delta"
        return AnthropicSdkUsage._record(snapshot.usage) if snapshot is not None and delta_seen else None


@cache
def _event_adapter() -> Any:
    from anthropic.types import RawMessageStreamEvent
    from pydantic import TypeAdapter

    return TypeAdapter(RawMessageStreamEvent)


register(AnthropicSdkUsage())

"""The anthropic SDK's ``Usage`` type: payload → ``anthropic.types.Usage`` → canonical record."""

from __future__ import annotations

from typing import Any

from impls.base import ExpectedFailure, Requirements
from impls.registry import register
from impls.usage._sdk import body_usage, count, validated
from impls.usage.api import UsageImpl
from reference.usage import Usage, UsageError

COERCION = ExpectedFailure(
    test="test_usage_fuzz_only_documented_error",
    when=lambda case: case.fmt in ("anthropic.messages", "anthropic.messages.stream"),
    reason="its pydantic models validate in lax mode: True, False, 3.0 and the string '12' are accepted as integer "
           "token counts",
    link="https://docs.pydantic.dev/latest/concepts/conversion_table/")


class AnthropicSdkUsage(UsageImpl):
    name = "anthropic-sdk-usage"
    description = "anthropic.types.Usage"
    requires = Requirements(modules=("anthropic",))
    formats = ("anthropic.messages", "anthropic.messages.stream")
    expected_failures = (COERCION,)

    def parse(self, fmt: str, payload: Any) -> Usage | None:
        from anthropic.types import Usage as SdkUsage

        if fmt == "anthropic.messages.stream":
            raw = self._stream_usage(payload)
        else:
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
        return Usage(input_uncached=count(u.input_tokens, "usage.input_tokens"),
                     cache_read=count(u.cache_read_input_tokens, "usage.cache_read_input_tokens"),
                     cache_write_5m=w5, cache_write_1h=w1h, output=count(u.output_tokens, "usage.output_tokens"),
                     web_searches=count(searches, "usage.server_tool_use.web_search_requests"),
                     service_tier=u.service_tier)

    @staticmethod
    def _stream_usage(events: Any) -> dict[str, Any] | None:
        """message_start's usage, then each message_delta's cumulative counts replacing it (last wins)."""
        from anthropic.types import MessageDeltaUsage
        from anthropic.types import Usage as SdkUsage

        if not isinstance(events, list):
            raise UsageError("events", f"must be a list; got {type(events).__name__}")
        latest: dict[str, Any] | None = None
        delta_seen = False
        for i, event in enumerate(events):
            if not isinstance(event, dict):
                raise UsageError(f"events[{i}]", f"must be an object; got {type(event).__name__}")
            if event.get("type") == "message_start":
                message = event.get("message")
                if not isinstance(message, dict):
                    raise UsageError(f"events[{i}].message", "must be an object")
                start = validated(lambda m=message: SdkUsage.model_validate(m.get("usage")),  # type: ignore[misc]
                                  f"events[{i}].message.usage")
                AnthropicSdkUsage._record(start)  # every state of the stream is validated as it arrives
                latest = start.model_dump(exclude_none=True)
            elif event.get("type") == "message_delta" and event.get("usage") is not None:
                if latest is None:
                    raise UsageError(f"events[{i}]", "message_delta before message_start")
                delta = validated(lambda e=event: MessageDeltaUsage.model_validate(e["usage"]),  # type: ignore[misc]
                                  f"events[{i}].usage")
                latest.update(delta.model_dump(exclude_none=True))  # cumulative: replace, never add
                state = latest
                AnthropicSdkUsage._record(validated(lambda s=state: SdkUsage.model_validate(s),  # type: ignore[misc]
                                                    f"events[{i}].usage"))
                delta_seen = True
        return latest if delta_seen else None


register(AnthropicSdkUsage())

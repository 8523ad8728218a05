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
    when=lambda case: case.fmt == "anthropic.messages",
    reason="its pydantic models validate in lax mode: True, False, 3.0 and the string '12' are accepted as integer "
           "token counts",
    link="https://docs.pydantic.dev/latest/concepts/conversion_table/")


class AnthropicSdkUsage(UsageImpl):
    name = "anthropic-sdk-usage"
    description = "anthropic.types.Usage"
    requires = Requirements(modules=("anthropic",))
    formats = ("anthropic.messages",)
    expected_failures = (COERCION,)

    def parse(self, fmt: str, payload: Any) -> Usage | None:
        from anthropic.types import Usage as SdkUsage

        raw = body_usage(payload, "usage", "body")
        if raw is None:
            return None
        u = validated(lambda: SdkUsage.model_validate(raw), "usage")
        created = count(u.cache_creation_input_tokens, "usage.cache_creation_input_tokens")
        w5, w1h = created, 0
        if u.cache_creation is not None:
            w5 = count(u.cache_creation.ephemeral_5m_input_tokens, "usage.cache_creation.ephemeral_5m_input_tokens")
            w1h = count(u.cache_creation.ephemeral_1h_input_tokens, "usage.cache_creation.ephemeral_1h_input_tokens")
            if w5 + w1h != created:
                raise UsageError("usage.cache_creation", f"TTL parts {w5} + {w1h} differ from {created}")
        searches = u.server_tool_use.web_search_requests if u.server_tool_use else 0
        return Usage(input_uncached=count(u.input_tokens, "usage.input_tokens"),
                     cache_read=count(u.cache_read_input_tokens, "usage.cache_read_input_tokens"),
                     cache_write_5m=w5, cache_write_1h=w1h, output=count(u.output_tokens, "usage.output_tokens"),
                     web_searches=count(searches, "usage.server_tool_use.web_search_requests"),
                     service_tier=u.service_tier)


register(AnthropicSdkUsage())

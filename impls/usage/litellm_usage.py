"""litellm's usage normalisation for Anthropic Messages: ``AnthropicConfig.calculate_usage`` → canonical record."""

from __future__ import annotations

import os
from typing import Any

from impls.base import ExpectedFailure, Requirements
from impls.registry import register
from impls.usage.api import UsageImpl
from reference.usage import Usage, UsageError

LINK = "https://github.com/BerriAI/litellm/blob/main/litellm/llms/anthropic/chat/transformation.py"


class LitellmUsage(UsageImpl):
    name = "litellm-usage"
    description = "litellm AnthropicConfig.calculate_usage (Anthropic usage → OpenAI-style Usage)"
    requires = Requirements(modules=("litellm",))
    formats = ("anthropic.messages",)
    expected_failures = (
        ExpectedFailure(
            test="test_usage_rejects_malformed", when=lambda case: case.fmt == "anthropic.messages",
            reason="calculate_usage does not validate: a missing output_tokens becomes 0, and a negative "
                   "cache_read_input_tokens passes through unchecked",
            link=LINK),
        ExpectedFailure(
            test="test_usage_fuzz_only_documented_error", when=lambda case: case.fmt == "anthropic.messages",
            reason="calculate_usage does not validate counts: payloads with a malformed count come back as a "
                   "usage record instead of an error",
            link=LINK),
    )

    def parse(self, fmt: str, payload: Any) -> Usage | None:
        os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
        from litellm.llms.anthropic.chat.transformation import AnthropicConfig

        if not isinstance(payload, dict):
            raise UsageError("body", f"must be an object; got {type(payload).__name__}")
        raw = payload.get("usage")
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise UsageError("usage", f"must be an object; got {type(raw).__name__}")
        try:
            u = AnthropicConfig().calculate_usage(raw, None)
        except (TypeError, ValueError, AttributeError) as err:
            raise UsageError("usage", f"litellm: {err}") from None
        read = getattr(u, "cache_read_input_tokens", 0) or 0
        written = getattr(u, "cache_creation_input_tokens", 0) or 0
        details = getattr(u.prompt_tokens_details, "cache_creation_token_details", None)
        w1h = (details.ephemeral_1h_input_tokens or 0) if details else 0
        tool_use = getattr(u, "server_tool_use", None)
        searches = (tool_use.web_search_requests or 0) if tool_use else 0
        try:
            return Usage(input_uncached=u.prompt_tokens - read - written, cache_read=read,
                         cache_write_5m=written - w1h, cache_write_1h=w1h, output=u.completion_tokens,
                         web_searches=searches, service_tier=raw.get("service_tier"))
        except TypeError as err:
            raise UsageError("usage", f"litellm produced non-integer counts: {err}") from None


register(LitellmUsage())

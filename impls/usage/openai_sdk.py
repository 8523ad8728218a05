"""The openai SDK's usage types: payload → ``CompletionUsage`` / ``ResponseUsage`` → canonical record."""

from __future__ import annotations

from typing import Any

from impls.base import ExpectedFailure, Requirements
from impls.registry import register
from impls.usage._sdk import body_usage, count, validated
from impls.usage.api import UsageImpl
from reference.usage import Usage, UsageError

LAX = ("its pydantic models validate in lax mode: True, 3.0 and the string '10' are accepted as integer token "
       "counts (bool and str are not counts in the API's schema)")
LAX_LINK = "https://docs.pydantic.dev/latest/concepts/conversion_table/"
COERCION = (
    ExpectedFailure(test="test_usage_rejects_malformed", reason=LAX, link=LAX_LINK,
                    when=lambda case: case.fmt in ("openai.chat", "openai.responses")),
    ExpectedFailure(test="test_usage_fuzz_only_documented_error", reason=LAX, link=LAX_LINK,
                    when=lambda case: case.fmt in ("openai.chat", "openai.chat.stream")),
)
CACHE_WRITE_REQUIRED = ExpectedFailure(
    test="test_usage_golden_corpus",
    when=lambda case: case.fmt in ("openai.responses", "openai.responses.stream"),
    reason="openai 2.54's ResponseUsage requires input_tokens_details.cache_write_tokens, so it rejects a Responses "
           "body shaped like the API reference's example usage (input_tokens_details: {cached_tokens} only)",
    link="https://platform.openai.com/docs/api-reference/responses/object")


class OpenAISdkUsage(UsageImpl):
    name = "openai-sdk-usage"
    description = "openai.types CompletionUsage / ResponseUsage"
    requires = Requirements(modules=("openai",))
    formats = ("openai.chat", "openai.chat.stream", "openai.responses", "openai.responses.stream")
    expected_failures = (*COERCION, CACHE_WRITE_REQUIRED)

    def parse(self, fmt: str, payload: Any) -> Usage | None:
        if fmt == "openai.chat.stream":
            if not isinstance(payload, list):
                raise UsageError("chunks", f"must be a list; got {type(payload).__name__}")
            found = [u for u in (self.parse("openai.chat", c) for c in payload) if u is not None]
            return found[-1] if found else None
        if fmt == "openai.responses.stream":  # usage arrives with the terminal response event
            if not isinstance(payload, list):
                raise UsageError("events", f"must be a list; got {type(payload).__name__}")
            terminal = ("response.completed", "response.incomplete", "response.failed")
            found = [u for u in (self.parse("openai.responses", e.get("response"))
                                 for e in payload if isinstance(e, dict) and e.get("type") in terminal)
                     if u is not None]
            return found[-1] if found else None
        key_in, key_out, path = (("prompt_tokens", "completion_tokens", "usage") if fmt == "openai.chat"
                                 else ("input_tokens", "output_tokens", "usage"))
        raw = body_usage(payload, "usage", "body")
        if raw is None:
            return None
        if fmt == "openai.chat":
            from openai.types import CompletionUsage

            chat = validated(lambda: CompletionUsage.model_validate(raw), path)
            cached = chat.prompt_tokens_details.cached_tokens if chat.prompt_tokens_details else 0
            reasoning = chat.completion_tokens_details.reasoning_tokens if chat.completion_tokens_details else 0
            prompt, output = chat.prompt_tokens, chat.completion_tokens
        else:
            from openai.types.responses import ResponseUsage

            resp = validated(lambda: ResponseUsage.model_validate(raw), path)
            cached = resp.input_tokens_details.cached_tokens if resp.input_tokens_details else 0
            reasoning = resp.output_tokens_details.reasoning_tokens if resp.output_tokens_details else 0
            prompt, output = resp.input_tokens, resp.output_tokens
        prompt = count(prompt, f"usage.{key_in}")
        output = count(output, f"usage.{key_out}")
        cached = count(cached, "usage.cached_tokens")
        reasoning = count(reasoning, "usage.reasoning_tokens")
        if cached > prompt or reasoning > output:
            raise UsageError("usage", f"a sub-count exceeds its parent: cached {cached} / {key_in} {prompt}, "
                                      f"reasoning {reasoning} / {key_out} {output}")
        tier = payload.get("service_tier")
        return Usage(input_uncached=prompt - cached, cache_read=cached, output=output, reasoning=reasoning,
                     service_tier=tier if isinstance(tier, str) else None)


register(OpenAISdkUsage())

"""The openai SDK's usage types: payload → ``CompletionUsage`` / ``ResponseUsage`` → canonical record."""

from __future__ import annotations

from typing import Any

from impls._expected import each
from impls.base import ExpectedFailure, Requirements
from impls.registry import register
from impls.usage._sdk import body_usage, count, validated
from impls.usage.api import MalformedCase, UsageCase, UsageImpl, validate
from reference.usage import Usage, UsageError

LAX = ("its pydantic models validate in lax mode: the string '10', True and 3.0 are accepted as integer token "
       "counts (bool and str are not counts in the API's schema)")
LAX_LINK = "https://docs.pydantic.dev/latest/concepts/conversion_table/"
STRING_COUNT = MalformedCase("openai.chat", {"object": "chat.completion", "choices": [], "usage": {
    "prompt_tokens": "10", "completion_tokens": 2, "total_tokens": 12}}, "usage.prompt_tokens", "string_prompt")
DOCS_RESPONSES_USAGE = UsageCase("openai.responses", {
    "id": "resp_1", "object": "response", "created_at": 1767225600, "status": "completed", "model": "gpt-5",
    "output": [], "usage": {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 87,
                            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 123}},
    Usage(input_uncached=36, output=87), "API reference example usage")


def _no_cache_write_count(case: UsageCase) -> bool:
    """A Responses payload whose usage has no input_tokens_details.cache_write_tokens."""
    if not case.fmt.startswith("openai.responses"):
        return False
    payload = case.payload
    bodies = [payload] if isinstance(payload, dict) else [e.get("response") for e in payload if isinstance(e, dict)]
    usages = [b["usage"] for b in bodies if isinstance(b, dict) and isinstance(b.get("usage"), dict)]
    return any("cache_write_tokens" not in (u.get("input_tokens_details") or {}) for u in usages)


class OpenAISdkUsage(UsageImpl):
    name = "openai-sdk-usage"
    description = "openai.types CompletionUsage / ResponseUsage"
    requires = Requirements(modules=("openai",))
    formats = ("openai.chat", "openai.chat.stream", "openai.responses", "openai.responses.stream")
    call_cost_s = 1e-5  # measured under load
    expected_failures = (
        ExpectedFailure(test="fuzz.openai.*", reason=LAX, link=LAX_LINK, example=STRING_COUNT),
        *each(("malformed.openai.chat.string_prompt", "malformed.openai.responses.bool_output"), LAX, LAX_LINK),
        *each(("golden.openai.responses*",), "openai's ResponseUsage requires input_tokens_details.cache_write_tokens, "
              "so it rejects a Responses usage without it, such as the API reference's example "
              "(input_tokens_details: {cached_tokens} only)",
              "https://github.com/openai/openai-python/blob/main/src/openai/types/responses/response_usage.py",
              when=_no_cache_write_count, example=DOCS_RESPONSES_USAGE),
    )

    def parse(self, fmt: str, payload: Any) -> Usage | None:
        validate(fmt, payload)
        if fmt == "openai.chat.stream":
            found = [u for u in (self.parse("openai.chat", c) for c in payload) if u is not None]
            return found[-1] if found else None
        if fmt == "openai.responses.stream":  # usage arrives with the terminal response event
            terminal = ("response.completed", "response.incomplete", "response.failed")
            found = [u for u in (self.parse("openai.responses", e.get("response"))
                                 for e in payload if isinstance(e, dict) and e.get("type") in terminal)
                     if u is not None]
            return found[-1] if found else None
        key_in, key_out = ("prompt_tokens", "completion_tokens") if fmt == "openai.chat" else ("input_tokens",
                                                                                              "output_tokens")
        raw = body_usage(payload, "usage", "body")
        if raw is None:
            return None
        if fmt == "openai.chat":
            from openai.types import CompletionUsage

            chat = validated(lambda: CompletionUsage.model_validate(raw), "usage")
            cached = chat.prompt_tokens_details.cached_tokens if chat.prompt_tokens_details else 0
            reasoning = chat.completion_tokens_details.reasoning_tokens if chat.completion_tokens_details else 0
            prompt, output, total = chat.prompt_tokens, chat.completion_tokens, chat.total_tokens
        else:
            from openai.types.responses import ResponseUsage

            resp = validated(lambda: ResponseUsage.model_validate(raw), "usage")
            cached = resp.input_tokens_details.cached_tokens if resp.input_tokens_details else 0
            reasoning = resp.output_tokens_details.reasoning_tokens if resp.output_tokens_details else 0
            prompt, output, total = resp.input_tokens, resp.output_tokens, resp.total_tokens
        prompt = count(prompt, f"usage.{key_in}")
        output = count(output, f"usage.{key_out}")
        cached = count(cached, "usage.cached_tokens")
        reasoning = count(reasoning, "usage.reasoning_tokens")
        if cached > prompt or reasoning > output:
            raise UsageError("usage", f"a sub-count exceeds its parent: cached_tokens {cached} / {key_in} {prompt}, "
                                      f"reasoning_tokens {reasoning} / {key_out} {output}")
        if total is not None and count(total, "usage.total_tokens") != prompt + output:
            raise UsageError("usage.total_tokens", f"is {total}; the parts add up to {prompt + output}")
        tier = payload.get("service_tier")
        return Usage(input_uncached=prompt - cached, cache_read=cached, output=output, reasoning=reasoning,
                     service_tier=tier if isinstance(tier, str) else None)


register(OpenAISdkUsage())

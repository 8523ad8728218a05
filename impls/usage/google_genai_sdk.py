"""The google-genai SDK: a ``generateContent`` body → ``types.GenerateContentResponse`` → its
``usage_metadata`` (``GenerateContentResponseUsageMetadata``) → canonical record. Thoughts are outside the
candidates count, as in the REST API."""

from __future__ import annotations

from typing import Any

from impls.base import ExpectedFailure, Requirements
from impls.registry import register
from impls.usage._sdk import count, validated
from impls.usage.api import MalformedCase, UsageImpl, validate
from reference.usage import Usage, UsageError

STRING_COUNT = MalformedCase("gemini", {"candidates": [], "usageMetadata": {
    "promptTokenCount": 250000, "cachedContentTokenCount": "12", "candidatesTokenCount": 1000}},
    "usageMetadata.cachedContentTokenCount", "string_cached")


class GoogleGenaiUsage(UsageImpl):
    name = "google-genai-usage"
    description = "google.genai.types GenerateContentResponse.usage_metadata"
    requires = Requirements(modules=("google.genai",))
    formats = ("gemini",)
    call_cost_s = 3e-5  # measured under load
    expected_failures = (
        ExpectedFailure(test="fuzz.gemini",
                        reason="its pydantic types validate in lax mode: the string '12', True and 3.0 are accepted "
                               "as integer token counts in usageMetadata",
                        link="https://github.com/googleapis/python-genai/blob/main/google/genai/types.py",
                        example=STRING_COUNT),
    )

    def parse(self, fmt: str, payload: Any) -> Usage | None:
        from google.genai import types

        validate(fmt, payload)
        response = validated(lambda: types.GenerateContentResponse.model_validate(payload), "body")
        meta = response.usage_metadata
        if meta is None:
            return None
        prompt = count(meta.prompt_token_count, "usageMetadata.promptTokenCount")
        candidates = count(meta.candidates_token_count, "usageMetadata.candidatesTokenCount")
        thoughts = count(meta.thoughts_token_count, "usageMetadata.thoughtsTokenCount")
        cached = count(meta.cached_content_token_count, "usageMetadata.cachedContentTokenCount")
        tool_prompt = count(meta.tool_use_prompt_token_count, "usageMetadata.toolUsePromptTokenCount")
        if cached > prompt:
            raise UsageError("usageMetadata.cachedContentTokenCount",
                             f"{cached} exceeds its parent promptTokenCount = {prompt}")
        total = meta.total_token_count
        if total is not None and count(total, "usageMetadata.totalTokenCount") != prompt + tool_prompt + candidates \
                + thoughts:
            raise UsageError("usageMetadata.totalTokenCount",
                             f"is {total}; the parts add up to {prompt + tool_prompt + candidates + thoughts}")
        return Usage(input_uncached=prompt + tool_prompt - cached, cache_read=cached, output=candidates + thoughts,
                     reasoning=thoughts)


register(GoogleGenaiUsage())

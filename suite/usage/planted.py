"""Deliberately broken usage parsers: the area's checks must reject every one, every run.

Each is the reference parser with one classic mistake. They are not registered; the self-test runs them
through the area's pinned cases, examples and bad payloads, exactly as a real implementation is run.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from impls.usage.reference_parsers import ReferenceUsage
from reference.usage import Usage


class OpenAICachedCountedTwice(ReferenceUsage):
    """Takes prompt_tokens as the uncached input and adds cached_tokens on top."""

    name = "planted-openai-cached-twice"

    def parse(self, fmt: str, payload: Any) -> Usage | None:
        u = super().parse(fmt, payload)
        if u is None or not fmt.startswith("openai"):
            return u
        return dataclasses.replace(u, input_uncached=u.input_uncached + u.cache_read)


class AnthropicCacheLeftOut(ReferenceUsage):
    """Reads input_tokens as the whole prompt and drops the cache counts."""

    name = "planted-anthropic-cache-left-out"

    def parse(self, fmt: str, payload: Any) -> Usage | None:
        u = super().parse(fmt, payload)
        if u is None or not fmt.startswith("anthropic"):
            return u
        return dataclasses.replace(u, cache_read=0, cache_write_5m=0, cache_write_1h=0)


class GeminiThoughtsLeftOut(ReferenceUsage):
    """Takes candidatesTokenCount as the whole output."""

    name = "planted-gemini-thoughts-left-out"

    def parse(self, fmt: str, payload: Any) -> Usage | None:
        u = super().parse(fmt, payload)
        if u is None or fmt != "gemini":
            return u
        return dataclasses.replace(u, output=u.output - u.reasoning, reasoning=0)


class AnthropicStreamSummed(ReferenceUsage):
    """Adds every message_delta's output_tokens to message_start's instead of taking the last."""

    name = "planted-anthropic-stream-summed"

    def parse(self, fmt: str, payload: Any) -> Usage | None:
        u = super().parse(fmt, payload)
        if u is None or fmt != "anthropic.messages.stream":
            return u
        start = next(e for e in payload if e.get("type") == "message_start")["message"]["usage"]["output_tokens"]
        deltas = sum(e["usage"].get("output_tokens", 0) for e in payload
                     if e.get("type") == "message_delta" and e.get("usage"))
        return dataclasses.replace(u, output=start + deltas, reasoning=min(u.reasoning, start + deltas))


class BedrockCacheInsideInput(ReferenceUsage):
    """Reads Bedrock inputTokens as the whole prompt (as OpenAI's prompt_tokens), subtracting the cache from it."""

    name = "planted-bedrock-cache-inside-input"

    def parse(self, fmt: str, payload: Any) -> Usage | None:
        u = super().parse(fmt, payload)
        if u is None or fmt != "bedrock.converse":
            return u
        return dataclasses.replace(u, input_uncached=max(0, u.input_uncached - u.cache_read - u.cache_write))


PLANTED = (OpenAICachedCountedTwice(), AnthropicCacheLeftOut(), GeminiThoughtsLeftOut(), AnthropicStreamSummed(),
           BedrockCacheInsideInput())

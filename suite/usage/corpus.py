"""Realistic response bodies per provider, and a renderer of one logical request into every shape.

Golden bodies are written here in each provider's documented shape; the expected canonical record
of each is worked out by hand in the comment next to it (never produced by the code under test).
"""

from __future__ import annotations

from typing import Any

from impls._bodies import COUNTS, EXPRESSES, MODELS, REPORTED_TIERS, expressible, render
from reference.usage import Usage

__all__ = ["COUNTS", "EXPRESSES", "GOLDEN", "MODELS", "REPORTED_TIERS", "expressible", "render", "whole"]

# The parts of each provider's body that carry no usage; a golden body names only what it is about, and
# gets the rest from here (its own keys win), so that it is a whole response a client library accepts.
_MESSAGE = {"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}
_RESPONSE = {"id": "resp_g", "object": "response", "created_at": 1767225600, "status": "completed", "model": "gpt-5",
             "output": [{"type": "message", "id": "msg_g", "status": "completed", "role": "assistant",
                         "content": [{"type": "output_text", "text": "Hi", "annotations": []}]}]}
ENVELOPES: dict[str, dict[str, Any]] = {
    "openai.chat": {"id": "chatcmpl-g", "object": "chat.completion", "created": 1767225600, "model": "gpt-5",
                    "choices": [_MESSAGE]},
    "deepseek.chat": {"id": "chatcmpl-g", "object": "chat.completion", "created": 1767225600,
                      "model": "deepseek-chat", "choices": [_MESSAGE]},
    "openai.responses": _RESPONSE,
    "anthropic.messages": {"id": "msg_g", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                           "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn",
                           "stop_sequence": None},
    "gemini": {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]}, "finishReason": "STOP",
                               "index": 0}], "modelVersion": "gemini-2.5-flash"},
    "bedrock.converse": {"output": {"message": {"role": "assistant", "content": [{"text": "Hi"}]}},
                         "stopReason": "end_turn", "metrics": {"latencyMs": 100}},
}


def whole(fmt: str, payload: Any) -> Any:
    """``payload`` with the parts of its provider's body it does not name (its own keys win)."""
    if fmt in ENVELOPES:
        return {**ENVELOPES[fmt], **payload}
    if fmt == "openai.responses.stream":
        return [{**e, "response": {**_RESPONSE, **e["response"]}} if "response" in e else e for e in payload]
    if fmt == "openai.chat.stream":
        return [{"id": "chatcmpl-g", "created": 1767225600, "model": "gpt-5", **e} for e in payload]
    if fmt == "anthropic.messages.stream":
        start = {k: v for k, v in ENVELOPES["anthropic.messages"].items() if k != "content"}
        whole = {"message_start": lambda e: {**e, "message": {**start, "content": [], "stop_reason": None,
                                                                **e["message"]}},
                 "message_delta": lambda e: {**e, "delta": {"stop_reason": None, "stop_sequence": None, **e["delta"]}},
                 "content_block_delta": lambda e: e}
        blocks = [{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}]
        out: list[Any] = []
        for e in payload:
            if e["type"] == "content_block_delta" and not any(x["type"] == "content_block_start" for x in out):
                out += blocks
            out.append(whole.get(e["type"], lambda x: x)(e))
        return out
    return payload


# (format, payload, expected record, why)
_GOLDEN: list[tuple[str, Any, Usage | None, str]] = [
    ("openai.chat",
     {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-5", "service_tier": "default",
      "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
      "usage": {"prompt_tokens": 13, "completion_tokens": 7, "total_tokens": 20}},
     Usage(input_uncached=13, output=7, service_tier="default"),
     "design brief figure {13, 7, 20}: no cache, no reasoning"),
    ("openai.chat",
     {"id": "chatcmpl-2", "object": "chat.completion", "model": "gpt-5",
      "usage": {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
                "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 192, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}},
     Usage(input_uncached=86, cache_read=1920, output=300, reasoning=192),
     "prompt 2006 includes 1920 cached: 2006 - 1920 = 86 uncached; 192 reasoning inside 300"),
    ("openai.chat",
     {"object": "chat.completion", "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21,
                                            "prompt_tokens_details": None, "completion_tokens_details": None}},
     Usage(input_uncached=9, output=12), "*_details: null means 0"),
    ("openai.chat", {"object": "chat.completion", "choices": []}, None, "no usage: unknown, not zero"),
    ("openai.chat.stream",
     [{"object": "chat.completion.chunk", "choices": [{"delta": {"content": "Hel"}}], "usage": None},
      {"object": "chat.completion.chunk", "choices": [{"delta": {"content": "lo"}}], "usage": None},
      {"object": "chat.completion.chunk", "choices": [],
       "usage": {"prompt_tokens": 1100, "completion_tokens": 40, "total_tokens": 1140,
                 "prompt_tokens_details": {"cached_tokens": 1024}}}],
     Usage(input_uncached=76, cache_read=1024, output=40), "final chunk usage: 1100 - 1024 = 76 uncached"),
    ("openai.chat.stream",
     [{"object": "chat.completion.chunk", "choices": [{"delta": {"content": "Hel"}}], "usage": None}],
     None, "interrupted stream: unknown"),
    ("openai.responses",
     {"id": "resp_1", "object": "response", "status": "completed", "model": "gpt-5",
      "usage": {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 87,
                "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 123}},
     Usage(input_uncached=36, output=87), "Responses docs example: 36 in, 87 out, 123 total"),
    ("openai.responses",
     {"object": "response", "service_tier": "flex",
      "usage": {"input_tokens": 5000, "input_tokens_details": {"cached_tokens": 4096}, "output_tokens": 900,
                "output_tokens_details": {"reasoning_tokens": 640}, "total_tokens": 5900}},
     Usage(input_uncached=904, cache_read=4096, output=900, reasoning=640, service_tier="flex"),
     "5000 - 4096 = 904 uncached; 640 reasoning inside 900"),
    ("openai.responses.stream",
     [{"type": "response.created", "response": {"object": "response", "status": "in_progress", "usage": None}},
      {"type": "response.output_text.delta", "delta": "Hi"},
      {"type": "response.completed", "response": {
          "object": "response", "status": "completed",
          "usage": {"input_tokens": 300, "input_tokens_details": {"cached_tokens": 256}, "output_tokens": 20,
                    "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 320}}}],
     Usage(input_uncached=44, cache_read=256, output=20), "response.completed carries usage: 300 - 256 = 44"),
    ("openai.responses.stream",
     [{"type": "response.created", "response": {"object": "response", "usage": None}},
      {"type": "response.output_text.delta", "delta": "Hi"}], None, "no completed event: unknown"),
    ("anthropic.messages",
     {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
      "content": [{"type": "text", "text": "Hi"}], "usage": {"input_tokens": 12, "output_tokens": 6}},
     Usage(input_uncached=12, output=6), "design brief figure {12, 6}: no total given; total is 18"),
    ("anthropic.messages",
     {"type": "message", "usage": {"input_tokens": 50, "cache_creation_input_tokens": 2048,
                                   "cache_read_input_tokens": 10000, "output_tokens": 500,
                                   "cache_creation": {"ephemeral_5m_input_tokens": 0,
                                                      "ephemeral_1h_input_tokens": 2048},
                                   "server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 0}, "service_tier": "standard"}},
     Usage(input_uncached=50, cache_read=10000, cache_write_1h=2048, output=500, web_searches=2,
           service_tier="standard"),
     "input_tokens excludes cache: prompt = 50 + 10000 + 2048 = 12098; 1 h write; 2 searches"),
    ("anthropic.messages",
     {"type": "message", "usage": {"input_tokens": 3, "cache_creation_input_tokens": 1500,
                                   "cache_read_input_tokens": 0, "output_tokens": 10}},
     Usage(input_uncached=3, cache_write_5m=1500, output=10), "creation total without TTL breakdown: 5-minute write"),
    ("anthropic.messages.stream",
     [{"type": "message_start", "message": {"type": "message", "usage": {
         "input_tokens": 25, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 4000, "output_tokens": 1}}},
      {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
      {"type": "message_delta", "delta": {"stop_reason": None}, "usage": {"output_tokens": 40}},
      {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 95}},
      {"type": "message_stop"}],
     Usage(input_uncached=25, cache_read=4000, output=95),
     "cumulative message_delta: last wins (95), not 1 + 40 + 95 = 136"),
    ("anthropic.messages.stream",
     [{"type": "message_start", "message": {"type": "message", "usage": {"input_tokens": 25, "output_tokens": 1}}},
      {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}],
     None, "interrupted before message_delta: unknown"),
    ("gemini",
     {"candidates": [{"content": {"parts": [{"text": "Hi"}]}}],
      "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 120, "thoughtsTokenCount": 380,
                        "totalTokenCount": 508}},
     Usage(input_uncached=8, output=500, reasoning=380), "thoughts outside candidates: output = 120 + 380 = 500"),
    ("gemini",
     {"usageMetadata": {"promptTokenCount": 250000, "cachedContentTokenCount": 200000,
                        "candidatesTokenCount": 1000, "totalTokenCount": 251000}},
     Usage(input_uncached=50000, cache_read=200000, output=1000), "prompt includes cached: 250000 - 200000"),
    ("gemini", {"candidates": []}, None, "no usageMetadata: unknown"),
    ("anthropic.messages",
     {"type": "message", "model": "claude-sonnet-4-5-20250929",
      "usage": {"input_tokens": 20, "output_tokens": 1200, "output_tokens_details": {"thinking_tokens": 900}}},
     Usage(input_uncached=20, output=1200, reasoning=900), "thinking_tokens is inside output_tokens: 900 of 1200"),
    ("anthropic.messages",
     {"type": "message", "model": "claude-haiku-4-5-20251001",
      "usage": {"input_tokens": 1000, "output_tokens": 200, "service_tier": "batch"}},
     Usage(input_uncached=1000, output=200, service_tier="batch"), "a Message Batches result reports tier batch"),
    # Bedrock Converse TokenUsage (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_TokenUsage.html):
    # inputTokens excludes the cache; with caching, totalTokens = 8 + 42 + 3528 = 3578
    ("bedrock.converse",
     {"output": {"message": {"role": "assistant", "content": [{"text": "Hi"}]}}, "stopReason": "end_turn",
      "usage": {"inputTokens": 8, "outputTokens": 42, "totalTokens": 3578, "cacheReadInputTokens": 0,
                "cacheWriteInputTokens": 3528}, "metrics": {"latencyMs": 812}},
     Usage(input_uncached=8, cache_write_5m=3528, output=42), "cache write without cacheDetails: 5-minute write"),
    ("bedrock.converse",
     {"output": {"message": {"role": "assistant", "content": [{"text": "Hi"}]}}, "stopReason": "end_turn",
      "usage": {"inputTokens": 30, "outputTokens": 10, "totalTokens": 40}},
     Usage(input_uncached=30, output=10), "no caching: totalTokens = 30 + 10"),
    ("bedrock.converse",
     {"stopReason": "end_turn",
      "usage": {"inputTokens": 5, "outputTokens": 100, "totalTokens": 7105, "cacheReadInputTokens": 4000,
                "cacheWriteInputTokens": 3000,
                "cacheDetails": [{"ttl": "1h", "inputTokens": 2000}, {"ttl": "5m", "inputTokens": 1000}]}},
     Usage(input_uncached=5, cache_read=4000, cache_write_5m=1000, cache_write_1h=2000, output=100),
     "cacheDetails splits the 3000 written tokens: 2000 for 1 h, 1000 for 5 min"),
    ("bedrock.converse", {"stopReason": "end_turn"}, None, "no usage: unknown"),
    # DeepSeek (https://api-docs.deepseek.com/api/create-chat-completion): prompt = hit + miss
    ("deepseek.chat",
     {"id": "x", "object": "chat.completion", "model": "deepseek-chat",
      "usage": {"prompt_tokens": 1500, "completion_tokens": 120, "total_tokens": 1620,
                "prompt_cache_hit_tokens": 1280, "prompt_cache_miss_tokens": 220}},
     Usage(input_uncached=220, cache_read=1280, output=120), "1500 = 1280 cache hits + 220 misses"),
    ("deepseek.chat",
     {"object": "chat.completion", "model": "deepseek-reasoner",
      "usage": {"prompt_tokens": 64, "completion_tokens": 900, "total_tokens": 964, "prompt_cache_hit_tokens": 0,
                "prompt_cache_miss_tokens": 64, "completion_tokens_details": {"reasoning_tokens": 700}}},
     Usage(input_uncached=64, output=900, reasoning=700), "reasoning inside completion: 700 of 900"),
]
GOLDEN = [(fmt, whole(fmt, payload), expected, why) for fmt, payload, expected, why in _GOLDEN]


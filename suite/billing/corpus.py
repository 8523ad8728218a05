"""Realistic response bodies per provider, and a renderer of one logical request into every shape.

Golden bodies are written here in each provider's documented shape; the expected canonical record
of each is worked out by hand in the comment next to it (never produced by the code under test).
"""

from __future__ import annotations

from typing import Any

from reference.usage import Usage

# (format, payload, expected record, why)
GOLDEN: list[tuple[str, Any, Usage | None, str]] = [
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
]


def render(u: Usage, fmt: str) -> Any:
    """``u`` in provider shape ``fmt``. OpenAI and Gemini shapes cannot carry cache writes or web searches."""
    if fmt.startswith(("openai", "gemini")) and (u.cache_write or u.web_searches):
        raise ValueError(f"{fmt} cannot express cache writes or web searches")
    if fmt == "openai.chat":
        return {"object": "chat.completion", "choices": [],
                "usage": {"prompt_tokens": u.input_uncached + u.cache_read, "completion_tokens": u.output,
                          "total_tokens": u.total, "prompt_tokens_details": {"cached_tokens": u.cache_read},
                          "completion_tokens_details": {"reasoning_tokens": u.reasoning}}}
    if fmt == "openai.chat.stream":
        return [{"object": "chat.completion.chunk", "choices": [{"delta": {"content": "x"}}], "usage": None},
                render(u, "openai.chat") | {"object": "chat.completion.chunk"}]
    if fmt == "openai.responses":
        return {"object": "response", "status": "completed",
                "usage": {"input_tokens": u.input_uncached + u.cache_read, "output_tokens": u.output,
                          "total_tokens": u.total, "input_tokens_details": {"cached_tokens": u.cache_read},
                          "output_tokens_details": {"reasoning_tokens": u.reasoning}}}
    if fmt == "openai.responses.stream":
        return [{"type": "response.created", "response": {"object": "response", "usage": None}},
                {"type": "response.output_text.delta", "delta": "x"},
                {"type": "response.completed", "response": render(u, "openai.responses")}]
    if fmt == "anthropic.messages":
        return {"type": "message", "usage": _anthropic_usage(u, u.output)}
    if fmt == "anthropic.messages.stream":
        first = min(u.output, 1)
        events: list[Any] = [{"type": "message_start", "message": {"type": "message",
                                                                  "usage": _anthropic_usage(u, first)}}]
        events.append({"type": "message_delta", "delta": {}, "usage": {"output_tokens": u.output // 2}})
        events.append({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                       "usage": _anthropic_usage(u, u.output)})
        events.append({"type": "message_stop"})
        return events
    if fmt == "gemini":
        meta = {"promptTokenCount": u.input_uncached + u.cache_read, "candidatesTokenCount": u.output - u.reasoning,
                "totalTokenCount": u.total}
        if u.cache_read:
            meta["cachedContentTokenCount"] = u.cache_read
        if u.reasoning:
            meta["thoughtsTokenCount"] = u.reasoning
        return {"candidates": [], "usageMetadata": meta}
    raise ValueError(f"unknown format {fmt!r}")


def _anthropic_usage(u: Usage, output: int) -> dict[str, Any]:
    return {"input_tokens": u.input_uncached, "cache_creation_input_tokens": u.cache_write,
            "cache_read_input_tokens": u.cache_read, "output_tokens": output,
            "cache_creation": {"ephemeral_5m_input_tokens": u.cache_write_5m,
                               "ephemeral_1h_input_tokens": u.cache_write_1h},
            "server_tool_use": {"web_search_requests": u.web_searches, "web_fetch_requests": 0}}


def expressible(u: Usage, fmt: str) -> Usage:
    """What ``fmt`` can say about ``u``: Anthropic reports no reasoning count."""
    if fmt.startswith("anthropic"):
        return Usage(u.input_uncached, u.cache_read, u.cache_write_5m, u.cache_write_1h, u.output, 0,
                     u.web_searches)
    return u

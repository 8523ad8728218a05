"""A usage record written as each provider writes it: raw response bodies and stream captures.

The usage suite draws records and renders them here (the same request in every shape); adapters whose library
takes a raw response (litellm's ``completion_cost``, genai-prices' ``extract_usage``) render the record they are
asked to price with :func:`body_for` / :func:`stream_for`, as the provider would have sent it.
"""

from __future__ import annotations

from typing import Any

from reference.usage import Usage

# What each shape can carry of a usage record (the rest must be 0 to be rendered in it).
EXPRESSES: dict[str, frozenset[str]] = {
    **dict.fromkeys(("openai.chat", "openai.chat.stream", "openai.responses", "openai.responses.stream", "gemini",
                     "deepseek.chat"), frozenset({"input_uncached", "cache_read", "output", "reasoning"})),
    **dict.fromkeys(("anthropic.messages", "anthropic.messages.stream"),
                    frozenset({"input_uncached", "cache_read", "cache_write_5m", "cache_write_1h", "output",
                               "reasoning", "web_searches"})),
    "bedrock.converse": frozenset({"input_uncached", "cache_read", "cache_write_5m", "cache_write_1h", "output"}),
}
# The service tiers each shape reports (as the provider spells them).
REPORTED_TIERS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("openai.chat", "openai.chat.stream", "openai.responses", "openai.responses.stream"),
                    ("default", "flex", "priority")),
    **dict.fromkeys(("anthropic.messages", "anthropic.messages.stream"), ("standard", "priority", "batch")),
}
# The model id a rendered response names (genai-prices' extract_usage also looks the model up by it).
MODELS: dict[str, str] = {
    **dict.fromkeys(("openai.chat", "openai.chat.stream", "openai.responses", "openai.responses.stream"), "gpt-5"),
    **dict.fromkeys(("anthropic.messages", "anthropic.messages.stream"), "claude-sonnet-4-5-20250929"),
    "gemini": "gemini-2.5-flash", "deepseek.chat": "deepseek-chat", "bedrock.converse": "",
}
COUNTS = ("input_uncached", "cache_read", "cache_write_5m", "cache_write_1h", "output", "reasoning", "web_searches")


def render(u: Usage, fmt: str, model: str | None = None) -> Any:
    """``u`` written in provider shape ``fmt`` (with ``model`` as the id the response names, if given)."""
    cannot = [c for c in COUNTS if getattr(u, c) and c not in EXPRESSES[fmt]]
    if cannot:
        raise ValueError(f"{fmt} cannot express {cannot} of {u}")
    if u.service_tier is not None and u.service_tier not in REPORTED_TIERS.get(fmt, ()):
        raise ValueError(f"{fmt} does not report service tier {u.service_tier!r}")
    named = {"model": model} if model else {}
    tier = {"service_tier": u.service_tier} if u.service_tier else {}
    if fmt in ("openai.chat", "deepseek.chat"):
        usage: dict[str, Any] = {"prompt_tokens": u.input_uncached + u.cache_read, "completion_tokens": u.output,
                                 "total_tokens": u.total, "prompt_tokens_details": {"cached_tokens": u.cache_read},
                                 "completion_tokens_details": {"reasoning_tokens": u.reasoning}}
        if fmt == "deepseek.chat":
            usage |= {"prompt_cache_hit_tokens": u.cache_read, "prompt_cache_miss_tokens": u.input_uncached}
        return {"id": "chatcmpl-r", "object": "chat.completion", "created": 1767225600, **named, **tier,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}],
                "usage": usage}
    if fmt == "openai.chat.stream":
        final = render(u, "openai.chat", model)
        chunk = {"id": "chatcmpl-r", "object": "chat.completion.chunk", "created": 1767225600, **named, **tier}
        return [chunk | {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "x"}}], "usage": None},
                chunk | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": None},
                chunk | {"choices": [], "usage": final["usage"]}]
    if fmt == "openai.responses":  # cache_write_tokens: required by the Responses schema the openai SDK follows;
        # written tokens are inside input_tokens and billed as input (OpenAI charges nothing extra for writes)
        return {"id": "resp_r", "object": "response", "created_at": 1767225600, "status": "completed", **named,
                **tier, "output": [{"type": "message", "id": "msg_r", "status": "completed", "role": "assistant",
                                    "content": [{"type": "output_text", "text": "x", "annotations": []}]}],
                "usage": {"input_tokens": u.input_uncached + u.cache_read, "output_tokens": u.output,
                          "total_tokens": u.total,
                          "input_tokens_details": {"cached_tokens": u.cache_read, "cache_write_tokens": 0},
                          "output_tokens_details": {"reasoning_tokens": u.reasoning}}}
    if fmt == "openai.responses.stream":
        return [{"type": "response.created", "response": {"object": "response", "status": "in_progress", **named,
                                                          "usage": None}},
                {"type": "response.output_text.delta", "delta": "x"},
                {"type": "response.completed", "response": render(u, "openai.responses", model)}]
    if fmt == "anthropic.messages":
        return {"id": "msg_r", "type": "message", "role": "assistant", **named,
                "content": [{"type": "text", "text": "x"}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": _anthropic_usage(u, u.output, u.reasoning)}
    if fmt == "anthropic.messages.stream":
        message: dict[str, Any] = {"id": "msg_r", "type": "message", "role": "assistant", **named, "content": [],
                   "stop_reason": None, "stop_sequence": None, "usage": _anthropic_usage(u, min(u.output, 1), 0)}
        return [{"type": "message_start", "message": message},
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}},
                {"type": "content_block_stop", "index": 0},
                {"type": "message_delta", "delta": {"stop_reason": None, "stop_sequence": None},
                 "usage": {"output_tokens": max(u.output // 2, min(u.output, 1))}},
                {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                 "usage": _anthropic_usage(u, u.output, u.reasoning)},
                {"type": "message_stop"}]
    if fmt == "gemini":
        meta = {"promptTokenCount": u.input_uncached + u.cache_read, "candidatesTokenCount": u.output - u.reasoning,
                "totalTokenCount": u.total}
        if u.cache_read:
            meta["cachedContentTokenCount"] = u.cache_read
        if u.reasoning:
            meta["thoughtsTokenCount"] = u.reasoning
        return {"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]}, "finishReason": "STOP",
                                "index": 0}], "usageMetadata": meta, **({"modelVersion": model} if model else {})}
    if fmt == "bedrock.converse":
        usage = {"inputTokens": u.input_uncached, "outputTokens": u.output, "totalTokens": u.total,
                 "cacheReadInputTokens": u.cache_read, "cacheWriteInputTokens": u.cache_write}
        if u.cache_write:
            usage["cacheDetails"] = [{"ttl": ttl, "inputTokens": n} for ttl, n in
                                     (("1h", u.cache_write_1h), ("5m", u.cache_write_5m)) if n]
        return {"output": {"message": {"role": "assistant", "content": [{"text": "x"}]}}, "stopReason": "end_turn",
                "usage": usage, "metrics": {"latencyMs": 100}}
    raise ValueError(f"unknown format {fmt!r}")


def _anthropic_usage(u: Usage, output: int, reasoning: int) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "input_tokens": u.input_uncached, "cache_creation_input_tokens": u.cache_write,
        "cache_read_input_tokens": u.cache_read, "output_tokens": output,
        "cache_creation": {"ephemeral_5m_input_tokens": u.cache_write_5m, "ephemeral_1h_input_tokens": u.cache_write_1h},
        "server_tool_use": {"web_search_requests": u.web_searches, "web_fetch_requests": 0}}
    if reasoning:
        usage["output_tokens_details"] = {"thinking_tokens": reasoning}
    if u.service_tier:
        usage["service_tier"] = u.service_tier
    return usage


def expressible(u: Usage, fmt: str) -> Usage:
    """The part of ``u`` that ``fmt`` can say (the other counts zeroed, a tier it does not report dropped)."""
    kept = {c: getattr(u, c) if c in EXPRESSES[fmt] else 0 for c in COUNTS}
    if not kept["output"]:
        kept["reasoning"] = 0
    tier = u.service_tier if u.service_tier in REPORTED_TIERS.get(fmt, ()) else None
    return Usage(**kept, service_tier=tier)


# The body format each provider's cards are priced from, and its stream format.
BODY_FORMATS = {"anthropic": "anthropic.messages", "openai": "openai.chat", "google": "gemini",
                "deepseek": "deepseek.chat"}
STREAM_FORMATS = {"anthropic": "anthropic.messages.stream", "openai": "openai.chat.stream"}


def _provider(model: str) -> str:
    from reference.billing import card_for

    return card_for(model).provider


def body_for(usage: Usage, model: str) -> tuple[str, Any]:
    """(format, raw body) the provider of ``model`` would send for ``usage``, naming ``model``."""
    fmt = BODY_FORMATS[_provider(model)]
    return fmt, render(usage, fmt, model)


def stream_for(usage: Usage, model: str) -> tuple[str, Any]:
    """(format, stream events) for ``usage``; KeyError for a provider without a stream format here."""
    fmt = STREAM_FORMATS[_provider(model)]
    return fmt, render(usage, fmt, model)

"""The canonical usage record, and parsers from each provider's response shape.

Canonical record (all exact ints): input is split into ``input_uncached`` + ``cache_read`` +
``cache_write_5m`` + ``cache_write_1h`` (their sum is the whole prompt); ``output`` is every generated
token, with ``reasoning`` counted inside it; ``web_searches`` are per-request counts.

The provider traps this encodes:
- OpenAI ``prompt_tokens`` / ``input_tokens`` already include ``cached_tokens``.
- Anthropic ``input_tokens`` excludes cache reads and writes; the prompt is the sum of the three.
- Reasoning is inside OpenAI completion tokens and Anthropic output tokens, but Gemini
  ``thoughtsTokenCount`` is outside ``candidatesTokenCount``.
- Anthropic has no total; ``*_details: null`` means 0; a sub-count larger than its parent is an error.
- Anthropic streams: ``message_start`` then cumulative ``message_delta`` usage: the last value wins, and a
  cumulative count that goes down is an error. Anthropic ``output_tokens_details.thinking_tokens`` is inside
  ``output_tokens``.
- AWS Bedrock Converse ``inputTokens`` excludes ``cacheReadInputTokens`` and ``cacheWriteInputTokens`` (as
  Anthropic's); ``cacheDetails`` splits the writes by TTL.
- DeepSeek ``prompt_tokens`` is ``prompt_cache_hit_tokens + prompt_cache_miss_tokens``.

A response without usage (an interrupted stream) parses to ``None``: unknown, never zero.
Malformed input raises :class:`UsageError`, and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


class UsageError(ValueError):
    """A malformed usage payload: ``field`` is the dotted path, ``reason`` says what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"usage field {field!r}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Usage:
    input_uncached: int = 0
    cache_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    output: int = 0
    reasoning: int = 0  # inside ``output``
    web_searches: int = 0
    service_tier: str | None = None

    def __post_init__(self) -> None:
        for name in ("input_uncached", "cache_read", "cache_write_5m", "cache_write_1h", "output", "reasoning",
                     "web_searches"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise UsageError(name, f"must be a non-negative int; got {value!r}")
        if self.reasoning > self.output:
            raise UsageError("reasoning", f"{self.reasoning} reasoning tokens exceed {self.output} output tokens")

    @property
    def cache_write(self) -> int:
        return self.cache_write_5m + self.cache_write_1h

    @property
    def prompt(self) -> int:
        """Every input token, cached or not: the count a long-context tier looks at."""
        return self.input_uncached + self.cache_read + self.cache_write

    @property
    def total(self) -> int:
        return self.prompt + self.output


@dataclass
class GenerationResult:
    """The record from the source documents (chapter 6): OpenAI field names, every count optional."""

    answer: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


def generation_result(answer: str, model: str, usage: Usage | None) -> GenerationResult:
    """Unknown usage stays unknown (None), never zero; the prompt counts cached tokens too."""
    if usage is None:
        return GenerationResult(answer, model)
    return GenerationResult(answer, model, usage.prompt, usage.output, usage.total)


# --- field access -----------------------------------------------------------------------------------------------

def _count(obj: Mapping[str, Any], key: str, path: str, required: bool = True) -> int:
    if key not in obj or obj[key] is None:
        if required:
            raise UsageError(f"{path}.{key}", "is missing")
        return 0
    value = obj[key]
    if type(value) is not int:  # bool and float are rejected too
        raise UsageError(f"{path}.{key}", f"must be an int; got {type(value).__name__} {value!r}")
    if value < 0:
        raise UsageError(f"{path}.{key}", f"must be >= 0; got {value}")
    return value


def _object(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    """A nested object of counts; absent or null means empty (all its counts 0). Every count in it
    is validated, including those this record does not keep (audio, prediction tokens)."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UsageError(f"{path}.{key}", f"must be an object or null; got {type(value).__name__}")
    for name in value:
        _count(value, name, f"{path}.{key}", required=False)
    return value


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise UsageError(path, f"must be an object; got {type(value).__name__}")
    return value


def _tier(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise UsageError(f"{path}.{key}", f"must be a string or null; got {type(value).__name__}")
    return value


def _at_most(part: int, part_name: str, whole: int, whole_name: str) -> None:
    if part > whole:
        raise UsageError(part_name, f"{part} exceeds its parent {whole_name} = {whole}")


def _usage_of(body: Any, path: str, key: str) -> Mapping[str, Any] | None:
    body = _mapping(body, path)
    if body.get(key) is None:
        return None
    return _mapping(body[key], f"{path}.{key}")


# --- OpenAI -----------------------------------------------------------------------------------------------------

def openai_chat(body: Any) -> Usage | None:
    """A Chat Completions response body (or the final streamed chunk, which carries the same ``usage``)."""
    u = _usage_of(body, "body", "usage")
    if u is None:
        return None
    prompt = _count(u, "prompt_tokens", "usage")
    completion = _count(u, "completion_tokens", "usage")
    pd = _object(u, "prompt_tokens_details", "usage")
    cd = _object(u, "completion_tokens_details", "usage")
    cached = _count(pd, "cached_tokens", "usage.prompt_tokens_details", required=False)
    reasoning = _count(cd, "reasoning_tokens", "usage.completion_tokens_details", required=False)
    _at_most(cached, "usage.prompt_tokens_details.cached_tokens", prompt, "usage.prompt_tokens")
    _at_most(reasoning, "usage.completion_tokens_details.reasoning_tokens", completion, "usage.completion_tokens")
    _check_total(u, "total_tokens", prompt + completion)
    return Usage(input_uncached=prompt - cached, cache_read=cached, output=completion, reasoning=reasoning,
                 service_tier=_tier(_mapping(body, "body"), "service_tier", "body"))


def openai_chat_stream(chunks: Iterable[Any]) -> Usage | None:
    """Streamed chunks (``stream_options.include_usage``): only the final chunk has usage; none means unknown."""
    found: Usage | None = None
    for i, chunk in enumerate(_sequence(chunks, "chunks")):
        usage = openai_chat(_mapping(chunk, f"chunks[{i}]"))
        if usage is not None:
            if found is not None:
                raise UsageError(f"chunks[{i}].usage", "a second chunk carries usage; only the final one may")
            found = usage
    return found


def openai_responses(body: Any) -> Usage | None:
    """A Responses API ``response`` object."""
    u = _usage_of(body, "response", "usage")
    if u is None:
        return None
    prompt = _count(u, "input_tokens", "usage")
    output = _count(u, "output_tokens", "usage")
    cached = _count(_object(u, "input_tokens_details", "usage"), "cached_tokens", "usage.input_tokens_details",
                    required=False)
    reasoning = _count(_object(u, "output_tokens_details", "usage"), "reasoning_tokens",
                       "usage.output_tokens_details", required=False)
    _at_most(cached, "usage.input_tokens_details.cached_tokens", prompt, "usage.input_tokens")
    _at_most(reasoning, "usage.output_tokens_details.reasoning_tokens", output, "usage.output_tokens")
    _check_total(u, "total_tokens", prompt + output)
    return Usage(input_uncached=prompt - cached, cache_read=cached, output=output, reasoning=reasoning,
                 service_tier=_tier(_mapping(body, "response"), "service_tier", "response"))


def openai_responses_stream(events: Iterable[Any]) -> Usage | None:
    """Stream events: usage comes with ``response.completed`` (or ``response.incomplete``); none means unknown."""
    found: Usage | None = None
    for i, event in enumerate(_sequence(events, "events")):
        event = _mapping(event, f"events[{i}]")
        if event.get("type") in ("response.completed", "response.incomplete", "response.failed"):
            usage = openai_responses(_mapping(event.get("response"), f"events[{i}].response"))
            if usage is not None:
                found = usage
    return found


def _check_total(u: Mapping[str, Any], key: str, expected: int) -> None:
    if u.get(key) is not None:
        total = _count(u, key, "usage")
        if total != expected:
            raise UsageError(f"usage.{key}", f"is {total}; the parts add up to {expected}")


# --- Anthropic --------------------------------------------------------------------------------------------------

def anthropic_messages(body: Any) -> Usage | None:
    """A Messages API response body."""
    u = _usage_of(body, "body", "usage")
    return None if u is None else _anthropic_usage(u, "usage")


def _anthropic_usage(u: Mapping[str, Any], path: str) -> Usage:
    uncached = _count(u, "input_tokens", path)
    output = _count(u, "output_tokens", path)
    read = _count(u, "cache_read_input_tokens", path, required=False)
    created = _count(u, "cache_creation_input_tokens", path, required=False)
    by_ttl = _object(u, "cache_creation", path)
    w5 = _count(by_ttl, "ephemeral_5m_input_tokens", f"{path}.cache_creation", required=False)
    w1h = _count(by_ttl, "ephemeral_1h_input_tokens", f"{path}.cache_creation", required=False)
    if by_ttl and w5 + w1h != created:
        raise UsageError(f"{path}.cache_creation", f"TTL parts {w5} + {w1h} differ from "
                                                   f"cache_creation_input_tokens = {created}")
    if not by_ttl:
        w5 = created  # a total without the TTL breakdown is the default 5-minute write
    tool = _object(u, "server_tool_use", path)
    searches = _count(tool, "web_search_requests", f"{path}.server_tool_use", required=False)
    thinking = _count(_object(u, "output_tokens_details", path), "thinking_tokens", f"{path}.output_tokens_details",
                      required=False)
    _at_most(thinking, f"{path}.output_tokens_details.thinking_tokens", output, f"{path}.output_tokens")
    return Usage(input_uncached=uncached, cache_read=read, cache_write_5m=w5, cache_write_1h=w1h, output=output,
                 reasoning=thinking, web_searches=searches, service_tier=_tier(u, "service_tier", path))


def anthropic_messages_stream(events: Iterable[Any]) -> Usage | None:
    """``message_start`` carries the initial usage; each ``message_delta`` carries cumulative counts: last wins.

    A cumulative count never goes down: a delta whose count is below the one before it is an error. A stream
    that never reached a ``message_delta`` (interrupted) has unknown usage: None.
    """
    start: Mapping[str, Any] | None = None
    latest: dict[str, Any] = {}
    delta_seen = False
    for i, event in enumerate(_sequence(events, "events")):
        event = _mapping(event, f"events[{i}]")
        kind = event.get("type")
        if kind == "message_start":
            if start is not None:
                raise UsageError(f"events[{i}]", "a second message_start; a stream has one")
            message = _mapping(event.get("message"), f"events[{i}].message")
            start = _mapping(message.get("usage"), f"events[{i}].message.usage")
            latest = dict(start)
            _anthropic_usage(latest, f"events[{i}].message.usage")  # validate as it arrives
        elif kind == "message_delta" and event.get("usage") is not None:
            if start is None:
                raise UsageError(f"events[{i}]", "message_delta before message_start")
            delta = _mapping(event["usage"], f"events[{i}].usage")
            before = _anthropic_usage(latest, f"events[{i}].usage")
            latest.update({k: v for k, v in delta.items() if v is not None})  # cumulative: replace, never add
            after = _anthropic_usage(latest, f"events[{i}].usage")
            _never_down(before, after, f"events[{i}].usage")
            delta_seen = True
    if start is None or not delta_seen:
        return None
    return _anthropic_usage(latest, "usage")


def _never_down(before: Usage, after: Usage, path: str) -> None:
    for name in ("input_uncached", "cache_read", "cache_write", "output", "web_searches"):
        was, now = getattr(before, name), getattr(after, name)
        if now < was:
            raise UsageError(f"{path}.{_ANTHROPIC_KEYS[name]}", f"cumulative count went down from {was} to {now}")


_ANTHROPIC_KEYS = {"input_uncached": "input_tokens", "cache_read": "cache_read_input_tokens",
                   "cache_write": "cache_creation_input_tokens", "output": "output_tokens",
                   "web_searches": "server_tool_use.web_search_requests"}


# --- Gemini -----------------------------------------------------------------------------------------------------

def gemini(body: Any) -> Usage | None:
    """A ``generateContent`` response: ``usageMetadata``. Thoughts are outside the candidates count."""
    u = _usage_of(body, "body", "usageMetadata")
    if u is None:
        return None
    prompt = _count(u, "promptTokenCount", "usageMetadata")
    candidates = _count(u, "candidatesTokenCount", "usageMetadata", required=False)
    thoughts = _count(u, "thoughtsTokenCount", "usageMetadata", required=False)
    cached = _count(u, "cachedContentTokenCount", "usageMetadata", required=False)
    tool_prompt = _count(u, "toolUsePromptTokenCount", "usageMetadata", required=False)
    _at_most(cached, "usageMetadata.cachedContentTokenCount", prompt, "usageMetadata.promptTokenCount")
    _check_total_gemini(u, prompt + tool_prompt + candidates + thoughts)
    return Usage(input_uncached=prompt + tool_prompt - cached, cache_read=cached, output=candidates + thoughts,
                 reasoning=thoughts)


def _check_total_gemini(u: Mapping[str, Any], expected: int) -> None:
    if u.get("totalTokenCount") is not None:
        total = _count(u, "totalTokenCount", "usageMetadata")
        if total != expected:
            raise UsageError("usageMetadata.totalTokenCount", f"is {total}; the parts add up to {expected}")


# --- AWS Bedrock Converse ---------------------------------------------------------------------------------------

BEDROCK_TTLS = {"5m": "cache_write_5m", "1h": "cache_write_1h"}


def bedrock_converse(body: Any) -> Usage | None:
    """A Converse response: ``usage`` (TokenUsage). ``inputTokens`` excludes cache reads and writes.

    ``totalTokens`` is checked against the parts: AWS documents it as "the total of input tokens and tokens
    generated"; responses with prompt caching include the cache reads and writes in it, so either sum is accepted.
    """
    u = _usage_of(body, "body", "usage")
    if u is None:
        return None
    uncached = _count(u, "inputTokens", "usage")
    output = _count(u, "outputTokens", "usage")
    read = _count(u, "cacheReadInputTokens", "usage", required=False)
    written = _count(u, "cacheWriteInputTokens", "usage", required=False)
    by_ttl = {"cache_write_5m": 0, "cache_write_1h": 0}
    details = u.get("cacheDetails")
    if details:
        if not isinstance(details, list):
            raise UsageError("usage.cacheDetails", f"must be a list; got {type(details).__name__}")
        for i, detail in enumerate(details):
            detail = _mapping(detail, f"usage.cacheDetails[{i}]")
            ttl = detail.get("ttl")
            if ttl not in BEDROCK_TTLS:
                raise UsageError(f"usage.cacheDetails[{i}].ttl", f"must be one of {sorted(BEDROCK_TTLS)}; got {ttl!r}")
            by_ttl[BEDROCK_TTLS[ttl]] += _count(detail, "inputTokens", f"usage.cacheDetails[{i}]")
        if sum(by_ttl.values()) != written:
            raise UsageError("usage.cacheDetails", f"TTL parts {by_ttl['cache_write_5m']} + {by_ttl['cache_write_1h']} "
                                                   f"differ from cacheWriteInputTokens = {written}")
    else:
        by_ttl["cache_write_5m"] = written  # no breakdown: the default 5-minute write
    if u.get("totalTokens") is not None:
        total = _count(u, "totalTokens", "usage")
        narrow, wide = uncached + output, uncached + output + read + written
        if total not in (narrow, wide):
            raise UsageError("usage.totalTokens", f"is {total}; the parts add up to {wide} (with cache reads and "
                                                  f"writes) or {narrow} (without)")
    return Usage(input_uncached=uncached, cache_read=read, output=output, cache_write_5m=by_ttl["cache_write_5m"],
                 cache_write_1h=by_ttl["cache_write_1h"])


# --- DeepSeek ---------------------------------------------------------------------------------------------------

def deepseek_chat(body: Any) -> Usage | None:
    """A DeepSeek chat completion: OpenAI's shape plus ``prompt_cache_hit_tokens`` / ``prompt_cache_miss_tokens``."""
    u = _usage_of(body, "body", "usage")
    if u is None:
        return None
    prompt = _count(u, "prompt_tokens", "usage")
    completion = _count(u, "completion_tokens", "usage")
    hit = _count(u, "prompt_cache_hit_tokens", "usage", required=False)
    miss = _count(u, "prompt_cache_miss_tokens", "usage", required=False)
    if ("prompt_cache_hit_tokens" in u or "prompt_cache_miss_tokens" in u) and hit + miss != prompt:
        raise UsageError("usage.prompt_cache_hit_tokens", f"hit {hit} + miss {miss} = {hit + miss} differs from "
                                                          f"prompt_tokens = {prompt}")
    cached = _count(_object(u, "prompt_tokens_details", "usage"), "cached_tokens", "usage.prompt_tokens_details",
                    required=False)
    if "prompt_cache_hit_tokens" in u and u.get("prompt_tokens_details") and cached != hit:
        raise UsageError("usage.prompt_tokens_details.cached_tokens", f"is {cached}; prompt_cache_hit_tokens is {hit}")
    hit = hit if "prompt_cache_hit_tokens" in u else cached
    _at_most(hit, "usage.prompt_cache_hit_tokens", prompt, "usage.prompt_tokens")
    reasoning = _count(_object(u, "completion_tokens_details", "usage"), "reasoning_tokens",
                       "usage.completion_tokens_details", required=False)
    _at_most(reasoning, "usage.completion_tokens_details.reasoning_tokens", completion, "usage.completion_tokens")
    _check_total(u, "total_tokens", prompt + completion)
    return Usage(input_uncached=prompt - hit, cache_read=hit, output=completion, reasoning=reasoning)


def _sequence(items: Any, path: str) -> list[Any]:
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise UsageError(path, f"must be a list of events; got {type(items).__name__}")
    return list(items)


PARSERS = {
    "openai.chat": openai_chat,
    "openai.chat.stream": openai_chat_stream,
    "openai.responses": openai_responses,
    "openai.responses.stream": openai_responses_stream,
    "anthropic.messages": anthropic_messages,
    "anthropic.messages.stream": anthropic_messages_stream,
    "gemini": gemini,
    "bedrock.converse": bedrock_converse,
    "deepseek.chat": deepseek_chat,
}
FORMATS = tuple(PARSERS)


def parse(fmt: str, payload: Any) -> Usage | None:
    """The canonical record of ``payload`` in format ``fmt`` (one of :data:`FORMATS`); None if unknown."""
    if fmt not in PARSERS:
        raise ValueError(f"format {fmt!r} is not one of {FORMATS}")
    return PARSERS[fmt](payload)  # type: ignore[operator]


def detect_format(payload: Any) -> str:
    """The format of a raw response body or stream capture, from its shape; UsageError when it has none."""
    if isinstance(payload, list):
        first = next((e for e in payload if isinstance(e, Mapping)), {})
        if first.get("object") == "chat.completion.chunk":
            return "openai.chat.stream"
        if str(first.get("type", "")).startswith("response."):
            return "openai.responses.stream"
        if first.get("type") == "message_start":
            return "anthropic.messages.stream"
        raise UsageError("events[0]", "is not the start of an OpenAI chat, OpenAI Responses or Anthropic stream")
    body = _mapping(payload, "body")
    usage: Mapping[str, Any] = body["usage"] if isinstance(body.get("usage"), Mapping) else {}
    if "usageMetadata" in body or "modelVersion" in body:
        return "gemini"
    if body.get("object") == "response":
        return "openai.responses"
    if body.get("type") == "message" or ("input_tokens" in usage and "output_tokens" in usage):
        return "anthropic.messages"
    if "inputTokens" in usage or "stopReason" in body:
        return "bedrock.converse"
    if "prompt_cache_hit_tokens" in usage or "prompt_cache_miss_tokens" in usage:
        return "deepseek.chat"
    if body.get("object") in ("chat.completion", "chat.completion.chunk") or "prompt_tokens" in usage:
        return "openai.chat"
    raise UsageError("body", "has no shape this parser knows (OpenAI, Anthropic, Gemini, Bedrock Converse, DeepSeek)")


def model_of(payload: Any) -> str | None:
    """The model id a response names (``model``, Gemini ``modelVersion``; a stream's first event), or None."""
    if isinstance(payload, list):
        for event in payload:
            if isinstance(event, Mapping):
                for holder in (event, event.get("message"), event.get("response")):
                    if isinstance(holder, Mapping) and isinstance(holder.get("model"), str):
                        return holder["model"]
        return None
    if isinstance(payload, Mapping):
        for key in ("model", "modelVersion"):
            if isinstance(payload.get(key), str):
                return payload[key]
    return None

"""A provider's raw response, turned into the object litellm itself builds from it, and read back.

``model_response(fmt, payload, model)`` runs litellm's own transformation for that provider (the code
``litellm.completion`` runs on the HTTP body): Anthropic ``AnthropicConfig.transform_response``, OpenAI chat
``convert_to_model_response_object``, Responses ``ResponsesAPIResponse``, Gemini
``GoogleAIStudioGeminiConfig.transform_response``, Bedrock ``AmazonConverseConfig.transform_response``, DeepSeek
(OpenAI-compatible) the chat converter; streams through each provider's chunk parser and
``litellm.stream_chunk_builder``. ``canonical(usage)`` reads litellm's ``Usage`` back as the canonical record.
"""

from __future__ import annotations

from typing import Any

from impls._litellm import litellm_module
from impls.base import Requirements
from reference.usage import Usage, UsageError

REQUIRES = Requirements(modules=("litellm", "httpx"))
GEMINI_LINK = ("https://github.com/BerriAI/litellm/blob/main/litellm/llms/vertex_ai/gemini/"
               "vertex_and_google_ai_studio_gemini.py")

PROVIDER = {"openai.chat": "openai", "openai.chat.stream": "openai", "openai.responses": "openai",
            "openai.responses.stream": "openai", "anthropic.messages": "anthropic",
            "anthropic.messages.stream": "anthropic", "gemini": "gemini", "bedrock.converse": "bedrock",
            "deepseek.chat": "deepseek"}
FORMATS = tuple(PROVIDER)


class _Log:
    """The logging object litellm's transformations call ``post_call`` on (nothing to log here)."""

    model_call_details: dict[str, Any] = {}
    optional_params: dict[str, Any] = {}

    def post_call(self, *args: Any, **kwargs: Any) -> None:
        return None


def _http(payload: Any) -> Any:
    httpx = __import__("httpx")
    return httpx.Response(200, json=payload, request=httpx.Request("POST", "https://provider.invalid/v1"))


def _transform(config: Any, model: str, payload: Any) -> Any:
    types = litellm_module("litellm.types.utils")
    return config.transform_response(model=model, raw_response=_http(payload), model_response=types.ModelResponse(),
                                     logging_obj=_Log(), request_data={}, messages=[], optional_params={},
                                     litellm_params={}, encoding=None)


def model_response(fmt: str, payload: Any, model: str) -> Any:
    """The litellm response object for a raw body (a ModelResponse; a ResponsesAPIResponse for Responses)."""
    if fmt in ("openai.chat", "deepseek.chat"):
        convert = litellm_module("litellm.litellm_core_utils.llm_response_utils.convert_dict_to_response")
        types = litellm_module("litellm.types.utils")
        response = convert.convert_to_model_response_object(response_object=payload,
                                                            model_response_object=types.ModelResponse())
        response._hidden_params["custom_llm_provider"] = PROVIDER[fmt]
        return response
    if fmt == "openai.responses":
        openai_types = litellm_module("litellm.types.llms.openai")
        return openai_types.ResponsesAPIResponse(**payload)
    if fmt == "anthropic.messages":
        anthropic = litellm_module("litellm.llms.anthropic.chat.transformation")
        return _transform(anthropic.AnthropicConfig(), model, payload)
    if fmt == "gemini":
        gemini = litellm_module("litellm.llms.gemini.chat.transformation")
        return _transform(gemini.GoogleAIStudioGeminiConfig(), model, payload)
    if fmt == "bedrock.converse":
        converse = litellm_module("litellm.llms.bedrock.chat.converse_transformation")
        return _transform(converse.AmazonConverseConfig(), model, payload)
    if fmt in ("openai.chat.stream", "anthropic.messages.stream"):
        return litellm_module().stream_chunk_builder(chunks=stream_chunks(fmt, payload, model))
    if fmt == "openai.responses.stream":
        return completed_response(payload, model)
    raise ValueError(f"no litellm transformation for {fmt!r}; it has {FORMATS}")


def stream_chunks(fmt: str, events: Any, model: str) -> list[Any]:
    """Each raw stream event as litellm's chunk (``ModelResponseStream``), as its stream wrapper makes them."""
    if not isinstance(events, list):
        raise UsageError("events", f"must be a list; got {type(events).__name__}")
    if fmt == "openai.chat.stream":
        types = litellm_module("litellm.types.utils")
        return [types.ModelResponseStream(**event) for event in events]
    handler = litellm_module("litellm.llms.anthropic.chat.handler")
    parser = handler.ModelResponseIterator(streaming_response=None, sync_stream=True, json_mode=False)
    chunks = [parser.chunk_parser(event) for event in events]
    for chunk in chunks:
        chunk.model = model
    return chunks


TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def completed_response(events: Any, model: str) -> Any:
    """A Responses stream through litellm's event models: the response its terminal event carries (or None)."""
    if not isinstance(events, list):
        raise UsageError("events", f"must be a list; got {type(events).__name__}")
    config = litellm_module("litellm.llms.openai.responses.transformation").OpenAIResponsesAPIConfig()
    final = None
    for event in events:
        parsed = config.transform_streaming_response(model=model, parsed_chunk=event, logging_obj=_Log())
        if getattr(parsed, "type", None) in TERMINAL:
            final = parsed.response
    return final


def usage_object(response: Any) -> Any:
    """litellm's Usage of a response object (ResponsesAPIResponse usage through litellm's own converter)."""
    usage = getattr(response, "usage", None)
    if usage is None:
        return None
    if not hasattr(usage, "prompt_tokens"):  # Responses API usage
        utils = litellm_module("litellm.responses.utils")
        return utils.ResponseAPILoggingUtils._transform_response_api_usage_to_chat_usage(usage)
    return usage


def _int(value: Any) -> int:
    return 0 if value is None else value


def canonical(usage: Any, service_tier: Any = None) -> Usage:
    """litellm's (OpenAI-shaped) Usage as the canonical record: prompt_tokens includes cache reads and writes."""
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    read = _int(getattr(prompt_details, "cached_tokens", None))
    written = _int(getattr(usage, "cache_creation_input_tokens", None)) or _int(
        getattr(prompt_details, "cache_creation_tokens", None))
    by_ttl = getattr(prompt_details, "cache_creation_token_details", None)
    w1h = _int(getattr(by_ttl, "ephemeral_1h_input_tokens", None))
    completion_details = getattr(usage, "completion_tokens_details", None)
    tool_use = getattr(usage, "server_tool_use", None)
    tier = getattr(usage, "service_tier", None) or service_tier
    return Usage(input_uncached=_int(usage.prompt_tokens) - read - written, cache_read=read,
                 cache_write_5m=written - w1h, cache_write_1h=w1h, output=_int(usage.completion_tokens),
                 reasoning=_int(getattr(completion_details, "reasoning_tokens", None)),
                 web_searches=_int(getattr(tool_use, "web_search_requests", None)),
                 service_tier=tier if isinstance(tier, str) else None)

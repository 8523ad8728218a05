"""litellm's own reading of each provider's response: the raw body → litellm's transformation → its Usage.

The transformation is the one ``litellm.completion`` runs on the HTTP body (``impls._litellm_responses``);
streams go through each provider's chunk parser and ``litellm.stream_chunk_builder``. litellm's Usage is read
back as the canonical record (its ``prompt_tokens`` includes cache reads and writes).
"""

from __future__ import annotations

from typing import Any

from impls import _litellm_responses as responses
from impls._expected import each
from impls.base import ExpectedFailure
from impls.registry import register
from impls.usage.api import MalformedCase, UsageCase, UsageImpl, validate
from reference.usage import Usage, UsageError, model_of

BUILDER = "https://github.com/BerriAI/litellm/blob/main/litellm/litellm_core_utils/streaming_chunk_builder_utils.py"
ANTHROPIC_STREAM = "https://github.com/BerriAI/litellm/blob/main/litellm/llms/anthropic/chat/handler.py"
INTERRUPTED_CHAT = UsageCase("openai.chat.stream", [
    {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-5",
     "choices": [{"index": 0, "delta": {"content": "Hel"}}], "usage": None}], None, "interrupted stream")
NEGATIVE = MalformedCase("openai.chat", {"id": "c", "object": "chat.completion", "created": 1, "model": "gpt-5",
                                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"},
                                                      "finish_reason": "stop"}],
                                         "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 99}},
                         "total_tokens", "wrong_total")


_START = {"type": "message_start", "message": {
    "id": "msg_r", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": [],
    "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 1, "service_tier": "batch"}}}
BATCH_STREAM = UsageCase("anthropic.messages.stream", [
    _START, {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
             "usage": {"input_tokens": 10, "output_tokens": 5, "service_tier": "batch"}}, {"type": "message_stop"}],
    Usage(input_uncached=10, output=5, service_tier="batch"), "a batch stream")
NO_USAGE = {"gemini": UsageCase("gemini", {"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]},
                                                           "finishReason": "STOP", "index": 0}]}, None, "no usage"),
            "bedrock.converse": UsageCase("bedrock.converse", {"output": {"message": {"role": "assistant", "content": [
                {"text": "x"}]}}, "stopReason": "end_turn"}, None, "no usage")}


def _interrupted(case: UsageCase) -> bool:
    return isinstance(case, UsageCase) and case.fmt in ("openai.chat.stream", "anthropic.messages.stream") and case.expected is None


def _streamed_tier(case: UsageCase) -> bool:
    return isinstance(case, UsageCase) and case.fmt == "anthropic.messages.stream" and case.expected is not None and \
        case.expected.service_tier is not None


def _body_without_usage(case: UsageCase) -> bool:
    return isinstance(case, UsageCase) and case.fmt in ("gemini", "bedrock.converse") and case.expected is None


class LitellmUsage(UsageImpl):
    name = "litellm-usage"
    description = "litellm's transformation of each provider's raw body (ModelResponse.usage)"
    requires = responses.REQUIRES
    formats = responses.FORMATS
    call_cost_s = 9e-4  # an Anthropic stream; a body is 1e-4 to 2e-4 (measured under load)
    expected_failures = (
        *each(("golden.openai.chat.stream", "golden.anthropic.messages.stream"), when=_interrupted,
              example=INTERRUPTED_CHAT, link=BUILDER,
              reason="a stream that ends before its usage arrives comes back with usage made up, not unknown: "
                               "stream_chunk_builder counts the streamed text (OpenAI: 0 in, 1 out) or keeps "
                               "message_start's provisional counts (Anthropic: 25 in, 1 out)"),
        ExpectedFailure(test="same_request.anthropic.messages.stream", when=_streamed_tier, link=ANTHROPIC_STREAM,
                        example=BATCH_STREAM,
                        reason="an Anthropic stream loses its service tier: the chunk parser drops usage.service_tier, "
                               "so a batch or priority stream reads as standard"),
        *(ExpectedFailure(test=f"golden.{fmt}", when=_body_without_usage, link=responses.GEMINI_LINK, example=case,
                          reason="a Gemini or Bedrock body without usage raises (VertexAIError 'usageMetadata not "
                                 "found'; KeyError 'usage') instead of giving usage unknown")
          for fmt, case in NO_USAGE.items()),
        ExpectedFailure(test="fuzz.*", link=BUILDER, example=NEGATIVE,
                        reason="litellm's transformations do not validate counts: negative, fractional, string and "
                               "bool counts, wrong totals and sub-counts above their parent pass into its Usage"),
        ExpectedFailure(test="malformed.*", link=BUILDER, example=NEGATIVE,
                        reason="litellm's transformations do not validate counts: every malformed payload is "
                               "accepted or fails on something other than the malformed field"),
    )

    def parse(self, fmt: str, payload: Any) -> Usage | None:
        validate(fmt, payload)
        try:
            response = responses.model_response(fmt, payload, model_of(payload) or "unknown-model")
        except UsageError:
            raise
        except Exception as err:  # litellm's own error for a body it cannot read, as the documented error
            raise UsageError("body", f"litellm: {type(err).__name__}: {str(err)[:200]}") from None
        usage = responses.usage_object(response) if response is not None else None
        if usage is None:
            return None
        try:
            return responses.canonical(usage, getattr(response, "service_tier", None))
        except UsageError as err:
            raise UsageError(err.field, f"litellm produced {err.reason}") from None
        except TypeError as err:
            raise UsageError("usage", f"litellm produced non-integer counts: {err}") from None


register(LitellmUsage())

"""litellm at every entry point a user calls to get a cost, on its bundled model-cost map (never fetched).

- ``litellm-completion-cost``: ``completion_cost`` on the ``ModelResponse`` litellm's own transformation builds
  from the provider's raw body (``impls._litellm_responses``), the id the response names, the service tier;
- ``litellm-stream``: the provider's stream through its chunk parser and ``stream_chunk_builder``, then
  ``completion_cost``;
- ``litellm-cost-per-token``: ``cost_per_token`` with the counts as its documentation passes them
  (``prompt_tokens``, ``completion_tokens``; Anthropic's ``cache_creation_input_tokens`` and
  ``cache_read_input_tokens``);
- ``litellm-cost-per-token-usage``: ``cost_per_token`` with the ``usage_object`` litellm's transformation builds;
- ``litellm-batch``: ``litellm.batches.batch_utils.calculate_batch_cost_and_usage`` on batch output lines (OpenAI
  ``response.body`` lines, Anthropic Message Batches ``result.message`` lines).

litellm returns float dollars (compared at a relative 1e-9).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from impls import _litellm_responses as responses
from impls._bodies import body_for, stream_for
from impls._litellm import litellm_module
from impls.base import ExpectedFailure
from impls.billing import litellm_findings as findings
from impls.billing.api import BillingCase, BillingImpl, validate
from impls.registry import register
from reference import billing as ref
from reference.billing import STANDARD, BillingOptions, PriceCard
from reference.usage import Usage

PARTS = {"input": "input_cost_per_token", "output": "output_cost_per_token",
         "cache_read": "cache_read_input_token_cost", "cache_write_5m": "cache_creation_input_token_cost",
         "cache_write_1h": "cache_creation_input_token_cost_above_1hr"}
ENTRY_SOURCE = "litellm bundled model_prices_and_context_window.json"


def _per_million(value: float) -> Decimal:
    return Decimal(repr(value)) * 1_000_000


def card_from_entry(entry: dict[str, Any], model: str, options: BillingOptions, source: str) -> PriceCard:
    """A card from an entry in litellm's cost-map format (also tokencost's bundled copy), options folded in."""
    tier = options.service_tier if options.service_tier not in ref.STANDARD_TIERS else None
    suffix = f"_{tier}" if tier else ""
    suffix += "_batches" if options.batch else ""
    rates: dict[str, Decimal] = {}
    long_rates: dict[str, Decimal] = {}
    threshold = None
    for part, key in PARTS.items():
        value = entry.get(key + suffix, entry.get(key) if not suffix else None)
        if value is not None:
            rates[part] = _per_million(value)
        for above in ("above_200k_tokens", "above_272k_tokens"):
            long_value = entry.get(f"{key}_{above}{suffix}")
            if long_value is not None:
                threshold = int(above.split("_")[1].removesuffix("k")) * 1000
                long_rates[part] = _per_million(long_value)
    if threshold is not None:
        long_rates = {**rates, **long_rates}  # a part without its own long rate keeps its rate
    search = entry.get("search_context_cost_per_query") or {}
    fee = search.get("search_context_size_medium") if isinstance(search, dict) else None
    return PriceCard(model=model, provider="litellm", rates=rates, valid_from=date.min, source=source,
                     long_context_threshold=threshold, long_context_rates=long_rates,
                     per_request={"web_search": Decimal(repr(fee))} if fee is not None else {})


def model_entry(model: str) -> dict[str, Any]:
    """The cost-map entry litellm itself resolves ``model`` to (``get_model_info``)."""
    return dict(litellm_module().get_model_info(model=model))


def _tier(usage: Usage, options: BillingOptions) -> str | None:
    """The service tier a user hands litellm: the one asked for, else the one the response reports."""
    if options.service_tier not in ref.STANDARD_TIERS:
        return options.service_tier
    return usage.service_tier if usage.service_tier not in (None, "batch") else None


HISTORIC = "litellm's cost map holds today's prices only"


class _Litellm(BillingImpl):
    requires = responses.REQUIRES
    library = "litellm"
    own_prices = True
    exact = False

    def price_card(self, model: str, on: date | None = None, options: BillingOptions = STANDARD) -> PriceCard:
        return card_from_entry(model_entry(model), model, options, ENTRY_SOURCE)


class LitellmCompletionCost(_Litellm):
    name = "litellm-completion-cost"
    description = "litellm.completion_cost on the ModelResponse litellm builds from the provider's raw body"
    reports_price_table = True
    call_cost_s = 2e-3  # measured under load
    expected_failures = (*findings.COMPLETION, *findings.PRICE_DATA)
    lacks = {"historic": HISTORIC,
             "batch_unreported": "completion_cost has no batch flag: a batch request shows only in the tier the "
                                 "response reports",
             "usage_unknown": "a body without usage is not one litellm's transformation takes (see litellm-stream)"}

    def response(self, usage: Usage, model: str) -> Any:
        fmt, body = body_for(usage, model)
        return responses.model_response(fmt, body, model)

    def cost(self, usage: Usage | None, model: str, options: BillingOptions = STANDARD,
             on: date | None = None) -> float:
        validate(usage, model, options)
        if usage is None:
            raise ref.UsageUnknown("usage unknown")
        return float(litellm_module().completion_cost(completion_response=self.response(usage, model),
                                                      model=model, service_tier=_tier(usage, options)))


class LitellmStream(LitellmCompletionCost):
    name = "litellm-stream"
    description = "the provider's stream through litellm's chunk parser, stream_chunk_builder, completion_cost"
    reports_price_table = False
    call_cost_s = 3e-3  # measured under load
    lacks = {"historic": HISTORIC, "batch_unreported": LitellmCompletionCost.lacks["batch_unreported"]}
    expected_failures = (*findings.COMPLETION, ExpectedFailure(
        test="usage_unknown_raises", link=findings.COST,
        reason="an interrupted stream (no chunk carries usage) is priced, not refused: stream_chunk_builder "
               "estimates the usage from the streamed text (here 1 output token, $0.000005)"))

    def unsupported_request(self, case: BillingCase) -> list[str]:
        reasons = []
        if case.card.provider not in ("anthropic", "openai"):
            reasons.append(f"{self.name} streams OpenAI chat and Anthropic Messages here, not {case.card.provider}")
        return reasons

    def cost(self, usage: Usage | None, model: str, options: BillingOptions = STANDARD,
             on: date | None = None) -> float:
        validate(usage, model, options)
        if usage is None:  # an interrupted stream: no event carries the usage
            fmt, events = stream_for(Usage(output=1), model)
            events = events[:2] if fmt.startswith("openai") else events[:3]
        else:
            fmt, events = stream_for(usage, model)
        built = litellm_module().stream_chunk_builder(chunks=responses.stream_chunks(fmt, events, model))
        return float(litellm_module().completion_cost(completion_response=built, model=model,
                                                      service_tier=_tier(usage or Usage(), options)))


class LitellmCostPerToken(_Litellm):
    name = "litellm-cost-per-token"
    description = "litellm.cost_per_token with the counts as its documentation passes them"
    call_cost_s = 2e-3  # measured under load
    expected_failures = findings.COST_PER_TOKEN
    lacks = {"historic": HISTORIC, "batch": "cost_per_token has no batch parameter",
             "cache_write_1h": "cache_creation_input_tokens is one count: 5-minute and 1-hour writes cannot be told "
                               "apart",
             "web_search": "the documented counts carry no web-search requests",
             "usage_unknown": "cost_per_token takes counts: an unknown usage has none to give it"}

    def unsupported_request(self, case: BillingCase) -> list[str]:
        reasons = []
        if case.usage.cache_read and case.card.provider != "anthropic":
            reasons.append("the documented cost_per_token counts carry cached tokens only as Anthropic's "
                           "cache_read_input_tokens; OpenAI-style cached tokens need usage_object")
        return reasons

    def cost(self, usage: Usage | None, model: str, options: BillingOptions = STANDARD,
             on: date | None = None) -> float:
        validate(usage, model, options)
        if usage is None:
            raise ref.UsageUnknown("usage unknown")
        litellm = litellm_module()
        if ref.card_for(model).provider == "anthropic":  # input_tokens excludes the cache, as Anthropic reports it
            prompt, completion = litellm.cost_per_token(
                model=model, prompt_tokens=usage.input_uncached, completion_tokens=usage.output,
                cache_creation_input_tokens=usage.cache_write, cache_read_input_tokens=usage.cache_read,
                service_tier=_tier(usage, options))
        else:
            prompt, completion = litellm.cost_per_token(model=model, prompt_tokens=usage.prompt,
                                                        completion_tokens=usage.output,
                                                        service_tier=_tier(usage, options))
        return float(prompt) + float(completion)


class LitellmCostPerTokenUsage(_Litellm):
    name = "litellm-cost-per-token-usage"
    description = "litellm.cost_per_token with the usage_object litellm's transformation builds from the body"
    call_cost_s = 2e-3  # measured under load
    expected_failures = findings.COST_PER_TOKEN_USAGE
    lacks = {"historic": HISTORIC, "batch": "cost_per_token has no batch parameter",
             "usage_unknown": "cost_per_token takes counts: an unknown usage has none to give it"}

    def cost(self, usage: Usage | None, model: str, options: BillingOptions = STANDARD,
             on: date | None = None) -> float:
        validate(usage, model, options)
        if usage is None:
            raise ref.UsageUnknown("usage unknown")
        fmt, body = body_for(usage, model)
        llm_usage = responses.usage_object(responses.model_response(fmt, body, model))
        prompt, completion = litellm_module().cost_per_token(
            model=model, prompt_tokens=llm_usage.prompt_tokens, completion_tokens=llm_usage.completion_tokens,
            usage_object=llm_usage, service_tier=_tier(usage, options))
        return float(prompt) + float(completion)


class LitellmBatch(_Litellm):
    name = "litellm-batch"
    description = "litellm.batches.batch_utils.calculate_batch_cost_and_usage on batch output lines"
    call_cost_s = 3e-3  # measured under load
    expected_failures = findings.BATCH_PATH
    lacks = {"historic": HISTORIC, "standard": "the batch path prices batch results only",
             "usage_unknown": "a batch output line without usage is a failed request, not priced"}

    def unsupported_request(self, case: BillingCase) -> list[str]:
        reasons = []
        if case.card.provider not in ("anthropic", "openai"):
            reasons.append(f"{self.name} reads OpenAI and Anthropic batch output here, not {case.card.provider}")
        return reasons

    @staticmethod
    def line(usage: Usage, model: str, n: int) -> tuple[str, dict[str, Any]]:
        provider = ref.card_for(model).provider
        _, body = body_for(usage, model)
        if provider == "anthropic":
            return provider, {"custom_id": f"r{n}", "result": {"type": "succeeded", "message": body}}
        return provider, {"id": f"batch_req_{n}", "custom_id": f"r{n}",
                          "response": {"status_code": 200, "request_id": f"q{n}", "body": body}, "error": None}

    def _price(self, lines: list[dict[str, Any]], provider: str, model: str) -> float:
        batch_utils = litellm_module("litellm.batches.batch_utils")
        result = asyncio.run(batch_utils.calculate_batch_cost_and_usage(
            file_content_dictionary=lines, custom_llm_provider=provider, model_name=model))
        return float(result.cost)

    def cost(self, usage: Usage | None, model: str, options: BillingOptions = STANDARD,
             on: date | None = None) -> float:
        validate(usage, model, options)
        if usage is None:
            raise ref.UsageUnknown("usage unknown")
        provider, line = self.line(usage, model, 0)
        return self._price([line], provider, model)

    def cost_many(self, requests: Sequence[BillingCase]) -> float:
        """One batch output file per (provider, model), as a batch is one model's results."""
        files: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for n, r in enumerate(requests):
            provider, line = self.line(r.usage, r.model, n)
            files.setdefault((provider, r.model), []).append(line)
        return sum(self._price(lines, provider, model) for (provider, model), lines in files.items())


for _impl in (LitellmCompletionCost(), LitellmStream(), LitellmCostPerToken(), LitellmCostPerTokenUsage(),
              LitellmBatch()):
    register(_impl)

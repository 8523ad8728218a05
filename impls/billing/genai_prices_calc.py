"""genai-prices ``calc_price`` on its bundled data, at the request's date (``genai_request_timestamp``), with
batch processing and service tiers as its price context; and ``extract_usage(body).calc_price``, the path
from a raw response body."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from impls.base import Requirements
from impls.billing import _genai_prices_card as gp
from impls.billing.api import AS_OF, BillingImpl, validate
from impls.billing.genai_prices_findings import CALC_FINDINGS, EXTRACT_FINDINGS, PRICE_DATA
from impls.registry import register
from reference import billing as ref
from reference.billing import STANDARD, BillingOptions, PriceCard
from reference.usage import Usage


class GenaiPricesCalc(BillingImpl):
    name = "genai-prices"
    description = "genai_prices.calc_price with genai_request_timestamp and price_context (bundled data)"
    requires = Requirements(modules=("genai_prices",))
    library = "genai-prices"
    own_prices = True
    reports_price_table = True
    call_cost_s = 1e-2  # it matches the model id against every provider's patterns per call (measured under load)
    lacks = {"usage_unknown": "calc_price takes token counts: an unknown usage has none to give it",
             "prefixed_id": "it takes the id a provider's response carries (and the provider apart); a provider prefix "
                            "is a router's convention"}
    expected_failures = (*CALC_FINDINGS, PRICE_DATA)

    def cost(self, usage: Usage | None, model: str, options: BillingOptions = STANDARD,
             on: date | None = None) -> Decimal:
        from genai_prices import Usage as GpUsage
        from genai_prices import calc_price

        validate(usage, model, options)
        if usage is None:
            raise ref.UsageUnknown("usage unknown")
        gp_usage = GpUsage(input_tokens=usage.prompt, cache_read_tokens=usage.cache_read,
                           cache_write_tokens=usage.cache_write, cache_write_1h_tokens=usage.cache_write_1h,
                           output_tokens=usage.output, web_searches=usage.web_searches)
        result = calc_price(gp_usage, model, provider_id=gp.provider_of(model),
                            genai_request_timestamp=gp.timestamp(on or AS_OF),
                            price_context=gp.price_context(options, usage.service_tier))
        return result.total_price

    def price_card(self, model: str, on: date | None = None, options: BillingOptions = STANDARD) -> PriceCard:
        return gp.card(model, options, on or AS_OF)

    def price_changes(self, model: str) -> list[date]:
        return gp.price_changes(model)


class GenaiPricesExtractCalc(GenaiPricesCalc):
    """The raw body a user has: ``extract_usage(body, provider).calc_price(timestamp, price_context)``."""

    name = "genai-prices-body"
    description = "genai_prices.extract_usage(raw body).calc_price(genai_request_timestamp, price_context)"
    reports_price_table = False
    expected_failures = CALC_FINDINGS + EXTRACT_FINDINGS

    def cost(self, usage: Usage | None, model: str, options: BillingOptions = STANDARD,
             on: date | None = None) -> Decimal:
        from genai_prices import extract_usage

        from impls._bodies import body_for

        validate(usage, model, options)
        if usage is None:
            raise ref.UsageUnknown("usage unknown")
        fmt, body = body_for(usage, model)
        flavor = {"openai.chat": "chat", "deepseek.chat": "chat"}.get(fmt, "default")
        extracted = extract_usage(body, provider_id=gp.provider_of(model), api_flavor=flavor)
        return extracted.calc_price(genai_request_timestamp=gp.timestamp(on or AS_OF),
                                    price_context=gp.price_context(options, usage.service_tier)).total_price


register(GenaiPricesCalc())
register(GenaiPricesExtractCalc())

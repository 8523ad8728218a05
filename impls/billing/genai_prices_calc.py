"""genai-prices ``calc_price`` on its bundled price data (never fetched: no update_prices call)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from impls.base import Requirements
from impls.billing import _genai_prices_card as gp
from impls.billing.api import BillingImpl
from impls.registry import register
from reference.billing import STANDARD, BillingOptions, PriceCard
from reference.usage import Usage


class GenaiPricesCalc(BillingImpl):
    name = "genai-prices"
    description = "genai_prices.calc_price (bundled data)"
    requires = Requirements(modules=("genai_prices",))
    own_prices = True
    expected_failures = ()

    def cost(self, usage: Usage, model: str, options: BillingOptions = STANDARD) -> Decimal:
        from genai_prices import Usage as GpUsage
        from genai_prices import calc_price

        gp_usage = GpUsage(input_tokens=usage.prompt, cache_read_tokens=usage.cache_read,
                           cache_write_tokens=usage.cache_write, cache_write_1h_tokens=usage.cache_write_1h,
                           output_tokens=usage.output, web_searches=usage.web_searches)
        result = calc_price(gp_usage, model, provider_id=gp.provider_of(model), price_context=gp.price_context(options))
        return result.total_price

    def price_card(self, model: str, options: BillingOptions = STANDARD) -> PriceCard:
        return gp.card(model, options)

    def unsupported(self, case: Any) -> list[str]:
        return super().unsupported(case)


register(GenaiPricesCalc())

"""tokencost ``calculate_cost_by_tokens`` on its bundled model_prices.json (it fetches only if asked to refresh).

tokencost prices three token types (input, output, cached read), one at a time, at today's rates: it has no
cache writes, batch, service tiers, per-request fees or dated prices, which are declared as what it lacks.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from impls.base import Requirements
from impls.billing.api import BillingImpl, validate
from impls.billing.litellm_cost import card_from_entry
from impls.billing.tokencost_findings import FINDINGS, PRICE_DATA
from impls.registry import register
from reference import billing as ref
from reference.billing import STANDARD, BillingOptions, PriceCard
from reference.usage import Usage

WHY = "calculate_cost_by_tokens prices input, output and cached-read tokens only"


def _entry(model: str) -> tuple[str, dict[str, Any]]:
    from tokencost.constants import TOKEN_COSTS

    if model not in TOKEN_COSTS:
        raise LookupError(f"tokencost's bundled prices have no {model!r}")
    return model, dict(TOKEN_COSTS[model])


class TokencostAdapter(BillingImpl):
    name = "tokencost"
    description = "tokencost.calculate_cost_by_tokens per token type (bundled prices)"
    requires = Requirements(modules=("tokencost",))
    library = "tokencost"
    own_prices = True
    reports_price_table = True
    call_cost_s = 1e-5
    lacks = {"batch": f"{WHY}: no batch prices", "tier.flex": f"{WHY}: no service tiers",
             "tier.priority": f"{WHY}: no service tiers", "cache_write": f"{WHY}: no cache writes",
             "web_search": f"{WHY}: no per-request fees", "historic": "its table holds today's prices only",
             "prefixed_id": "it takes the id a provider's response carries; a provider prefix is a router's convention",
             "usage_unknown": "calculate_cost_by_tokens takes counts: an unknown usage has none to give it"}
    expected_failures = (*FINDINGS, *PRICE_DATA)

    def cost(self, usage: Usage | None, model: str, options: BillingOptions = STANDARD,
             on: date | None = None) -> Decimal:
        from tokencost import calculate_cost_by_tokens

        validate(usage, model, options)
        if usage is None:
            raise ref.UsageUnknown("usage unknown")
        if usage.cache_write:
            raise ValueError("tokencost cannot price cache writes")
        name, _ = _entry(model)
        total = calculate_cost_by_tokens(usage.input_uncached, name, "input")
        total += calculate_cost_by_tokens(usage.output, name, "output")
        if usage.cache_read:
            total += calculate_cost_by_tokens(usage.cache_read, name, "cached")
        return total

    def price_card(self, model: str, on: date | None = None, options: BillingOptions = STANDARD) -> PriceCard:
        name, entry = _entry(model)
        return card_from_entry(entry, name, options, "tokencost bundled model_prices.json")


register(TokencostAdapter())

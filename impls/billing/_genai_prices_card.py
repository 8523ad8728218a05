"""genai-prices' own price data for a model, turned into a reference PriceCard (bundled data only)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from reference.billing import STANDARD, BillingOptions, PriceCard

PROVIDERS = {"claude": "anthropic", "gpt": "openai", "gemini": "google"}
KEYS = {"input_mtok": "input", "output_mtok": "output", "cache_read_mtok": "cache_read",
        "cache_write_mtok": "cache_write_5m", "cache_write_1h_mtok": "cache_write_1h"}


def provider_of(model: str) -> str:
    return next(p for prefix, p in PROVIDERS.items() if model.startswith(prefix))


def price_context(options: BillingOptions) -> dict[str, str]:
    context = {}
    if options.batch:
        context["processing"] = "batch"
    if options.service_tier not in (None, "default"):
        context["service_tier"] = options.service_tier
    return context


def model_price(model: str, options: BillingOptions, when: datetime | None = None) -> Any:
    from genai_prices.data_snapshot import get_snapshot

    _, info = get_snapshot().find_provider_model(model, None, provider_of(model), None)
    return info.get_prices(when or datetime.now(UTC), price_context(options))


def card(model: str, options: BillingOptions = STANDARD, when: datetime | None = None) -> PriceCard:
    from genai_prices.types import TieredPrices

    prices = model_price(model, options, when)
    rates: dict[str, Decimal] = {}
    long_rates: dict[str, Decimal] = {}
    threshold = None
    for key, part in KEYS.items():
        value = getattr(prices, key, None)
        if value is None:
            continue
        if isinstance(value, TieredPrices):
            if len(value.tiers) != 1:
                raise ValueError(f"genai-prices {model} {key}: {len(value.tiers)} tiers; the card model has one")
            rates[part] = value.base
            long_rates[part] = value.tiers[0].price
            threshold = value.tiers[0].start
        else:
            rates[part] = long_rates[part] = value
    if "cache_write_5m" in rates and "cache_write_1h" not in rates:
        pass  # a 1-hour write with no 1-hour price is an error for the reference, as it should be
    fee = getattr(prices, "web_searches_kcount", None)
    return PriceCard(model=model, provider=provider_of(model), rates=rates, valid_from=date.min,
                     source="genai-prices bundled data", long_context_threshold=threshold,
                     long_context_rates=long_rates if threshold is not None else {},
                     per_request={"web_search": fee / 1000} if fee is not None else {})

"""genai-prices' own price data for a model on a date, turned into a reference PriceCard (bundled data only:
``update_prices`` is never called, so nothing is fetched)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from reference import billing as ref
from reference.billing import STANDARD, BillingOptions, PriceCard

KEYS = {"input_mtok": "input", "output_mtok": "output", "cache_read_mtok": "cache_read",
        "cache_write_mtok": "cache_write_5m", "cache_write_1h_mtok": "cache_write_1h"}
LINK = "https://github.com/pydantic/genai-prices/tree/main/prices/providers"
NOON = time(12, 0, tzinfo=UTC)  # clear of DeepSeek's off-peak hours (16:30-00:30 UTC) in genai-prices' data


def provider_of(model: str) -> str:
    """The provider id genai-prices files the model under (that of the reference card the id resolves to)."""
    return ref.card_for(model).provider


def timestamp(on: date) -> datetime:
    return datetime.combine(on, NOON)


def price_context(options: BillingOptions, reported_tier: str | None = None) -> dict[str, str]:
    """genai-prices' price context for a request: batch processing and the service tier, as a user passes them."""
    context = {}
    if options.batch or reported_tier == "batch":
        context["processing"] = "batch"
    tier = options.service_tier or (reported_tier if reported_tier not in (None, "batch") else None)
    if tier not in (None, "default", "standard", "auto"):
        context["service_tier"] = str(tier)
    return context


def model_info(model: str) -> Any:
    from genai_prices.data_snapshot import get_snapshot

    _, info = get_snapshot().find_provider_model(model, None, provider_of(model), None)
    return info


def price_changes(model: str) -> list[date]:
    """Every start date in genai-prices' data for the model (its conditional prices and price variants)."""
    info = model_info(model)
    starts = [getattr(p.constraint, "start_date", None) for p in (info.prices if isinstance(info.prices, list) else [])]
    starts += [getattr(v.constraint, "start_date", None) for v in info.price_variants or ()]
    return sorted({d for d in starts if d is not None})


def card(model: str, options: BillingOptions = STANDARD, on: date | None = None) -> PriceCard:
    """genai-prices' prices for ``model`` on ``on`` with ``options`` folded in, as a reference card."""
    from genai_prices.types import TieredPrices

    prices = model_info(model).get_prices(timestamp(on or date.today()), price_context(options))
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
    fee = getattr(prices, "web_searches_kcount", None)
    return PriceCard(model=model, provider=provider_of(model), rates=rates, valid_from=date.min,
                     source="genai-prices bundled data", long_context_threshold=threshold,
                     long_context_rates=long_rates if threshold is not None else {},
                     per_request={"web_search": fee / 1000} if fee is not None else {})

"""Exact cost of one request: a usage record priced under a dated price card, in Decimal dollars.

Rules (the design brief, area 5):
- each input part has its own rate: uncached input, cache read, cache write by TTL (5 min / 1 h);
- reasoning is already inside ``output`` and billed at the output rate;
- long-context tier: when ``prompt`` (input + cache read + cache write) is strictly greater than the card's
  threshold, every token of the request, output included, is billed at the long-context rates;
- a service tier (flex, priority) replaces the rates with that tier's rates;
- batch multiplies every token rate (cache reads and writes included) by the card's batch multiplier;
- per-request fees (web search) are added per request, not discounted;
- a rate the usage needs that the card lacks is a :class:`PriceError`, never a silent zero.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from reference.usage import Usage

PRICES_FILE = Path(__file__).parent / "data" / "prices.json"
MILLION = Decimal(1_000_000)
TOKEN_PARTS = ("input", "cache_read", "cache_write_5m", "cache_write_1h", "output")
STANDARD_TIERS = (None, "default", "standard", "auto")


class PriceError(LookupError):
    """No card for a model or date, or a card without a rate the usage needs."""


@dataclass(frozen=True)
class PriceCard:
    model: str
    provider: str
    rates: Mapping[str, Decimal]  # USD per million tokens, keys from TOKEN_PARTS
    valid_from: date
    valid_to: date | None = None
    source: str = ""
    long_context_threshold: int | None = None
    long_context_rates: Mapping[str, Decimal] = field(default_factory=dict)
    tiers: Mapping[str, Mapping[str, Decimal]] = field(default_factory=dict)
    batch_multiplier: Decimal | None = None
    per_request: Mapping[str, Decimal] = field(default_factory=dict)  # USD per request, e.g. web_search


@dataclass(frozen=True)
class BillingOptions:
    batch: bool = False
    service_tier: str | None = None  # None / "default": standard rates; "flex", "priority"


STANDARD = BillingOptions()  # no batch, standard service tier


@dataclass(frozen=True)
class Cost:
    total: Decimal
    breakdown: Mapping[str, Decimal]  # per part; the parts sum to ``total``
    long_context: bool


def _rates(raw: Mapping[str, Any]) -> dict[str, Decimal]:
    return {k: Decimal(str(v)) for k, v in raw.items()}


def card_from_dict(raw: Mapping[str, Any]) -> PriceCard:
    lc = raw.get("long_context") or {}
    return PriceCard(
        model=raw["model"], provider=raw["provider"], rates=_rates(raw["rates"]),
        valid_from=date.fromisoformat(raw["valid_from"]),
        valid_to=date.fromisoformat(raw["valid_to"]) if raw.get("valid_to") else None,
        source=raw["source"], long_context_threshold=lc.get("threshold"),
        long_context_rates=_rates(lc.get("rates", {})),
        tiers={name: _rates(r) for name, r in (raw.get("tiers") or {}).items()},
        batch_multiplier=Decimal(raw["batch_multiplier"]) if raw.get("batch_multiplier") else None,
        per_request=_rates(raw.get("per_request") or {}),
    )


def load_cards(path: Path = PRICES_FILE) -> list[PriceCard]:
    return list(_load_cards(path))


@cache
def _load_cards(path: Path) -> tuple[PriceCard, ...]:
    raw = json.loads(path.read_text())
    for entry in raw["cards"]:
        if not entry.get("source") or not entry.get("as_of"):
            raise ValueError(f"price card {entry.get('model')!r} lacks a source URL or an as_of date")
    return tuple(card_from_dict(entry) for entry in raw["cards"])


def card_for(model: str, on: date | None = None, cards: list[PriceCard] | None = None) -> PriceCard:
    """The card for ``model`` valid on ``on`` (default: the latest card)."""
    matches = [c for c in (cards if cards is not None else load_cards()) if c.model == model]
    if not matches:
        raise PriceError(f"no price card for model {model!r}")
    if on is None:
        return max(matches, key=lambda c: c.valid_from)
    valid = [c for c in matches if c.valid_from <= on and (c.valid_to is None or on < c.valid_to)]
    if not valid:
        spans = ", ".join(f"{c.valid_from}..{c.valid_to or 'now'}" for c in matches)
        raise PriceError(f"no price card for model {model!r} on {on}; cards cover {spans}")
    return valid[0]


def token_counts(usage: Usage) -> dict[str, int]:
    return {"input": usage.input_uncached, "cache_read": usage.cache_read, "cache_write_5m": usage.cache_write_5m,
            "cache_write_1h": usage.cache_write_1h, "output": usage.output}


def is_long_context(usage: Usage, card: PriceCard) -> bool:
    return card.long_context_threshold is not None and usage.prompt > card.long_context_threshold


def effective_rates(usage: Usage, card: PriceCard, options: BillingOptions) -> dict[str, Decimal]:
    """Per-million rates after tier, long context and batch: the rates this request pays."""
    tier = options.service_tier
    if tier in STANDARD_TIERS:
        rates: Mapping[str, Decimal] = card.rates
    elif tier in card.tiers:
        rates = card.tiers[tier]  # type: ignore[index]
    else:
        raise PriceError(f"card {card.model} has no service tier {tier!r}; it has {sorted(card.tiers) or 'none'}")
    if is_long_context(usage, card):
        if tier not in STANDARD_TIERS:
            raise PriceError(f"card {card.model} gives no long-context rates for service tier {tier!r}")
        rates = card.long_context_rates
    multiplier = Decimal(1)
    if options.batch:
        if tier not in STANDARD_TIERS:
            raise PriceError(f"batch and service tier {tier!r} do not combine")
        if card.batch_multiplier is None:
            raise PriceError(f"card {card.model} has no batch price")
        multiplier = card.batch_multiplier
    return {part: rate * multiplier for part, rate in rates.items()}


def cost(usage: Usage, card: PriceCard, options: BillingOptions = STANDARD) -> Cost:
    """Exact cost of one request, with a breakdown per part."""
    rates = effective_rates(usage, card, options)
    long_context = is_long_context(usage, card)
    breakdown: dict[str, Decimal] = {}
    for part, tokens in token_counts(usage).items():
        if tokens == 0:
            continue
        if part not in rates:
            where = "long-context rates" if long_context else "rates"
            raise PriceError(f"card {card.model} lacks a {part} rate in its {where}; the usage has {tokens} "
                             f"{part} tokens")
        breakdown[part] = tokens * rates[part] / MILLION
    if usage.web_searches:
        if "web_search" not in card.per_request:
            raise PriceError(f"card {card.model} lacks a web_search fee; the usage has {usage.web_searches}")
        breakdown["web_search"] = usage.web_searches * card.per_request["web_search"]
    return Cost(total=sum(breakdown.values(), Decimal(0)), breakdown=breakdown, long_context=long_context)

"""Exact cost of one request: a usage record priced under a dated price card, in Decimal dollars.

Rules (the design brief, area 5):
- each input part has its own rate: uncached input, cache read, cache write by TTL (5 min / 1 h);
- reasoning is already inside ``output`` and billed at the output rate;
- long-context tier: when ``prompt`` (input + cache read + cache write) is strictly greater than the card's
  threshold, every token of the request, output included, is billed at the long-context rates;
- a service tier (flex, priority) replaces the rates with that tier's rates;
- batch multiplies every token rate (cache reads and writes included) by the card's batch multiplier;
- per-request fees (web search) are added per request, not discounted;
- the service tier a response reports (``Usage.service_tier``) is applied; one that contradicts the options
  is an error naming both;
- a rate the usage needs that the card lacks is a :class:`PriceError`, never a silent zero; so is a usage
  that is unknown (``None``: an interrupted stream).

Model ids are resolved as real responses carry them: dated ids (``claude-haiku-4-5-20251001``) through the
alias list of ``prices.json`` (each alias with its source), provider prefixes (``anthropic/``) through its
prefix list. An unknown id is an error that names the closest known ids. Cards are validated when loaded.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

from reference.usage import Usage

PRICES_FILE = Path(__file__).parent / "data" / "prices.json"
MILLION = Decimal(1_000_000)
TOKEN_PARTS = ("input", "cache_read", "cache_write_5m", "cache_write_1h", "output")
PER_REQUEST_PARTS = ("web_search",)
STANDARD_TIERS = (None, "default", "standard", "auto")
BATCH = "batch"


class PriceError(LookupError):
    """No card for a model or date, a card without a rate the usage needs, or options that contradict the usage."""


class UsageUnknown(PriceError):
    """The response carried no usage (an interrupted stream): its cost is unknown, not zero."""


class CardError(ValueError):
    """A price card (or alias) in the price file that breaks a rule; the message names the card and the field."""


@dataclass(frozen=True)
class PriceCard:
    model: str
    provider: str
    rates: Mapping[str, Decimal]  # USD per million tokens, keys from TOKEN_PARTS
    valid_from: date
    valid_to: date | None = None  # exclusive
    source: str = ""
    long_context_threshold: int | None = None
    long_context_rates: Mapping[str, Decimal] = field(default_factory=dict)
    tiers: Mapping[str, Mapping[str, Decimal]] = field(default_factory=dict)
    batch_multiplier: Decimal | None = None
    per_request: Mapping[str, Decimal] = field(default_factory=dict)  # USD per request, e.g. web_search

    def valid_on(self, on: date) -> bool:
        return self.valid_from <= on and (self.valid_to is None or on < self.valid_to)


@dataclass(frozen=True)
class Alias:
    alias: str  # the id as a response carries it
    model: str  # the card's model id
    source: str  # where the provider says the two are one model


@dataclass(frozen=True)
class Prefix:
    prefix: str  # e.g. "anthropic/"
    provider: str  # the provider whose cards the rest of the id must name
    source: str


@dataclass(frozen=True)
class PriceBook:
    cards: tuple[PriceCard, ...]
    aliases: tuple[Alias, ...] = ()
    prefixes: tuple[Prefix, ...] = ()


@dataclass(frozen=True)
class BillingOptions:
    batch: bool = False
    service_tier: str | None = None  # None: whatever the usage reports; "default" / "standard": standard rates


STANDARD = BillingOptions()  # no batch, standard service tier


@dataclass(frozen=True)
class Cost:
    total: Decimal
    breakdown: Mapping[str, Decimal]  # per part; the parts sum to ``total``
    long_context: bool
    options: BillingOptions = STANDARD  # what was applied: the options resolved with the usage's service tier


# --- loading and validating -------------------------------------------------------------------------------------

def _decimal(value: Any, where: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise CardError(f"{where} must be a number; got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise CardError(f"{where} must be a finite number >= 0; got {value!r}")
    return number


def _rates(raw: Any, where: str, allowed: tuple[str, ...] = TOKEN_PARTS) -> dict[str, Decimal]:
    if not isinstance(raw, Mapping):
        raise CardError(f"{where} must be an object of rates; got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise CardError(f"{where} has unknown parts {unknown}; known: {list(allowed)}")
    return {k: _decimal(v, f"{where}.{k}") for k, v in raw.items()}


def _date(raw: Any, where: str) -> date:
    try:
        return date.fromisoformat(raw)
    except (TypeError, ValueError):
        raise CardError(f"{where} must be an ISO date (YYYY-MM-DD); got {raw!r}") from None


def card_from_dict(raw: Mapping[str, Any], where: str = "card") -> PriceCard:
    """One card from its JSON form, every field checked; the error names ``where`` and the field."""
    for key in ("model", "provider", "rates", "valid_from", "source", "as_of"):
        if not raw.get(key):
            raise CardError(f"{where} lacks {key!r}")
    where = f"{where} ({raw['model']})"
    if not str(raw["source"]).startswith("https://"):
        raise CardError(f"{where}.source must be an https URL; got {raw['source']!r}")
    _date(raw["as_of"], f"{where}.as_of")
    valid_from = _date(raw["valid_from"], f"{where}.valid_from")
    valid_to = _date(raw["valid_to"], f"{where}.valid_to") if raw.get("valid_to") else None
    if valid_to is not None and valid_to <= valid_from:
        raise CardError(f"{where} ends ({valid_to}) on or before it starts ({valid_from})")
    lc = raw.get("long_context") or {}
    threshold = lc.get("threshold")
    if lc and (type(threshold) is not int or threshold <= 0 or not lc.get("rates")):
        raise CardError(f"{where}.long_context needs a positive int threshold and rates; got {lc!r}")
    multiplier = raw.get("batch_multiplier")
    batch = _decimal(multiplier, f"{where}.batch_multiplier") if multiplier is not None else None
    if batch is not None and not 0 < batch <= 1:
        raise CardError(f"{where}.batch_multiplier must be in (0, 1]; got {multiplier!r}")
    return PriceCard(
        model=raw["model"], provider=raw["provider"], rates=_rates(raw["rates"], f"{where}.rates"),
        valid_from=valid_from, valid_to=valid_to, source=raw["source"], long_context_threshold=threshold,
        long_context_rates=_rates(lc.get("rates", {}), f"{where}.long_context.rates"),
        tiers={name: _rates(r, f"{where}.tiers.{name}") for name, r in (raw.get("tiers") or {}).items()},
        batch_multiplier=batch,
        per_request=_rates(raw.get("per_request") or {}, f"{where}.per_request", PER_REQUEST_PARTS),
    )


def validate_cards(cards: list[PriceCard] | tuple[PriceCard, ...]) -> None:
    """Cards of one model must not overlap in time: at most one card is valid on any date."""
    by_model: dict[str, list[PriceCard]] = {}
    for card in cards:
        by_model.setdefault(card.model, []).append(card)
    for model, own in by_model.items():
        own.sort(key=lambda c: c.valid_from)
        for earlier, later in pairwise(own):
            if earlier.valid_to is None or earlier.valid_to > later.valid_from:
                raise CardError(f"cards for {model!r} overlap: {earlier.valid_from}..{earlier.valid_to or 'open'} "
                                f"and {later.valid_from}..{later.valid_to or 'open'}")
        if len({c.provider for c in own}) > 1:
            raise CardError(f"cards for {model!r} name different providers: {sorted({c.provider for c in own})}")


def book_from_dict(raw: Mapping[str, Any]) -> PriceBook:
    cards = tuple(card_from_dict(entry, f"cards[{i}]") for i, entry in enumerate(raw.get("cards") or ()))
    validate_cards(cards)
    models = {c.model for c in cards}
    aliases: list[Alias] = []
    for i, entry in enumerate(raw.get("aliases") or ()):
        alias = Alias(entry.get("alias", ""), entry.get("model", ""), entry.get("source", ""))
        where = f"aliases[{i}] ({alias.alias!r})"
        if not alias.alias or not alias.source.startswith("https://"):
            raise CardError(f"{where} needs an alias and an https source")
        if alias.model not in models:
            raise CardError(f"{where} names model {alias.model!r}, which has no card")
        if alias.alias in models or alias.alias in {a.alias for a in aliases}:
            raise CardError(f"{where} is already a model id or an alias")
        aliases.append(alias)
    prefixes = []
    for i, entry in enumerate(raw.get("prefixes") or ()):
        prefix = Prefix(entry.get("prefix", ""), entry.get("provider", ""), entry.get("source", ""))
        if not prefix.prefix or not prefix.source.startswith("https://"):
            raise CardError(f"prefixes[{i}] needs a prefix and an https source")
        prefixes.append(prefix)
    return PriceBook(cards, tuple(aliases), tuple(prefixes))


def load_book(path: Path = PRICES_FILE) -> PriceBook:
    return _load_book(path)


@cache
def _load_book(path: Path) -> PriceBook:
    return book_from_dict(json.loads(path.read_text()))


def load_cards(path: Path = PRICES_FILE) -> list[PriceCard]:
    return list(load_book(path).cards)


# --- resolving a model id and a date ----------------------------------------------------------------------------

def resolve_model(model: str, book: PriceBook | None = None) -> str:
    """The card model id for an id as a response carries it: itself, an alias, or a provider-prefixed id."""
    book = book or load_book()
    models = {c.model: c.provider for c in book.cards}
    aliases = {a.alias: a.model for a in book.aliases}

    def direct(name: str) -> str | None:
        return name if name in models else aliases.get(name)

    found = direct(model)
    if found is not None:
        return found
    for prefix in book.prefixes:
        if model.startswith(prefix.prefix):
            found = direct(model.removeprefix(prefix.prefix))
            if found is not None and models[found] == prefix.provider:
                return found
    known = sorted(models) + sorted(aliases)
    close = difflib.get_close_matches(model, known, n=3, cutoff=0.6)
    raise PriceError(f"no price card for model {model!r}; closest known ids: {close or 'none'} "
                     f"(add an alias with its source to {PRICES_FILE.name} if it is one of them)")


def card_for(model: str, on: date | None = None, cards: list[PriceCard] | None = None) -> PriceCard:
    """The card for ``model`` (an id, alias or prefixed id) valid on ``on`` (default: the latest card)."""
    model = resolve_model(model) if cards is None else model
    matches = [c for c in (cards if cards is not None else load_cards()) if c.model == model]
    if not matches:
        raise PriceError(f"no price card for model {model!r}")
    if on is None:
        return max(matches, key=lambda c: c.valid_from)
    valid = [c for c in matches if c.valid_on(on)]
    if not valid:
        spans = ", ".join(f"{c.valid_from}..{c.valid_to or 'now'}" for c in matches)
        raise PriceError(f"no price card for model {model!r} on {on}; cards cover {spans}")
    return valid[0]


# --- the service tier a response reports ------------------------------------------------------------------------

# What each provider's reported tier says: "standard" (standard rates, not a batch), "any" (standard rates,
# batch or not: OpenAI reports "default" in batch output too), "batch", or a tier of the card.
REPORTED_TIERS: Mapping[str, Mapping[str, str]] = {
    # anthropic.types.Usage.service_tier: "standard" | "priority" | "batch"
    "anthropic": {"standard": "standard", "priority": "priority", "batch": BATCH},
    # the tier OpenAI actually used: "default" | "flex" | "priority" | "scale" ("auto" is only a request value)
    "openai": {"default": "any", "auto": "any", "flex": "flex", "priority": "priority", "scale": "scale"},
    "google": {}, "deepseek": {},
}


def resolve_options(usage: Usage, card: PriceCard, options: BillingOptions = STANDARD) -> BillingOptions:
    """The options with the usage's reported service tier applied; a contradiction is a PriceError naming both."""
    reported = usage.service_tier
    asked_tier = None if options.service_tier in STANDARD_TIERS else options.service_tier
    if reported is None:
        return BillingOptions(batch=options.batch, service_tier=asked_tier)
    meaning = REPORTED_TIERS.get(card.provider, {}).get(reported)
    if meaning is None:
        known = sorted(REPORTED_TIERS.get(card.provider, {}))
        raise PriceError(f"usage reports service tier {reported!r}, which {card.provider} does not report "
                         f"(known: {known or 'none'})")
    conflict = f"usage reports service tier {reported!r} but the options say {options}"
    if meaning == BATCH:
        if asked_tier is not None:
            raise PriceError(conflict)
        return BillingOptions(batch=True)
    if meaning in ("standard", "any"):
        if asked_tier is not None or (options.batch and meaning == "standard"):
            raise PriceError(conflict)
        return BillingOptions(batch=options.batch)
    if options.batch or (asked_tier is not None and asked_tier != meaning):
        raise PriceError(conflict)
    return BillingOptions(service_tier=meaning)


# --- pricing ----------------------------------------------------------------------------------------------------

def token_counts(usage: Usage) -> dict[str, int]:
    return {"input": usage.input_uncached, "cache_read": usage.cache_read, "cache_write_5m": usage.cache_write_5m,
            "cache_write_1h": usage.cache_write_1h, "output": usage.output}


def is_long_context(usage: Usage, card: PriceCard) -> bool:
    return card.long_context_threshold is not None and usage.prompt > card.long_context_threshold


def effective_rates(usage: Usage, card: PriceCard, options: BillingOptions) -> dict[str, Decimal]:
    """Per-million rates after tier, long context and batch (options already resolved with the usage's tier)."""
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


def cost(usage: Usage | None, card: PriceCard, options: BillingOptions = STANDARD) -> Cost:
    """Exact cost of one request, with a breakdown per part."""
    if usage is None:
        raise UsageUnknown("usage unknown: the response carries no usage (an interrupted stream?), so its cost "
                           "is unknown, not zero")
    if not isinstance(usage, Usage):
        raise TypeError(f"cost() takes a reference.usage.Usage or None; got {type(usage).__name__}")
    options = resolve_options(usage, card, options)
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
    return Cost(total=sum(breakdown.values(), Decimal(0)), breakdown=breakdown, long_context=long_context,
                options=options)


def price(usage: Usage | None, model: str, on: date | None = None, options: BillingOptions = STANDARD) -> Cost:
    """Resolve ``model`` (dated or prefixed ids too), take its card valid on ``on`` and price ``usage``."""
    return cost(usage, card_for(model, on), options)

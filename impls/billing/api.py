"""The billing area's call API: a usage record + the model id a response names + options + date → dollars.

``cost(usage, model, options, on)`` returns a ``Decimal`` (``exact = True``) or a ``float`` (compared at a
relative 1e-9); ``model`` is the id as a response carries it (a card id, a dated id, a provider-prefixed id),
``on`` the request's date (None: :data:`AS_OF`, the date the cards were last checked). ``cost_many`` prices
several requests as one log (the vectorized and batch entry points override it). Capabilities, as data:

- ``lacks`` (feature → why), features from :data:`FEATURES`: ``batch``, ``batch_unreported`` (batch only in
  the options: the response does not say so), ``tier.flex``, ``tier.priority``,
  ``cache_write``, ``cache_write_1h``, ``web_search``, ``historic`` (a date before the model's latest price
  change: an undated price table only knows today's prices), ``dated_id`` (an alias of the card's id, e.g. a
  dated snapshot), ``prefixed_id`` (a provider-prefixed id, ``anthropic/...``),
  ``reported_tier`` (a tier the usage reports), ``standard`` (not a batch request: the batch-only entry points),
  ``usage_unknown`` (it cannot be handed a usage that is unknown);
- ``exact``; ``own_prices`` (it prices from the library's own table: ``price_card`` gives that table for a
  model, date and options as a reference card, so the suite can tell stale prices from wrong logic);
  ``reports_price_table`` (this entry point is the one whose table is compared bucket by bucket; the
  library's other entry points share it); ``prices_logs`` (it prices a whole usage log at once);
- ``call_cost_s``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar

from impls.base import Implementation
from reference import billing as ref
from reference.billing import STANDARD, BillingOptions, PriceCard
from reference.usage import Usage

# The date the cards were last checked (the latest as_of of reference/data/prices.json): "today" for the cards.
AS_OF = max(date.fromisoformat(c["as_of"]) for c in json.loads(ref.PRICES_FILE.read_text())["cards"])
FEATURES = ("batch", "batch_unreported", "tier.flex", "tier.priority", "cache_write", "cache_write_1h", "web_search", "historic",
            "dated_id", "prefixed_id", "reported_tier", "standard", "usage_unknown", "log")
PARTS = ("input_uncached", "cache_read", "cache_write_5m", "cache_write_1h", "output", "web_searches")


@dataclass(frozen=True)
class BillingCase:
    """One request: what the response says (model id, usage), how it was sent (options) and when.

    ``expected`` is a hand-computed figure on the reference cards (the check then holds the reference to it
    too); without it the expected cost is the reference's on the card valid on the date.
    """

    model: str
    usage: Usage
    options: BillingOptions = STANDARD
    on: date | None = None
    expected: Decimal | None = None
    label: str = ""

    @property
    def day(self) -> date:
        return self.on or AS_OF

    @property
    def card(self) -> PriceCard:
        return ref.card_for(self.model, self.day)

    @property
    def resolved(self) -> BillingOptions:
        """The options with the usage's reported tier applied (what the reference bills)."""
        return ref.resolve_options(self.usage, self.card, self.options)

    def features(self) -> set[str]:
        out = set()
        try:
            opts, card = self.resolved, self.card
        except ref.PriceError:
            opts, card = self.options, None
        out.add("batch" if opts.batch else "standard")
        if self.options.batch and self.usage.service_tier != "batch":
            out.add("batch_unreported")
        if opts.service_tier not in ref.STANDARD_TIERS:
            out.add(f"tier.{opts.service_tier}")
        if self.usage.cache_write:
            out.add("cache_write")
        if self.usage.cache_write_1h:
            out.add("cache_write_1h")
        if self.usage.web_searches:
            out.add("web_search")
        if self.usage.service_tier is not None:
            out.add("reported_tier")
        if card is not None and card.model != self.model:
            book = ref.load_book()
            out.add("prefixed_id" if any(self.model.startswith(p.prefix) for p in book.prefixes) else "dated_id")
        if card is not None and card is not ref.card_for(card.model):
            out.add("historic")
        return out

    def __str__(self) -> str:
        counts = ", ".join(f"{p}={getattr(self.usage, p)}" for p in PARTS if getattr(self.usage, p))
        tier = f" tier={self.usage.service_tier}" if self.usage.service_tier else ""
        opts = [n for n, on in (("batch", self.options.batch),) if on]
        if self.options.service_tier:
            opts.append(f"service_tier={self.options.service_tier}")
        label = f" [{self.label}]" if self.label else ""
        return f"{self.model} on {self.day} ({counts or 'no tokens'}{tier}){' ' + ' '.join(opts) if opts else ''}" \
               f"{label}"


@dataclass(frozen=True)
class PairCase:
    """Two requests priced one by one and as one log."""

    first: BillingCase
    second: BillingCase

    def features(self) -> set[str]:
        return self.first.features() | self.second.features()

    def __str__(self) -> str:
        return f"{self.first} + {self.second}"


@dataclass(frozen=True)
class PriceDataCase:
    """The library's price table for one model, bucket by bucket, against the dated cards."""

    model: str

    def features(self) -> set[str]:
        return set()

    def __str__(self) -> str:
        return f"price table of {self.model}"


class BillingImpl(Implementation):
    area: ClassVar[str] = "billing"
    exact: bool = True
    own_prices: bool = False
    reports_price_table: bool = False
    prices_logs: bool = False
    library: str = ""  # the third-party library behind it (entry points of one library share it)

    def cost(self, usage: Usage | None, model: str, options: BillingOptions = STANDARD,
             on: date | None = None) -> Decimal | float:
        raise NotImplementedError

    def cost_many(self, requests: Sequence[BillingCase]) -> Decimal | float:
        """The total of several requests; by default each priced on its own and summed."""
        costs = [self.cost(r.usage, r.model, r.options, r.on) for r in requests]
        return sum(costs, Decimal(0)) if self.exact else float(sum(float(c) for c in costs))

    def price_card(self, model: str, on: date | None = None, options: BillingOptions = STANDARD) -> PriceCard:
        """The library's own prices for ``model`` on ``on`` with ``options`` folded in (batch, tier)."""
        raise NotImplementedError(f"{self.name} prices from the reference cards")

    def price_changes(self, model: str) -> list[date]:
        """Dates on which the library's own price data for ``model`` changes (empty: undated data)."""
        return []

    def price_frame(self, log: Any) -> Decimal:
        """The exact total of a usage log (a pandas DataFrame in ``impls.billing.vectorized``'s columns)."""
        raise NotImplementedError(f"{self.name} prices one request at a time")

    def unsupported_request(self, case: BillingCase) -> list[str]:
        """Reasons beyond ``lacks`` it cannot price one request (a provider it has no shape for, ...)."""
        return []

    def unsupported(self, case: Any) -> list[str]:
        if isinstance(case, PriceDataCase) and not self.reports_price_table:
            return [f"{self.name} does not report a price table of its own"]
        if isinstance(case, PairCase):
            return sorted(set(self.unsupported_request(case.first) + self.unsupported_request(case.second)))
        if isinstance(case, BillingCase):
            return self.unsupported_request(case)
        features = case.features() if hasattr(case, "features") else set()
        if "log" in features and not self.prices_logs:
            return [f"{self.name} prices one request at a time, not a log"]
        return []


def validate(usage: Usage | None, model: str, options: BillingOptions) -> None:
    """Reject a call the area's API does not take (the reference raises its own errors for the rest)."""
    if usage is not None and not isinstance(usage, Usage):
        raise TypeError(f"usage must be a reference.usage.Usage or None; got {type(usage).__name__}")
    if not isinstance(model, str) or not model:
        raise ValueError(f"model must be a non-empty id; got {model!r}")
    if not isinstance(options, BillingOptions):
        raise TypeError(f"options must be reference.billing.BillingOptions; got {type(options).__name__}")

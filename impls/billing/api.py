"""The billing area's call API: canonical usage + model + options → cost in dollars.

``cost`` returns a ``Decimal`` (exact implementations) or a ``float`` (``exact = False``; compared at a
relative 1e-9). Library adapters also expose ``price_card(model, options)``: the library's own price data,
resolved for those options (batch, service tier), turned into a :class:`reference.billing.PriceCard`; the
suite prices with the reference on that card under default options, so it tests the library's logic
on the library's prices (stale prices neither hide nor fake a logic bug).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from impls.base import Implementation
from reference.billing import STANDARD, BillingOptions, PriceCard
from reference.usage import Usage


@dataclass(frozen=True)
class BillingCase:
    model: str
    usage: Usage
    options: BillingOptions = STANDARD


class BillingImpl(Implementation):
    area: ClassVar[str] = "billing"
    exact: bool = True
    own_prices: bool = False  # True: prices come from the library's data (compare against price_card)
    models: tuple[str, ...] = ()  # models it can price; empty: every model of the reference cards
    batch: bool = True
    service_tiers: tuple[str, ...] = ("flex", "priority")
    web_search: bool = True
    cache_writes: bool = True

    def unsupported(self, case: Any) -> list[str]:
        if not isinstance(case, BillingCase):
            return []
        reasons = []
        if self.models and case.model not in self.models:
            reasons.append(f"{self.name} has no prices for {case.model!r}")
        if case.options.batch and not self.batch:
            reasons.append(f"{self.name} does not price batch requests")
        tier = case.options.service_tier
        if tier not in (None, "default") and tier not in self.service_tiers:
            reasons.append(f"{self.name} does not price service tier {tier!r}")
        if case.usage.web_searches and not self.web_search:
            reasons.append(f"{self.name} does not price web searches")
        if case.usage.cache_write and not self.cache_writes:
            reasons.append(f"{self.name} does not price cache writes")
        return reasons

    def cost(self, usage: Usage, model: str, options: BillingOptions = STANDARD) -> Decimal | float:
        raise NotImplementedError

    def price_card(self, model: str, options: BillingOptions = STANDARD) -> PriceCard:
        raise NotImplementedError(f"{self.name} prices from the reference cards")

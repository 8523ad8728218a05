"""Deliberately broken pricers: the billing checks must reject every one, every run.

Each is the reference (or the vectorized) pricer with one classic mistake. They are not registered; the
self-test runs them through the area's pinned cases, exactly as a real implementation is run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

import numpy as np

from impls.billing.api import AS_OF, BillingCase
from impls.billing.reference_pricer import ReferencePricer
from impls.billing.vectorized import COUNT_COLUMNS, PICO, RateTable, VectorizedPricer, usage_frame
from reference import billing as ref
from reference.billing import BillingOptions
from reference.usage import Usage


class _Planted(ReferencePricer):
    def card(self, model: str, on: date | None) -> ref.PriceCard:
        return ref.card_for(model, on or AS_OF)


class TierOnGreaterOrEqual(_Planted):
    name = "planted-tier-on-greater-or-equal"

    def cost(self, usage: Usage | None, model: str, options: BillingOptions = ref.STANDARD,
             on: date | None = None) -> Decimal:
        card = self.card(model, on)
        if card.long_context_threshold is not None:  # prompt >= T is prompt > T - 1
            card = dataclasses.replace(card, long_context_threshold=card.long_context_threshold - 1)
        return ref.cost(usage, card, options).total


class TierOnInputOnly(_Planted):
    name = "planted-tier-on-input-only"

    def cost(self, usage: Usage | None, model: str, options: BillingOptions = ref.STANDARD,
             on: date | None = None) -> Decimal:
        card = self.card(model, on)
        if usage is not None and ref.is_long_context(usage, card):
            card = dataclasses.replace(card, long_context_rates={**card.long_context_rates,
                                                                 "output": card.rates["output"]})
        return ref.cost(usage, card, options).total


class BatchNotOnCache(_Planted):
    name = "planted-batch-not-on-cache"

    def cost(self, usage: Usage | None, model: str, options: BillingOptions = ref.STANDARD,
             on: date | None = None) -> Decimal:
        card = self.card(model, on)
        assert usage is not None
        if not ref.resolve_options(usage, card, options).batch:
            return ref.cost(usage, card, options).total
        rates = card.long_context_rates if ref.is_long_context(usage, card) else card.rates
        cache = {p: n for p, n in ref.token_counts(usage).items() if p.startswith("cache") and n}
        rest = dataclasses.replace(usage, cache_read=0, cache_write_5m=0, cache_write_1h=0)
        flat = dataclasses.replace(card, rates=rates, long_context_threshold=None)
        return ref.cost(rest, flat, options).total + sum((n * rates[p] / ref.MILLION for p, n in cache.items()),
                                                         Decimal(0))


class ReasoningOnTopOfOutput(_Planted):
    """Bills reasoning tokens at the output rate on top of the output count that already includes them."""

    name = "planted-reasoning-on-top-of-output"

    def cost(self, usage: Usage | None, model: str, options: BillingOptions = ref.STANDARD,
             on: date | None = None) -> Decimal:
        assert usage is not None
        card = self.card(model, on)
        extra = dataclasses.replace(usage, output=usage.output + usage.reasoning)
        return ref.cost(extra, card, options).total


class GeminiThoughtsLeftOut(_Planted):
    """Reads Gemini's candidatesTokenCount as the whole output: thoughts go unbilled."""

    name = "planted-gemini-thoughts-left-out"

    def cost(self, usage: Usage | None, model: str, options: BillingOptions = ref.STANDARD,
             on: date | None = None) -> Decimal:
        assert usage is not None
        card = self.card(model, on)
        if card.provider == "google":
            usage = dataclasses.replace(usage, output=usage.output - usage.reasoning, reasoning=0)
        return ref.cost(usage, card, options).total


class DatedIdToOlderModel(_Planted):
    """Resolves a dated id by its family (claude-opus-4-...) to the family's oldest card."""

    name = "planted-dated-id-to-older-model"

    def card(self, model: str, on: date | None) -> ref.PriceCard:
        cards = ref.load_cards()
        if any(c.model == model for c in cards):
            return ref.card_for(model, on or AS_OF)
        family = "-".join(model.split("/")[-1].split("-")[:3])
        oldest = min((c for c in cards if c.model.startswith(family)), key=lambda c: c.valid_from)
        return oldest

    def cost(self, usage: Usage | None, model: str, options: BillingOptions = ref.STANDARD,
             on: date | None = None) -> Decimal:
        return ref.cost(usage, self.card(model, on), options).total


class BatchAppliedTwice(_Planted):
    """Applies the batch discount once for the reported tier and again for the option."""

    name = "planted-batch-applied-twice"

    def cost(self, usage: Usage | None, model: str, options: BillingOptions = ref.STANDARD,
             on: date | None = None) -> Decimal:
        assert usage is not None
        card = self.card(model, on)
        total = ref.cost(usage, card, options).total
        if usage.service_tier == "batch" and options.batch and card.batch_multiplier is not None:
            total *= card.batch_multiplier
        return total


class OverflowingVectorized(VectorizedPricer):
    """The vectorized pricer in plain int64 picodollars: count * rate wraps silently above 9.2·10^18."""

    name = "planted-vectorized-int64-overflow"

    def cost_many(self, requests: Sequence[BillingCase]) -> Decimal:
        log = usage_frame(requests)
        cards = [r.card for r in requests]
        table = RateTable.of(cards)
        total = np.zeros(len(log), dtype=np.int64)
        with np.errstate(over="ignore"):
            for n, (r, card) in enumerate(zip(requests, cards, strict=True)):
                long = int(ref.is_long_context(r.usage, card))
                batch = int(r.resolved.batch)
                for p, column in enumerate(COUNT_COLUMNS):
                    rate = np.int64(max(int(table.rates[n, long, batch, p]), 0))
                    total[n] += np.int64(log[column].iloc[n]) * rate
                fee = np.int64(max(int(table.fees_micro[n]), 0)) * np.int64(10**6)
                total[n] += np.int64(r.usage.web_searches) * fee
        return Decimal(int(total.sum())) / PICO

    def cost(self, usage: Usage | None, model: str, options: BillingOptions = ref.STANDARD,
             on: date | None = None) -> Decimal:
        assert usage is not None
        return self.cost_many([BillingCase(model, usage, options, on)])


PLANTED = (TierOnGreaterOrEqual(), TierOnInputOnly(), BatchNotOnCache(), ReasoningOnTopOfOutput(),
           GeminiThoughtsLeftOut(), DatedIdToOlderModel(), BatchAppliedTwice(), OverflowingVectorized())

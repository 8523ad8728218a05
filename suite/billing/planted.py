"""Deliberately broken parsers and pricers: the checks must reject every one, every run."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from reference import billing as ref
from reference import usage as ref_usage
from reference.billing import BillingOptions
from reference.usage import Usage


def openai_cached_counted_twice(fmt: str, payload: Any) -> Usage | None:
    """Takes prompt_tokens as the uncached input and adds cached_tokens on top."""
    u = ref_usage.parse(fmt, payload)
    if u is None or not fmt.startswith("openai"):
        return u
    return dataclasses.replace(u, input_uncached=u.input_uncached + u.cache_read)


def anthropic_cache_left_out(fmt: str, payload: Any) -> Usage | None:
    """Reads input_tokens as the whole prompt and drops the cache counts."""
    u = ref_usage.parse(fmt, payload)
    if u is None or not fmt.startswith("anthropic"):
        return u
    return dataclasses.replace(u, cache_read=0, cache_write_5m=0, cache_write_1h=0)


def gemini_thoughts_left_out(fmt: str, payload: Any) -> Usage | None:
    """Takes candidatesTokenCount as the whole output."""
    u = ref_usage.parse(fmt, payload)
    if u is None or fmt != "gemini":
        return u
    return dataclasses.replace(u, output=u.output - u.reasoning, reasoning=0)


def anthropic_stream_summed(fmt: str, payload: Any) -> Usage | None:
    """Adds every message_delta's output_tokens to message_start's instead of taking the last."""
    u = ref_usage.parse(fmt, payload)
    if u is None or fmt != "anthropic.messages.stream":
        return u
    start = next(e for e in payload if e.get("type") == "message_start")["message"]["usage"]["output_tokens"]
    deltas = sum(e["usage"].get("output_tokens", 0) for e in payload
                 if e.get("type") == "message_delta" and e.get("usage"))
    return dataclasses.replace(u, output=start + deltas)


def tier_on_greater_or_equal(usage: Usage, model: str, options: BillingOptions) -> Decimal:
    card = ref.card_for(model)
    if card.long_context_threshold is not None:  # prompt >= T is prompt > T - 1
        card = dataclasses.replace(card, long_context_threshold=card.long_context_threshold - 1)
    return ref.cost(usage, card, options).total


def tier_on_input_only(usage: Usage, model: str, options: BillingOptions) -> Decimal:
    card = ref.card_for(model)
    if ref.is_long_context(usage, card):
        rates = {**card.long_context_rates, "output": card.rates["output"]}
        card = dataclasses.replace(card, long_context_rates=rates)
    return ref.cost(usage, card, options).total


def batch_not_on_cache(usage: Usage, model: str, options: BillingOptions) -> Decimal:
    if not options.batch:
        return ref.cost(usage, ref.card_for(model), options).total
    cache = Usage(cache_read=usage.cache_read, cache_write_5m=usage.cache_write_5m,
                  cache_write_1h=usage.cache_write_1h)
    rest = dataclasses.replace(usage, cache_read=0, cache_write_5m=0, cache_write_1h=0)
    card = ref.card_for(model)
    long = ref.is_long_context(usage, card)
    # price each part at the rates of the whole request's tier, the cache part without the discount
    rates = card.long_context_rates if long else card.rates
    cache_cost = sum((n * rates[p] / ref.MILLION for p, n in ref.token_counts(cache).items() if n), Decimal(0))
    rest_card = dataclasses.replace(card, rates=rates, long_context_threshold=None)
    return ref.cost(rest, rest_card, options).total + cache_cost


PLANTED_PARSERS = {
    "openai cached counted twice": openai_cached_counted_twice,
    "anthropic cache left out of input": anthropic_cache_left_out,
    "gemini thoughts left out of output": gemini_thoughts_left_out,
    "anthropic stream summed": anthropic_stream_summed,
}
PLANTED_PRICERS = {
    "tier on >=": tier_on_greater_or_equal,
    "tier applied to input only": tier_on_input_only,
    "batch discount not applied to cache": batch_not_on_cache,
}

"""Billing cases: the hand-computed requests (pinned in every price check) and the strategies that draw more.

Expected dollar figures are worked out by hand in the comments from the dated cards ($ per million tokens);
none is produced by code under test.
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import assume
from hypothesis import strategies as st

from impls.billing.api import AS_OF, BillingCase, PairCase
from reference import billing as ref
from reference.billing import BillingOptions
from reference.usage import Usage

D = Decimal
BATCH = BillingOptions(batch=True)


def _case(label: str, model: str, usage: Usage, expected: str, options: BillingOptions = ref.STANDARD,
          on: date | None = None) -> BillingCase:
    return BillingCase(model, usage, options, on, D(expected), label)


HAND: tuple[BillingCase, ...] = (
    # 1000 * 3 + 500 * 15 = 10500 micro$
    _case("plain", "claude-sonnet-4-5", Usage(input_uncached=1000, output=500), "0.0105"),
    # design brief: Haiku 4.5 $1 / $5, Opus 4.5 $5 / $25 per million
    _case("haiku figure", "claude-haiku-4-5", Usage(input_uncached=10**6, output=10**6), "6"),
    _case("opus figure", "claude-opus-4-5", Usage(input_uncached=10**6, output=10**6), "30"),
    # a dated id is the same model: Opus 4.5 at $5 / $25, not Opus 4.1's $15 / $75
    _case("dated id", "claude-opus-4-5-20251101", Usage(input_uncached=10**6, output=10**6), "30"),
    _case("prefixed dated id", "anthropic/claude-haiku-4-5-20251001", Usage(input_uncached=2000, output=100), "0.0025"),
    # cache: 100K 5-min writes at 3.75 = 0.375; 1-h at 6 = 0.6; reads at 0.30 = 0.03
    _case("cache write 5m", "claude-sonnet-4-5", Usage(cache_write_5m=100_000), "0.375"),
    _case("cache write 1h", "claude-sonnet-4-5", Usage(cache_write_1h=100_000), "0.6"),
    _case("cache read", "claude-sonnet-4-5", Usage(cache_read=100_000), "0.03"),
    # exactly 200,000 is not above the threshold: 200000 * 3 + 1000 * 15 = 615000 micro$
    _case("tier boundary 200000", "claude-sonnet-4-5", Usage(input_uncached=200_000, output=1000), "0.615"),
    # 200,001: the whole request at $6 / $22.50: 1200006 + 22500 = 1222506 micro$
    _case("tier boundary 200001", "claude-sonnet-4-5", Usage(input_uncached=200_001, output=1000), "1.222506"),
    # over the tier only through cache reads: 1000 * 6 + 199001 * 0.60 + 100 * 22.50 = 127650.6 micro$
    _case("tier via cache reads", "claude-sonnet-4-5", Usage(input_uncached=1000, cache_read=199_001, output=100),
          "0.1276506"),
    # batch + 1-h write + long context: 10000 * 3 + 195000 * 6 + 2000 * 11.25 = 1222500 micro$
    _case("batch + 1h write + long", "claude-sonnet-4-5",
          Usage(input_uncached=10_000, cache_write_1h=195_000, output=2000), "1.2225", BATCH),
    # batch halves cache reads too: 1000 * 0.5 + 100000 * 0.05 + 1000 * 2.5 = 8000 micro$
    _case("batch on cache reads", "claude-haiku-4-5", Usage(input_uncached=1000, cache_read=100_000, output=1000),
          "0.008", BATCH),
    # a Message Batches result says tier "batch": 1000 * 0.5 + 200 * 2.5 = 1000 micro$, with or without the option
    _case("reported batch", "claude-haiku-4-5", Usage(input_uncached=1000, output=200, service_tier="batch"), "0.001"),
    _case("reported batch and batch option", "claude-haiku-4-5",
          Usage(input_uncached=1000, output=200, service_tier="batch"), "0.001", BATCH),
    # the same batch request on both sides of 2026-10-14: the card's batch price holds on both
    _case("batch on 2026-10-13", "claude-haiku-4-5", Usage(input_uncached=1000, output=200), "0.001", BATCH,
          date(2026, 10, 13)),
    _case("batch on 2026-10-14", "claude-haiku-4-5", Usage(input_uncached=1000, output=200), "0.001", BATCH,
          date(2026, 10, 14)),
    # reasoning is inside output, billed once: 100 * 1.25 + 1000 * 10 = 10125 micro$
    _case("reasoning as output", "gpt-5", Usage(input_uncached=100, output=1000, reasoning=800), "0.010125"),
    # 86 * 1.25 + 1920 * 0.125 + 300 * 10 = 107.5 + 240 + 3000 = 3347.5 micro$
    _case("openai cached", "gpt-5-2025-08-07", Usage(input_uncached=86, cache_read=1920, output=300), "0.0033475"),
    # flex halves: 86 * 0.625 + 1920 * 0.0625 + 300 * 5 = 53.75 + 120 + 1500 micro$
    _case("openai flex", "gpt-5", Usage(input_uncached=86, cache_read=1920, output=300), "0.00167375",
          BillingOptions(service_tier="flex")),
    # the tier the response reports: 86 * 2.5 + 1920 * 0.25 + 300 * 20 = 215 + 480 + 6000 micro$
    _case("openai reported priority", "gpt-5",
          Usage(input_uncached=86, cache_read=1920, output=300, service_tier="priority"), "0.006695"),
    # 1000 * 1 + 100 * 5 = 1500 micro$ + 2 searches at $10 / 1000
    _case("web search", "claude-haiku-4-5", Usage(input_uncached=1000, output=100, web_searches=2), "0.0215"),
    # Gemini 2.5 Pro over 200K through cached content: 50000 * 2.5 + 200000 * 0.25 + 1000 * 15 = 190000 micro$
    _case("gemini long via cache", "gemini-2.5-pro", Usage(input_uncached=50_000, cache_read=200_000, output=1000),
          "0.19"),
    # Gemini thoughts billed as output: 8 * 0.30 + 500 * 2.50 = 2.4 + 1250 micro$
    _case("gemini thoughts", "gemini-2.5-flash", Usage(input_uncached=8, output=500, reasoning=380), "0.0012524"),
    # Sonnet 4.6: 300000 * 6 + 1000 * 22.5 = 1822500 micro$ while the tier stood, 300000 * 3 + 1000 * 15 after
    _case("4.6 tier before March", "claude-sonnet-4-6", Usage(input_uncached=300_000, output=1000), "1.8225",
          on=date(2026, 2, 28)),
    _case("4.6 no tier from March", "claude-sonnet-4-6", Usage(input_uncached=300_000, output=1000), "0.915",
          on=date(2026, 3, 1)),
    # GPT-5.4: 272000 is not above: 272000 * 2.5 + 100 * 15; 272001 is: 272001 * 5 + 100 * 22.5
    _case("272K boundary", "gpt-5.4", Usage(input_uncached=272_000, output=100), "0.6815"),
    _case("272K + 1", "gpt-5.4", Usage(input_uncached=272_001, output=100), "1.362255"),
    # DeepSeek: 220 misses * 0.56 + 1280 hits * 0.07 + 120 * 1.68 = 123.2 + 89.6 + 201.6 micro$ before 2025-09-29;
    # after: 220 * 0.28 + 1280 * 0.028 + 120 * 0.42 = 61.6 + 35.84 + 50.4 micro$
    _case("deepseek before the cut", "deepseek-chat", Usage(input_uncached=220, cache_read=1280, output=120),
          "0.0004144", on=date(2025, 9, 28)),
    _case("deepseek after the cut", "deepseek-chat", Usage(input_uncached=220, cache_read=1280, output=120),
          "0.00014784", on=date(2025, 9, 29)),
    # 10**15 five-minute writes on Sonnet 4.5 are long context: 10**15 * 7.50 / 10**6 = 7,500,000,000 dollars
    _case("10^15 cache writes", "claude-sonnet-4-5", Usage(cache_write_5m=10**15), "7500000000"),
    # 2 * 10**11 Opus 4.1 output tokens: 2 * 10**11 * 75 / 10**6 = 15,000,000 dollars
    _case("2e11 opus output", "claude-opus-4-1", Usage(output=2 * 10**11), "15000000"),
)

# ---- drawing requests the reference can price ----------------------------------------------------------------

BOOK = ref.load_book()
MODELS = sorted({c.model for c in BOOK.cards})
COUNT = st.one_of(st.integers(0, 400_000), st.integers(0, 10**15), st.sampled_from([0, 1, 200_000, 10**15]))
REPORTED = {"anthropic": (None, "standard", "priority", "batch"), "openai": (None, "default", "flex", "priority")}


def ids_of(model: str) -> list[str]:
    """Every id a response may carry for ``model``: itself, its aliases, each with its provider's prefixes."""
    provider = next(c.provider for c in BOOK.cards if c.model == model)
    bare = [model, *(a.alias for a in BOOK.aliases if a.model == model)]
    prefixed = [p.prefix + b for b in bare for p in BOOK.prefixes if p.provider == provider]
    return bare + prefixed


def dates_of(card: ref.PriceCard) -> list[date]:
    """The card's first day, its last day, and AS_OF if the card holds then."""
    days = [card.valid_from, card.valid_from + timedelta(days=1)]
    if card.valid_to is not None:
        days.append(card.valid_to - timedelta(days=1))
    else:
        days += [d for d in (AS_OF, date(2026, 10, 13), date(2026, 10, 14)) if d >= card.valid_from]
    return days


@st.composite
def requests(draw: st.DrawFn, models: tuple[str, ...] | list[str] = MODELS) -> BillingCase:
    model = draw(st.sampled_from(sorted(models)))
    card = draw(st.sampled_from([c for c in BOOK.cards if c.model == model]))
    on = draw(st.sampled_from(dates_of(card)))
    counts = {}
    for part, key in (("input_uncached", "input"), ("cache_read", "cache_read"), ("cache_write_5m", "cache_write_5m"),
                      ("cache_write_1h", "cache_write_1h"), ("output", "output")):
        priced = key in card.rates and (card.long_context_threshold is None or key in card.long_context_rates)
        counts[part] = draw(COUNT) if priced and draw(st.booleans()) else 0
    output = counts["output"]
    reasoning = draw(st.integers(0, output)) if output and draw(st.booleans()) else 0
    searches = draw(st.integers(0, 20)) if "web_search" in card.per_request else 0
    tier = draw(st.sampled_from(REPORTED.get(card.provider, (None,))))
    batch = card.batch_multiplier is not None and draw(st.booleans())
    asked = draw(st.sampled_from([None, *sorted(card.tiers)]))
    usage = Usage(**counts, reasoning=reasoning, web_searches=searches, service_tier=tier)
    case = BillingCase(draw(st.sampled_from(ids_of(model))), usage, BillingOptions(batch=batch, service_tier=asked),
                       on)
    try:
        ref.price(usage, case.model, on, case.options)
    except ref.PriceError:  # a combination the card does not price (a tier with batch, a tier past the threshold)
        assume(False)
    return case


def _with_usage_of(first: BillingCase, other: BillingCase) -> BillingCase:
    """``first``'s id, date and options with ``other``'s counts (and ``first``'s reported tier)."""
    second = dataclasses.replace(first, usage=dataclasses.replace(other.usage, service_tier=first.usage.service_tier),
                                 expected=None, label="")
    try:
        ref.price(second.usage, second.model, second.day, second.options)
    except ref.PriceError:
        assume(False)
    return second


def pairs() -> st.SearchStrategy[PairCase]:
    """Two requests sent the same way to one model (the rows of a log): one id, date and options, two usages."""
    return requests().flatmap(lambda first: requests([first.card.model]).map(
        lambda other: PairCase(first, _with_usage_of(first, other))))

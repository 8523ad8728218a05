"""Deterministic checks shared by the conformance tests and the planted-bug test.

Each check returns a list of failure messages (empty: passed). Expected dollar figures are worked out
by hand in the comments from the dated cards ($ per million tokens).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from reference import billing as ref
from reference.billing import BillingOptions
from reference.usage import Usage, UsageError
from suite.billing.corpus import GOLDEN

Parse = Callable[[str, Any], Usage | None]
Price = Callable[[Usage, str, BillingOptions], Decimal | float]
D = Decimal

# (name, model, usage, options, expected $ on the reference cards)
PRICE_CASES: list[tuple[str, str, Usage, BillingOptions, Decimal]] = [
    # 1000 * 3 + 500 * 15 = 10500 micro$ -> 0.0105
    ("plain", "claude-sonnet-4-5", Usage(input_uncached=1000, output=500), BillingOptions(), D("0.0105")),
    # 1M in at $1 + 1M out at $5 (design brief: Haiku 4.5 $1 / $5)
    ("haiku figure", "claude-haiku-4-5", Usage(input_uncached=10**6, output=10**6), BillingOptions(), D("6")),
    # Opus 4.5 $5 / $25
    ("opus figure", "claude-opus-4-5", Usage(input_uncached=10**6, output=10**6), BillingOptions(), D("30")),
    # cache: 100K 5-min writes at 3.75 = 0.375; 1-h at 6 = 0.6; reads at 0.30 = 0.03
    ("cache write 5m", "claude-sonnet-4-5", Usage(cache_write_5m=100_000), BillingOptions(), D("0.375")),
    ("cache write 1h", "claude-sonnet-4-5", Usage(cache_write_1h=100_000), BillingOptions(), D("0.6")),
    ("cache read", "claude-sonnet-4-5", Usage(cache_read=100_000), BillingOptions(), D("0.03")),
    # exactly 200,000 is not above the threshold: 200000 * 3 + 1000 * 15 = 615000 micro$
    ("tier boundary 200000", "claude-sonnet-4-5", Usage(input_uncached=200_000, output=1000), BillingOptions(),
     D("0.615")),
    # 200,001: the whole request at $6 / $22.50: 1200006 + 22500 = 1222506 micro$
    ("tier boundary 200001", "claude-sonnet-4-5", Usage(input_uncached=200_001, output=1000), BillingOptions(),
     D("1.222506")),
    # over the tier only through cache reads: 1000 * 6 + 199001 * 0.60 + 100 * 22.50 = 127650.6 micro$
    ("tier via cache reads", "claude-sonnet-4-5", Usage(input_uncached=1000, cache_read=199_001, output=100),
     BillingOptions(), D("0.1276506")),
    # batch + 1-h write + long context: rates 6*0.5, 12*0.5, 22.5*0.5:
    # 10000 * 3 + 195000 * 6 + 2000 * 11.25 = 30000 + 1170000 + 22500 = 1222500 micro$
    ("batch + 1h write + long", "claude-sonnet-4-5", Usage(input_uncached=10_000, cache_write_1h=195_000, output=2000),
     BillingOptions(batch=True), D("1.2225")),
    # batch halves cache reads too: 1000 * 0.5 + 100000 * 0.05 + 1000 * 2.5 = 500 + 5000 + 2500 micro$
    ("batch on cache reads", "claude-haiku-4-5", Usage(input_uncached=1000, cache_read=100_000, output=1000),
     BillingOptions(batch=True), D("0.008")),
    # reasoning is inside output, billed once: 100 * 1.25 + 1000 * 10 = 10125 micro$
    ("reasoning as output", "gpt-5", Usage(input_uncached=100, output=1000, reasoning=800), BillingOptions(),
     D("0.010125")),
    # 86 * 1.25 + 1920 * 0.125 + 300 * 10 = 107.5 + 240 + 3000 = 3347.5 micro$
    ("openai cached", "gpt-5", Usage(input_uncached=86, cache_read=1920, output=300), BillingOptions(),
     D("0.0033475")),
    ("openai flex", "gpt-5", Usage(input_uncached=86, cache_read=1920, output=300),
     BillingOptions(service_tier="flex"), D("0.00167375")),
    # 86 * 2.5 + 1920 * 0.25 + 300 * 20 = 215 + 480 + 6000 micro$
    ("openai priority", "gpt-5", Usage(input_uncached=86, cache_read=1920, output=300),
     BillingOptions(service_tier="priority"), D("0.006695")),
    # 1000 * 1 + 100 * 5 = 1500 micro$ + 2 searches at $10 / 1000
    ("web search", "claude-haiku-4-5", Usage(input_uncached=1000, output=100, web_searches=2), BillingOptions(),
     D("0.0215")),
    # Gemini 2.5 Pro over 200K through cached content: 50000 * 2.5 + 200000 * 0.25 + 1000 * 15 = 190000 micro$
    ("gemini long via cache", "gemini-2.5-pro", Usage(input_uncached=50_000, cache_read=200_000, output=1000),
     BillingOptions(), D("0.19")),
    # Gemini thoughts billed as output: 8 * 0.30 + 500 * 2.50 = 2.4 + 1250 micro$
    ("gemini thoughts", "gemini-2.5-flash", Usage(input_uncached=8, output=500, reasoning=380), BillingOptions(),
     D("0.0012524")),
    # Sonnet 4.6 from March 2026 has no long-context tier: 300000 * 3 + 1000 * 15 = 915000 micro$
    ("no tier on 4.6", "claude-sonnet-4-6", Usage(input_uncached=300_000, output=1000), BillingOptions(),
     D("0.915")),
]

BAD_PAYLOADS: list[tuple[str, Any, str]] = [
    ("openai.chat", {"usage": {"prompt_tokens": -1, "completion_tokens": 2, "total_tokens": 1}}, "usage.prompt_tokens"),
    ("openai.chat", {"usage": {"prompt_tokens": 1.5, "completion_tokens": 2, "total_tokens": 3}},
     "usage.prompt_tokens"),
    ("openai.chat", {"usage": {"prompt_tokens": "10", "completion_tokens": 2, "total_tokens": 12}},
     "usage.prompt_tokens"),
    ("openai.chat", {"usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12,
                               "prompt_tokens_details": {"cached_tokens": 11}}}, "cached_tokens"),
    ("openai.chat", {"usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12,
                               "completion_tokens_details": {"reasoning_tokens": 3}}}, "reasoning_tokens"),
    ("openai.responses", {"usage": {"input_tokens": 10, "output_tokens": True, "total_tokens": 11,
                                    "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                                    "output_tokens_details": {"reasoning_tokens": 0}}}, "usage.output_tokens"),
    ("anthropic.messages", {"usage": {"input_tokens": 10}}, "usage.output_tokens"),
    ("anthropic.messages", {"usage": {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": -5}},
     "cache_read_input_tokens"),
    ("gemini", {"usageMetadata": {"promptTokenCount": 10, "cachedContentTokenCount": 20}}, "cachedContentTokenCount"),
    ("gemini", {"usageMetadata": [1, 2]}, "usageMetadata"),
]


def usage_failures(parse: Parse, formats: tuple[str, ...], validates: bool = True) -> list[str]:
    return golden_failures(parse, formats) + (malformed_failures(parse, formats) if validates else [])


def golden_failures(parse: Parse, formats: tuple[str, ...], with_tier: bool = True) -> list[str]:
    """``with_tier=False``: the implementation does not report the service tier; compare the counts only."""
    failures = []
    for fmt, payload, expected, why in GOLDEN:
        if fmt not in formats:
            continue
        if not with_tier and expected is not None:
            expected = dataclasses.replace(expected, service_tier=None)
        try:
            got = parse(fmt, payload)
        except Exception as err:  # reported, not raised: a planted bug may crash
            failures.append(f"{fmt} ({why}): raised {err!r}")
            continue
        if got != expected:
            failures.append(f"{fmt} ({why}): got {got}, expected {expected}")
    return failures


def malformed_failures(parse: Parse, formats: tuple[str, ...]) -> list[str]:
    failures = []
    for fmt, payload, field in BAD_PAYLOADS:
        if fmt not in formats:
            continue
        try:
            got = parse(fmt, payload)
        except UsageError as err:
            if field not in str(err):
                failures.append(f"{fmt} {payload}: error {err} does not name {field!r}")
            continue
        except Exception as err:
            failures.append(f"{fmt} {payload}: raised {err!r}, not UsageError")
            continue
        failures.append(f"{fmt} {payload}: accepted as {got}; {field} is malformed")
    return failures


def price_failures(price: Price, cases: list[tuple[str, str, Usage, BillingOptions, Decimal]] = PRICE_CASES,
                   skip: Callable[[str, Usage, BillingOptions], list[str]] | None = None,
                   exact: bool = True) -> list[str]:
    failures = []
    for name, model, usage, options, expected in cases:
        if skip is not None and skip(model, usage, options):
            continue
        try:
            got = price(usage, model, options)
        except Exception as err:
            failures.append(f"{name}: raised {err!r}")
            continue
        if not agrees(got, expected, exact):
            failures.append(f"{name}: {model} {usage} {options}: got {got}, expected {expected}")
    return failures


def agrees(got: Decimal | float, expected: Decimal, exact: bool = True) -> bool:
    if exact:
        return isinstance(got, Decimal) and got == expected
    return abs(Decimal(repr(float(got))) - expected) <= abs(expected) * D("1e-9") + D("1e-15")


def reference_price(usage: Usage, model: str, options: BillingOptions) -> Decimal:
    return ref.cost(usage, ref.card_for(model), options).total

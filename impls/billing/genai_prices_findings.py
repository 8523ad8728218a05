"""genai-prices' known non-conformances in billing (genai-prices 0.2.3 bundled data), measured against the cards."""

from __future__ import annotations

from datetime import date

from impls.base import ExpectedFailure
from impls.billing._findings import finding, where
from impls.billing.api import AS_OF, BillingCase
from reference.billing import BillingOptions
from reference.usage import Usage

DATA = "https://github.com/pydantic/genai-prices/tree/main/prices/providers"
BATCH = BillingOptions(batch=True)
BATCH_FROM, TIERS_FROM = date(2026, 10, 14), date(2026, 10, 12)

CALC_FINDINGS = (
    *finding("price.invoice", f"price data: its batch prices start on {BATCH_FROM} (price_variants with a "
             "StartDateConstraint), so a batch request before then is billed at the standard rates, twice the card's",
             DATA, where(batch=True, until=BATCH_FROM),
             BillingCase("claude-haiku-4-5", Usage(input_uncached=1000, output=200), BATCH, date(2026, 10, 13))),
    *finding("price.invoice", "price data: no batch prices at all for Claude Opus 4.1 and Claude Sonnet 4", DATA,
             where(["claude-opus-4-1", "claude-sonnet-4"], batch=True),
             BillingCase("claude-opus-4-1", Usage(input_uncached=1000, output=100), BATCH, BATCH_FROM)),
    *finding("price.invoice", "price data: its Gemini batch prices have no cache-read price, so batch cache reads "
             "are billed at the standard cache-read rate", DATA,
             where(provider="google", batch=True, since=BATCH_FROM, parts=["cache_read"]),
             BillingCase("gemini-2.5-flash", Usage(cache_read=1_000_000), BATCH, BATCH_FROM)),
    *finding("price.invoice", "price data: gpt-5.4's batch cache-read price is $0.13 per million, not half of $0.25",
             DATA, where(["gpt-5.4"], batch=True, since=BATCH_FROM, parts=["cache_read"], prompt_at_most=272_000),
             BillingCase("gpt-5.4", Usage(cache_read=100_000), BATCH, BATCH_FROM)),
    *finding("price.invoice", f"price data: its OpenAI flex and priority prices start on {TIERS_FROM}, so a flex or "
             "priority request before then is billed at the standard rates", DATA,
             where(tiers=["flex", "priority"], until=TIERS_FROM),
             BillingCase("gpt-5", Usage(input_uncached=86, cache_read=1920, output=300),
                         BillingOptions(service_tier="flex"), AS_OF)),
    *finding("price.invoice", "price data: it keeps the 4.6 models' above-200K tier until 2026-03-13; the cards end it "
             "on 2026-03-01 (a date from issue 5, not re-checked)", DATA,
             where(["claude-sonnet-4-6", "claude-opus-4-6"], prompt_over=200_000, since=date(2026, 3, 1),
                   until=date(2026, 3, 13)),
             BillingCase("claude-sonnet-4-6", Usage(input_uncached=300_000, output=1000), on=date(2026, 3, 1))),
    *finding("price.invoice", "price data: no above-200K tier for Claude Sonnet 4: a long request is billed at $3 / "
             "$15 instead of $6 / $22.50", DATA, where(["claude-sonnet-4"], prompt_over=200_000),
             BillingCase("claude-sonnet-4", Usage(input_uncached=200_001, output=1000))),
    *finding("price.invoice", "price data: its DeepSeek prices are the V3 list of early 2025 ($0.27 / $0.07 cached / "
             "$1.10, half off-peak), not the V3.1 ($0.56 / $0.07 / $1.68) or V3.2 ($0.28 / $0.028 / $0.42) prices",
             DATA, where(["deepseek-chat"]), BillingCase("deepseek-chat", Usage(input_uncached=1000, output=100))),
)
EXTRACT_FINDINGS: tuple = ()
PRICE_DATA = ExpectedFailure(
    test="price_data.*", link=DATA,
    reason="its price table differs from the dated cards for every model (the verdict's PRICE-DATA records give each "
           f"bucket and dates): batch prices only from {BATCH_FROM} (none for Opus 4.1 and Sonnet 4), flex and "
           f"priority only from {TIERS_FROM}, no Gemini batch cache reads, gpt-5.4 batch cache reads at $0.13, the 4.6 "
           "long-context tier until 2026-03-13, no Sonnet 4 long-context tier, DeepSeek V3 prices")

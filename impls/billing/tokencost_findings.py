"""tokencost's known non-conformances in billing (tokencost 0.1.26 bundled model_prices.json)."""

from __future__ import annotations

from impls.base import ExpectedFailure
from impls.billing._findings import finding, where
from impls.billing.api import BillingCase
from reference.usage import Usage

DATA = "https://github.com/AgentOps-AI/tokencost/blob/main/tokencost/model_prices.json"
COSTS = "https://github.com/AgentOps-AI/tokencost/blob/main/tokencost/costs.py"

FINDINGS = (
    *finding("*", "its table has no Claude Haiku 4.5, Sonnet 4.5, Opus 4.5, Sonnet 4.6, Opus 4.6 or GPT-5.4 (under "
             "any id): calculate_cost_by_tokens raises KeyError", DATA,
             where(["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5", "claude-sonnet-4-6", "claude-opus-4-6",
                    "gpt-5.4"]), BillingCase("claude-haiku-4-5-20251001", Usage(input_uncached=1000, output=100))),
    *finding("*", "its table knows Claude Sonnet 4 only as claude-sonnet-4-20250514, and DeepSeek's reasoner not at "
             "all: the ids claude-sonnet-4, claude-sonnet-4-0 and deepseek-reasoner raise KeyError", DATA,
             where(ids=["claude-sonnet-4", "claude-sonnet-4-0", "deepseek-reasoner"]),
             BillingCase("claude-sonnet-4-0", Usage(input_uncached=1000, output=100))),
    *finding("price.*", "calculate_cost_by_tokens prices every token at the base rate: its own data's "
             "*_above_200k_tokens rates are never applied", COSTS, where(["gemini-2.5-pro"], prompt_over=200_000),
             BillingCase("gemini-2.5-pro", Usage(input_uncached=50_000, cache_read=200_000, output=1000))),
    *finding("price.invoice", "price data: Gemini 2.5 cache reads at $0.3125 (Pro) and $0.075 (Flash) per million, "
             "not $0.125 and $0.03", DATA, where(["gemini-2.5-pro", "gemini-2.5-flash"], parts=["cache_read"]),
             BillingCase("gemini-2.5-flash", Usage(cache_read=1_000_000))),
    *finding("*", "deepseek-chat: prices of early 2025 ($0.14 / $0.28) and no cached-token price under the key it "
             "reads (KeyError for any cache hit)", DATA, where(["deepseek-chat"]),
             BillingCase("deepseek-chat", Usage(input_uncached=1000, output=100))),
)

PRICE_DATA = tuple(ExpectedFailure(
    test=f"price_data.{model}", link=DATA,
    reason="its table differs from the dated card (the verdict's PRICE-DATA records give each bucket): " + why)
    for model, why in (
        *((m, "no entry under this id") for m in ("claude-haiku-4-5", "claude-opus-4-5", "claude-opus-4-6",
                                                  "claude-sonnet-4", "claude-sonnet-4-5", "claude-sonnet-4-6",
                                                  "gpt-5.4")),
        ("deepseek-chat", "input $0.14 and output $0.28 per million, no cache-read price"),
        ("gemini-2.5-flash", "cache reads at $0.075 per million"),
        ("gemini-2.5-pro", "cache reads at $0.3125 per million, above 200K too")))

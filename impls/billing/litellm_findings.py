"""litellm's known non-conformances in billing (litellm 1.106, its bundled model_prices_and_context_window.json),
measured against the dated cards. Each names the entry points it was measured on."""

from __future__ import annotations

from impls.base import ExpectedFailure
from impls.billing._findings import finding, where
from impls.billing.api import BillingCase
from reference import billing as ref
from reference.billing import BillingOptions
from reference.usage import Usage

MAP = "https://github.com/BerriAI/litellm/blob/main/model_prices_and_context_window.json"
COST = "https://github.com/BerriAI/litellm/blob/main/litellm/cost_calculator.py"
BATCH = BillingOptions(batch=True)

NO_SONNET_4 = finding(
    "*", "its cost map has no entry for Claude Sonnet 4 under any id (claude-sonnet-4, claude-sonnet-4-20250514, "
         "claude-sonnet-4-0; only Bedrock and Vertex ids): the request is priced at $0.0, no error", MAP,
    where(["claude-sonnet-4"]), BillingCase("claude-sonnet-4-20250514", Usage(input_uncached=1000, output=100)))
NO_OPUS_4_1 = finding(
    "*", "its cost map has no entry for Claude Opus 4.1 (claude-opus-4-1, claude-opus-4-1-20250805; only Bedrock "
         "ids): the request is priced at $0.0, no error", MAP,
    where(["claude-opus-4-1"]), BillingCase("claude-opus-4-1-20250805", Usage(input_uncached=1000, output=100)))
NO_SONNET_4_5_LONG = finding(
    "price.invoice", "price data: its claude-sonnet-4-5 entry has no above-200K rates, so a request over 200,000 "
                     "input tokens is billed at $3 / $15 instead of $6 / $22.50 for the whole request", MAP,
    where(["claude-sonnet-4-5"], prompt_over=200_000), BillingCase("claude-sonnet-4-5", Usage(input_uncached=200_001, output=1000)))
HAIKU_SEARCH = finding(
    "*", "price data: its claude-haiku-4-5 entry has no web-search price (search_context_cost_per_query), so "
         "web searches on Haiku 4.5 are free", MAP, where(["claude-haiku-4-5"], parts=["web_searches"]),
    BillingCase("claude-haiku-4-5", Usage(input_uncached=1000, output=100, web_searches=2)))


def _searches_ignored(entry: str, options: BillingOptions = ref.STANDARD) -> tuple:
    return finding("*", f"web searches are free on {entry}: it does not read usage.server_tool_use."
                        "web_search_requests (completion_cost does, at $0.01 each)", COST, where(parts=["web_searches"]),
                   BillingCase("claude-opus-4-5", Usage(output=1, web_searches=1), options))
REPORTED_BATCH_IGNORED = finding(
    "price.*", "a Message Batches result (usage.service_tier 'batch') is priced at standard rates: completion_cost "
               "does not read the batch tier the response reports", COST,
    where(reported=["batch"]),
    BillingCase("claude-haiku-4-5", Usage(input_uncached=1000, output=200, service_tier="batch")))
ANTHROPIC_COUNTS = finding(
    "*", "cost_per_token with Anthropic's counts as its signature names them (prompt_tokens = input_tokens, "
         "cache_read_input_tokens, cache_creation_input_tokens) takes the cache counts out of prompt_tokens, so "
         "uncached input tokens go unbilled (and one more cache token lowers the cost)", COST,
    where(provider="anthropic"),
    BillingCase("claude-haiku-4-5", Usage(input_uncached=1000, cache_read=1000, output=100)))
DEEPSEEK_PROVIDER = finding(
    "*", "cost_per_token raises BadRequestError 'LLM Provider NOT provided' for deepseek-chat and deepseek-reasoner "
         "although its cost map has a deepseek-chat entry; only deepseek/... ids price", COST,
    where(["deepseek-chat"], ids=["deepseek-chat", "deepseek-reasoner"]),
    BillingCase("deepseek-chat", Usage(input_uncached=1000, output=100)))
BATCH_1H = finding(
    "price.*", "price data: its map has no batch price for 1-hour cache writes "
               "(cache_creation_input_token_cost_above_1hr_batches): the batch path bills them at the 5-minute "
               "batch rate", MAP,
    where(provider="anthropic", batch=True, parts=["cache_write_1h"]),
    BillingCase("claude-haiku-4-5", Usage(cache_write_1h=1_000_000), BATCH))
GPT_5_4_BATCH_CACHE = finding(
    "price.invoice", "price data: gpt-5.4's batch cache-read price is $0.13 per million, not half of $0.25 ($0.125)",
    MAP, where(["gpt-5.4"], batch=True, parts=["cache_read"], prompt_at_most=272_000),
    BillingCase("gpt-5.4", Usage(cache_read=100_000), BATCH))
# the batch path prices batch requests only: its findings with batch examples
BATCH_SONNET_4 = finding("*", NO_SONNET_4[0].reason, MAP, where(["claude-sonnet-4"]),
                         BillingCase("claude-sonnet-4-20250514", Usage(input_uncached=1000, output=100), BATCH))
BATCH_OPUS_4_1 = finding("*", NO_OPUS_4_1[0].reason, MAP, where(["claude-opus-4-1"]),
                         BillingCase("claude-opus-4-1-20250805", Usage(input_uncached=1000, output=100), BATCH))
BATCH_SONNET_4_5_LONG = finding("price.invoice", NO_SONNET_4_5_LONG[0].reason, MAP,
                                where(["claude-sonnet-4-5"], prompt_over=200_000),
                                BillingCase("claude-sonnet-4-5", Usage(input_uncached=200_001, output=1000), BATCH))

COMPLETION = NO_SONNET_4 + NO_OPUS_4_1 + NO_SONNET_4_5_LONG + HAIKU_SEARCH + REPORTED_BATCH_IGNORED
COST_PER_TOKEN = NO_SONNET_4 + NO_OPUS_4_1 + NO_SONNET_4_5_LONG + ANTHROPIC_COUNTS + DEEPSEEK_PROVIDER
COST_PER_TOKEN_USAGE = (NO_SONNET_4 + NO_OPUS_4_1 + NO_SONNET_4_5_LONG + _searches_ignored("cost_per_token(usage_object)")
                        + DEEPSEEK_PROVIDER)
BATCH_PATH = (BATCH_SONNET_4 + BATCH_OPUS_4_1 + BATCH_SONNET_4_5_LONG + _searches_ignored("the batch path", BATCH)
              + BATCH_1H + GPT_5_4_BATCH_CACHE)

PRICE_DATA = tuple(ExpectedFailure(
    test=f"price_data.{model}", link=MAP,
    reason="its cost map differs from the dated card (the verdict's PRICE-DATA records give each bucket): " + why)
    for model, why in (
        ("claude-haiku-4-5", "no web-search price, no batch price for 1-hour cache writes"),
        ("claude-opus-4-1", "no entry (prices read as 0)"), ("claude-sonnet-4", "no entry (prices read as 0)"),
        ("claude-opus-4-5", "no batch price for 1-hour cache writes"),
        ("claude-opus-4-6", "no batch price for 1-hour cache writes"),
        ("claude-sonnet-4-5", "no above-200K rates; no batch price for 1-hour cache writes"),
        ("claude-sonnet-4-6", "no batch price for 1-hour cache writes"),
        ("gemini-2.5-flash", "no batch cache-read price"),
        ("gemini-2.5-pro", "no batch cache-read price, no batch above-200K rates"),
        ("gpt-5.4", "batch cache reads at $0.13 per million, not $0.125")))

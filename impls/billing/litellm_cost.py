"""litellm ``cost_per_token`` on its bundled model-cost map (LITELLM_LOCAL_MODEL_COST_MAP: no fetch).

litellm returns float dollars (compared at a relative 1e-9). Its ``cost_per_token`` has no batch option,
and web searches are priced per query context size, not per request count: both declared unsupported.
"""

from __future__ import annotations

import os
from datetime import date
from decimal import Decimal
from typing import Any

from impls.base import Requirements
from impls.billing.api import BillingImpl
from impls.registry import register
from reference.billing import STANDARD, BillingOptions, PriceCard
from reference.usage import Usage

PARTS = {"input": "input_cost_per_token", "output": "output_cost_per_token",
         "cache_read": "cache_read_input_token_cost", "cache_write_5m": "cache_creation_input_token_cost",
         "cache_write_1h": "cache_creation_input_token_cost_above_1hr"}


def _litellm() -> Any:
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # must precede the first import
    import litellm

    return litellm


def litellm_model(model: str) -> str:
    return f"gemini/{model}" if model.startswith("gemini") else model


def model_entry(model: str) -> dict[str, Any]:
    entry = _litellm().model_cost.get(litellm_model(model))
    if entry is None:
        raise LookupError(f"litellm's cost map has no {litellm_model(model)!r}")
    return dict(entry)


def _per_million(value: float) -> Decimal:
    return Decimal(repr(value)) * 1_000_000


def card(model: str, options: BillingOptions = STANDARD) -> PriceCard:
    return card_from_entry(model_entry(model), model, options,
                           "litellm bundled model_prices_and_context_window.json")


def card_from_entry(entry: dict[str, Any], model: str, options: BillingOptions, source: str) -> PriceCard:
    """A card from an entry in litellm's cost-map format (also tokencost's bundled copy)."""
    suffix = f"_{options.service_tier}" if options.service_tier not in (None, "default") else ""
    suffix += "_batches" if options.batch else ""
    rates: dict[str, Decimal] = {}
    long_rates: dict[str, Decimal] = {}
    threshold = None
    for part, key in PARTS.items():
        value = entry.get(key + suffix, entry.get(key) if not suffix else None)
        if value is not None:
            rates[part] = _per_million(value)
        for above in ("above_200k_tokens", "above_272k_tokens"):
            long_value = entry.get(f"{key}_{above}{suffix}")
            if long_value is not None:
                threshold = int(above.split("_")[1].removesuffix("k")) * 1000
                long_rates[part] = _per_million(long_value)
    if threshold is not None:
        long_rates = {**rates, **long_rates}  # a part without its own long rate keeps its rate
    return PriceCard(model=model, provider="litellm", rates=rates, valid_from=date.min,
                     source=source, long_context_threshold=threshold,
                     long_context_rates=long_rates)


def litellm_usage(usage: Usage, model: str) -> Any:
    """The litellm Usage object litellm itself would build for this response (its own normalisation)."""
    _litellm()
    from litellm.types.utils import Usage as LlmUsage

    if model.startswith("claude"):
        from litellm.llms.anthropic.chat.transformation import AnthropicConfig

        return AnthropicConfig().calculate_usage({
            "input_tokens": usage.input_uncached, "cache_read_input_tokens": usage.cache_read,
            "cache_creation_input_tokens": usage.cache_write, "output_tokens": usage.output,
            "cache_creation": {"ephemeral_5m_input_tokens": usage.cache_write_5m,
                               "ephemeral_1h_input_tokens": usage.cache_write_1h}}, None)
    return LlmUsage(prompt_tokens=usage.prompt, completion_tokens=usage.output, total_tokens=usage.total,
                    prompt_tokens_details={"cached_tokens": usage.cache_read},
                    completion_tokens_details={"reasoning_tokens": usage.reasoning})


class LitellmCost(BillingImpl):
    name = "litellm"
    description = "litellm.cost_per_token with a litellm Usage object (local cost map)"
    requires = Requirements(modules=("litellm",))
    own_prices = True
    exact = False
    batch = False
    web_search = False

    def cost(self, usage: Usage, model: str, options: BillingOptions = STANDARD) -> float:
        litellm = _litellm()
        llm_usage = litellm_usage(usage, model)
        prompt, completion = litellm.cost_per_token(
            model=litellm_model(model), prompt_tokens=usage.prompt, completion_tokens=usage.output,
            usage_object=llm_usage, service_tier=options.service_tier)
        return float(prompt) + float(completion)

    def price_card(self, model: str, options: BillingOptions = STANDARD) -> PriceCard:
        return card(model, options)


register(LitellmCost())

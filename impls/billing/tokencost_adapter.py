"""tokencost ``calculate_cost_by_tokens`` on its bundled model_prices.json (it fetches only if asked to refresh).

tokencost prices three token types (input, output, cached read); it has no cache writes, batch, service tiers,
per-request fees or long-context tiers, which are declared unsupported or expected failures.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from impls.base import ExpectedFailure, Requirements
from impls.billing.api import BillingCase, BillingImpl
from impls.billing.litellm_cost import card_from_entry, litellm_model
from impls.registry import register
from reference.billing import STANDARD, BillingOptions, PriceCard
from reference.usage import Usage

ALIASES = {"claude-sonnet-4": "claude-sonnet-4-20250514"}  # tokencost's data keys this model by its dated id


def _name(model: str) -> str:
    from tokencost.constants import TOKEN_COSTS

    for name in (ALIASES.get(model, model), litellm_model(model), model):
        if name in TOKEN_COSTS:
            return name
    raise LookupError(f"tokencost's bundled prices have no {model!r}")


def _entry(model: str) -> dict[str, Any]:
    from tokencost.constants import TOKEN_COSTS

    entry = TOKEN_COSTS.get(_name(model))
    if entry is None:
        raise LookupError(f"tokencost has no prices for {model!r}")
    return dict(entry)


def _long_context(case: Any) -> bool:
    if not isinstance(case, BillingCase):
        return False
    try:
        card = card_from_entry(_entry(case.model), case.model, case.options, "tokencost")
    except LookupError:
        return False
    return card.long_context_threshold is not None and case.usage.prompt > card.long_context_threshold


class TokencostAdapter(BillingImpl):
    name = "tokencost"
    description = "tokencost.calculate_cost_by_tokens per token type (bundled prices)"
    requires = Requirements(modules=("tokencost",))
    own_prices = True
    batch = False
    service_tiers = ()
    web_search = False
    cache_writes = False  # it has no cache-write token type
    expected_failures = (
        ExpectedFailure(
            test="test_billing_hand_computed_cases", when=_long_context,
            reason="calculate_cost_by_tokens prices every token at the base rate: its own data's "
                   "*_above_200k_tokens rates are never applied",
            link="https://github.com/AgentOps-AI/tokencost/blob/main/tokencost/costs.py"),
    )

    def unsupported(self, case: Any) -> list[str]:
        reasons = super().unsupported(case)
        if isinstance(case, BillingCase):
            try:
                _name(case.model)
            except LookupError as err:
                reasons.append(str(err))
        return reasons

    def cost(self, usage: Usage, model: str, options: BillingOptions = STANDARD) -> Decimal:
        from tokencost import calculate_cost_by_tokens

        if usage.cache_write:
            raise ValueError("tokencost cannot price cache writes")
        name = _name(model)
        total = calculate_cost_by_tokens(usage.input_uncached, name, "input")
        total += calculate_cost_by_tokens(usage.output, name, "output")
        if usage.cache_read:
            total += calculate_cost_by_tokens(usage.cache_read, name, "cached")
        return total

    def price_card(self, model: str, options: BillingOptions = STANDARD) -> PriceCard:
        return card_from_entry(_entry(model), model, options, "tokencost bundled model_prices.json")


register(TokencostAdapter())

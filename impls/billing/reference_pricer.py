"""The reference pricer on the dated cards, registered so the suite's checks run on it too."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from impls.billing.api import AS_OF, BillingImpl, validate
from impls.registry import register
from reference import billing as ref
from reference.usage import Usage


class ReferencePricer(BillingImpl):
    name = "billing-reference"
    description = "reference.billing on reference/data/prices.json (exact Decimal)"
    call_cost_s = 2e-5

    def cost(self, usage: Usage | None, model: str, options: ref.BillingOptions = ref.STANDARD,
             on: date | None = None) -> Decimal:
        validate(usage, model, options)
        return ref.price(usage, model, on or AS_OF, options).total


register(ReferencePricer())

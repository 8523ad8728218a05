"""The reference pricer on the dated cards, registered so the suite's checks run on it too."""

from __future__ import annotations

from decimal import Decimal

from impls.billing.api import BillingImpl
from impls.registry import register
from reference import billing as ref
from reference.usage import Usage


class ReferencePricer(BillingImpl):
    name = "billing-reference"
    description = "reference.billing on reference/data/prices.json (exact Decimal)"

    def cost(self, usage: Usage, model: str, options: ref.BillingOptions = ref.STANDARD) -> Decimal:
        return ref.cost(usage, ref.card_for(model), options).total


register(ReferencePricer())

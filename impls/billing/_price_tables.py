"""Informational: each library's price data next to the dated reference cards (not a pass/fail check)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pandas as pd

from reference import billing as ref
from reference.billing import STANDARD, BillingOptions, PriceCard

FIELDS = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")


def _rows(card: PriceCard) -> dict[str, Decimal | int | None]:
    out: dict[str, Decimal | int | None] = {f: card.rates.get(f) for f in FIELDS}
    out.update({f"long_{f}": card.long_context_rates.get(f) for f in FIELDS})
    out["long_threshold"] = card.long_context_threshold
    out["web_search"] = card.per_request.get("web_search")
    return out


def price_table(libraries: dict[str, Callable[[str, BillingOptions], PriceCard]],
                options: BillingOptions = STANDARD) -> pd.DataFrame:
    """One row per (model, field, library): the reference card's value, the library's, and whether they agree."""
    records = []
    for model in sorted({c.model for c in ref.load_cards()}):
        ours = ref.card_for(model)
        if options.batch and ours.batch_multiplier is not None:
            ours = PriceCard(**{**ours.__dict__, "rates": {k: v * ours.batch_multiplier for k, v in ours.rates.items()},
                                "long_context_rates": {k: v * ours.batch_multiplier
                                                       for k, v in ours.long_context_rates.items()}})
        expected = _rows(ours)
        for library, card_of in libraries.items():
            try:
                theirs: dict[str, Decimal | int | None] = _rows(card_of(model, options))
                error = ""
            except Exception as err:  # a model missing from the library's data is a row, not a crash
                theirs, error = {}, f"{type(err).__name__}: {err}"
            for field, value in expected.items():
                got = theirs.get(field)
                records.append({"model": model, "field": field, "library": library, "card": value,
                                "library_value": got, "agrees": (got is None and value is None) or (
                                    got is not None and value is not None and Decimal(got) == Decimal(value)),
                                "card_source": ours.source, "note": error})
    return pd.DataFrame.from_records(records)

"""Vectorized pricing of a usage log (pandas / numpy), exact in integer picodollars.

It lives in ``impls/`` rather than ``reference/``: it is an optimised re-implementation (lookup tables,
array arithmetic), not obviously-correct code, so the suite holds it to the scalar Decimal reference.
Exactness: every card rate in $/M tokens, times the batch multiplier, is a whole number of picodollars
per token (checked when the tables are built), so int64 arithmetic is exact; totals are summed in two
int64 halves so 10M rows cannot overflow.

Log columns: ``model``, ``input_uncached``, ``cache_read``, ``cache_write_5m``, ``cache_write_1h``,
``output``, optional ``web_searches`` and ``batch`` (bool). Service tiers are not supported here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from impls.billing.api import BillingCase, BillingImpl
from impls.registry import register
from reference import billing as ref
from reference.usage import Usage

PICO = 10**12
COUNT_COLUMNS = ("input_uncached", "cache_read", "cache_write_5m", "cache_write_1h", "output")
PARTS = ("input", "cache_read", "cache_write_5m", "cache_write_1h", "output")
MISSING = -1
NO_THRESHOLD = np.iinfo(np.int64).max


def _pico_per_token(rate_per_million: Decimal, model: str, part: str) -> int:
    pico = rate_per_million * PICO / 1_000_000
    if pico != pico.to_integral_value():
        raise ValueError(f"card {model}: {part} rate {rate_per_million} $/M is not a whole number of "
                         f"picodollars per token ({pico}); exact int64 pricing needs it to be")
    return int(pico)


def rate_tables(cards: list[ref.PriceCard]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """rates[model, long, batch, part] in picodollars per token (MISSING where the card has none),
    thresholds[model], web_search fee[model] in picodollars (MISSING where none)."""
    rates = np.full((len(cards), 2, 2, len(PARTS)), MISSING, dtype=np.int64)
    thresholds = np.full(len(cards), NO_THRESHOLD, dtype=np.int64)
    fees = np.full(len(cards), MISSING, dtype=np.int64)
    for m, card in enumerate(cards):
        if card.long_context_threshold is not None:
            thresholds[m] = card.long_context_threshold
        if "web_search" in card.per_request:
            fees[m] = int(card.per_request["web_search"] * PICO)
        for long, table in ((0, card.rates), (1, card.long_context_rates)):
            for batch in (0, 1):
                multiplier = card.batch_multiplier if batch else Decimal(1)
                if multiplier is None:
                    continue
                for p, part in enumerate(PARTS):
                    if part in table:
                        rates[m, long, batch, p] = _pico_per_token(table[part] * multiplier, card.model, part)
    return rates, thresholds, fees


def _model_codes(models: pd.Series, names: list[str]) -> np.ndarray:
    if isinstance(models.dtype, pd.CategoricalDtype):  # re-map the log's categories, not every row's string
        lookup = np.array([names.index(m) if m in names else -1 for m in models.cat.categories] + [-1])
        return lookup[models.cat.codes.to_numpy()]
    return pd.Categorical(models, categories=names).codes.astype(np.int64)


def price_log(log: pd.DataFrame, cards: list[ref.PriceCard]) -> np.ndarray:
    """Cost of every row in integer picodollars (int64)."""
    names = [c.model for c in cards]
    if len(set(names)) != len(cards):
        raise ValueError("price_log needs one card per model (pick the cards valid on the log's date)")
    rates, thresholds, fees = rate_tables(cards)
    codes = _model_codes(log["model"], names)
    if (codes < 0).any():
        unknown = sorted(set(log["model"][codes < 0]))[:5]
        raise ref.PriceError(f"no price card for models {unknown}")
    counts = [log[c].to_numpy(np.int64) for c in COUNT_COLUMNS]
    prompt = counts[0] + counts[1]
    prompt += counts[2]
    prompt += counts[3]
    combo = codes * 4  # index into rates.reshape(-1, parts): (model, long, batch)
    combo += 2 * (prompt > thresholds[codes])
    if "batch" in log:
        combo += log["batch"].to_numpy(bool)
    flat = rates.reshape(-1, len(PARTS))
    present = np.bincount(combo, minlength=len(flat)) > 0
    total = np.zeros(len(log), dtype=np.int64)
    for p, column in enumerate(counts):
        missing = present & (flat[:, p] == MISSING)
        if missing.any() and (column[missing[combo]] > 0).any():
            row = int(np.flatnonzero(missing[combo] & (column > 0))[0])
            raise ref.PriceError(f"row {row}: card {names[codes[row]]} lacks a {PARTS[p]} rate "
                                 f"(long context: {bool(combo[row] & 2)}, batch: {bool(combo[row] & 1)})")
        total += column * flat[combo, p]
    if "web_searches" in log:
        searches = log["web_searches"].to_numpy(np.int64)
        row_fees = fees[codes]
        if ((searches > 0) & (row_fees == MISSING)).any():
            raise ref.PriceError("a row has web searches but its card has no web_search fee")
        total += searches * np.maximum(row_fees, 0)
    return total


def exact_sum(picodollars: np.ndarray) -> Decimal:
    """Sum of int64 picodollars as exact Decimal dollars (two int64 halves: no overflow at 10M rows)."""
    high, low = np.divmod(picodollars, 10**9)
    return Decimal(int(high.sum()) * 10**9 + int(low.sum())) / PICO


def usage_frame(rows: list[tuple[str, Usage, bool]]) -> pd.DataFrame:
    data: dict[str, Any] = {"model": [m for m, _, _ in rows]}
    for column in (*COUNT_COLUMNS, "web_searches"):
        data[column] = [getattr(u, column) for _, u, _ in rows]
    data["batch"] = [b for _, _, b in rows]
    return pd.DataFrame(data)


class VectorizedPricer(BillingImpl):
    name = "billing-vectorized"
    description = "numpy/pandas log pricer in int64 picodollars, on the reference cards"
    service_tiers = ()

    def unsupported(self, case: Any) -> list[str]:
        reasons = super().unsupported(case)
        if isinstance(case, BillingCase) and case.options.service_tier not in ref.STANDARD_TIERS:
            reasons.append("the vectorized log pricer has no service tiers")
        return reasons

    def cost(self, usage: Usage, model: str, options: ref.BillingOptions = ref.STANDARD) -> Decimal:
        if options.service_tier not in ref.STANDARD_TIERS:
            raise ref.PriceError(f"service tier {options.service_tier!r} is not supported by {self.name}")
        card = ref.card_for(model)
        return exact_sum(price_log(usage_frame([(model, usage, options.batch)]), [card]))


register(VectorizedPricer())

"""Vectorized pricing of a usage log (numpy), exact on every row or refusing it.

It lives in ``impls/`` rather than ``reference/``: it is an optimised re-implementation (lookup tables,
array arithmetic), so the suite holds it to the scalar Decimal reference row by row.

Exactness. Every rate is a whole number of picodollars per token (checked when the tables are built), so a
row's cost is an integer number of picodollars. A row's cost is kept as two int64 arrays, whole microdollars
and the picodollars below them (``micro``, ``pico``, 0 ≤ pico < 10⁶). A count above what one int64 product
can hold is split at 10⁶ (count = hi·10⁶ + lo): ``hi·rate`` is in microdollars, ``lo·rate`` in picodollars.
With at most :data:`MAX_COUNT` (10¹⁵) tokens per field, :data:`MAX_SEARCHES` per row, token rates of at most
:data:`MAX_RATE_PICO` per token ($1,000 per million) and per-request fees of whole microdollars up to $1, no
sum can leave int64; anything beyond is refused with the limit it breaks, and so is every invalid count
(negative, fractional, NaN, a string, a bool) — naming the row and the column.

Log columns: ``model`` (an id as responses carry it: dated and prefixed ids resolve through the reference's
aliases), ``input_uncached``, ``cache_read``, ``cache_write_5m``, ``cache_write_1h``, ``output``; optional
``web_searches``, ``batch`` (bool), ``service_tier`` (the tier the response reported) and ``date`` (the
request's date: each row is priced on the card valid then; without it, every row on the date given).
Service tiers that replace the rates (flex, priority) are not priced here: such a row is refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from impls.billing.api import AS_OF, BillingCase, BillingImpl
from impls.registry import register
from reference import billing as ref
from reference.billing import BillingOptions
from reference.usage import Usage

PICO = 10**12
SPLIT = 10**6  # counts above what one product can hold are split here: hi·rate is in microdollars
COUNT_COLUMNS = ("input_uncached", "cache_read", "cache_write_5m", "cache_write_1h", "output")
PARTS = ("input", "cache_read", "cache_write_5m", "cache_write_1h", "output")
MAX_COUNT = 10**15
MAX_SEARCHES = 10**12
MAX_RATE_PICO = 10**9  # $1,000 per million tokens
MAX_FEE_MICRO = 10**6  # $1 per request
MISSING = -1
NO_THRESHOLD = np.iinfo(np.int64).max
PART_BUDGET = 2**62 // 8  # what one part may add to the picodollar sum of a row (eight parts stay below 2**62)


class LogError(ValueError):
    """A log row or column the pricer refuses; the message names the row, the column and the value."""

    def shifted(self, offset: int, unit: str = "row") -> LogError:
        """The same error with its row counted from ``offset`` (a chunk's first row in the whole log)."""
        found = re.match(r"row (\d+), (.*)", str(self), re.S)
        return LogError(f"{unit} {int(found[1]) + offset}, {found[2]}") if found else self


@dataclass(frozen=True)
class RateTable:
    """rates[card, long, batch, part] in picodollars per token (MISSING where the card has none)."""

    cards: tuple[ref.PriceCard, ...]
    rates: np.ndarray
    thresholds: np.ndarray
    fees_micro: np.ndarray  # web_search fee per request in microdollars, MISSING where none

    @staticmethod
    def of(cards: Sequence[ref.PriceCard]) -> RateTable:
        """The tables of these cards (kept: a log priced in chunks, or a DuckDB vector at a time, builds them once;
        cards are loaded once, so the same cards are the same objects)."""
        key = tuple(id(c) for c in cards)
        if key not in _TABLES:
            _TABLES[key] = _rate_table(tuple(cards))
        return _TABLES[key]


_TABLES: dict[tuple[int, ...], RateTable] = {}


def _rate_table(cards: tuple[ref.PriceCard, ...]) -> RateTable:
    rates = np.full((len(cards), 2, 2, len(PARTS)), MISSING, dtype=np.int64)
    thresholds = np.full(len(cards), NO_THRESHOLD, dtype=np.int64)
    fees = np.full(len(cards), MISSING, dtype=np.int64)
    for c, card in enumerate(cards):
        if card.long_context_threshold is not None:
            thresholds[c] = card.long_context_threshold
        if "web_search" in card.per_request:
            fees[c] = _fee_micro(card.per_request["web_search"], card.model)
        for long, table in ((0, card.rates), (1, card.long_context_rates)):
            for batch in (0, 1):
                multiplier = card.batch_multiplier if batch else Decimal(1)
                if multiplier is None:
                    continue
                for p, part in enumerate(PARTS):
                    if part in table:
                        rates[c, long, batch, p] = _pico_per_token(table[part] * multiplier, card.model, part)
    return RateTable(cards, rates, thresholds, fees)


def _pico_per_token(rate_per_million: Decimal, model: str, part: str) -> int:
    pico = rate_per_million * PICO / 1_000_000
    if pico != pico.to_integral_value():
        raise ValueError(f"card {model}: {part} rate {rate_per_million} $/M is not a whole number of "
                         f"picodollars per token ({pico}); exact integer pricing needs it to be")
    if pico > MAX_RATE_PICO:
        raise ValueError(f"card {model}: {part} rate {rate_per_million} $/M is above the "
                         f"{MAX_RATE_PICO * 10**6 // PICO} $/M this pricer holds exactly")
    return int(pico)


def _fee_micro(fee: Decimal, model: str) -> int:
    micro = fee * 10**6
    if micro != micro.to_integral_value() or micro > MAX_FEE_MICRO:
        raise ValueError(f"card {model}: web_search fee ${fee} must be whole microdollars, at most $1")
    return int(micro)


@dataclass(frozen=True)
class PricedLog:
    """Each row's exact cost: ``micro`` whole microdollars + ``pico`` picodollars (both int64, both >= 0).

    ``pico`` may hold more than 10⁶ (it is carried into ``micro`` only when asked: :meth:`normalized`).
    """

    micro: np.ndarray
    pico: np.ndarray

    def __len__(self) -> int:
        return len(self.micro)

    def row(self, i: int) -> Decimal:
        return (Decimal(int(self.micro[i])) * SPLIT + int(self.pico[i])) / PICO

    def normalized(self) -> PricedLog:
        carry, pico = np.divmod(self.pico, SPLIT)
        return PricedLog(self.micro + carry, pico)

    def total(self) -> Decimal:
        """The exact sum (each array summed in int64 halves when a plain sum could overflow)."""
        return (Decimal(_exact_sum(self.micro)) * SPLIT + _exact_sum(self.pico)) / PICO

    def unscaled(self) -> tuple[np.ndarray, np.ndarray]:
        """The 128-bit integer micro·10⁶ + pico (picodollars) as (low, high) uint64 words, two's complement."""
        rows = self.normalized()
        micro = rows.micro.astype(np.uint64)
        a0, a1 = micro & np.uint64(0xFFFFFFFF), micro >> np.uint64(32)
        t = a0 * np.uint64(SPLIT) + rows.pico.astype(np.uint64)  # < 2**53
        u = a1 * np.uint64(SPLIT)  # < 2**51
        shifted = (u & np.uint64(0xFFFFFFFF)) << np.uint64(32)
        low = shifted + t
        carry = (low < shifted).astype(np.uint64)
        high = (u >> np.uint64(32)) + carry
        return low, high


def _exact_sum(values: np.ndarray) -> int:
    """The exact sum of non-negative int64s as a Python int."""
    top = int(values.max(initial=0))
    if top == 0:
        return 0
    if top * len(values) < 2**63:
        return int(values.sum(dtype=np.int64))
    high, low = np.divmod(values, 10**9)
    return int(high.sum(dtype=np.int64)) * 10**9 + int(low.sum(dtype=np.int64))


def _integer_column(log: pd.DataFrame, column: str, limit: int) -> np.ndarray:
    """The column as int64, or a LogError naming the first bad row (missing, negative, fractional, too big)."""
    values = log[column]
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype) or not (pd.api.types.is_integer_dtype(dtype)
                                                 or pd.api.types.is_float_dtype(dtype)):
        bad = _first(values, lambda v: type(v) not in (int, np.int64, np.int32) or isinstance(v, bool))
        raise LogError(f"row {bad[0]}, column {column!r}: {bad[1]!r} is not a token count (the column has "
                       f"dtype {dtype}; counts must be integers)")
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise LogError(f"row {row}, column {column!r}: missing value; a count must be a whole number >= 0")
    if pd.api.types.is_float_dtype(dtype):
        floats = values.to_numpy(np.float64)
        off = (floats != np.floor(floats)) | (floats > 2**53)
        if off.any():
            row = int(np.flatnonzero(off)[0])
            raise LogError(f"row {row}, column {column!r}: {floats[row]!r} is not a whole number of tokens")
        counts = floats.astype(np.int64)
    else:
        counts = values.to_numpy(np.int64)
    low, high = counts.min(initial=0), counts.max(initial=0)
    if low < 0:
        row = int(np.flatnonzero(counts < 0)[0])
        raise LogError(f"row {row}, column {column!r}: {counts[row]} is negative; a count must be >= 0")
    if high > limit:
        row = int(np.flatnonzero(counts > limit)[0])
        raise LogError(f"row {row}, column {column!r}: {counts[row]} is above the {limit:.0e} this pricer "
                       f"holds exactly per field")
    return counts


def _first(values: pd.Series, bad: Any) -> tuple[int, Any]:
    for i, v in enumerate(values):
        if bad(v):
            return i, v
    return 0, values.iloc[0] if len(values) else None


def _cards_for_models(models: pd.Series, on: date | None, dates: pd.Series | None) -> tuple[np.ndarray,
                                                                                            list[ref.PriceCard]]:
    """Per row the index of its card (aliases resolved once per distinct id)."""
    categorical = models.astype("category") if not isinstance(models.dtype, pd.CategoricalDtype) else models
    names = [str(c) for c in categorical.cat.categories]
    codes = categorical.cat.codes.to_numpy()
    if (codes < 0).any():
        raise LogError(f"row {int(np.flatnonzero(codes < 0)[0])}, column 'model': missing model id")
    resolved = []
    for name in names:
        try:
            resolved.append(ref.resolve_model(name))
        except ref.PriceError as err:
            row = int(np.flatnonzero(codes == names.index(name))[0])
            raise LogError(f"row {row}, column 'model': {err}") from None
    all_cards = ref.load_cards()
    if dates is None:
        cards = [ref.card_for(m, on or AS_OF) for m in resolved]
        return codes.astype(np.int64), cards
    days = pd.to_datetime(dates).to_numpy("datetime64[D]").astype(np.int64)
    cards = []
    index = np.full(len(codes), -1, dtype=np.int64)
    for m, model in enumerate(resolved):
        own = sorted((c for c in all_cards if c.model == model), key=lambda c: c.valid_from)
        starts = np.array([np.datetime64(c.valid_from, "D").astype(np.int64) for c in own])
        ends = np.array([np.datetime64(c.valid_to, "D").astype(np.int64) if c.valid_to else NO_THRESHOLD
                         for c in own])
        rows = np.flatnonzero(codes == m)
        which = np.searchsorted(starts, days[rows], side="right") - 1
        invalid = (which < 0) | (days[rows] >= ends[np.maximum(which, 0)])
        if invalid.any():
            row = int(rows[np.flatnonzero(invalid)[0]])
            raise LogError(f"row {row}, column 'date': no price card for {model!r} on "
                           f"{np.datetime64(int(days[row]), 'D')}")
        index[rows] = len(cards) + which
        cards += own
    return index, cards


def _batch_flags(log: pd.DataFrame, cards: list[ref.PriceCard], card_index: np.ndarray) -> np.ndarray:
    """Batch per row, with the reported service tier applied as the reference applies it."""
    batch = log["batch"].to_numpy(bool) if "batch" in log else np.zeros(len(log), dtype=bool)
    if "service_tier" not in log:
        return batch
    tiers = log["service_tier"].astype("object").where(log["service_tier"].notna(), None)
    providers = np.array([c.provider for c in cards], dtype=object)[card_index]
    keys = pd.DataFrame({"tier": tiers, "provider": providers, "batch": batch})
    out = batch.copy()
    for (tier, provider, asked), rows in keys.groupby(["tier", "provider", "batch"], dropna=False).groups.items():
        if tier is None or (isinstance(tier, float) and np.isnan(tier)):
            continue
        probe = next(c for c in cards if c.provider == provider)
        try:
            options = ref.resolve_options(Usage(service_tier=tier), probe, BillingOptions(batch=bool(asked)))
        except ref.PriceError as err:
            raise LogError(f"row {int(rows[0])}, column 'service_tier': {err}") from None
        if options.service_tier not in ref.STANDARD_TIERS:
            raise LogError(f"row {int(rows[0])}, column 'service_tier': tier {tier!r} replaces the rates; the "
                           f"vectorized pricer prices standard and batch requests only")
        out[np.asarray(rows)] = options.batch
    return out


def price_log(log: pd.DataFrame, on: date | None = None) -> PricedLog:
    """Every row's exact cost (see the module docstring for the columns and the limits)."""
    missing = [c for c in ("model", *COUNT_COLUMNS) if c not in log]
    if missing:
        raise LogError(f"the log lacks columns {missing}; it has {list(log.columns)}")
    dates = log.get("date", None)
    card_index, cards = _cards_for_models(log["model"], on, dates)
    table = RateTable.of(cards)
    counts = [_integer_column(log, c, MAX_COUNT) for c in COUNT_COLUMNS]
    prompt = counts[0] + counts[1]
    prompt += counts[2]
    prompt += counts[3]  # <= 4·10**15: no overflow
    combo = card_index * 4
    combo += 2 * (prompt > np.take(table.thresholds, card_index))
    combo += _batch_flags(log, cards, card_index)
    flat = table.rates.reshape(-1, len(PARTS))
    present = np.bincount(combo, minlength=len(flat)) > 0
    micro = np.zeros(len(log), dtype=np.int64)
    pico = np.zeros(len(log), dtype=np.int64)
    for p, column in enumerate(counts):
        top_count = int(column.max(initial=0))
        if top_count == 0:
            continue
        missing_rate = present & (flat[:, p] == MISSING)
        if missing_rate.any() and (column[missing_rate[combo]] > 0).any():
            row = int(np.flatnonzero(missing_rate[combo] & (column > 0))[0])
            raise LogError(f"row {row}, column {COUNT_COLUMNS[p]!r}: card {cards[card_index[row]].model} lacks a "
                           f"{PARTS[p]} rate (long context: {bool(combo[row] & 2)}, batch: {bool(combo[row] & 1)})")
        rates = np.maximum(flat[:, p], 0)
        rate = np.take(rates, combo)
        if top_count * int(rates[present].max(initial=0)) <= PART_BUDGET:
            np.multiply(column, rate, out=rate)
            pico += rate
        else:  # split: hi·rate in microdollars, lo·rate in picodollars
            hi, lo = np.divmod(column, SPLIT)
            micro += hi * rate
            pico += lo * rate
    if "web_searches" in log:
        searches = _integer_column(log, "web_searches", MAX_SEARCHES)
        if searches.max(initial=0) > 0:
            fees = np.take(table.fees_micro, card_index)
            lacking = (searches > 0) & (fees == MISSING)
            if lacking.any():
                row = int(np.flatnonzero(lacking)[0])
                raise LogError(f"row {row}, column 'web_searches': card {cards[card_index[row]].model} has no "
                               f"web_search fee")
            micro += searches * np.maximum(fees, 0)
    return PricedLog(micro, pico)


def usage_frame(rows: Sequence[BillingCase]) -> pd.DataFrame:
    """A log of the given requests (model id, counts, batch, reported tier, date)."""
    data: dict[str, Any] = {"model": [r.model for r in rows]}
    for column in (*COUNT_COLUMNS, "web_searches"):
        data[column] = np.array([getattr(r.usage, column) for r in rows], dtype=np.int64)
    data["batch"] = [r.options.batch for r in rows]
    data["service_tier"] = pd.Series([r.usage.service_tier for r in rows], dtype=object)
    data["date"] = pd.to_datetime([r.day for r in rows])
    return pd.DataFrame(data)


class VectorizedPricer(BillingImpl):
    name = "billing-vectorized"
    description = "numpy log pricer, exact on every row (micro + picodollar int64 pairs), on the reference cards"
    prices_logs = True
    lacks = {"tier.flex": "the vectorized log pricer prices standard and batch requests only",
             "tier.priority": "the vectorized log pricer prices standard and batch requests only",
             "usage_unknown": "a log row is a usage record: an unknown usage has no row (price_jsonl counts it)"}
    call_cost_s = 3e-3  # one-row frames: pandas overhead (measured under load)

    def unsupported_request(self, case: BillingCase) -> list[str]:
        too_big = [p for p in COUNT_COLUMNS if getattr(case.usage, p) > MAX_COUNT]
        if case.usage.web_searches > MAX_SEARCHES:
            too_big.append("web_searches")
        return [f"{self.name} holds at most {MAX_COUNT:.0e} tokens and {MAX_SEARCHES:.0e} searches per field "
                f"exactly; {', '.join(too_big)} exceed it"] if too_big else []

    def cost(self, usage: Usage | None, model: str, options: BillingOptions = ref.STANDARD,
             on: date | None = None) -> Decimal:
        if usage is None:
            raise ref.UsageUnknown("usage unknown: a log row needs a usage record")
        if options.service_tier not in ref.STANDARD_TIERS:
            raise ref.PriceError(f"service tier {options.service_tier!r} is not priced by {self.name}")
        return price_log(usage_frame([BillingCase(model, usage, options, on)])).total()

    def cost_many(self, requests: Sequence[BillingCase]) -> Decimal:
        return price_log(usage_frame(requests)).total()

    def price_frame(self, log: pd.DataFrame) -> Decimal:
        return price_log(log).total()


register(VectorizedPricer())

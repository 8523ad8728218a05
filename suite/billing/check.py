"""The billing checks: one implementation on one case → a Verdict.

- :func:`check_invoice` ("price.invoice"): what a user would check an invoice against — the reference on the
  card valid on the request's date (or the hand-computed figure). A paid request priced at $0 fails; so does
  a model the library cannot price. For an implementation with its own prices, the verdict says whether a
  difference is *price data* (its own table, pushed through the reference, gives its figure) or *logic*.
- :func:`check_logic` ("price.logic"): the library's figure against its own table pushed through the
  reference: what separates a stale table from a wrong rule.
- :func:`check_monotone`: one more token of any priced part never lowers the cost, and a paid request is never $0.
- :func:`check_additive`: two requests priced as one log cost what they cost one by one (a paid pair is not $0).
- :func:`check_price_data` ("price_data.<model>"): the library's table, bucket by bucket and date by date,
  against the cards; each difference is one record (see :func:`price_data_records`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from impls.base import declared_reasons
from impls.billing.api import AS_OF, BillingCase, BillingImpl, PairCase, PriceDataCase
from reference import billing as ref
from reference.billing import BillingOptions, PriceCard
from reference.usage import Usage
from suite.engine.verdict import Line, Verdict, close, equal, holds, verdict

REL = 1e-9  # float money is compared at this relative tolerance (the design brief)
BUMPABLE = ("input_uncached", "cache_read", "cache_write_5m", "cache_write_1h", "output", "web_searches")
BUCKET_OF = {"input_uncached": "input", "cache_read": "cache_read", "cache_write_5m": "cache_write_5m",
             "cache_write_1h": "cache_write_1h", "output": "output"}


def expected(case: BillingCase) -> Decimal:
    """The hand figure, or the reference on the card valid on the case's date."""
    if case.expected is not None:
        return case.expected
    return ref.price(case.usage, case.model, case.day, case.options).total


def _priced(impl: BillingImpl, case: BillingCase) -> tuple[Decimal | float | None, str]:
    try:
        return impl.cost(case.usage, case.model, case.options, case.on), ""
    except Exception as err:  # a library that cannot price the request fails the check; it does not crash it
        return None, f"{type(err).__name__}: {str(err)[:240]}"


def money(name: str, got: Decimal | float | None, want: Decimal, impl: BillingImpl, context: str) -> Line:
    if got is None:
        return holds(name, False, f"no price, expected {want} [{context}]")
    if impl.exact:
        return equal(name, got, want, context) if isinstance(got, Decimal) else \
            holds(name, False, f"{name}={got!r} is a {type(got).__name__}; {impl.name} declares exact Decimal money")
    return close(name, float(got), float(want), REL, context)


def paid_not_zero(got: Decimal | float | None, want: Decimal) -> Line:
    ok = want == 0 or (got is not None and got > 0)
    return holds("paid_not_zero", ok, f"{got!r}" if ok else f"a paid request (${want}) priced at {got!r}")


def library_figure(impl: BillingImpl, case: BillingCase) -> Decimal:
    """The library's own table for the case's model, date and options, pushed through the reference."""
    options = case.resolved
    card = impl.price_card(case.model, case.on, options)
    return ref.cost(dataclasses.replace(case.usage, service_tier=None), card).total


def _classify(impl: BillingImpl, case: BillingCase, got: Decimal | float) -> str:
    try:
        theirs = library_figure(impl, case)
    except Exception as err:  # the library has no table entry we can read: say so
        return f"classification: its own table cannot be read for this request ({type(err).__name__}: {err})"
    same = close("x", float(got), float(theirs), REL).ok if not impl.exact else got == theirs
    kind = "price data (its own table, priced by the reference, gives its figure)" if same else \
        f"logic (its own table, priced by the reference, gives {theirs})"
    return f"classification: {kind}"


def check_invoice(impl: BillingImpl, case: BillingCase, seed: int) -> Verdict:
    want = expected(case)
    context = f"{impl.name}; reference on the card valid {case.day}"
    got, error = _priced(impl, case)
    lines = [money("cost", got, want, impl, context + (f"; {error}" if error else "")), paid_not_zero(got, want)]
    notes = []
    if impl.own_prices and got is not None and not lines[0].ok:
        notes.append(_classify(impl, case, got))
    return verdict(case, lines, notes=notes)


def check_logic(impl: BillingImpl, case: BillingCase, seed: int) -> Verdict:
    got, error = _priced(impl, case)
    try:
        theirs = library_figure(impl, case)
    except Exception as err:  # no own table for this request: the library cannot price it
        return verdict(case, holds("own_table", False, f"its own table cannot be read: {type(err).__name__}: "
                                                       f"{str(err)[:200]}"))
    lines = [money("cost", got, theirs, impl, f"{impl.name}; reference on {impl.name}'s own table"
                                               + (f"; {error}" if error else "")), paid_not_zero(got, theirs)]
    return verdict(case, lines)


def _bump(usage: Usage, part: str) -> Usage:
    more = dataclasses.replace(usage, **{part: getattr(usage, part) + 1})
    return more


def check_monotone(impl: BillingImpl, case: BillingCase, seed: int) -> Verdict:
    card = case.card
    lacking = impl.lacks
    parts = [p for p in BUMPABLE if (p == "web_searches" and "web_search" in card.per_request
                                     and "web_search" not in lacking)
             or (p in BUCKET_OF and BUCKET_OF[p] in card.rates
                 and (card.long_context_threshold is None or BUCKET_OF[p] in card.long_context_rates)
                 and not (p.startswith("cache_write") and "cache_write" in lacking)
                 and not (p == "cache_write_1h" and "cache_write_1h" in lacking))]
    bumped = [dataclasses.replace(case, usage=_bump(case.usage, p), expected=None, label=f"+1 {p}") for p in parts]
    bumped = [m for m in bumped if not declared_reasons(impl, m)]  # e.g. past the largest count it holds
    if not bumped:
        return verdict(case, holds("monotone", True, "no part can take one more token here"),
                       notes=[f"{impl.name} takes no case one token larger than this one"])
    more = bumped[seed % len(bumped)]
    part = more.label.removeprefix("+1 ")
    base_got, base_error = _priced(impl, case)
    more_got, more_error = _priced(impl, more)
    want_more = expected(more)
    if base_got is None or more_got is None:
        return verdict(case, holds("priced", False, f"{base_error or more_error}"))
    ok = more_got >= base_got
    return verdict(case, holds("monotone", ok, f"+1 {part}: {base_got!r} -> {more_got!r}"),
                   paid_not_zero(more_got, want_more))


def check_additive(impl: BillingImpl, pair: PairCase | BillingCase, seed: int) -> Verdict:
    """The library agrees with itself: two requests as one log cost what they cost one by one (a request
    on its own is the pair of it with itself); a paid pair is not $0."""
    if isinstance(pair, BillingCase):
        pair = PairCase(pair, pair)
    a, b = pair.first, pair.second
    want = expected(a) + expected(b)
    got_a, err_a = _priced(impl, a)
    got_b, err_b = _priced(impl, b)
    try:
        together: Decimal | float | None = impl.cost_many([a, b])
        err = ""
    except Exception as error:  # a log it cannot price is the finding
        together, err = None, f"{type(error).__name__}: {str(error)[:200]}"
    if got_a is None or got_b is None:
        return verdict(pair, holds("priced", False, err_a or err_b))
    one_by_one = Decimal(got_a) + Decimal(got_b) if impl.exact else Decimal(repr(float(got_a) + float(got_b)))
    lines = [money("as_one_log", together, Decimal(one_by_one), impl,
                   f"{impl.name}: cost_many([a, b]) against cost(a) + cost(b){'; ' + err if err else ''}"),
             paid_not_zero(together, want)]
    return verdict(pair, lines)


# ---- price data ---------------------------------------------------------------------------------------------

def _variants(card: PriceCard) -> list[tuple[str, BillingOptions]]:
    out = [("standard", ref.STANDARD)]
    if card.batch_multiplier is not None:
        out.append(("batch", BillingOptions(batch=True)))
    out += [(f"tier.{t}", BillingOptions(service_tier=t)) for t in sorted(card.tiers)]
    return out


def _buckets(card: PriceCard, options: BillingOptions) -> dict[str, Decimal | int | None]:
    """Every price the card states for these options, by bucket name."""
    multiplier = (card.batch_multiplier or Decimal(1)) if options.batch else Decimal(1)
    base = card.tiers.get(options.service_tier, card.rates) if options.service_tier else card.rates
    out: dict[str, Decimal | int | None] = {p: base[p] * multiplier if p in base else None for p in ref.TOKEN_PARTS}
    if card.long_context_threshold is not None and not options.service_tier:
        out["long.threshold"] = card.long_context_threshold
        out |= {f"long.{p}": card.long_context_rates[p] * multiplier if p in card.long_context_rates else None
                for p in ref.TOKEN_PARTS}
    out["web_search"] = card.per_request.get("web_search")
    return out


def comparison_dates(impl: BillingImpl, model: str) -> list[date]:
    """Both sides of every price change, ours and the library's; only today's cards for undated libraries."""
    cards = [c for c in ref.load_cards() if c.model == model]
    changes = {c.valid_from for c in cards} | {c.valid_to for c in cards if c.valid_to} | set(
        impl.price_changes(model))
    days = {d + timedelta(days=k) for d in changes for k in (-1, 0)} | {AS_OF}
    if not impl.price_changes(model) and "historic" in impl.lacks:
        latest = ref.card_for(model).valid_from
        days = {d for d in days if d >= latest}
    return sorted(d for d in days if any(c.valid_on(d) for c in cards))


def _compared_variants(impl: BillingImpl, card: PriceCard) -> list[tuple[str, BillingOptions]]:
    """The card's option variants the implementation prices at all (a feature it lacks is not a price difference)."""
    return [(name, options) for name, options in _variants(card) if name not in impl.lacks]


def _compared_buckets(impl: BillingImpl, buckets: dict[str, Any]) -> dict[str, Any]:
    skip = {"web_search"} if "web_search" in impl.lacks else set()
    if "cache_write" in impl.lacks:
        skip |= {b for b in buckets if "cache_write" in b}
    return {b: v for b, v in buckets.items() if b not in skip}


def price_data_records(impl: BillingImpl, model: str) -> list[dict[str, Any]]:
    """One record per (options, bucket, card value, library value) where the library's table and the card differ,
    with the run of comparison dates it holds on (``from`` .. ``to``, both comparison dates). A model the library
    has no entry for is one record, bucket ``*``. Keys: library, impl, model, options, bucket, from, to, card,
    library_value, source."""
    days = comparison_dates(impl, model)
    found: dict[tuple[str, str, str, str | None], list[int]] = {}
    missing: list[int] = []
    for n, day in enumerate(days):
        ours = ref.card_for(model, day)
        for variant, options in _compared_variants(impl, ours):
            want = _compared_buckets(impl, _buckets(ours, options))
            try:
                got = _buckets(impl.price_card(model, day, options), ref.STANDARD)
            except Exception:  # no entry at all for this model: one record, below
                missing.append(n)
                continue
            for bucket, value in want.items():
                theirs: Any = got.get(bucket)
                if value is not None and (theirs is None or Decimal(theirs) != Decimal(value)):
                    key = (variant, bucket, str(value), None if theirs is None else str(theirs))
                    found.setdefault(key, []).append(n)
    base = {"library": impl.library, "impl": impl.name, "model": model, "source": ref.card_for(model).source}
    records: list[dict[str, Any]] = []
    if missing:
        records.append({**base, "options": "*", "bucket": "*", "from": days[min(missing)].isoformat(),
                        "to": days[max(missing)].isoformat(), "card": "priced", "library_value": None})
    for (variant, bucket, value, theirs), hits in found.items():
        for run in _runs(sorted(set(hits))):
            records.append({**base, "options": variant, "bucket": bucket, "from": days[run[0]].isoformat(),
                            "to": days[run[-1]].isoformat(), "card": value, "library_value": theirs})
    return records


def _runs(indices: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


PRICE_DATA_PREFIX = "PRICE-DATA "
LINE_KEYS = ("model", "options", "bucket", "from", "to", "card", "library_value")
PRICE_DATA_DIR = "TOKENSPEC_PRICE_DATA_DIR"


def check_price_data(impl: BillingImpl, case: PriceDataCase, seed: int) -> Verdict:
    """Each difference is a line ``PRICE-DATA {json}`` (the keys of LINE_KEYS); with $TOKENSPEC_PRICE_DATA_DIR set,
    the full records also go to ``<dir>/price_data.<impl>.<model>.json``."""
    records = price_data_records(impl, case.model)
    folder = os.environ.get(PRICE_DATA_DIR)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"price_data.{impl.name}.{case.model}.json").write_text(json.dumps(records, indent=1))
    if not records:
        return verdict(case, holds("price_data", True, f"every bucket agrees on {len(comparison_dates(impl, case.model))}"
                                                       " comparison dates"))
    lines = [holds("price_data", False, PRICE_DATA_PREFIX + json.dumps({k: r[k] for k in LINE_KEYS},
                                                                      separators=(",", ":"))) for r in records]
    return verdict(case, lines, notes=[f"card source: {records[0]['source']}"])

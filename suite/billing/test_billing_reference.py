"""The billing reference: cards validated at load, ids resolved through listed aliases, the reported service tier
applied, unknown usage refused, every rule against a hand computation."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference import billing as ref
from reference.billing import BillingOptions, CardError, PriceError, UsageUnknown
from reference.usage import Usage
from suite.billing.cases import HAND, requests

RAW = json.loads(ref.PRICES_FILE.read_text())


@pytest.mark.parametrize("case", HAND, ids=lambda c: c.label)
def test_hand_computed(case: Any) -> None:
    assert ref.price(case.usage, case.model, case.day, case.options).total == case.expected


def _book_with(change: Any) -> dict[str, Any]:
    raw = copy.deepcopy(RAW)
    change(raw)
    return raw


BAD_BOOKS = {  # name: (change to the price file, fragments the error must name)
    "nan rate": (lambda r: r["cards"][0]["rates"].__setitem__("input", "NaN"), ("cards[0]", "rates.input", "NaN")),
    "negative rate": (lambda r: r["cards"][1]["rates"].__setitem__("output", "-15"), ("cards[1]", "output", "-15")),
    "not a number": (lambda r: r["cards"][0]["rates"].__setitem__("input", "three"), ("rates.input", "three")),
    "unknown part": (lambda r: r["cards"][0]["rates"].__setitem__("inputs", "1"), ("inputs",)),
    "ends before it starts": (lambda r: r["cards"][0].__setitem__("valid_to", "2025-01-01"),
                              ("claude-haiku-4-5", "2025-01-01", "2025-10-15")),
    "overlap": (lambda r: r["cards"].append({**r["cards"][0], "valid_from": "2026-01-01"}),
                ("claude-haiku-4-5", "overlap")),
    "no source": (lambda r: r["cards"][0].__setitem__("source", ""), ("cards[0]", "source")),
    "batch above 1": (lambda r: r["cards"][0].__setitem__("batch_multiplier", "1.5"), ("batch_multiplier", "1.5")),
    "alias to no card": (lambda r: r["aliases"].append({"alias": "x-1", "model": "x", "source": "https://x"}),
                         ("x-1", "'x'")),
    "alias without source": (lambda r: r["aliases"].append({"alias": "x-1", "model": "gpt-5", "source": ""}),
                             ("x-1", "source")),
}


@pytest.mark.parametrize("name", sorted(BAD_BOOKS))
def test_cards_are_validated_at_load(name: str) -> None:
    change, fragments = BAD_BOOKS[name]
    with pytest.raises(CardError) as info:
        ref.book_from_dict(_book_with(change))
    assert all(f in str(info.value) for f in fragments), str(info.value)


def test_every_card_is_dated_and_sourced() -> None:
    book = ref.load_book()
    assert book.cards and all(c.source.startswith("https://") for c in book.cards)
    assert all(a.source.startswith("https://") for a in book.aliases)


@pytest.mark.parametrize(("given_id", "model"), [
    ("claude-haiku-4-5-20251001", "claude-haiku-4-5"), ("anthropic/claude-opus-4-5-20251101", "claude-opus-4-5"),
    ("gpt-5-2025-08-07", "gpt-5"), ("openai/gpt-5", "gpt-5"), ("gemini/gemini-2.5-pro", "gemini-2.5-pro"),
    ("deepseek-reasoner", "deepseek-chat"), ("claude-sonnet-4-0", "claude-sonnet-4")])
def test_dated_and_prefixed_ids_resolve(given_id: str, model: str) -> None:
    assert ref.resolve_model(given_id) == model


@pytest.mark.parametrize(("given_id", "closest"), [("claude-haiku-4-5-2025", "claude-haiku-4-5-20251001"),
                                                   ("gpt-5-2026-01-01", "gpt-5-2025-08-07"),
                                                   ("openai/claude-haiku-4-5", "claude-haiku-4-5")])
def test_an_unknown_id_names_the_closest_known_ids(given_id: str, closest: str) -> None:
    with pytest.raises(PriceError, match=rf"{given_id!r}.*closest known ids.*'{closest}'"):
        ref.resolve_model(given_id)


HAIKU = Usage(input_uncached=1000, output=200)  # standard: 1000 * 1 + 200 * 5 = 2000 micro$; batch: 1000


@pytest.mark.parametrize(("tier", "options", "expected"), [
    ("batch", BillingOptions(), "0.001"), ("batch", BillingOptions(batch=True), "0.001"),
    ("standard", BillingOptions(), "0.002"), (None, BillingOptions(batch=True), "0.001")])
def test_the_reported_tier_is_applied_once(tier: str | None, options: BillingOptions, expected: str) -> None:
    usage = Usage(input_uncached=1000, output=200, service_tier=tier)
    assert ref.price(usage, "claude-haiku-4-5", options=options).total == Decimal(expected)


def test_openai_reports_default_in_batch_output() -> None:
    # gpt-5 batch: 1000 * 0.625 + 200 * 5 = 1625 micro$
    usage = Usage(input_uncached=1000, output=200, service_tier="default")
    assert ref.price(usage, "gpt-5", options=BillingOptions(batch=True)).total == Decimal("0.001625")


@pytest.mark.parametrize(("model", "tier", "options"), [
    ("claude-haiku-4-5", "standard", BillingOptions(batch=True)),
    ("gpt-5", "flex", BillingOptions(service_tier="priority")),
    ("gpt-5", "priority", BillingOptions(batch=True)),
    ("claude-haiku-4-5", "batch", BillingOptions(service_tier="priority"))])
def test_a_conflict_between_usage_and_options_names_both(model: str, tier: str, options: BillingOptions) -> None:
    with pytest.raises(PriceError, match=rf"reports service tier '{tier}' but the options say .*"):
        ref.price(Usage(input_uncached=10, output=1, service_tier=tier), model, options=options)


def test_an_unknown_reported_tier_is_an_error() -> None:
    with pytest.raises(PriceError, match=r"'turbo'.*known: \['batch', 'priority', 'standard'\]"):
        ref.price(Usage(input_uncached=10, service_tier="turbo"), "claude-haiku-4-5")


def test_unknown_usage_is_not_zero() -> None:
    with pytest.raises(UsageUnknown, match="usage unknown"):
        ref.cost(None, ref.card_for("claude-haiku-4-5"))


def test_a_missing_rate_is_an_error() -> None:
    with pytest.raises(PriceError, match="cache_write_5m"):
        ref.cost(Usage(input_uncached=10, cache_write_5m=5), ref.card_for("gpt-5"))
    with pytest.raises(PriceError, match="priority"):
        ref.cost(Usage(input_uncached=10), ref.card_for("gpt-5-nano"), BillingOptions(service_tier="priority"))
    with pytest.raises(PriceError, match="web_search"):
        ref.cost(Usage(input_uncached=10, web_searches=1), ref.card_for("gpt-5"))
    with pytest.raises(PriceError, match="2025-01-01"):
        ref.card_for("claude-sonnet-4-6", date(2025, 1, 1))


@given(case=requests())
def test_the_breakdown_adds_up_and_every_part_is_paid(case: Any) -> None:
    result = ref.price(case.usage, case.model, case.day, case.options)
    assert result.total == sum(result.breakdown.values(), Decimal(0))
    assert all(v > 0 for v in result.breakdown.values())


@given(case=requests(), extra=st.integers(1, 10**6))
def test_the_reference_is_monotone(case: Any, extra: int) -> None:
    base = ref.price(case.usage, case.model, case.day, case.options).total
    more = Usage(**{**case.usage.__dict__, "output": case.usage.output + extra})
    assert ref.price(more, case.model, case.day, case.options).total > base

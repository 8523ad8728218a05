"""Billing: hand-computed figures, tier rules, monotonicity, additivity, missing rates, dated cards."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from impls.billing.api import BillingCase, BillingImpl
from impls.billing.vectorized import exact_sum, price_log, usage_frame
from reference import billing as ref
from reference.billing import BillingOptions, PriceError
from reference.usage import Usage
from suite.billing.checks import PRICE_CASES, agrees, price_failures

MODELS = sorted({c.model for c in ref.load_cards()})


def _expected_cases(impl: BillingImpl) -> list[tuple[str, str, Usage, BillingOptions, Decimal]]:
    """The hand-computed cases; for an adapter on its own prices, the reference on that library's card."""
    if not impl.own_prices:
        return PRICE_CASES
    out = []
    for name, model, usage, options, _ in PRICE_CASES:
        if impl.unsupported(BillingCase(model, usage, options)):
            continue
        out.append((name, model, usage, options, ref.cost(usage, impl.price_card(model, options)).total))
    return out


def test_billing_hand_computed_cases(billing_impl: BillingImpl) -> None:
    def skip(model: str, usage: Usage, options: BillingOptions) -> list[str]:
        return billing_impl.unsupported(BillingCase(model, usage, options))

    failures = []
    for case in _expected_cases(billing_impl):
        expected = billing_impl.expected_failure("test_billing_hand_computed_cases", BillingCase(*case[1:4]))
        result = price_failures(billing_impl.cost, [case], skip, billing_impl.exact)
        if expected is not None:
            assert result, f"stale expected failure for {case[0]}: {expected.reason}"
        else:
            failures += result
    assert not failures, "\n".join(failures)


usages = st.builds(Usage, input_uncached=st.integers(0, 400_000), cache_read=st.integers(0, 300_000),
                   cache_write_5m=st.integers(0, 100_000), cache_write_1h=st.integers(0, 100_000),
                   output=st.integers(0, 100_000), web_searches=st.integers(0, 3))
PARTS = ("input_uncached", "cache_read", "cache_write_5m", "cache_write_1h", "output", "web_searches")


def _anthropic_card_models() -> list[str]:
    return [c.model for c in ref.load_cards() if c.provider == "anthropic"]


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-sonnet-4"])
@given(u=usages, part=st.sampled_from(PARTS), batch=st.booleans())
def test_billing_monotone_in_every_count(billing_impl: BillingImpl, model: str, u: Usage, part: str,
                                         batch: bool) -> None:
    model_reasons = billing_impl.unsupported(BillingCase(model, Usage()))
    if model_reasons:
        pytest.skip("; ".join(model_reasons))
    options = BillingOptions(batch=batch and billing_impl.batch)
    u = _adapted(billing_impl, u)
    if (part == "web_searches" and not billing_impl.web_search) or (
            part.startswith("cache_write") and not billing_impl.cache_writes):
        part = "output"
    more = Usage(**{**u.__dict__, part: getattr(u, part) + 1})
    assert billing_impl.cost(more, model, options) >= billing_impl.cost(u, model, options)


@given(u=usages, model=st.sampled_from(MODELS), batch=st.booleans())
def test_billing_reference_breakdown_adds_up(u: Usage, model: str, batch: bool) -> None:
    card = ref.card_for(model)
    needs = {p for p, n in ref.token_counts(u).items() if n}
    rates = card.long_context_rates if ref.is_long_context(u, card) else card.rates
    if not needs <= set(rates) or (u.web_searches and "web_search" not in card.per_request):
        with pytest.raises(PriceError):
            ref.cost(u, card, BillingOptions(batch=batch))
        return
    result = ref.cost(u, card, BillingOptions(batch=batch))
    assert result.total == sum(result.breakdown.values())
    assert all(v > 0 for v in result.breakdown.values())


def test_billing_missing_rate_is_an_error() -> None:
    with pytest.raises(PriceError, match="cache_write_5m"):
        ref.cost(Usage(input_uncached=10, cache_write_5m=5), ref.card_for("gpt-5"))
    with pytest.raises(PriceError, match="priority"):
        ref.cost(Usage(input_uncached=10), ref.card_for("gpt-5-nano"), BillingOptions(service_tier="priority"))
    with pytest.raises(PriceError, match="web_search"):
        ref.cost(Usage(input_uncached=10, web_searches=1), ref.card_for("gpt-5"))


def test_billing_cards_are_dated_and_sourced() -> None:
    raw = json.loads(ref.PRICES_FILE.read_text())["cards"]
    for entry in raw:
        assert entry["source"].startswith("https://"), entry["model"]
        date.fromisoformat(entry["as_of"])
        date.fromisoformat(entry["valid_from"])


def test_billing_long_context_removed_for_4_6() -> None:
    before = ref.card_for("claude-sonnet-4-6", on=date(2026, 2, 20))
    after = ref.card_for("claude-sonnet-4-6", on=date(2026, 3, 15))
    u = Usage(input_uncached=300_000, output=1000)
    # before: 300000 * 6 + 1000 * 22.5 = 1822500 micro$; after: 300000 * 3 + 1000 * 15 = 915000 micro$
    assert ref.cost(u, before).total == Decimal("1.8225")
    assert ref.cost(u, after).total == Decimal("0.915")
    with pytest.raises(PriceError, match="2025"):
        ref.card_for("claude-sonnet-4-6", on=date(2025, 1, 1))


def test_billing_openai_272k_tier() -> None:
    card = ref.card_for("gpt-5.4")
    # 272000 is not above: 272000 * 2.5 + 100 * 15 = 681500 micro$; 272001 is: 272001 * 5 + 100 * 22.5
    assert ref.cost(Usage(input_uncached=272_000, output=100), card).total == Decimal("0.6815")
    assert ref.cost(Usage(input_uncached=272_001, output=100), card).total == Decimal("1.362255")


rows = st.lists(st.tuples(st.sampled_from(["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-5"]),
                          usages, st.booleans()), min_size=1, max_size=30)


@given(log=rows)
def test_billing_vectorized_log_equals_sum_of_reference(log: list[tuple[str, Usage, bool]]) -> None:
    cards = [ref.card_for(m) for m in sorted({m for m, _, _ in log})]
    expected = sum((ref.cost(u, ref.card_for(m), BillingOptions(batch=b)).total for m, u, b in log), Decimal(0))
    assert exact_sum(price_log(usage_frame(log), cards)) == expected


def _adapted(impl: BillingImpl, u: Usage) -> Usage:
    """``u`` without what the implementation declares it cannot price (so the property still runs)."""
    if not impl.web_search:
        u = Usage(**{**u.__dict__, "web_searches": 0})
    if not impl.cache_writes:
        u = Usage(**{**u.__dict__, "cache_write_5m": 0, "cache_write_1h": 0})
    return u


@given(a=usages, b=usages)
def test_billing_cost_additive_over_requests(billing_impl: BillingImpl, a: Usage, b: Usage) -> None:
    """Pricing two requests one by one adds up to the reference's price of the pair (on the impl's own card
    where it brings its own prices)."""
    a, b = _adapted(billing_impl, a), _adapted(billing_impl, b)
    model = next((m for m in ("claude-sonnet-4-5", "claude-sonnet-4") if not billing_impl.unsupported(
        BillingCase(m, a)) and not billing_impl.unsupported(BillingCase(m, b))), None)
    if model is None:
        pytest.skip("; ".join(billing_impl.unsupported(BillingCase("claude-sonnet-4", a))
                              + billing_impl.unsupported(BillingCase("claude-sonnet-4", b))))
    card = billing_impl.price_card(model) if billing_impl.own_prices else ref.card_for(model)
    expected = ref.cost(a, card).total + ref.cost(b, card).total
    got = billing_impl.cost(a, model), billing_impl.cost(b, model)
    if billing_impl.exact:
        assert isinstance(got[0], Decimal) and isinstance(got[1], Decimal) and got[0] + got[1] == expected
    else:
        assert agrees(float(got[0]) + float(got[1]), expected, exact=False)


def test_billing_creation_total_without_ttl_is_5_minute_rate() -> None:
    from reference.usage import parse

    usage = parse("anthropic.messages", {"usage": {"input_tokens": 3, "cache_creation_input_tokens": 1500,
                                                   "output_tokens": 10}})
    assert usage is not None
    # 3 * 3 + 1500 * 3.75 (5-minute write) + 10 * 15 = 9 + 5625 + 150 = 5784 micro$
    assert ref.cost(usage, ref.card_for("claude-sonnet-4-5")).total == Decimal("0.005784")

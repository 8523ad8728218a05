"""The billing area, declared: invoices on the dated cards, the libraries' own logic, monotonicity, additivity,
price tables, bad calls and benchmarks.

- ``price.invoice``: every hand-computed request (``suite.billing.cases.HAND``) is pinned; drawn requests cover
  every card, its first and last days, every id a response may carry (dated, prefixed), batch, the tiers
  and the tiers responses report, counts up to 10¹⁵;
- ``price.logic``: for implementations with their own prices, the library's table pushed through the reference;
- ``monotone``, ``additive``;
- ``price_data.<model>``: the library's table against the cards, bucket by bucket, on both sides of every
  price change (records in the verdict, ``suite.billing.check.price_data_records``);
- error inputs: an unknown paid model id and an unknown usage must raise, never price at $0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from impls.base import declared_reasons
from impls.billing.api import AS_OF, FEATURES, BillingCase, BillingImpl, PriceDataCase
from reference.billing import BillingOptions
from reference.usage import Usage
from suite.billing.cases import HAND, MODELS, pairs, requests
from suite.billing.check import check_additive, check_invoice, check_logic, check_monotone, check_price_data
from suite.billing.logs import synthetic_log
from suite.engine.area import Area, Benchmark, ErrorInput, Example, Property
from suite.engine.verdict import raises, verdict


def _own_prices(impl: BillingImpl) -> list[str]:
    return [] if impl.own_prices else [f"{impl.name} prices from the reference cards: price.invoice is its logic check"]


PROPERTIES = (
    Property("price.invoice", requests(), check_invoice, pinned=HAND),
    Property("price.logic", requests(), check_logic, pinned=HAND, applies=_own_prices),
    Property("monotone", requests(), check_monotone, pinned=HAND[:6]),
    Property("additive", pairs(), check_additive),
)
EXAMPLES = tuple(Example(f"price_data.{m}", PriceDataCase(m), check_price_data) for m in MODELS)

UNKNOWN_ID = "claude-opus-9-20300101"
PAID = Usage(input_uncached=1000, output=100)


def _unknown_model(impl: BillingImpl) -> Any:
    return verdict(f"{UNKNOWN_ID}: {PAID}", raises("error", lambda: impl.cost(PAID, UNKNOWN_ID), (Exception,)))


def _usage_unknown(impl: BillingImpl) -> Any:
    return verdict("usage None (an interrupted stream) on claude-haiku-4-5",
                   raises("error", lambda: impl.cost(None, "claude-haiku-4-5"), (Exception,)))


def _lacks(feature: str) -> Any:
    return lambda impl: [impl.lacks[feature]] if feature in impl.lacks else []


ERRORS = (ErrorInput("unknown_model_raises", _unknown_model),
          ErrorInput("usage_unknown_raises", _usage_unknown, _lacks("usage_unknown")))


# ---- benchmarks ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RequestsBench:
    requests: int

    def features(self) -> set[str]:
        return set()


@dataclass(frozen=True)
class LogBench:
    rows: int

    def features(self) -> set[str]:
        return {"log"}


BENCH_MODELS = ("gpt-5", "claude-opus-4-1", "gemini-2.5-pro")  # priced by every library installed here


def bench_requests(n: int) -> list[BillingCase]:
    """Requests to three models; every fourth a batch request (so batch-only entry points have some)."""
    return [BillingCase(BENCH_MODELS[i % 3], Usage(input_uncached=1000 + 37 * i, cache_read=512 * (i % 4),
                                                   output=200 + i), BillingOptions(batch=i % 4 == 3), on=AS_OF)
            for i in range(n)]


def _prepare_requests(impl: BillingImpl, case: RequestsBench) -> tuple[Any, Any, dict[str, int]]:
    """``case.requests`` requests, cycling through those of the sweep the implementation prices at all."""
    supported = [r for r in bench_requests(case.requests) if not declared_reasons(impl, r)]
    if not supported:
        raise ValueError(f"{impl.name} prices none of the benchmark requests (models {BENCH_MODELS})")
    batch = [supported[i % len(supported)] for i in range(case.requests)]

    def run(*requests: BillingCase) -> None:
        for r in requests:
            impl.cost(r.usage, r.model, r.options, r.on)

    return (lambda: batch), run, {"items": case.requests}


def _prepare_log(impl: BillingImpl, case: LogBench) -> tuple[Any, Any, dict[str, int]]:
    log = synthetic_log(case.rows)
    return (lambda: (log,)), impl.price_frame, {"items": case.rows}


LOG_ROWS = [10_000, 200_000] + ([int(os.environ["TOKENSPEC_BILLING_LOG_ROWS"])]
                                  if os.environ.get("TOKENSPEC_BILLING_LOG_ROWS") else [])
BENCHMARKS = (
    Benchmark("requests", [RequestsBench(n) for n in (10, 50)], _prepare_requests, x="requests",
              metrics=("per_second",), baseline={"cpu": "billing-reference", "cuda": "billing-reference"}),
    Benchmark("log", [LogBench(n) for n in LOG_ROWS], _prepare_log, x="rows", metrics=("per_second",),
              baseline={"cpu": "billing-vectorized", "cuda": "billing-vectorized"}),
)

AREA = Area(id="billing", impl_type=BillingImpl, features=FEATURES, properties=PROPERTIES, examples=EXAMPLES,
            errors=ERRORS, benchmarks=BENCHMARKS)

"""Benchmarks: requests priced per second by each implementation, and vectorized pricing of a usage log.

The log benchmark prices TOKENSPEC_BILLING_LOG_ROWS rows (default 1,000,000 in CI; set it to 10000000 for
the issue's 10M-row figure).
"""

from __future__ import annotations

import os
import random
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from impls.billing.api import BillingCase, BillingImpl
from impls.billing.vectorized import COUNT_COLUMNS, exact_sum, price_log
from reference import billing as ref
from reference.billing import BillingOptions
from reference.usage import Usage
from suite.bench.harness import measure, record

MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-5")


def _requests(n: int = 200) -> list[tuple[Usage, str, BillingOptions]]:
    """Anthropic requests with cache writes, and every fourth an OpenAI one (no cache writes there)."""
    rng = random.Random(0)
    out = []
    for i in range(n):
        openai = i % 4 == 3
        usage = Usage(input_uncached=rng.randrange(0, 300_000), cache_read=rng.randrange(0, 100_000),
                      cache_write_5m=0 if openai else rng.randrange(0, 10_000), output=rng.randrange(0, 8000))
        out.append((usage, "gpt-5" if openai else MODELS[i % 3], BillingOptions()))
    return out


def test_billing_bench_requests_per_second(billing_impl: BillingImpl, benchmark: Any) -> None:
    requests = [r for r in _requests() if not billing_impl.unsupported(BillingCase(r[1], r[0], r[2]))]
    if not requests:
        pytest.skip(f"{billing_impl.name} supports none of the benchmark requests")

    def price_all() -> None:
        for usage, model, options in requests:
            billing_impl.cost(usage, model, options)

    benchmark.group = "billing-requests"
    seconds = measure(benchmark, lambda: (), price_all, "cpu", warmup=1, rounds=3)
    record(benchmark, impl=billing_impl.name, area="billing", case={"requests": len(requests)}, seconds=seconds,
           items=len(requests))


def usage_log(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {"model": pd.Categorical.from_codes(rng.integers(0, len(MODELS), rows), MODELS)}
    highs = {"input_uncached": 300_000, "cache_read": 100_000, "cache_write_5m": 10_000, "cache_write_1h": 10_000,
             "output": 8000}
    for column in COUNT_COLUMNS:
        data[column] = rng.integers(0, highs[column], rows, dtype=np.int64)
    data["web_searches"] = rng.integers(0, 3, rows, dtype=np.int64)
    data["batch"] = rng.random(rows) < 0.3
    return pd.DataFrame(data)


def _usage_of_row(row: pd.Series) -> Usage:
    return Usage(input_uncached=int(row["input_uncached"]), cache_read=int(row["cache_read"]),
                 cache_write_5m=int(row["cache_write_5m"]), cache_write_1h=int(row["cache_write_1h"]),
                 output=int(row["output"]), web_searches=int(row["web_searches"]))


def test_billing_bench_vectorized_log(benchmark: Any) -> None:
    rows = int(os.environ.get("TOKENSPEC_BILLING_LOG_ROWS", 1_000_000))
    log = usage_log(rows)
    cards = [ref.card_for(m) for m in MODELS]
    total = exact_sum(price_log(log, cards))
    benchmark.group = "billing-log"
    seconds = measure(benchmark, lambda: (), lambda: exact_sum(price_log(log, cards)), "cpu", warmup=1, rounds=3)
    record(benchmark, impl="billing-vectorized", area="billing", case={"rows": rows}, seconds=seconds, items=rows)
    # spot-check 200 rows against the scalar Decimal reference (the full check is test_billing_cost's property)
    sample = log.sample(200, random_state=0)
    expected = sum((ref.cost(_usage_of_row(r), ref.card_for(r["model"]), BillingOptions(batch=bool(r["batch"]))).total
                    for _, r in sample.iterrows()), Decimal(0))
    assert exact_sum(price_log(sample, cards)) == expected
    assert total > 0

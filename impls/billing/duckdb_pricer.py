"""The vectorized pricer run inside DuckDB, as an Arrow UDF over a registered table (``arrow_log.register_duckdb``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd

from impls.base import Requirements
from impls.billing.api import BillingCase, BillingImpl
from impls.billing.vectorized import VectorizedPricer, usage_frame
from impls.registry import register
from reference import billing as ref
from reference.billing import BillingOptions
from reference.usage import Usage

QUERY = ("SELECT sum(price_usd(model, input_uncached, cache_read, cache_write_5m, cache_write_1h, output, "
         "web_searches, batch)) FROM log")


class DuckdbPricer(BillingImpl):
    name = "billing-duckdb"
    description = "the vectorized pricer as a DuckDB Arrow UDF: SELECT sum(price_usd(...)) FROM log"
    requires = Requirements(modules=("duckdb", "pyarrow"))
    prices_logs = True
    lacks = {**VectorizedPricer.lacks,
             "reported_tier": "the UDF takes the batch flag, not the tier a response reports"}
    call_cost_s = 2e-2  # a query per call (measured under load)

    def __init__(self) -> None:
        self._connections: dict[date | None, Any] = {}

    def unsupported_request(self, case: BillingCase) -> list[str]:
        return VectorizedPricer.unsupported_request(self, case)  # type: ignore[arg-type]

    def _connection(self, on: date | None) -> Any:
        """One DuckDB connection with the UDF registered for the date (kept: a query per call is the cost)."""
        if on not in self._connections:
            import duckdb

            from impls.billing.arrow_log import register_duckdb

            con = duckdb.connect()
            register_duckdb(con, on=on)
            self._connections[on] = con
        return self._connections[on]

    def _sum(self, log: pd.DataFrame, on: date | None = None) -> Decimal:
        import pyarrow as pa

        con = self._connection(on)
        columns = ["model", "input_uncached", "cache_read", "cache_write_5m", "cache_write_1h", "output",
                   "web_searches", "batch"]
        con.register("log", pa.Table.from_pandas(log[columns].astype({"model": str}), preserve_index=False))
        try:
            ((total,),) = con.sql(QUERY).fetchall()
        finally:
            con.unregister("log")
        return Decimal(total) if total is not None else Decimal(0)

    def cost(self, usage: Usage | None, model: str, options: BillingOptions = ref.STANDARD,
             on: date | None = None) -> Decimal:
        if usage is None:
            raise ref.UsageUnknown("usage unknown: a log row needs a usage record")
        return self.cost_many([BillingCase(model, usage, options, on)])

    def cost_many(self, requests: Sequence[BillingCase]) -> Decimal:
        """One query per request date (the UDF prices on one date's cards)."""
        days = sorted({r.day for r in requests})
        return sum((self._sum(usage_frame([r for r in requests if r.day == d]), d) for d in days), Decimal(0))

    def price_frame(self, log: Any) -> Decimal:
        return self._sum(log)


register(DuckdbPricer())

"""A log that does not fit in memory: 100M rows of Parquet priced chunk by chunk with peak memory under 2 GiB.

The full size is opt-in (TOKENSPEC_BILLING_BIG_LOG=1, rows from TOKENSPEC_BILLING_BIG_LOG_ROWS, default 100M; it
needs ~1.4 GB of disk and about a minute). CI runs the same code path on 300K rows. Each step runs in a fresh process so
the peak RSS measured is the pricing's alone.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from impls.billing.vectorized import price_log
from suite.billing.big_log import run
from suite.billing.logs import chunks

GIB = 2**30
BIG = os.environ.get("TOKENSPEC_BILLING_BIG_LOG") == "1"
BIG_ROWS = int(os.environ.get("TOKENSPEC_BILLING_BIG_LOG_ROWS", 100_000_000))


def _price(tmp_path: Path, rows: int, batch: int) -> dict[str, object]:
    path = tmp_path / "log.parquet"
    run("write", str(path), str(rows))
    return run("price", str(path), str(batch))


def test_big_log_code_path_small(tmp_path: Path, record_property: Any) -> None:
    rows = 300_000
    measured = _price(tmp_path, rows, 65_536)
    want = sum((price_log(frame).total() for frame in chunks(rows)), Decimal(0))
    record_property("big_log", measured)
    assert measured["rows"] == rows and Decimal(str(measured["total"])) == want
    assert int(measured["peak_rss_bytes"]) < 2 * GIB  # type: ignore[call-overload]


@pytest.mark.skipif(not BIG, reason="the 100M-row log is opt-in: set TOKENSPEC_BILLING_BIG_LOG=1 (needs ~1.4 GB of "
                                    "disk and about a minute); CI runs test_big_log_code_path_small")
def test_big_log(tmp_path_factory: pytest.TempPathFactory, record_property: Any) -> None:
    measured = _price(tmp_path_factory.mktemp("big"), BIG_ROWS, 1 << 20)
    record_property("big_log", measured)
    print(f"\n{BIG_ROWS:,} rows: {measured['rows_per_s']:,.0f} rows/s, peak RSS "
          f"{int(measured['peak_rss_bytes']) / GIB:.2f} GiB, total ${measured['total']}")  # type: ignore[call-overload]
    assert measured["rows"] == BIG_ROWS
    assert int(measured["peak_rss_bytes"]) < 2 * GIB  # type: ignore[call-overload]

"""The vectorized pricer on whole logs: exact on every row (up to 10¹⁵ tokens per field), refusing bad rows by
row and column, and the same function on Parquet read in chunks, JSONL of raw responses, Arrow batches, DuckDB."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impls._bodies import body_for, stream_for
from impls.billing.api import BillingCase
from impls.billing.arrow_log import decimal_array, price_batches, price_jsonl, price_parquet, register_duckdb
from impls.billing.vectorized import MAX_COUNT, LogError, price_log, usage_frame
from reference import billing as ref
from reference.usage import Usage
from suite.billing.cases import requests
from suite.billing.logs import synthetic_log, write_parquet

pa = pytest.importorskip("pyarrow")


def _reference(rows: list[BillingCase]) -> list[Decimal]:
    return [ref.price(r.usage, r.model, r.day, r.options).total for r in rows]


def _vectorizable(case: BillingCase) -> bool:
    return case.resolved.service_tier in ref.STANDARD_TIERS


logs = st.lists(requests().filter(_vectorizable), min_size=1, max_size=25)


@settings(max_examples=15)
@given(rows=logs)
def test_every_row_equals_the_reference(rows: list[BillingCase]) -> None:
    """Mixed models, ids, dates, batch, reported tiers, counts up to 10**15 (maxima included): exact per row."""
    priced = price_log(usage_frame(rows))
    want = _reference(rows)
    assert [priced.row(i) for i in range(len(rows))] == want
    assert priced.total() == sum(want, Decimal(0))
    assert [Decimal(str(v)) for v in decimal_array(priced).to_pylist()] == want


def test_the_maxima_exactly() -> None:
    """10**15 of every part on Opus 4.1 (no long-context tier): 10**15 * (15 + 1.5 + 18.75 + 30 + 75) / 10**6 $
    plus 10**12 searches at $0.01."""
    top = Usage(input_uncached=MAX_COUNT, cache_read=MAX_COUNT, cache_write_5m=MAX_COUNT, cache_write_1h=MAX_COUNT,
                output=MAX_COUNT, web_searches=10**12)
    priced = price_log(usage_frame([BillingCase("claude-opus-4-1", top)]))
    assert priced.row(0) == Decimal(10**9) * Decimal("140.25") + Decimal(10**10)


BAD = {  # column value -> what the error must name
    "negative": (-1, "negative"), "fractional": (1.5, "whole number"), "nan": (float("nan"), "missing"),
    "string": ("12", "not a token count"), "bool": (True, "not a token count"), "too_big": (MAX_COUNT + 1, "above"),
}


@pytest.mark.parametrize("bad", sorted(BAD))
def test_an_invalid_count_names_the_row_and_the_column(bad: str) -> None:
    value, says = BAD[bad]
    log = usage_frame([BillingCase("claude-haiku-4-5", Usage(input_uncached=10, output=1))] * 4)
    column = log["cache_read"].astype(object)
    column[2] = value
    log["cache_read"] = column if bad in ("string", "bool") else pd.array(column.tolist())
    with pytest.raises(LogError, match=rf"row 2, column 'cache_read'.*{says}"):
        price_log(log)


def test_an_unknown_model_names_the_row_and_the_closest_ids() -> None:
    log = usage_frame([BillingCase("claude-haiku-4-5", Usage(output=1))] * 3)
    log["model"] = ["claude-haiku-4-5", "claude-haiku-4-5", "claude-haiku-4-5-2025"]
    with pytest.raises(LogError, match=r"row 2, column 'model'.*claude-haiku-4-5-20251001"):
        price_log(log)


def test_a_missing_column_is_named() -> None:
    with pytest.raises(LogError, match="cache_write_1h"):
        price_log(pd.DataFrame({"model": ["gpt-5"], "input_uncached": [1], "cache_read": [0], "cache_write_5m": [0],
                                "output": [1]}))


def test_parquet_in_chunks_equals_in_memory(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "log.parquet", 30_000, chunk=7_000)
    whole = price_log(synthetic_log(7_000, 0)).total() + price_log(synthetic_log(7_000, 7_000)).total() + \
        price_log(synthetic_log(7_000, 14_000)).total() + price_log(synthetic_log(7_000, 21_000)).total() + \
        price_log(synthetic_log(2_000, 28_000)).total()
    total = price_parquet(path, batch_size=4_096, out=tmp_path / "priced.parquet")
    assert (total.rows, total.total) == (30_000, whole)
    import pyarrow.parquet as pq

    priced = pq.read_table(tmp_path / "priced.parquet")
    assert sum(priced.column("cost_usd").to_pylist()) == whole


def test_a_bad_row_in_a_later_chunk_is_named_by_its_row_in_the_file(tmp_path: Path) -> None:
    log = synthetic_log(10_000)
    log.loc[9_001, "output"] = -5
    pa.parquet.write_table(pa.Table.from_pandas(log, preserve_index=False), tmp_path / "bad.parquet")
    with pytest.raises(LogError, match=r"row 9001, column 'output'.*-5"):
        price_parquet(tmp_path / "bad.parquet", batch_size=1_000)


def test_arrow_batches_in_priced_batches_out() -> None:
    table = pa.Table.from_pandas(synthetic_log(5_000), preserve_index=False)
    out = list(price_batches(table.to_batches(max_chunksize=1_024)))
    assert sum(b.num_rows for b in out) == 5_000
    assert sum(sum(b.column("cost_usd").to_pylist()) for b in out) == price_log(synthetic_log(5_000)).total()


def test_under_duckdb(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    path = write_parquet(tmp_path / "log.parquet", 20_000, chunk=5_000)
    con = duckdb.connect()
    register_duckdb(con)
    query = (f"SELECT sum(price_usd(model, input_uncached, cache_read, cache_write_5m, cache_write_1h, output, "
             f"web_searches, batch)), count(*) FROM read_parquet('{path}')")
    ((total, rows),) = con.sql(query).fetchall()
    assert rows == 20_000 and total == price_parquet(path).total


def _jsonl_lines(tmp_path: Path) -> tuple[Path, Decimal]:
    rows = [("claude-sonnet-4-5-20250929", Usage(input_uncached=50, cache_read=10_000, cache_write_1h=2048,
                                                 output=500, web_searches=2)),
            ("gpt-5-2025-08-07", Usage(input_uncached=86, cache_read=1920, output=300, reasoning=192)),
            ("gemini-2.5-flash", Usage(input_uncached=8, output=500, reasoning=380)),
            ("deepseek-chat", Usage(input_uncached=220, cache_read=1280, output=120))]
    lines: list[Any] = [body_for(u, m)[1] for m, u in rows]
    lines.append(stream_for(Usage(input_uncached=25, cache_read=4000, output=95), "claude-haiku-4-5")[1])
    lines.append({"body": body_for(Usage(input_uncached=1000, output=200), "claude-haiku-4-5")[1], "batch": True,
                  "date": "2026-03-15"})
    lines.append([{"type": "message_start", "message": {"model": "claude-haiku-4-5",
                                                        "usage": {"input_tokens": 5, "output_tokens": 1}}}])
    want = sum((ref.price(u, m).total for m, u in rows), Decimal(0))
    want += ref.price(Usage(input_uncached=25, cache_read=4000, output=95), "claude-haiku-4-5").total
    want += ref.price(Usage(input_uncached=1000, output=200), "claude-haiku-4-5", options=ref.BillingOptions(True)).total
    path = tmp_path / "responses.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path, want


def test_jsonl_of_raw_responses(tmp_path: Path) -> None:
    path, want = _jsonl_lines(tmp_path)
    total = price_jsonl(path, chunk_rows=2)
    assert (total.rows, total.total, total.unknown, total.unknown_lines) == (6, want, 1, [7])


def test_jsonl_bad_line_names_the_line_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = json.dumps(body_for(Usage(input_uncached=1, output=1), "gpt-5")[1])
    bad = json.dumps({"object": "chat.completion", "model": "gpt-5",
                      "usage": {"prompt_tokens": -1, "completion_tokens": 1}})
    path.write_text(f"{good}\n{good}\n{bad}\n")
    with pytest.raises(LogError, match=r"line 3, field 'usage.prompt_tokens'"):
        price_jsonl(path)


def test_jsonl_row_error_is_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "unknown.jsonl"
    good = json.dumps(body_for(Usage(input_uncached=1, output=1), "gpt-5")[1])
    path.write_text(f"{good}\n\n{json.dumps({'body': json.loads(good), 'model': 'gpt-9'})}\n")
    with pytest.raises(LogError, match=r"line 3, column 'model'.*gpt-9"):
        price_jsonl(path)


def test_rows_dated_across_a_price_change() -> None:
    """Sonnet 4.6 at 300K input: the long-context tier on 2026-02-28, none from 2026-03-01."""
    rows = [BillingCase("claude-sonnet-4-6", Usage(input_uncached=300_000, output=1000), on=d)
            for d in (date(2026, 2, 28), date(2026, 3, 1))]
    priced = price_log(usage_frame(rows))
    assert [priced.row(0), priced.row(1)] == [Decimal("1.8225"), Decimal("0.915")]
    assert np.all(priced.normalized().pico < 10**6) and priced.normalized().total() == priced.total()

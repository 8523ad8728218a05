"""Pricing logs too large for memory, and logs as Arrow: Parquet read in chunks, JSONL of raw responses, record
batches in and out (the same function runs under DuckDB, Polars or Spark's ``mapInArrow``), a DuckDB UDF.

Every chunk goes through :func:`impls.billing.vectorized.price_log` (exact on every row or refusing it, naming
the row of the whole log); totals are summed exactly. A JSONL line whose response carries no usage is not priced
at zero: it is counted as *usage unknown* and its line number kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from impls.billing.api import AS_OF
from impls.billing.vectorized import COUNT_COLUMNS, PICO, SPLIT, LogError, PricedLog, _exact_sum, price_log
from reference import usage as ref_usage

COST_COLUMN = "cost_usd"
COLUMNS = ("model", *COUNT_COLUMNS, "web_searches", "batch", "service_tier", "date")
KEEP_UNKNOWN = 20  # line numbers of unknown usages kept in a total


@dataclass
class LogTotal:
    """What a log cost: rows priced, their exact total, and the lines whose usage is unknown (not priced)."""

    rows: int = 0
    micro: int = 0
    pico: int = 0
    unknown: int = 0
    unknown_lines: list[int] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return (Decimal(self.micro) * SPLIT + self.pico) / PICO

    def add(self, priced: PricedLog) -> None:
        self.micro += _exact_sum(priced.micro)
        self.pico += _exact_sum(priced.pico)
        self.rows += len(priced)


def decimal_array(priced: PricedLog) -> Any:
    """Each row's exact cost as an Arrow decimal128(38, 12) array (dollars, 12 decimals), built from the int64s."""
    import pyarrow as pa

    low, high = priced.unscaled()
    words = np.empty(2 * len(priced), dtype=np.uint64)
    words[0::2], words[1::2] = low, high
    return pa.Array.from_buffers(pa.decimal128(38, 12), len(priced), [None, pa.py_buffer(words)])


def _frame(batch: Any) -> pd.DataFrame:
    """An Arrow record batch or table as the pricer's DataFrame (only the columns it reads; numbers zero-copy,
    the model ids dictionary-encoded once)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    data: dict[str, Any] = {}
    for column in (c for c in COLUMNS if c in batch.schema.names):
        values = batch.column(column)
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if values.null_count and column not in ("service_tier", "date"):
            row = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
            raise LogError(f"row {row}, column {column!r}: missing value")
        if column == "model":
            encoded = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
            names = pd.Index([str(m) for m in encoded.dictionary.to_pylist()], dtype=object)
            data[column] = pd.Categorical.from_codes(encoded.indices.to_numpy(zero_copy_only=False), categories=names)
        elif column in ("service_tier", "date"):
            data[column] = values.to_pandas()
        else:
            data[column] = values.to_numpy(zero_copy_only=False)
    return pd.DataFrame(data)


def price_batch(batch: Any, on: date | None = None, row_offset: int = 0) -> Any:
    """A record batch (or table) in, the same rows out with ``cost_usd`` (decimal128(38, 12)) appended."""
    import pyarrow as pa

    try:
        priced = price_log(_frame(batch), on)
    except LogError as err:
        raise err.shifted(row_offset) from None
    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    out = table.append_column(COST_COLUMN, decimal_array(priced))
    return out.combine_chunks().to_batches()[0] if not isinstance(batch, pa.Table) else out


def price_batches(batches: Iterable[Any], on: date | None = None) -> Iterator[Any]:
    """``mapInArrow``-style: an iterator of record batches in, priced record batches out."""
    offset = 0
    for batch in batches:
        yield price_batch(batch, on, offset)
        offset += batch.num_rows


def price_parquet(path: Path | str, on: date | None = None, batch_size: int = 1 << 20,
                  out: Path | str | None = None) -> LogTotal:
    """A Parquet log priced ``batch_size`` rows at a time (never all of it in memory); with ``out``, the priced
    rows are written there as Parquet too."""
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path)
    names = [c for c in COLUMNS if c in source.schema_arrow.names]
    total = LogTotal()
    writer = None
    # one row group at a time: batches that straddle row groups make pyarrow's reader hold on to buffers
    # (its allocation grew by about 12 MB per million rows, measured with pyarrow 26)
    batches = (batch for group in range(source.num_row_groups)
               for batch in source.iter_batches(batch_size=batch_size, row_groups=[group], columns=names))
    try:
        for batch in batches:
            try:
                priced = price_log(_frame(batch), on)
            except LogError as err:
                raise err.shifted(total.rows) from None
            total.add(priced)
            if out is not None:
                import pyarrow as pa

                table = pa.Table.from_batches([batch]).append_column(COST_COLUMN, decimal_array(priced))
                writer = writer or pq.ParquetWriter(out, table.schema)
                writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return total


def _row_of(line: int, record: Any) -> dict[str, Any] | None:
    """One JSONL record → a log row, or None when its usage is unknown. A record is a raw response body or
    stream capture, or an object {"body": ..., "format"?, "model"?, "date"?, "batch"?}."""
    envelope = record if isinstance(record, dict) and "body" in record else {"body": record}
    body = envelope["body"]
    try:
        fmt = envelope.get("format") or ref_usage.detect_format(body)
        usage = ref_usage.parse(fmt, body)
    except (ref_usage.UsageError, ValueError) as err:
        raise LogError(f"line {line}, field {getattr(err, 'field', 'format')!r}: {err}") from None
    if usage is None:
        return None
    model = envelope.get("model") or ref_usage.model_of(body)
    if not model:
        raise LogError(f"line {line}, field 'model': the response names no model and the line gives none")
    return {"model": model, **{c: getattr(usage, c) for c in (*COUNT_COLUMNS, "web_searches")},
            "batch": bool(envelope.get("batch", False)), "service_tier": usage.service_tier,
            "date": envelope.get("date")}


def price_jsonl(path: Path | str, on: date | None = None, chunk_rows: int = 100_000) -> LogTotal:
    """A JSONL file of raw responses, parsed by the reference parsers and priced ``chunk_rows`` lines at a time."""
    total = LogTotal()
    rows: list[dict[str, Any]] = []
    lines: list[int] = []

    def flush() -> None:
        if rows:
            frame = pd.DataFrame(rows)
            frame["date"] = pd.to_datetime(frame["date"].fillna((on or AS_OF).isoformat()))
            try:
                total.add(price_log(frame, on))
            except LogError as err:  # name the file's line, not the chunk's row
                found = re.match(r"row (\d+), (.*)", str(err), re.S)
                raise (LogError(f"line {lines[int(found[1])]}, {found[2]}") if found else err) from None
            rows.clear()
            lines.clear()

    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, 1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as err:
                raise LogError(f"line {number}, field 'body': not JSON ({err.msg} at column {err.colno})") from None
            row = _row_of(number, record)
            if row is None:
                total.unknown += 1
                if len(total.unknown_lines) < KEEP_UNKNOWN:
                    total.unknown_lines.append(number)
                continue
            rows.append(row)
            lines.append(number)
            if len(rows) >= chunk_rows:
                flush()
    flush()
    return total


def register_duckdb(con: Any, name: str = "price_usd", on: date | None = None) -> None:
    """``name(model, input_uncached, cache_read, cache_write_5m, cache_write_1h, output, web_searches, batch)`` as
    a vectorized (Arrow) DuckDB function returning DECIMAL(38, 12) dollars."""
    import duckdb
    import pyarrow as pa
    from duckdb import sqltypes as types

    def udf(model: Any, input_uncached: Any, cache_read: Any, cache_write_5m: Any, cache_write_1h: Any, output: Any,
            web_searches: Any, batch: Any) -> Any:  # DuckDB reads the parameters off the signature
        table = pa.table({"model": model, "input_uncached": input_uncached, "cache_read": cache_read,
                          "cache_write_5m": cache_write_5m, "cache_write_1h": cache_write_1h, "output": output,
                          "web_searches": web_searches, "batch": batch})
        return price_batch(table, on).column(COST_COLUMN)

    con.execute("SET enable_progress_bar = false")
    con.create_function(name, udf, [types.VARCHAR, *[types.BIGINT] * 6, types.BOOLEAN], duckdb.decimal_type(38, 12),
                        type="arrow")

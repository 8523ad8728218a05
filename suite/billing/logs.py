"""Synthetic usage logs: in memory (pandas), as Parquet written in chunks, as JSONL of raw responses.

The rows are drawn with numpy from a fixed seed over three models with different prices; a tenth of the rows
are dated before Sonnet 4.6's March 2026 change, and 30 % are batch requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from impls.billing.vectorized import COUNT_COLUMNS

LOG_MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5-20251001", "claude-opus-4-1")
HIGHS = {"input_uncached": 300_000, "cache_read": 100_000, "cache_write_5m": 10_000, "cache_write_1h": 10_000,
         "output": 8000}


def synthetic_log(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {"model": pd.Categorical.from_codes(rng.integers(0, len(LOG_MODELS), rows), LOG_MODELS)}
    for column in COUNT_COLUMNS:
        data[column] = rng.integers(0, HIGHS[column], rows, dtype=np.int64)
    data["web_searches"] = rng.integers(0, 3, rows, dtype=np.int64)
    data["batch"] = rng.random(rows) < 0.3
    return pd.DataFrame(data)


def chunks(rows: int, chunk: int = 1_000_000, seed: int = 0) -> Iterator[pd.DataFrame]:
    for start in range(0, rows, chunk):
        yield synthetic_log(min(chunk, rows - start), seed + start)


def write_parquet(path: Path, rows: int, chunk: int = 1_000_000, seed: int = 0) -> Path:
    """``rows`` rows written chunk by chunk (never all in memory), dictionary-encoded model ids."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for frame in chunks(rows, chunk, seed):
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return path

"""A usage log larger than memory, priced from Parquet in chunks, measured in a fresh process (rows/s, peak RSS).

    python -m suite.billing.big_log write PATH ROWS      # writes ROWS synthetic rows, 1M at a time
    python -m suite.billing.big_log price PATH [BATCH]   # prints {"rows", "seconds", "rows_per_s", "peak_rss_bytes", "total"}
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def price_file(path: Path, batch_size: int = 1 << 20) -> dict[str, Any]:
    from impls.billing.arrow_log import price_parquet

    started = time.perf_counter()
    total = price_parquet(path, batch_size=batch_size)
    seconds = time.perf_counter() - started
    return {"rows": total.rows, "seconds": seconds, "rows_per_s": total.rows / seconds,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "total": str(total.total)}


def run(*args: str) -> dict[str, Any]:
    """One step in a fresh interpreter (so its peak RSS is its own)."""
    done = subprocess.run([sys.executable, "-m", "suite.billing.big_log", *args], cwd=ROOT, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> None:
    command, path = argv[0], Path(argv[1])
    if command == "write":
        from suite.billing.logs import write_parquet

        started = time.perf_counter()
        write_parquet(path, int(argv[2]))
        print(json.dumps({"rows": int(argv[2]), "seconds": time.perf_counter() - started,
                          "bytes": path.stat().st_size}))
    elif command == "price":
        print(json.dumps(price_file(path, int(argv[2]) if len(argv) > 2 else 1 << 20)))
    else:
        raise SystemExit(f"usage: python -m suite.billing.big_log write PATH ROWS | price PATH [BATCH]; got {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])

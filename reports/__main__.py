"""The main job: validate every available implementation, run the benchmarks, store the run, write the report.

    python -m reports                      # conformance + CPU benchmarks → new run → report.html
    python -m reports --from-store         # the report from stored runs alone (no tests run)
    python -m reports -- -k attention      # extra pytest arguments after --
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from reports.html import render
from reports.store import DEFAULT_ROOT, load_runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=DEFAULT_ROOT, help="results store (default: reports/runs)")
    parser.add_argument("--out", type=Path, default=Path("report.html"), help="where to write the HTML report")
    parser.add_argument("--from-store", nargs="*", type=Path, metavar="DIR",
                        help="build the report from stored runs (these directories, or the whole store)")
    parser.add_argument("--last", type=int, default=5, help="how many of the newest runs the report shows")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)

    status = 0
    if args.from_store is None:
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--store", str(args.store),
                   "--benchmark-columns=median,ops,rounds", "-o", "console_output_style=progress", *args.pytest_args]
        print("tokenspec: running", " ".join(command), flush=True)
        started = time.monotonic()
        status = subprocess.call(command)
        print(f"tokenspec: pytest finished in {time.monotonic() - started:.0f} s with exit code {status}", flush=True)
    roots = args.from_store or [args.store]
    runs, errors = load_runs(roots)
    for error in errors:
        print(f"tokenspec: skipped unreadable run: {error}", file=sys.stderr)
    runs = runs[-args.last:] if args.last else runs
    args.out.write_text(render(runs, errors))
    print(f"tokenspec: report with {len(runs)} run(s) written to {args.out.resolve()}")
    return 0 if status in (0, 1) or args.from_store is not None else status


if __name__ == "__main__":
    raise SystemExit(main())

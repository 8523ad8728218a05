"""The main job: validate every available implementation, run the benchmarks, store the run, write the report.

    python -m reports                      # conformance + CPU benchmarks → new run → report.html
    python -m reports --from-store         # the report from stored runs alone (no tests run)
    python -m reports -- -k attention      # extra pytest arguments after --
    python -m reports --compare RUN_A RUN_B [--threshold 10]
                                           # per-case median ratio B/A; exit 1 when a case is more than
                                           # threshold % slower (pytest-benchmark's median:N% check)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from reports.benchviews import format_seconds
from reports.html import DEFAULT_THRESHOLD_PERCENT, case_text, comparison, render
from reports.store import DEFAULT_ROOT, Run, RunLoadError, find_run, load_runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=DEFAULT_ROOT, help="results store (default: reports/runs)")
    parser.add_argument("--out", type=Path, default=Path("report.html"), help="where to write the HTML report")
    parser.add_argument("--from-store", nargs="*", type=Path, metavar="DIR",
                        help="build the report from stored runs (these directories, or the whole store)")
    parser.add_argument("--last", type=int, default=5, help="how many of the newest runs the report shows")
    parser.add_argument("--compare", nargs=2, metavar=("RUN_A", "RUN_B"),
                        help="compare the benchmarks of two stored runs (names in the store, or directories)")
    parser.add_argument("--threshold", type=int, default=DEFAULT_THRESHOLD_PERCENT, metavar="PERCENT",
                        help="with --compare or in the report: a case this much slower is a regression (default 10)")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(args.compare, args.store, args.threshold)

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
    args.out.write_text(render(runs, errors, threshold_percent=args.threshold))
    print(f"tokenspec: report with {len(runs)} run(s) written to {args.out.resolve()}")
    return 0 if status in (0, 1) or args.from_store is not None else status


def compare(names: list[str], store: Path, threshold: int) -> int:
    """Print the per-case comparison of two runs; 1 when one case regressed beyond the threshold, 2 when a run
    cannot be found."""
    try:
        old, new = (find_run(name, store) for name in names)
    except RunLoadError as err:
        print(f"tokenspec: {err}", file=sys.stderr)
        return 2
    result = comparison(old, new, threshold)
    print(render_comparison(old, new, result.table, threshold))
    return 1 if result.table.regression.any() else 0


def render_comparison(old: Run, new: Run, table: pd.DataFrame, threshold: int) -> str:
    lines = [f"{old.name} -> {new.name}: {len(table)} benchmark entries in both "
             f"({table.attrs['only_old']} only in the first, {table.attrs['only_new']} only in the second); "
             f"ratio = new median / old median; regression: pytest-benchmark's median:{threshold}% check fails"]
    if table.empty:
        return lines[0]
    rows = [("benchmark", "implementation", "case", "old", "new", "ratio", "")]
    for r in table.sort_values(["regression", "ratio"], ascending=[False, False]).itertuples():
        rows.append((r.benchmark, r.impl, case_text(r.case), format_seconds(r.old_s), format_seconds(r.new_s),
                     f"{r.ratio:.3f}", "REGRESSION" if r.regression else ""))
    widths = [min(max(len(row[i]) for row in rows), 70) for i in range(len(rows[0]))]
    for row in rows:
        lines.append("  ".join(cell[:70].ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w)
                               in enumerate(zip(row, widths, strict=True))).rstrip())
    lines.append(f"{int(table.regression.sum())} regression(s) above {threshold}%")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

"""Tidy pandas tables from stored runs: one row per test outcome; one row per benchmark record (and its metrics).

- :func:`outcomes_frame`: one row per test item (the plugin's record), with the library it adapts.
- :func:`bench_records`: one row per pytest-benchmark entry, the case as fields, its x-axis, metrics and the
  speedup over its declared baseline; :func:`benchmarks_frame` is the same in long form (one row per metric).
- :func:`compare_runs`: two runs' benchmark entries paired by pytest-benchmark's ``fullname`` and judged by its
  own regression check (``--benchmark-compare-fail=median:N%``).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pandas as pd
from pytest_benchmark.utils import parse_compare_fail

from reports.store import Run

OUTCOME_COLUMNS = ["run", "device", "nodeid", "impl", "library", "area", "test", "check", "params", "outcome", "reason",
                   "duration_s", "checked", "unsupported", "declared", "verdict"]
METRICS = ("median_s", "tflops", "gbps", "per_second", "fraction_of_peak", "speedup")
RECORD_COLUMNS = ["run", "started", "device", "area", "benchmark", "impl", "fullname", "case", "fields", "x",
                  "x_value", "series", "baseline", "peak_tflops", "peak_gbps", *METRICS]
BENCH_COLUMNS = ["run", "device", "impl", "area", "benchmark", "case", "x", "x_value", "baseline", "metric",
                 "value"]
BENCHMARK_ONLY_SKIP = "--benchmark-only active"  # pytest-benchmark's reason for skipping every other test


def outcomes_frame(runs: list[Run]) -> pd.DataFrame:
    columns: dict[str, list[Any]] = {c: [] for c in OUTCOME_COLUMNS}
    for run in runs:
        device = run.meta.get("device", "?")
        libraries = {name: d.get("library", "") for name, d in (run.meta.get("implementations") or {}).items()}
        for o in run.outcomes:
            nodeid = str(o.get("nodeid", ""))
            tally = o.get("tally") or {}
            impl = o.get("impl") or "(suite)"
            params = o.get("params")
            for name, value in (
                    ("run", run.name), ("device", device), ("nodeid", nodeid), ("impl", impl),
                    ("library", libraries.get(impl, "")), ("area", o.get("area") or "suite"),
                    ("test", nodeid.split("::")[-1].split("[")[0]), ("check", o.get("check", "")),
                    ("params", json.dumps(params, sort_keys=True) if params else "{}"), ("outcome", o["outcome"]),
                    ("reason", str(o.get("reason", ""))), ("duration_s", o.get("duration_s", 0.0)),
                    ("checked", int(tally.get("checked", 0))), ("unsupported", dict(tally.get("unsupported", {}))),
                    ("declared", dict(tally.get("declared", {}))), ("verdict", str(o.get("verdict", "")))):
                columns[name].append(value)
    return pd.DataFrame(columns, columns=OUTCOME_COLUMNS)


def conformance_outcomes(outcomes: pd.DataFrame, runs: list[Run] = ()) -> pd.DataFrame:  # type: ignore[assignment]
    """The conformance items alone. Left out: benchmark items (``test_benchmark``, and every item of a test
    function that has an entry in its run's benchmark JSON), and the items pytest-benchmark skipped for
    ``--benchmark-only``."""
    if outcomes.empty:
        return outcomes
    functions = {(run.name, _function(b.get("fullname", ""))) for run in runs
                 for b in run.benchmarks.get("benchmarks", [])}
    timed = pd.Series([(r, _function(n)) in functions for r, n in zip(outcomes.run, outcomes.nodeid, strict=True)],
                      index=outcomes.index, dtype=bool)
    bench = timed | (outcomes.test == "test_benchmark") | outcomes.reason.str.contains(BENCHMARK_ONLY_SKIP,
                                                                                          regex=False)
    return outcomes[~bench]


def _function(nodeid: str) -> str:
    """``suite/x.py::test_f[a-b]`` → ``suite/x.py::test_f``."""
    return str(nodeid).split("[")[0]


def conformance_matrix(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Implementation × area → items per outcome, plus the cases behind them: ``cases_checked`` (distinct cases
    checked), ``cases_unsupported`` (drawn cases declined, by any reason) and ``cases_declared`` (drawn cases
    covered by a declared non-conformance, not checked)."""
    if outcomes.empty:
        return pd.DataFrame()
    items = outcomes.groupby(["impl", "area", "outcome"]).size().unstack("outcome", fill_value=0)
    cases = outcomes.assign(cases_unsupported=outcomes.unsupported.map(lambda d: sum(d.values())),
                            cases_declared=outcomes.declared.map(lambda d: sum(d.values())))
    sums = cases.groupby(["impl", "area"])[["checked", "cases_unsupported", "cases_declared"]].sum()
    return items.join(sums.rename(columns={"checked": "cases_checked"}))


def unsupported_reasons(outcomes: pd.DataFrame) -> pd.DataFrame:
    """One row per (implementation, area, reason): how many drawn cases were declined for it."""
    rows = [(r.impl, r.area, reason, n) for r in outcomes.itertuples() for reason, n in r.unsupported.items()]
    frame = pd.DataFrame(rows, columns=["impl", "area", "reason", "cases"])
    return frame.groupby(["impl", "area", "reason"], as_index=False).cases.sum()


# ---- benchmarks ------------------------------------------------------------------------------------------------

def case_key(case: Any) -> str:
    return json.dumps(case, sort_keys=True, default=str)


def bench_records(runs: list[Run]) -> pd.DataFrame:
    """One row per benchmark entry: what ran (the case as ``fields``), the axis it is plotted against, its
    median time, the metrics its test recorded and the speedup over its declared baseline (same run and case)."""
    rows: list[tuple[Any, ...]] = []
    for run in runs:
        for b in run.benchmarks.get("benchmarks", []):
            info = b.get("extra_info") or {}
            case = info.get("case")
            if not isinstance(case, dict):
                case = b.get("params") if isinstance(b.get("params"), dict) else {}
            metrics = info.get("metrics") or {}
            peak = info.get("peak") or {}
            name = str(b.get("name", "?"))
            rows.append((
                run.name, str(run.meta.get("started", run.name)), str(info.get("device") or run.meta.get("device", "?")),
                str(info.get("area", "")), str(b.get("group") or name.split("[")[0]), str(info.get("impl", name)),
                str(b.get("fullname") or name), case_key(case), case, str(info.get("x") or ""), None,
                tuple(info.get("series") or ()), str(info.get("baseline") or ""), _number(peak.get("tflops")),
                _number(peak.get("gbps")), _number((b.get("stats") or {}).get("median")),
                *(_number(metrics.get(m)) for m in METRICS[1:-1]), None))
    frame = pd.DataFrame(rows, columns=RECORD_COLUMNS)
    if frame.empty:
        return frame
    frame = _with_axes(frame)
    return _with_speedups(frame)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _with_axes(frame: pd.DataFrame) -> pd.DataFrame:
    """Records that name no x-axis (older runs, benchmarks outside the declarations) get the numeric case field
    with the most distinct values in their benchmark; ``x_value`` is that field's value."""
    xs = frame.x.copy()
    for _, group in frame[frame.x == ""].groupby(["run", "benchmark"]):
        distinct: Counter[str] = Counter()
        for field in {f for fields in group.fields for f in fields}:
            values = {json.dumps(fields.get(field), default=str) for fields in group.fields}
            raw = [fields.get(field) for fields in group.fields]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
                distinct[field] = len(values)
        best = max(distinct, key=lambda f: (distinct[f], f)) if distinct else ""
        xs[group.index] = best if best and distinct[best] > 1 else ""  # nothing varies: no axis to plot against
    frame = frame.assign(x=xs)
    picked = [fields.get(x) if x else None for fields, x in zip(frame.fields, frame.x, strict=True)]
    return frame.assign(x_value=[_number(v) for v in picked])


def _with_speedups(frame: pd.DataFrame) -> pd.DataFrame:
    """speedup = the baseline's median time / this implementation's, same run, benchmark and case."""
    base = frame[["run", "benchmark", "case", "impl", "median_s"]].drop_duplicates(["run", "benchmark", "case", "impl"])
    base = base.rename(columns={"impl": "baseline", "median_s": "base_s"})
    joined = frame.reset_index().merge(base, on=["run", "benchmark", "case", "baseline"], how="left")
    joined = joined.set_index("index").reindex(frame.index)
    return frame.assign(speedup=joined.base_s / frame.median_s)


def benchmarks_frame(runs: list[Run]) -> pd.DataFrame:
    """Long form of :func:`bench_records`: one row per implementation × case × metric."""
    records = bench_records(runs)
    if records.empty:
        return pd.DataFrame(columns=BENCH_COLUMNS)
    long = records.melt(id_vars=[c for c in BENCH_COLUMNS if c not in ("metric", "value")], value_vars=list(METRICS),
                        var_name="metric", value_name="value")
    return long[long.value.notna()][BENCH_COLUMNS].reset_index(drop=True)


def compare_runs(old: Run, new: Run, threshold_percent: int = 10) -> pd.DataFrame:
    """The benchmark entries of two runs paired by ``fullname`` (as ``pytest-benchmark compare`` pairs them);
    ``ratio`` is new median / old median and ``regression`` is pytest-benchmark's own
    ``--benchmark-compare-fail=median:<threshold>%`` verdict (the new median more than that much slower)."""
    check = parse_compare_fail(f"median:{int(threshold_percent)}%")
    before = {b.get("fullname") or b.get("name"): b for b in old.benchmarks.get("benchmarks", [])}
    rows = []
    for b in new.benchmarks.get("benchmarks", []):
        key = b.get("fullname") or b.get("name")
        if key not in before:
            continue
        a_stats, b_stats = before[key].get("stats") or {}, b.get("stats") or {}
        if not isinstance(a_stats.get("median"), (int, float)) or not isinstance(b_stats.get("median"), (int, float)):
            continue
        info = b.get("extra_info") or {}
        failed = check.fails(b_stats, a_stats)
        rows.append((str(b.get("group") or str(key).split("[")[0]), str(info.get("impl", key)), str(info.get("area", "")),
                     case_key(info.get("case", {})), str(key), float(a_stats["median"]), float(b_stats["median"]),
                     failed is not None, failed or ""))
    table = pd.DataFrame(rows, columns=["benchmark", "impl", "area", "case", "fullname", "old_s", "new_s",
                                        "regression", "check"])
    table["ratio"] = table.new_s / table.old_s
    table["speedup"] = table.old_s / table.new_s
    after = {b.get("fullname") or b.get("name") for b in new.benchmarks.get("benchmarks", [])}
    table.attrs.update(only_old=len(set(before) - after), only_new=len(after - set(before)),
                       threshold_percent=int(threshold_percent))
    return table

"""Tidy pandas tables from stored runs: one row per test outcome; one per implementation × case × metric."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from reports.store import Run

OUTCOME_COLUMNS = ["run", "device", "impl", "area", "test", "check", "params", "outcome", "reason", "duration_s",
                   "checked", "unsupported", "declared", "verdict"]
BENCH_COLUMNS = ["run", "device", "impl", "area", "benchmark", "case", "seqlen", "baseline", "metric", "value"]


def outcomes_frame(runs: list[Run]) -> pd.DataFrame:
    rows = []
    for run in runs:
        device = run.meta.get("device", "?")
        for o in run.outcomes:
            test = str(o.get("nodeid", "")).split("::")[-1].split("[")[0]
            tally = o.get("tally") or {}
            rows.append((run.name, device, o.get("impl") or "(suite)", o.get("area") or "suite", test,
                         o.get("check", ""), json.dumps(o.get("params", {}), sort_keys=True), o["outcome"],
                         o.get("reason", ""), o.get("duration_s", 0.0), int(tally.get("checked", 0)),
                         dict(tally.get("unsupported", {})), dict(tally.get("declared", {})), o.get("verdict", "")))
    return pd.DataFrame(rows, columns=OUTCOME_COLUMNS)


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


def benchmarks_frame(runs: list[Run]) -> pd.DataFrame:
    """Every benchmark's median time and the metrics its test recorded, plus speedup over its baseline."""
    rows: list[tuple[Any, ...]] = []
    for run in runs:
        device = run.meta.get("device", "?")
        for b in run.benchmarks.get("benchmarks", []):
            info = b.get("extra_info", {}) or {}
            case = info.get("case", b.get("params") or {})
            key = (run.name, device, info.get("impl", b.get("name", "?")), info.get("area", ""),
                   b.get("group") or b.get("name", "").split("[")[0], json.dumps(case, sort_keys=True, default=str),
                   case.get("seqlen") if isinstance(case, dict) else None, info.get("baseline", ""))
            rows.append((*key, "median_s", b.get("stats", {}).get("median")))
            rows += [(*key, metric, value) for metric, value in (info.get("metrics") or {}).items()
                     if isinstance(value, (int, float))]
    frame = pd.DataFrame(rows, columns=BENCH_COLUMNS)
    return pd.concat([frame, _speedups(frame)], ignore_index=True)


def _speedups(frame: pd.DataFrame) -> pd.DataFrame:
    """speedup = the baseline's median time / this implementation's, same run, benchmark and case."""
    if frame.empty:
        return frame
    medians = frame[frame.metric == "median_s"]
    base = medians[["run", "benchmark", "case", "impl", "value"]].rename(
        columns={"value": "base_s", "impl": "baseline"})
    joined = medians[medians.baseline != ""].merge(base, on=["run", "benchmark", "case", "baseline"])
    joined = joined.assign(metric="speedup", value=joined.base_s / joined.value)
    return joined[BENCH_COLUMNS]


def compare_runs(bench: pd.DataFrame, old: str, new: str, threshold: float = 0.1) -> pd.DataFrame:
    """Median times of two runs side by side; ``regression`` when the new one is slower by > threshold."""
    medians = bench[bench.metric == "median_s"].set_index(["impl", "benchmark", "case"])
    a = medians[medians.run == old].value.rename("old_s")
    b = medians[medians.run == new].value.rename("new_s")
    table = pd.concat([a, b], axis=1, join="inner").reset_index()
    table["speedup"] = table.old_s / table.new_s
    table["regression"] = table.speedup < 1.0 / (1.0 + threshold)
    return table

"""What the report shows of one benchmark of one run: its charts and its pivoted table, built from the records.

Nothing here knows an area. A record names its x-axis (``x``) and the case fields that tell lines apart
(``series``); the rest of the case is sorted out from the data:

- *fixed* fields take one value in the whole benchmark (shown once, above the table);
- *chart keys* are the declared series, plus any field that still varies for one implementation at one x
  (so that a line never holds two points at one x): one chart per combination;
- fields that *follow the row* take one value per (chart keys, x), e.g. attention's batch = tokens / seqlen;
- fields that vary only from one implementation to another (a block size one library needs) are shown next to
  that implementation's name.

A table row is (chart keys, x); its columns are one group per implementation: median time, the throughput
metric, % of the measured peak, speedup over the declared baseline (same row), the best of each marked.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from reports.charts import Chart, Line, tick

THROUGHPUT = {"tflops": "TFLOP/s", "gbps": "GB/s", "per_second": "per second"}
AREA_ORDER = ("attention", "paged", "kv_cache", "speculative", "usage", "billing", "rope")
MAX_TABLE_ROWS = 400


@dataclass(frozen=True)
class Cell:
    text: str
    best: bool = False


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    higher_is_better: bool


@dataclass
class PivotTable:
    row_fields: list[str]
    impls: list[tuple[str, str, bool]]  # name, note (fields that are its own), is the baseline
    columns: list[Column]
    rows: list[tuple[list[str], list[list[Cell]]]]  # row values, cells[impl][column]
    total_rows: int = 0


@dataclass
class BenchView:
    area: str
    benchmark: str
    run: str
    device: str
    x: str
    baseline: str
    fixed: dict[str, str]
    charts: list[Chart] = field(default_factory=list)
    table: PivotTable | None = None
    notes: list[str] = field(default_factory=list)


def newest(records: pd.DataFrame) -> pd.DataFrame:
    """For each device and benchmark, the records of the newest run that holds that benchmark (so a run of one
    area does not hide the others)."""
    if records.empty:
        return records
    latest = records.sort_values("started", kind="stable").groupby(["device", "benchmark"]).run.last()
    keep = set(latest.items())
    chosen = [((d, b), r) in keep for d, b, r in zip(records.device, records.benchmark, records.run, strict=True)]
    return records[chosen]


def views(records: pd.DataFrame) -> list[BenchView]:
    """One view per device and benchmark (its newest run), areas in the project's order."""
    if records.empty:
        return []
    found = [_view(str(run), str(benchmark), group)
             for (run, benchmark), group in newest(records).groupby(["run", "benchmark"], sort=False)]
    order = {a: i for i, a in enumerate(AREA_ORDER)}
    return sorted(found, key=lambda v: (v.device, order.get(v.area, len(order)), v.area, v.benchmark))


def _text(value: Any) -> str:
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _view(run: str, benchmark: str, group: pd.DataFrame) -> BenchView:
    group = group.reset_index(drop=True)
    x = str(group.x.mode().iloc[0]) if (group.x != "").any() else ""
    baseline = str(group.baseline.mode().iloc[0]) if (group.baseline != "").any() else ""
    fields: dict[str, list[str]] = {f: [_text(c.get(f)) for c in group.fields]
                                    for f in sorted({f for c in group.fields for f in c}) if f != x}
    frame = pd.DataFrame(fields, index=group.index).assign(_impl=group.impl, _x=group.x_value)
    fixed = {f: v[0] for f, v in fields.items() if len(set(v)) == 1}
    varying = [f for f in fields if f not in fixed]
    declared = [s for s in dict.fromkeys(s for ss in group.series for s in ss) if s in varying]
    keys = declared + [f for f in varying if f not in declared and _varies_within(frame, ["_impl", "_x", *declared], f)]
    follows = [f for f in varying if f not in keys and not _varies_within(frame, ["_x", *keys], f)]
    own = [f for f in varying if f not in keys and f not in follows]
    view = BenchView(str(group.area.iloc[0]), benchmark, run, str(group.device.iloc[0]), x, baseline, fixed)
    group = group.assign(_key=frame[keys].apply(tuple, axis=1) if keys else [()] * len(frame))
    primary = next((m for m in THROUGHPUT if group[m].notna().any()), None)
    second = _second_panel(group, primary, baseline)
    parts = sorted(group.groupby("_key", sort=False), key=lambda kv: tuple(map(_order, kv[0])))
    for key, part in parts:
        view.charts.append(_chart(benchmark, x, dict(zip(keys, key, strict=True)), part, primary, second,
                                  baseline))
    view.table = _table(group, x, keys, follows, own, frame, primary, baseline)
    return view


def _order(value: Any) -> tuple[int, float, str]:
    """Numbers by value (64 before 128), then text."""
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def _varies_within(frame: pd.DataFrame, by: list[str], column: str) -> bool:
    return bool((frame.groupby(by, dropna=False)[column].nunique() > 1).any())


def _second_panel(group: pd.DataFrame, primary: str | None, baseline: str) -> tuple[str, str] | None:
    """(column, label) of the chart's second panel: the fraction of the measured peak, else the speedup."""
    if group.fraction_of_peak.notna().any():
        peak_col, unit = ("peak_tflops", "TFLOP/s") if primary == "tflops" else ("peak_gbps", "GB/s")
        peak = group[peak_col].dropna()
        measured = f" ({peak.median():.3g} {unit})" if not peak.empty else ""
        return "fraction_of_peak", f"% of measured peak{measured}"
    if baseline and group.impl.eq(baseline).any():
        return "speedup", f"speedup over {baseline}"
    return None


def _chart(benchmark: str, x: str, key: dict[str, str], part: pd.DataFrame, primary: str | None,
           second: tuple[str, str] | None, baseline: str) -> Chart:
    metric, label = (primary, THROUGHPUT[primary]) if primary else ("median_s", "median time (s)")
    lines = []
    impls = sorted(part.impl.unique(), key=lambda i: (i != baseline, i))
    for impl in impls:
        mine = part[part.impl == impl]
        points = mine.groupby("x_value", dropna=False)[[metric, *([second[0]] if second else [])]].median()
        points = points.sort_index()
        ys = tuple(float(v) for v in points[metric])
        extra: tuple[float | None, ...] = (None,) * len(points)
        if second:
            scale = 100.0 if second[0] == "fraction_of_peak" else 1.0
            extra = tuple(None if v != v else float(v) * scale for v in points[second[0]])
        xs = tuple(float(v) for v in points.index if v == v)
        lines.append(Line(str(impl), xs if len(xs) == len(ys) else (), ys, extra, impl == baseline))
    title = benchmark + "".join(f" · {k}={v}" for k, v in key.items())
    return Chart(title, x, label, second[1] if second else None, tuple(lines))


def _table(group: pd.DataFrame, x: str, keys: list[str], follows: list[str], own: list[str], frame: pd.DataFrame,
           primary: str | None, baseline: str) -> PivotTable:
    impls = sorted(group.impl.unique(), key=lambda i: (i != baseline, i))
    notes = {}
    for impl in impls:
        mine = frame[frame._impl == impl]
        notes[impl] = ", ".join(f"{f}={mine[f].iloc[0]}" for f in own if mine[f].nunique() == 1)
    columns = [Column("median_s", "median", False)]
    if primary:
        columns.append(Column(primary, THROUGHPUT[primary], True))
    if group.fraction_of_peak.notna().any():
        columns.append(Column("fraction_of_peak", "% peak", True))
    has_baseline = bool(baseline) and group.impl.eq(baseline).any()
    if has_baseline:
        columns.append(Column("speedup", f"× {baseline}", True))
    row_fields = [*keys, *([x] if x else []), *follows]
    metrics = [c.key for c in columns if c.key != "speedup"]
    by_row = pd.DataFrame({**{f"_f_{f}": frame[f] for f in keys + follows},
                           "_xs": group.x_value if x else 0.0, "impl": group.impl, **{m: group[m] for m in metrics}})
    index_cols = [*(f"_f_{f}" for f in keys), "_xs"]
    # One aggregation for the whole table: (row, implementation) → the median of each metric.
    medians = by_row.groupby([*index_cols, "impl"], sort=False, dropna=False)[metrics].median()
    follow_values = by_row.groupby(index_cols, sort=False, dropna=False)[[f"_f_{f}" for f in follows]].first()
    cells_of: dict[tuple[Any, ...], dict[str, dict[str, float]]] = {}
    for index, values in zip(medians.index, medians.to_dict("records"), strict=True):
        cells_of.setdefault(tuple(index[:-1]), {})[index[-1]] = {k: v for k, v in values.items() if v == v}
    ordered = sorted(cells_of, key=lambda key: tuple(map(_order, key)))
    rows = []
    for key in ordered[:MAX_TABLE_ROWS]:
        per_impl = cells_of[key]
        if has_baseline and "median_s" in per_impl.get(baseline, {}):
            for values in per_impl.values():
                if values.get("median_s"):
                    values["speedup"] = per_impl[baseline]["median_s"] / values["median_s"]
        follow = follow_values.loc[key if len(key) > 1 else key[0]] if follows else {}
        shown = [*(str(v) for v in key[:-1]), *([tick(key[-1])] if x else []),
                 *(str(follow[f"_f_{f}"]) for f in follows)]
        by_column = {c.key: {i: v[c.key] for i, v in per_impl.items() if c.key in v} for c in columns}
        rows.append((shown, [[_cell(c, by_column[c.key], impl) for c in columns] for impl in impls]))
    return PivotTable(row_fields, [(i, notes[i], i == baseline) for i in impls], columns, rows, len(ordered))


def _cell(column: Column, values: dict[str, float], impl: str) -> Cell:
    """``values``: implementation → this row's value of the column (absent where it has none)."""
    if impl not in values:
        return Cell("")
    value = values[impl]
    best = len(values) > 1 and value == (max(values.values()) if column.higher_is_better else min(values.values()))
    return Cell(format_value(column.key, float(value)), bool(best))


def format_value(metric: str, value: float) -> str:
    if metric == "median_s":
        return format_seconds(value)
    if metric == "fraction_of_peak":
        return f"{100 * value:.1f}%"
    if metric == "speedup":
        return f"{value:.2f}×"
    if metric == "per_second":
        return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
    return f"{value:.3g}"


def format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return str(seconds)
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"

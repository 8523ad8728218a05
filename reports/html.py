"""The self-contained HTML report: a Jinja2 template with autoescaping, inline CSS and SVG, no scripts.

Sections, in reading order: the findings (failures, stale and declared non-conformances by library), the
conformance matrix by area, the benchmarks (charts and pivoted tables per benchmark), the comparison of the
two newest runs of a device, and the environment. Every string from a run reaches the page escaped; the
charts are matplotlib's SVG with text drawn as paths.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from reports import charts
from reports.benchviews import BenchView, format_seconds, views
from reports.findings import findings, matrix_by_area
from reports.frames import bench_records, compare_runs, conformance_outcomes, outcomes_frame
from reports.store import Run

MAX_CHARTS = 32  # about 0.2 s each; past this the tables still hold every case
MAX_COMPARISON_ROWS = 300
DEFAULT_THRESHOLD_PERCENT = 10

_ENV = Environment(loader=PackageLoader("reports", "templates"), autoescape=True, undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True)
_ENV.filters["seconds"] = format_seconds


@dataclass
class Comparison:
    device: str
    old: str
    new: str
    threshold_percent: int
    table: pd.DataFrame
    rows: list[dict[str, Any]]
    by_impl: list[tuple[str, float, int, int]]  # impl, geometric-mean ratio, cases, regressions


def case_text(case: str) -> str:
    try:
        fields = json.loads(case)
    except (TypeError, ValueError):
        return str(case)
    return ", ".join(f"{k}={v}" for k, v in fields.items()) if isinstance(fields, dict) else str(case)


def conformance_run(runs: list[Run], outcomes: pd.DataFrame) -> str | None:
    """The newest run that holds conformance items (a ``--benchmark-only`` run holds none)."""
    names = [r.name for r in runs]
    present = set(outcomes.run)
    return next((n for n in reversed(names) if n in present), None)


def comparisons(runs: list[Run], threshold_percent: int = DEFAULT_THRESHOLD_PERCENT) -> list[Comparison]:
    """For each device: its newest run with benchmarks against the newest earlier run sharing entries with it."""
    by_device: dict[str, list[Run]] = {}
    for run in runs:
        if run.benchmarks.get("benchmarks"):
            by_device.setdefault(str(run.meta.get("device", "?")), []).append(run)
    found = []
    for device, device_runs in sorted(by_device.items()):
        new = device_runs[-1]
        names = {b.get("fullname") or b.get("name") for b in new.benchmarks["benchmarks"]}
        old = next((r for r in reversed(device_runs[:-1])
                    if names & {b.get("fullname") or b.get("name") for b in r.benchmarks["benchmarks"]}), None)
        if old is not None:
            found.append(comparison(old, new, threshold_percent, device))
    return found


def comparison(old: Run, new: Run, threshold_percent: int = DEFAULT_THRESHOLD_PERCENT,
               device: str | None = None) -> Comparison:
    table = compare_runs(old, new, threshold_percent)
    ordered = table.sort_values(["regression", "ratio"], ascending=[False, False])
    rows = [{"benchmark": r.benchmark, "impl": r.impl, "case": case_text(r.case), "old_s": r.old_s,
             "new_s": r.new_s, "ratio": r.ratio, "regression": bool(r.regression),
             "faster": r.ratio < 1 / (1 + threshold_percent / 100)} for r in ordered.head(MAX_COMPARISON_ROWS).itertuples()]
    by_impl = []
    if not table.empty:
        for impl, part in table.groupby("impl"):
            ratios = [float(v) for v in part.ratio if v > 0]
            geo = math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else float("nan")
            by_impl.append((str(impl), geo, len(part), int(part.regression.sum())))
    return Comparison(device or str(new.meta.get("device", "?")), old.name, new.name, threshold_percent, table, rows,
                      by_impl)


def render(runs: list[Run], load_errors: list[str] = (), title: str = "tokenspec report",  # type: ignore[assignment]
           threshold_percent: int = DEFAULT_THRESHOLD_PERCENT) -> str:
    outcomes = conformance_outcomes(outcomes_frame(runs), runs)
    chosen = conformance_run(runs, outcomes)
    run_outcomes = outcomes[outcomes.run == chosen] if chosen else outcomes.iloc[0:0]
    catalogue = next((r.meta.get("implementations") or {} for r in runs if r.name == chosen), {})
    records = bench_records(runs)
    bench_views = views(records)
    colors = {str(area): charts.colors_for(list(impls.unique()))  # an implementation's colour, area by area
              for area, impls in records.groupby("area").impl} if not records.empty else {}
    svgs, left_out = _chart_markup(bench_views, colors)
    libraries: dict[str, str] = {}
    for run in runs:
        libraries.update(run.meta.get("libraries") or {})
    return _ENV.get_template("report.html.j2").render(
        title=title, runs=runs, load_errors=list(load_errors), conformance_run=chosen,
        findings=findings(run_outcomes, catalogue), versions=libraries, declared_catalogue=bool(catalogue),
        matrices=matrix_by_area(run_outcomes), views=bench_views, svgs=svgs, charts_left_out=left_out,
        comparisons=comparisons(runs, threshold_percent), run_summaries=[_summary(r) for r in runs],
    )


def _chart_markup(bench_views: list[BenchView], colors: dict[str, dict[str, str]]
                  ) -> tuple[dict[int, list[Markup]], int]:
    """Each view's charts as SVG (the first MAX_CHARTS of the report), keyed by the view's position."""
    markup: dict[int, list[Markup]] = {}
    drawn = left_out = 0
    for n, view in enumerate(bench_views):
        for chart in view.charts:
            if drawn >= MAX_CHARTS:
                left_out += 1
                continue
            # Safe: matplotlib draws every string as glyph paths; the title is escaped by inline_svg.
            markup.setdefault(n, []).append(Markup(charts.render(chart, colors[view.area], f"c{drawn}")))
            drawn += 1
    return markup, left_out


def _summary(run: Run) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for o in run.outcomes:
        counts[o["outcome"]] = counts.get(o["outcome"], 0) + 1
    m = run.meta
    return {"name": run.name, "device": m.get("device", "?"), "started": m.get("started", ""),
            "outcomes": counts, "benchmarks": len(run.benchmarks.get("benchmarks", [])),
            "profile": m.get("hypothesis_profile", ""), "command": " ".join(str(a) for a in (m.get("command") or [])[1:]),
            "driver": m.get("driver") or "", "python": m.get("python", ""), "platform": m.get("platform", ""),
            "triton_interpret": m.get("triton_interpret", ""),
            "libraries": ", ".join(f"{k} {v}" for k, v in sorted((m.get("libraries") or {}).items()))}

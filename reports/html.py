"""The self-contained HTML comparison report: inline CSS and SVG, no scripts, every string escaped."""

from __future__ import annotations

import json
from html import escape
from typing import Any

import pandas as pd

from reports.frames import benchmarks_frame, conformance_matrix, outcomes_frame
from reports.store import Run
from reports.svg import line_chart

CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#f3f3f3}td.pass{background:#e5f6e5}td.fail{background:#fbe0e0}td.skip{background:#f4f4f4}
td.xfail{background:#fff3d6}td.stale{background:#f9d0f0}details{margin:2px 0}summary{cursor:pointer}
.num{text-align:right;font-variant-numeric:tabular-nums}.charts{display:flex;flex-wrap:wrap;gap:12px}
"""
MAX_TABLE_ROWS = 2000
OUTCOME_CLASS = {"passed": "pass", "failed": "fail", "skipped": "skip", "xfailed": "xfail", "stale": "stale",
                 "xpassed": "stale", "error": "fail"}


def render(runs: list[Run], load_errors: list[str] = (), title: str = "tokenspec report") -> str:  # type: ignore[assignment]
    outcomes = outcomes_frame(runs)
    bench = benchmarks_frame(runs)
    body = [f"<h1>{escape(title)}</h1>", _errors(list(load_errors)), _environment(runs),
            _matrix(outcomes), _failures(outcomes), _benchmarks(bench), _charts(bench)]
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>")


def _errors(errors: list[str]) -> str:
    if not errors:
        return ""
    items = "".join(f"<li>{escape(e)}</li>" for e in errors)
    return f"<h2>Runs that could not be loaded</h2><ul>{items}</ul>"


def _environment(runs: list[Run]) -> str:
    rows = []
    for run in runs:
        m = run.meta
        libs = ", ".join(f"{k} {v}" for k, v in sorted((m.get("libraries") or {}).items()))
        rows.append([run.name, m.get("device", "?"), m.get("driver") or "", m.get("python", ""),
                     m.get("platform", ""), m.get("triton_interpret", ""), libs])
    return "<h2>Environment</h2>" + _table(["run", "device", "driver", "python", "platform", "TRITON_INTERPRET",
                                             "libraries"], rows)


def _matrix(outcomes: pd.DataFrame) -> str:
    if outcomes.empty:
        return "<h2>Conformance</h2><p>No conformance outcomes in these runs.</p>"
    latest = outcomes[outcomes.run == outcomes.run.iloc[-1]]
    counts = conformance_matrix(latest)
    areas = sorted(latest.area.unique())
    head = "<tr><th>implementation</th>" + "".join(f"<th>{escape(a)}</th>" for a in areas) + "</tr>"
    rows = []
    for impl in sorted(latest.impl.unique()):
        cells = [f"<th>{escape(impl)}</th>"]
        for area in areas:
            if (impl, area) not in counts.index:
                cells.append("<td></td>")
                continue
            row = counts.loc[(impl, area)]
            present = {k: int(v) for k, v in row.items() if v}
            worst = next((o for o in ("stale", "failed", "xpassed", "xfailed", "passed", "skipped") if o in present),
                         "skipped")
            summary = ", ".join(f"{n} {o}" for o, n in present.items())
            reasons = latest[(latest.impl == impl) & (latest.area == area) & (latest.reason != "")]
            reason_list = "".join(f"<li>{escape(o)}: {escape(str(r)[:300])} ({n})</li>" for (o, r), n in
                                  reasons.groupby(["outcome", "reason"]).size().head(30).items())
            detail = f"<details><summary>{escape(summary)}</summary><ul>{reason_list}</ul></details>" \
                if reason_list else escape(summary)
            cells.append(f'<td class="{OUTCOME_CLASS.get(worst, "skip")}">{detail}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<h2>Conformance (run {escape(outcomes.run.iloc[-1])})</h2><table class=\"matrix\">{head}"
            f"{''.join(rows)}</table>")


def _failures(outcomes: pd.DataFrame) -> str:
    if outcomes.empty:
        return ""
    latest = outcomes[outcomes.run == outcomes.run.iloc[-1]]
    bad = latest[latest.outcome.isin(["failed", "stale", "xpassed", "error"])]
    if bad.empty:
        return "<p>No failures.</p>"
    rows = [[r.impl, r.test, r.outcome, str(r.reason)[:500]] for r in bad.head(MAX_TABLE_ROWS).itertuples()]
    return "<h2>Failures</h2>" + _table(["implementation", "test", "outcome", "reason"], rows)


def _benchmarks(bench: pd.DataFrame) -> str:
    if bench.empty:
        return "<h2>Benchmarks</h2><p>No benchmark records in these runs.</p>"
    wide = bench.pivot_table(index=["run", "device", "benchmark", "impl", "case"], columns="metric", values="value",
                             aggfunc="first").reset_index()
    metrics = [m for m in ("median_s", "tflops", "gbps", "fraction_of_peak", "speedup", "per_second")
               if m in wide.columns]
    rows = [[r["benchmark"], r["impl"], _case_text(r["case"]), r["device"]] + [_num(r.get(m)) for m in metrics]
            for _, r in wide.head(MAX_TABLE_ROWS).iterrows()]
    note = f"<p>First {MAX_TABLE_ROWS} of {len(wide)} rows.</p>" if len(wide) > MAX_TABLE_ROWS else ""
    return "<h2>Benchmarks</h2>" + note + _table(["benchmark", "implementation", "case", "device", *metrics], rows)


def _charts(bench: pd.DataFrame) -> str:
    if bench.empty:
        return ""
    charts = []
    with_len = bench[bench.seqlen.notna()]
    for (benchmark, device), group in with_len.groupby(["benchmark", "device"]):
        for metric, label in (("tflops", "TFLOP/s"), ("gbps", "GB/s"), ("fraction_of_peak", "fraction of peak"),
                              ("speedup", "speedup over baseline"), ("per_second", "per second")):
            part = group[group.metric == metric]
            if part.empty:
                continue
            series: dict[str, list[tuple[float, float]]] = {}
            for (impl, case), rows in part.groupby(["impl", "case"]):
                rest = {k: v for k, v in json.loads(case).items() if k not in ("seqlen", "batch", "heads", "dtype")}
                name = impl + ("" if not rest else " " + ",".join(f"{k}={v}" for k, v in sorted(rest.items())))
                series.setdefault(name[:60], []).extend(zip(rows.seqlen.astype(float), rows.value.astype(float),
                                                            strict=True))
            charts.append(line_chart(series, f"{benchmark} on {device}: {label}", "sequence length", label))
    if not charts:
        return ""
    return "<h2>Plots</h2><div class=\"charts\">" + "".join(charts[:60]) + "</div>"


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _num(value: Any) -> str:
    return "" if value is None or value != value else f"{value:.4g}"


def _case_text(case: str) -> str:
    try:
        return ", ".join(f"{k}={v}" for k, v in json.loads(case).items())
    except (ValueError, AttributeError):
        return case

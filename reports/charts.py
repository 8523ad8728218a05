"""Benchmark charts drawn with matplotlib and inlined as SVG (the report opens offline, with no scripts).

One chart is one benchmark at one fixed option set: a line per implementation against the area's x-axis, and
a second panel with the fraction of the measured peak (or, without a peak, the speedup over the baseline).
With a single x value the lines would be dots, so the panels become bars, one per implementation.
Text is drawn as paths (``svg.fonttype = path``): it looks the same in every browser and font set, and the
box matplotlib measures at save time (``bbox_inches="tight"``) is the box the browser shows.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib as mpl
from markupsafe import escape
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#393b79",
           "#637939", "#ad494a", "#7b4173", "#bcbd22", "#7f7f7f", "#e6550d", "#3182bd")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
RC: Any = {"svg.fonttype": "path", "svg.hashsalt": "tokenspec", "text.parse_math": False, "font.size": 8.5, "axes.titlesize": 9,
      "axes.labelsize": 8.5, "legend.fontsize": 8, "axes.spines.top": False, "axes.spines.right": False,
      "axes.grid": True, "grid.color": "#e4e4e4", "grid.linewidth": 0.6, "axes.axisbelow": True}
LOG_RANGE_X = 8.0  # an axis whose values span this factor or more is drawn on a log scale
LOG_RANGE_Y = 30.0


@dataclass(frozen=True)
class Line:
    """One implementation's points: x, the main metric, and the second panel's value (None where absent)."""

    label: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    second: tuple[float | None, ...]
    baseline: bool = False


@dataclass(frozen=True)
class Chart:
    title: str
    x_label: str
    y_label: str
    second_label: str | None  # None: one panel
    lines: tuple[Line, ...]


def colors_for(names: Sequence[str]) -> dict[str, str]:
    """One colour per implementation (call it per area: an implementation keeps its colour in every chart)."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(set(names)))}


def render(chart: Chart, colors: dict[str, str], uid: str) -> str:
    """The chart as an ``<svg>`` element whose ids are prefixed with ``uid`` (several share one page)."""
    with mpl.rc_context(RC):
        panels = 2 if chart.second_label else 1
        single_x = all(len(line.ys) <= 1 for line in chart.lines)  # dots, not lines: bars say it better
        # A fixed layout (constrained layout costs more than the drawing); the legend hangs below the figure
        # and bbox_inches="tight" grows the picture to hold it and every label.
        height = max(1.4 + 0.22 * len(chart.lines), 2.2) if single_x else 3.0
        fig = Figure(figsize=(4.3 * panels, height))
        fig.subplots_adjust(left=0.3 if single_x else 0.14 / panels * 2, right=0.97, bottom=0.47 / height, top=1 - 0.42 / height, wspace=0.32 if not single_x else 0.08)
        axes = fig.subplots(1, panels, squeeze=False)[0]
        fig.suptitle(chart.title, fontsize=9.5, fontweight="bold", y=1 - 0.08 / height)
        if single_x:
            _bars(axes, chart, colors)
        else:
            _lines(fig, axes, chart, colors)
        out = io.StringIO()
        fig.savefig(out, format="svg", bbox_inches="tight", pad_inches=0.06, metadata={"Date": None})
    return inline_svg(out.getvalue(), uid, chart.title)


def _lines(fig: Figure, axes: Sequence[Axes], chart: Chart, colors: dict[str, str]) -> None:
    panels: list[tuple[Axes, str, list[tuple[float | None, ...]]]] = [
        (axes[0], chart.y_label, [line.ys for line in chart.lines])]
    if chart.second_label:
        panels.append((axes[1], chart.second_label, [line.second for line in chart.lines]))
    xs = sorted({x for line in chart.lines for x in line.xs})
    for ax, label, values in panels:
        for n, (line, ys) in enumerate(zip(chart.lines, values, strict=True)):
            pts = [(x, y) for x, y in zip(line.xs, ys, strict=True) if y is not None and math.isfinite(y)]
            if pts:
                ax.plot(*zip(*pts, strict=True), color=colors[line.label], marker=MARKERS[n % len(MARKERS)],
                        markersize=4, linewidth=1.6, linestyle="--" if line.baseline else "-")
        ax.set_xlabel(chart.x_label)
        ax.set_ylabel(label)
        _scale_x(ax, xs)
        _scale_y(ax, [y for ys in values for y in ys if y is not None and math.isfinite(y)])
    labels = [line.label + (" (baseline)" if line.baseline else "") for line in chart.lines]
    handles = [Line2D([], [], color=colors[line.label], marker=MARKERS[n % len(MARKERS)], markersize=4,
                      linewidth=1.6, linestyle="--" if line.baseline else "-") for n, line in enumerate(chart.lines)]
    width = max((len(s) for s in labels), default=1)
    ncols = max(1, min(len(labels), int((9.0 if chart.second_label else 4.6) * 11 / (width + 5))))
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=ncols, frameon=False,
               handlelength=2.4)


def _bars(axes: Sequence[Axes], chart: Chart, colors: dict[str, str]) -> None:
    xs = {x for line in chart.lines for x in line.xs}
    at = "" if len(xs) > 1 else f"{chart.x_label} = {tick(next(iter(xs)))}" if xs else ""
    names = [line.label + (" (baseline)" if line.baseline else "") +
             (f" ({chart.x_label}={tick(line.xs[0])})" if len(xs) > 1 and line.xs else "") for line in chart.lines]
    panels: list[tuple[Axes, str, list[float | None]]] = [
        (axes[0], chart.y_label, [line.ys[0] if line.ys else None for line in chart.lines])]
    if chart.second_label:
        panels.append((axes[1], chart.second_label, [line.second[0] if line.second else None
                                                     for line in chart.lines]))
    for i, (ax, label, values) in enumerate(panels):
        heights = [v if v is not None and math.isfinite(v) else 0.0 for v in values]
        ax.barh(range(len(names)), heights, color=[colors[line.label] for line in chart.lines], height=0.6)
        ax.set_yticks(range(len(names)), names if i == 0 else [""] * len(names))
        ax.invert_yaxis()
        ax.set_xlabel(label)
        ax.grid(axis="y", visible=False)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: compact(v)))
        if at and i == 0:
            ax.set_title(at, fontsize=8.5)


def compact(value: float) -> str:
    """Axis numbers without an offset or exponent: 2500 → 2.5k, 3e7 → 30M, 0.0012 → 0.0012."""
    for above, unit, suffix in ((1e12, 1e12, "T"), (1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e3, 1e3, "k")):
        if abs(value) >= above:
            return f"{value / unit:g}{suffix}"
    return f"{value:g}"


def tick(value: float) -> str:
    """1024 → 1K, 16384 → 16K, 1000000 → 1M, 0.5 → 0.5."""
    if value >= 1024 and value == int(value) and int(value) & (int(value) - 1) == 0:
        return f"{value / 2**20:g}Mi" if value >= 2**20 else f"{value / 1024:g}K"
    if value >= 1e6 and value % 1e5 == 0:
        return f"{value / 1e6:g}M"
    if value >= 1e4 and value % 1e3 == 0:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def _scale_x(ax: Axes, xs: list[float]) -> None:
    if xs and xs[0] > 0 and xs[-1] / xs[0] >= LOG_RANGE_X:
        ax.set_xscale("log", base=2 if all(x == int(x) and int(x) & (int(x) - 1) == 0 for x in xs) else 10)
    if len(xs) <= 12:
        ax.xaxis.set_major_locator(FixedLocator(xs))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: tick(v)))


def _scale_y(ax: Axes, ys: list[float]) -> None:
    positive = [y for y in ys if y > 0]
    if positive and len(positive) == len(ys) and max(positive) / min(positive) >= LOG_RANGE_Y:
        ax.set_yscale("log")
        decades = math.log10(max(positive) / min(positive))
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0,) if decades > 3 else (1.0, 2.0, 5.0)))
        ax.yaxis.set_minor_locator(NullLocator())
    else:
        ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: compact(v)))


_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(href="#|url\(#)')


def inline_svg(svg: str, uid: str, title: str) -> str:
    """matplotlib's SVG document as an element for an HTML page: no XML prolog, metadata or comments; ids
    prefixed so that charts on one page never share one; a title for screen readers."""
    start = svg.index("<svg")
    svg = svg[start:]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r">\s+<", "><", svg)
    svg = _ID.sub(lambda m: f'id="{uid}-{m.group(1)}"', svg)
    svg = _REF.sub(lambda m: f"{m.group(1)}{uid}-", svg)
    label = escape(title)
    head_end = svg.index(">")
    return (f'{svg[:head_end]} class="chart" role="img" aria-label="{label}">'
            f"<title>{label}</title>{svg[head_end + 1:]}").strip()

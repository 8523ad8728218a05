"""Line charts drawn as inline SVG, so the report opens offline with no plotting library."""

from __future__ import annotations

import math
from html import escape

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]


def line_chart(series: dict[str, list[tuple[float, float]]], title: str, x_label: str, y_label: str,
               log_x: bool = True, width: int = 760, height: int = 320) -> str:
    """``series``: name → [(x, y), ...]. Returns an <svg> element with axes, ticks and a legend."""
    points = [(x, y) for pts in series.values() for x, y in pts if y == y and (x > 0 or not log_x)]
    if not points:
        return f"<p>{escape(title)}: no data</p>"
    fx = (lambda v: math.log2(v)) if log_x else (lambda v: v)
    xs, ys = [fx(x) for x, _ in points], [y for _, y in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y1 = max(ys) * 1.1 if max(ys) > 0 else 1.0
    left, right, top, bottom = 60, 270, 30, 45
    pw, ph = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (fx(x) - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return top + ph - (y / y1) * ph

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{escape(title)}" class="chart">',
             f'<text x="{width / 2}" y="18" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
             f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#333"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#333"/>']
    for i in range(5):
        yv = y1 * i / 4
        parts.append(f'<text x="{left - 6}" y="{py(yv) + 4:.1f}" text-anchor="end" font-size="10">{yv:.3g}</text>')
    for xv in sorted({x for x, _ in points}):
        parts.append(f'<text x="{px(xv):.1f}" y="{top + ph + 14}" text-anchor="middle" font-size="10">{xv:g}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle" font-size="11">'
                 f'{escape(x_label)}</text>')
    parts.append(f'<text x="14" y="{top + ph / 2}" text-anchor="middle" font-size="11" '
                 f'transform="rotate(-90 14 {top + ph / 2})">{escape(y_label)}</text>')
    for n, (name, pts) in enumerate(sorted(series.items())):
        color = PALETTE[n % len(PALETTE)]
        valid = sorted((x, y) for x, y in pts if y == y and (x > 0 or not log_x))
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in valid)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        parts += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"><title>{escape(name)}: '
                  f'{x:g}, {y:.4g}</title></circle>' for x, y in valid]
        parts.append(f'<text x="{left + pw + 10}" y="{top + 14 * n + 10}" font-size="11" fill="{color}">'
                     f'{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)

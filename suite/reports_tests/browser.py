"""Headless Chromium for the report tests: the DOM after load, the console, boxes measured in the page, and
full-page screenshots.

The report holds no script. To measure it, a copy of the page gets one small script at the end of its body
that writes every chart's box and the boxes of its legend, titles, axis labels and tick labels (matplotlib's
``legend_*``, ``text_*``, ``xtick_*``, ``ytick_*`` groups) into a ``<pre>``; ``--dump-dom`` returns it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MEASURE_ID = "tokenspec-measure"
_MEASURE = """<script>
(() => {
  const out = {height: document.documentElement.scrollHeight, charts: []};
  document.querySelectorAll("svg.chart").forEach((svg) => {
    const b = svg.getBoundingClientRect();
    const parts = [];
    svg.querySelectorAll("g[id]").forEach((g) => {
      if (!/(^|-)(legend|text|xtick|ytick)_\\d+$/.test(g.id)) return;
      const r = g.getBoundingClientRect();
      if (r.width > 0 || r.height > 0) parts.push({id: g.id, box: [r.left, r.top, r.right, r.bottom]});
    });
    out.charts.push({label: svg.getAttribute("aria-label"), box: [b.left, b.top, b.right, b.bottom], parts});
  });
  const pre = document.createElement("pre");
  pre.id = "MEASURE_ID";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>""".replace("MEASURE_ID", MEASURE_ID)


def flags(profile: Path, width: int = 1400, height: int = 1000) -> list[str]:
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
            "--disable-component-update", "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
            f"--window-size={width},{height}", "--enable-logging=stderr", "--v=0"]


@dataclass
class Loaded:
    dom: str
    console_errors: list[str]
    measured: dict[str, Any]


def load(page: Path, work: Path, *, width: int = 1400, extra: str = "") -> Loaded:
    """Load a copy of ``page`` with the measuring script (and ``extra`` markup before it) in headless Chromium."""
    assert CHROMIUM is not None
    copy = work / f"measured-{page.name}"
    html = page.read_text()
    copy.write_text(html.replace("</body>", extra + _MEASURE + "</body>"))
    done = subprocess.run([CHROMIUM, *flags(work / "profile", width), "--dump-dom", copy.as_uri()],
                          capture_output=True, text=True, timeout=120)
    errors = [line for line in done.stderr.splitlines() if "CONSOLE" in line and "ERROR" in line.upper()]
    errors += [line for line in done.stderr.splitlines() if ":INFO:CONSOLE" in line and "Uncaught" in line]
    start = done.stdout.find(f'<pre id="{MEASURE_ID}">')
    measured: dict[str, Any] = {}
    if start >= 0:
        body = done.stdout[start:].split(">", 1)[1].split("</pre>", 1)[0]
        measured = json.loads(body.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
                              .replace("&amp;", "&"))
    return Loaded(done.stdout, errors, measured)


def outside(measured: dict[str, Any], slack: float = 0.5) -> list[str]:
    """Every legend, title, axis label or tick label whose box reaches outside its chart's box."""
    bad = []
    for chart in measured.get("charts", []):
        left, top, right, bottom = chart["box"]
        for part in chart["parts"]:
            x0, y0, x1, y1 = part["box"]
            if x0 < left - slack or y0 < top - slack or x1 > right + slack or y1 > bottom + slack:
                bad.append(f"{chart['label']}: {part['id']} at {[round(v, 1) for v in part['box']]} outside "
                           f"{[round(v, 1) for v in chart['box']]}")
    return bad


def screenshot(page: Path, out: Path, work: Path, *, width: int = 1400, height: int | None = None) -> Path:
    """A full-page PNG: the page's height is measured first, then the window is made that tall."""
    assert CHROMIUM is not None
    if height is None:
        height = int(load(page, work, width=width).measured.get("height", 2000)) + 20
    subprocess.run([CHROMIUM, *flags(work / "profile", width, height), f"--screenshot={out}", page.as_uri()],
                   capture_output=True, text=True, timeout=120, check=True)
    return out

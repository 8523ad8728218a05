"""The results store, the frames, the findings, the charts and the HTML report, on synthetic runs shaped like the
plugin's records (and one real stored run, in the xdist test)."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reports.__main__ import main as reports_main
from reports.benchviews import views
from reports.charts import PALETTE
from reports.charts import render as render_chart
from reports.findings import findings, matrix_by_area
from reports.frames import (
    bench_records,
    benchmarks_frame,
    compare_runs,
    conformance_matrix,
    conformance_outcomes,
    outcomes_frame,
)
from reports.html import conformance_run, render
from reports.store import RunLoadError, find_run, load_run, load_runs, save_run
from suite.reports_tests import browser

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
DOC = "https://pytorch.org/docs/stable/sdpa.html"


def outcome(impl: str, outcome: str, reason: str = "", area: str = "attention", test: str = "test_property",
            check: str = "forward.float32", tally: dict | None = None, verdict: str = "") -> dict:
    return {"nodeid": f"suite/test_conformance.py::{test}[{impl}-{area}.{check}]", "impl": impl, "area": area,
            "check": check, "params": {}, "outcome": outcome, "reason": reason, "duration_s": 0.1,
            "tally": tally or {}, "verdict": verdict}


def bench(impl: str, x: int, median: float, *, benchmark: str = "attention-fwd", area: str = "attention",
          baseline: str = "base", series: dict | None = None, follows: dict | None = None, x_name: str = "seqlen",
          tflops: float | None = 1.0, fraction: float | None = None, per_second: float | None = None) -> dict:
    case = {x_name: x, **(series or {}), **(follows or {})}
    metrics = {k: v for k, v in (("tflops", tflops), ("fraction_of_peak", fraction), ("per_second", per_second))
               if v is not None}
    case_id = "-".join(str(v) for v in case.values())
    name = f"test_benchmark[{impl}-{area}.{benchmark}.{case_id}]"
    return {"name": name, "fullname": f"suite/test_benchmarks.py::{name}", "group": benchmark,
            "stats": {"median": median},
            "extra_info": {"impl": impl, "area": area, "case": case, "baseline": baseline, "metrics": metrics,
                           "peak": {"tflops": 10.0, "gbps": 100.0}, "x": x_name, "series": list(series or {})}}


def declaration(test: str, reason: str, link: str = DOC, example: str | None = None, whole: bool = False) -> dict:
    return {"test": test, "reason": reason, "link": link, "scope": "every case" if whole else "matching cases",
            "example": example, "xfail_reason": f"{reason} ({link})"}


def make_run(root: Path, outcomes: list[dict], benchmarks: list[dict], device: str = "cpu", now: datetime = NOW,
             implementations: dict | None = None) -> Path:
    meta: dict[str, Any] = {"device": device, "host": "test-host", "started": now.isoformat(),
                            "libraries": {"torch": "2.13.0", "litellm": "1.70"}}
    if implementations is not None:
        meta["implementations"] = implementations
    return save_run(meta, outcomes, {"benchmarks": benchmarks}, root=root, now=now)


# ---- the store ---------------------------------------------------------------------------------------------------

def test_runs_round_trip_and_are_never_overwritten(tmp_path: Path) -> None:
    first = make_run(tmp_path, [outcome("a", "passed")], [])
    second = make_run(tmp_path, [outcome("a", "failed", "boom")], [])  # same second: a new directory
    assert first != second and first.name.startswith("20261122T120000Z_test-host_cpu")
    assert load_run(first).outcomes[0]["outcome"] == "passed"
    assert load_run(second).outcomes[0]["reason"] == "boom"
    assert find_run(second.name, tmp_path).path == second and find_run(str(first), tmp_path).path == first
    with pytest.raises(RunLoadError, match="names 2 runs"):
        find_run("20261122T120000Z", tmp_path)


def test_a_corrupt_or_foreign_run_is_named_and_the_others_still_load(tmp_path: Path) -> None:
    good = make_run(tmp_path, [outcome("a", "passed")], [])
    bad = make_run(tmp_path, [outcome("b", "passed")], [], now=datetime(2026, 1, 1, tzinfo=UTC))
    (bad / "outcomes.jsonl").write_text('{"outcome": "passed"}\nnot json\n')
    foreign = tmp_path / "someone-elses"
    foreign.mkdir()
    (foreign / "run.json").write_text(json.dumps({"format": "other/9"}))
    runs, errors = load_runs([tmp_path])
    assert [r.path for r in runs] == [good]
    assert any(str(bad / "outcomes.jsonl") + ":2" in e for e in errors), errors
    assert any("someone-elses" in e and "other/9" in e for e in errors), errors
    with pytest.raises(RunLoadError, match=r"run\.json"):
        load_run(tmp_path / "no-such-run")


def test_an_interrupted_run_leaves_earlier_runs_intact(tmp_path: Path) -> None:
    earlier = make_run(tmp_path, [outcome("a", "passed")], [])
    half = tmp_path / ".tmp-abandoned"  # what a killed save leaves behind
    half.mkdir()
    (half / "run.json").write_text('{"format": "tokenspec-run/1", "dev')
    runs, errors = load_runs([tmp_path])
    assert [r.path for r in runs] == [earlier] and errors == []


# ---- frames ------------------------------------------------------------------------------------------------------

def test_frames_are_tidy_and_speedup_is_against_the_named_baseline(tmp_path: Path) -> None:
    make_run(tmp_path, [outcome("a", "passed"), outcome("a", "skipped", "no GPU"), outcome("b", "failed", "x")],
             [bench("base", 512, 2.0, baseline=""), bench("fast", 512, 0.5)])
    runs, _ = load_runs([tmp_path])
    outcomes = outcomes_frame(runs)
    assert len(outcomes) == 3 and set(outcomes.columns) >= {"impl", "area", "outcome", "reason", "params"}
    matrix = conformance_matrix(outcomes)
    assert matrix.loc[("a", "attention"), "passed"] == 1 and matrix.loc[("b", "attention"), "failed"] == 1
    frame = benchmarks_frame(runs)
    speedup = frame[(frame.impl == "fast") & (frame.metric == "speedup")].value.tolist()
    assert speedup == [4.0]  # 2.0 s / 0.5 s
    assert set(frame.metric) == {"median_s", "tflops", "speedup"}
    assert set(frame.x) == {"seqlen"} and set(frame.x_value) == {512.0}


def test_benchmark_items_are_not_conformance_items(tmp_path: Path) -> None:
    legacy: dict[str, Any] = {"name": "test_paged_decode_throughput[eager-4-512]", "group": "paged-decode", "stats": {"median": 1.0},
              "fullname": "suite/paged/test_paged_bench.py::test_paged_decode_throughput[eager-4-512]",
              "extra_info": {"impl": "eager", "area": "paged", "case": {"batch": 4, "context": 512}}}
    rows = [outcome("eager", "passed"),
            {**outcome("eager", "passed", test="test_benchmark"), "nodeid": "suite/test_benchmarks.py::test_benchmark[x]"},
            {**outcome("slow", "skipped", "interpreter"),  # a skipped variant of a timed function
             "nodeid": "suite/paged/test_paged_bench.py::test_paged_decode_throughput[slow-4-512]"},
            outcome("eager", "skipped", "Skipping non-benchmark (--benchmark-only active).")]
    longer = {**legacy, "extra_info": {**legacy["extra_info"], "case": {"batch": 4, "context": 1024}},
              "fullname": legacy["fullname"].replace("512", "1024")}
    make_run(tmp_path, rows, [legacy, longer])
    make_run(tmp_path, [rows[1]], [legacy], now=LATER)  # a --benchmark-only run: no conformance items
    runs, _ = load_runs([tmp_path])
    kept = conformance_outcomes(outcomes_frame(runs), runs)
    assert kept.nodeid.tolist() == [rows[0]["nodeid"]]
    assert conformance_run(runs, kept) == runs[0].name
    # No declared x: the numeric field that varies, and none where nothing does.
    assert bench_records(runs).x.tolist() == ["context", "context", ""]


# ---- benchmark views and charts --------------------------------------------------------------------------------

def attention_records(impls: tuple[str, ...] = ("base", "fast", "slow")) -> list[dict]:
    rows = []
    for n, impl in enumerate(impls):
        for s in (128, 256, 512, 1024):
            for d in (64, 128):
                for causal in (False, True):
                    rows.append(bench(impl, s, 1e-3 * s / 128 / (n + 1), series={"head_dim": d, "causal": causal},
                                      follows={"batch": 4096 // s, "dtype": "float32"}, tflops=float(n + 1) * s / 128,
                                      fraction=0.1 * (n + 1)))
    return rows


def test_each_chart_is_one_option_set_with_a_line_per_implementation(tmp_path: Path) -> None:
    make_run(tmp_path, [], attention_records())
    (view,) = views(bench_records(load_runs([tmp_path])[0]))
    assert view.x == "seqlen" and view.baseline == "base" and view.fixed == {"dtype": "float32"}
    assert [c.title for c in view.charts] == [f"attention-fwd · head_dim={d} · causal={c}"
                                              for d in (64, 128) for c in ("false", "true")]
    chart = view.charts[0]
    assert [line.label for line in chart.lines] == ["base", "fast", "slow"] and chart.lines[0].baseline
    assert chart.lines[1].xs == (128.0, 256.0, 512.0, 1024.0) and chart.lines[1].ys == (2.0, 4.0, 8.0, 16.0)
    assert chart.lines[1].second == pytest.approx((20.0,) * 4)  # % of the measured peak
    assert chart.y_label == "TFLOP/s" and chart.second_label == "% of measured peak (10 TFLOP/s)"
    table = view.table
    assert table is not None and table.row_fields == ["head_dim", "causal", "seqlen", "batch"]
    assert len(table.rows) == 16 and table.rows[0][0] == ["64", "false", "128", "32"]
    assert [c.label for c in table.columns] == ["median", "TFLOP/s", "% peak", "× base"]


def test_a_field_one_implementation_sets_is_named_beside_it_not_a_new_chart(tmp_path: Path) -> None:
    rows = [bench(impl, ctx, 1e-3, benchmark="paged-decode", area="paged", x_name="context", baseline="gather",
                  series={"batch": b}, follows={"block_size": 256 if impl == "fa" else 16}, tflops=None)
            for impl in ("gather", "fa", "triton") for b in (1, 16) for ctx in (1024, 4096)]
    make_run(tmp_path, [], rows)
    (view,) = views(bench_records(load_runs([tmp_path])[0]))
    assert [c.title for c in view.charts] == ["paged-decode · batch=1", "paged-decode · batch=16"]
    assert {len(line.xs) for c in view.charts for line in c.lines} == {2}
    assert view.table is not None and view.table.impls == [("gather", "block_size=16", True),
                                                           ("fa", "block_size=256", False),
                                                           ("triton", "block_size=16", False)]
    assert view.charts[0].y_label == "median time (s)" and view.charts[0].second_label == "speedup over gather"


def test_the_best_of_each_row_is_marked_and_speedup_is_over_the_rows_baseline(tmp_path: Path) -> None:
    make_run(tmp_path, [], [bench("base", 512, 2.0, fraction=0.2, tflops=1.0),
                            bench("fast", 512, 0.5, fraction=0.8, tflops=4.0),
                            bench("slow", 512, 4.0, fraction=0.1, tflops=0.5)])
    (view,) = views(bench_records(load_runs([tmp_path])[0]))
    assert view.table is not None
    ((values, cells),) = view.table.rows
    assert values == ["512"]
    by_impl = {name: [(c.text, c.best) for c in group] for (name, _, _), group in zip(view.table.impls, cells,
                                                                                        strict=True)}
    assert by_impl == {"base": [("2 s", False), ("1", False), ("20.0%", False), ("1.00×", False)],
                       "fast": [("500 ms", True), ("4", True), ("80.0%", True), ("4.00×", True)],
                       "slow": [("4 s", False), ("0.5", False), ("10.0%", False), ("0.50×", False)]}


def test_one_point_per_implementation_is_drawn_as_bars(tmp_path: Path) -> None:
    make_run(tmp_path, [], [bench(impl, 200, 0.01 * (n + 1), benchmark="billing-requests", area="billing", baseline="",
                                  x_name="requests", tflops=None, per_second=200 / (0.01 * (n + 1)))
                            for n, impl in enumerate(("litellm", "genai-prices", "billing-reference"))])
    (view,) = views(bench_records(load_runs([tmp_path])[0]))
    (chart,) = view.charts
    assert chart.y_label == "per second" and chart.second_label is None
    svg = render_chart(chart, {"litellm": "#111111", "genai-prices": "#222222", "billing-reference": "#333333"}, "t")
    assert svg.startswith("<svg") and 'class="chart"' in svg and "legend" not in svg
    assert svg.count('id="t-patch_') >= 3 + 2  # three bars, the figure and the axes' background
    assert not re.search(r'id="(?!t-)', svg) and "<!--" not in svg and "<?xml" not in svg


# ---- findings and the matrix ---------------------------------------------------------------------------------------

CATALOGUE: dict[str, dict[str, Any]] = {
    "sdpa-math": {"area": "attention", "library": "torch", "unavailable": [], "expected_failures": [
        declaration("nan_in_masked*", "NaN + -inf = NaN", whole=True)]},
    "sdpa-cpu-flash": {"area": "attention", "library": "torch", "unavailable": [], "expected_failures": [
        declaration("*", "logsumexp 0 instead of -inf", example="B1 Hq1 Sq2 Sk1 D16 float32 lse"),
        declaration("stale_one", "was fixed upstream")]},
    "litellm-usage": {"area": "usage", "library": "litellm", "unavailable": ["module 'litellm' is not installed"],
                      "expected_failures": [declaration("test_usage_rejects_malformed", "no validation",
                                                        link="https://github.com/BerriAI/litellm/blob/main/x.py#L9")]},
    "tokencost": {"area": "billing", "library": "tokencost", "unavailable": [], "expected_failures": [
        declaration("test_billing_hand_computed_cases", "no long-context tier")]},
}


def conformance_rows() -> list[dict]:
    math_reason, flash, stale = (f"{x['reason']} ({x['link']})" for x in (
        CATALOGUE["sdpa-math"]["expected_failures"][0], *CATALOGUE["sdpa-cpu-flash"]["expected_failures"]))
    return [
        outcome("sdpa-math", "xfailed", math_reason, check="nan_in_masked_keys.float16",
                verdict="case: B1 Hq2 Sq20 Sk33 NaN in masked keys\n  FAIL  output: NaN"),
        outcome("sdpa-math", "passed", check="forward.float32", tally={"checked": 40, "unsupported": {"no lse": 7}}),
        outcome("sdpa-cpu-flash", "xfailed", flash, test="test_declared_failure", check="declared:*",
                tally={"checked": 1}, verdict="case: B1 Hq1 Sq2 Sk1 D16 float32 lse\n  FAIL  lse: 0 != -inf"),
        outcome("sdpa-cpu-flash", "stale", f"stale expected failure: {stale} -- this entry no longer fails; remove it",
                test="test_example", check="stale_one"),
        outcome("sdpa-cpu-flash", "failed", "forward: max error 3e-2 > bound 1e-3", check="forward.bfloat16",
                tally={"checked": 12, "unsupported": {"float8 not supported": 3}, "declared": {"lse rows": 2}},
                verdict="case: B2 Hq4 Sq64 bfloat16\n  FAIL  output: max error 3e-2 > bound 1e-3"),
        outcome("tokencost", "passed", area="billing", test="test_billing_price_tables", check="test_billing_price_tables"),
        outcome("<script>x</script>", "skipped", "unavailable: needs a CUDA device", area="billing"),
    ]


def test_findings_list_every_declared_failure_with_what_happened_to_it(tmp_path: Path) -> None:
    make_run(tmp_path, conformance_rows(), [], implementations=CATALOGUE)
    runs, _ = load_runs([tmp_path])
    grouped = dict(findings(outcomes_frame(runs), CATALOGUE))
    assert list(grouped) == ["torch", "litellm", "tokencost"]  # the library with a failure first
    torch_rows = [(f.status, f.impl, f.test, f.smallest_case) for f in grouped["torch"]]
    assert torch_rows == [
        ("failed", "sdpa-cpu-flash", "forward.bfloat16", "B2 Hq4 Sq64 bfloat16"),
        ("stale", "sdpa-cpu-flash", "stale_one", ""),
        ("xfailed", "sdpa-cpu-flash", "*", "B1 Hq1 Sq2 Sk1 D16 float32 lse"),
        ("xfailed", "sdpa-math", "nan_in_masked*", "B1 Hq2 Sq20 Sk33 NaN in masked keys"),  # from its verdict
    ]
    (litellm,) = grouped["litellm"]
    assert litellm.status == "not run" and "not installed" in litellm.detail and litellm.link.startswith("https://")
    (tokencost,) = grouped["tokencost"]
    assert tokencost.status == "not run" and tokencost.detail == "not exercised by the items of this run"


def test_a_run_stored_without_the_catalogue_still_shows_its_expected_failures(tmp_path: Path) -> None:
    make_run(tmp_path, conformance_rows(), [])
    runs, _ = load_runs([tmp_path])
    shown = [(f.status, f.impl, f.reason, f.link) for _, items in findings(outcomes_frame(runs), {}) for f in items]
    assert ("xfailed", "sdpa-math", "NaN + -inf = NaN", DOC) in shown
    assert ("stale", "sdpa-cpu-flash", "was fixed upstream", DOC) in shown
    assert len(shown) == 4


def test_the_matrix_is_grouped_by_area_and_counts_cases_and_items(tmp_path: Path) -> None:
    make_run(tmp_path, conformance_rows(), [], implementations=CATALOGUE)
    runs, _ = load_runs([tmp_path])
    attention, billing = matrix_by_area(outcomes_frame(runs))
    assert (attention.area, billing.area) == ("attention", "billing")
    assert attention.kinds == ["properties", "examples", "declared failures"]
    rows = {impl: (cells, total) for impl, _, cells, total in attention.rows}
    cells, total = rows["sdpa-cpu-flash"]
    prop, example, declared = cells
    assert prop is not None and example is not None and declared is not None
    assert (prop.checked, prop.n_unsupported, prop.n_declared, prop.outcomes["failed"]) == (12, 3, 2, 1)
    assert prop.unsupported == {"float8 not supported": 3} and prop.worst == "failed"
    assert example.outcomes["stale"] == 1 and declared.outcomes["xfailed"] == 1
    assert total.checked == 13 and total.worst == "failed"
    assert rows["sdpa-math"][1].outcomes["xfailed"] == 1 and rows["sdpa-math"][1].worst == "xfailed"
    assert [impl for impl, *_ in billing.rows] == ["<script>x</script>", "tokencost"]


# ---- runs compared -----------------------------------------------------------------------------------------------

def test_compare_runs_uses_pytest_benchmarks_regression_check(tmp_path: Path) -> None:
    make_run(tmp_path, [], [bench("k", 512, 1.0), bench("k", 1024, 1.0), bench("k", 2048, 1.0), bench("k", 64, 1.0)])
    make_run(tmp_path, [], [bench("k", 512, 1.5), bench("k", 1024, 0.9), bench("k", 2048, 1.099),
                            bench("k", 4096, 1.0)], now=LATER)
    old, new = load_runs([tmp_path])[0]
    table = compare_runs(old, new, threshold_percent=10)
    flagged = dict(zip(table.case.map(lambda c: json.loads(c)["seqlen"]), table.regression, strict=True))
    assert flagged == {512: True, 1024: False, 2048: False}
    assert table.ratio.round(3).tolist() == [1.5, 0.9, 1.099]
    assert (table.attrs["only_old"], table.attrs["only_new"]) == (1, 1)


def test_compare_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_run(tmp_path, [], [bench("k", 512, 1.0), bench("k", 1024, 1.0)])
    b = make_run(tmp_path, [], [bench("k", 512, 2.0), bench("k", 1024, 1.0)], now=LATER)
    assert reports_main(["--store", str(tmp_path), "--compare", a.name, b.name]) == 1
    out = capsys.readouterr().out
    (flagged,) = [line for line in out.splitlines() if "REGRESSION" in line]
    assert "seqlen=512" in flagged and "2.000" in flagged and "1 regression(s) above 10%" in out
    assert reports_main(["--store", str(tmp_path), "--compare", a.name, b.name, "--threshold", "150"]) == 0
    assert reports_main(["--store", str(tmp_path), "--compare", a.name, "no-such-run"]) == 2
    assert "no run named 'no-such-run'" in capsys.readouterr().err


# ---- the page ------------------------------------------------------------------------------------------------------

def test_strings_from_implementations_are_escaped(tmp_path: Path) -> None:
    evil = {"<script>alert(1)</script>": {"area": "attention", "library": "<b>lib</b>", "unavailable": [],
                                          "expected_failures": [declaration("*", "<img src=x onerror=alert(2)>",
                                                                            link="javascript:alert(4)")]}}
    make_run(tmp_path, [outcome("<script>alert(1)</script>", "failed", "<img src=x onerror=alert(2)>")],
             [bench("<script>alert(3)</script>", s, 1.0, series={"mode": mode}) for s in (512, 1024)
              for mode in ("<i>x</i>", "plain")], implementations=evil)
    runs, _ = load_runs([tmp_path])
    page = render(runs)
    assert "<script" not in page.lower() and "<img" not in page and "<i>x" not in page and "<b>lib" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;script&gt;alert(3)&lt;/script&gt;" in page
    assert "javascript:" not in page  # not a web link: not an anchor, and not shown as one
    assert 'aria-label="attention-fwd · mode=&lt;i&gt;x&lt;/i&gt;"' in page


def test_report_from_100000_rows_takes_under_10_seconds(tmp_path: Path) -> None:
    areas = ("attention", "paged", "speculative", "billing", "usage", "kv_cache")
    outcomes = [outcome(f"impl-{i % 40}", ("passed", "skipped", "failed", "xfailed")[i % 4], f"reason {i % 7}",
                        area=areas[i % 6], test=("test_property", "test_example", "test_other")[i % 3],
                        check=f"check-{i % 50}", tally={"checked": i % 5, "unsupported": {f"why {i % 3}": 1}},
                        verdict=f"case: c{i % 11}\n  FAIL  x") for i in range(90_000)]
    catalogue = {f"impl-{i}": {"area": areas[i % 6], "library": f"lib-{i % 8}", "unavailable": [],
                               "expected_failures": [declaration(f"check-{i}", f"reason {i % 7}")]} for i in range(40)}
    # 10 implementations × 3 benchmarks × 4 option sets × 84 sequence lengths: 10,080 entries, 12 charts
    benchmarks = [bench(f"impl-{i}", 128 * (1 + k % 84), 1e-3 * (1 + (i + k) % 5), benchmark=f"bench-{b}",
                        series={"head_dim": (64, 128)[k // 84 % 2], "causal": k // 168 == 1},
                        follows={"batch": 4096 // (128 * (1 + k % 84))}, fraction=0.5)
                  for i in range(10) for b in range(3) for k in range(336)]
    make_run(tmp_path, outcomes, benchmarks, implementations=catalogue)
    make_run(tmp_path, [], benchmarks[::5], now=LATER)
    # CPU time of this process (every thread): what the build costs, whatever else shares the machine. The code
    # is single-threaded, so on an idle machine the wall time is the same (both are printed).
    started, wall = time.process_time(), time.perf_counter()
    runs, _ = load_runs([tmp_path])
    page = render(runs)
    elapsed, wall = time.process_time() - started, time.perf_counter() - wall
    out = tmp_path / "report.html"
    out.write_text(page)
    print(f"report from {len(outcomes) + len(benchmarks):,} rows (+{len(benchmarks) // 5:,} in the compared run): "
          f"{elapsed:.1f} s CPU, {wall:.1f} s wall, {out.stat().st_size / 1e6:.2f} MB, {page.count('<svg')} charts")
    assert page.count("<svg") == 12 and 'id="comparison"' in page and 'id="findings"' in page
    assert elapsed < 10, f"report from 100,000 rows took {elapsed:.1f} s of CPU time ({wall:.1f} s wall)"
    assert out.stat().st_size < 15e6


def two_runs_for_the_browser(root: Path) -> None:
    rows = [*conformance_rows(), outcome("<script>window.pwned=1</script>", "failed", "boom")]
    catalogue = {**CATALOGUE, "<script>window.pwned=1</script>": {
        "area": "attention", "library": "torch", "unavailable": [], "expected_failures": []}}
    long_name = "a-very-long-implementation-name-that-would-not-fit-a-hand-drawn-legend"
    records = attention_records(("base", "fast", "<script>window.pwned=1</script>", long_name))
    records += [bench(impl, 200, 0.01 * (n + 1), benchmark="billing-requests", area="billing", baseline="",
                      x_name="requests", tflops=None, per_second=2e4 / (n + 1))
                for n, impl in enumerate(("litellm", "genai-prices", long_name))]
    make_run(root, rows, records, implementations=catalogue)
    slower = [{**b, "stats": {"median": b["stats"]["median"] * (1.5 if b["extra_info"]["impl"] == "fast" else 1.0)}}
              for b in records]
    make_run(root, [], slower, now=LATER)


@pytest.mark.skipif(browser.CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_report_renders_in_a_real_browser(tmp_path: Path) -> None:
    two_runs_for_the_browser(tmp_path)
    runs, _ = load_runs([tmp_path])
    page = tmp_path / "report.html"
    page.write_text(render(runs))
    svgs = re.findall(r"<svg\b.*?</svg>", page.read_text(), flags=re.S)
    line_colours = set(re.findall(r"stroke: (#[0-9a-f]{6})", svgs[0])) & set(PALETTE)
    assert len(line_colours) == 4  # one colour per implementation of the chart, though one also benchmarks billing
    # A planted chart cut to half its width: the measurement must see its legend and labels leave the box.
    planted = re.sub(r'width="([\d.]+)pt"', lambda m: f'width="{float(m.group(1)) / 2}pt"', svgs[0], count=1)
    planted = re.sub(r'viewBox="0 0 ([\d.]+) ', lambda m: f'viewBox="0 0 {float(m.group(1)) / 2} ', planted, count=1)
    planted = planted.replace('aria-label="', 'aria-label="planted ', 1).replace('id="c0-', 'id="planted-')
    loaded = browser.load(page, tmp_path, extra=planted)
    dom = loaded.dom
    assert not loaded.console_errors, loaded.console_errors
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in dom and dom.lower().count("<script") == 1  # ours
    charts = loaded.measured["charts"]
    assert len(charts) == len(svgs) + 1 >= 6
    assert all(len(c["parts"]) >= 5 for c in charts), [(c["label"], len(c["parts"])) for c in charts]
    outside = browser.outside(loaded.measured)
    assert outside and all(line.startswith("planted ") for line in outside), outside
    assert any("legend" in line for line in outside)
    findings_html = dom.split('id="findings"')[1].split('id="matrix"')[0]
    for entry in CATALOGUE.values():
        for known in entry["expected_failures"]:
            assert html.escape(known["reason"], quote=False) in findings_html, known["reason"]
    assert findings_html.count('class="badge not-run"') == 2 and 'class="badge stale"' in findings_html
    comparison = dom.split('id="comparison"')[1].split('id="environment"')[0]
    assert comparison.count("<tr class=\"regression\">") == 16 and "1.500" in comparison  # every case of "fast"
    if os.environ.get("TOKENSPEC_SCREENSHOTS"):  # for a person to look at
        browser.screenshot(page, Path(os.environ["TOKENSPEC_SCREENSHOTS"]) / "report.png", tmp_path,
                           height=int(loaded.measured["height"]) + 20)


def test_xdist_workers_are_merged_into_one_stored_run(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    args = ["-q", "-p", "no:cacheprovider", "suite/attention/test_attention_reference.py", "--store", str(tmp_path)]
    done = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", *args], cwd=root, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    summary = next(line for line in reversed(done.stdout.splitlines()) if re.search(r"\d+ passed", line))
    reported = sum(int(n) for n in re.findall(r"(\d+) (?:passed|failed|skipped|xfailed|xpassed|error)", summary))
    (merged,), errors = load_runs([tmp_path])
    nodeids = [o["nodeid"] for o in merged.outcomes]
    assert errors == [] and reported > 10, summary
    assert len(nodeids) == len(set(nodeids)) == reported  # every worker's items, each once
    # The run keeps every implementation's declarations, for the findings of the report.
    flash = merged.meta["implementations"]["sdpa-cpu-flash"]
    assert flash["library"] == "torch" and flash["area"] == "attention"
    assert {x["test"] for x in flash["expected_failures"]} == {"*", "nan_in_masked*"}
    assert all(x["example"] and x["link"].startswith("https://") for x in flash["expected_failures"])

"""The results store, the DataFrame builders and the HTML report, on synthetic runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reports.frames import benchmarks_frame, compare_runs, conformance_matrix, outcomes_frame
from reports.html import render
from reports.store import RunLoadError, load_run, load_runs, save_run

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def outcome(impl: str, outcome: str, reason: str = "", area: str = "attention") -> dict:
    return {"nodeid": f"suite/x.py::test_forward[{impl}]", "impl": impl, "area": area, "params": {"dtype": "'f'"},
            "outcome": outcome, "reason": reason, "duration_s": 0.1}


def bench(impl: str, seqlen: int, median: float, baseline: str = "base", tflops: float = 1.0) -> dict:
    return {"name": f"test_t[{impl}-{seqlen}]", "group": "attention-fwd", "stats": {"median": median},
            "extra_info": {"impl": impl, "area": "attention", "case": {"seqlen": seqlen, "causal": False},
                           "baseline": baseline, "metrics": {"tflops": tflops}}}


def make_run(root: Path, outcomes: list[dict], benchmarks: list[dict], device: str = "cpu",
             now: datetime = NOW) -> Path:
    return save_run({"device": device, "host": "test-host"}, outcomes, {"benchmarks": benchmarks}, root=root, now=now)


def test_runs_round_trip_and_are_never_overwritten(tmp_path: Path) -> None:
    first = make_run(tmp_path, [outcome("a", "passed")], [])
    second = make_run(tmp_path, [outcome("a", "failed", "boom")], [])  # same second: a new directory
    assert first != second and first.name.startswith("20261122T120000Z_test-host_cpu")
    assert load_run(first).outcomes[0]["outcome"] == "passed"
    assert load_run(second).outcomes[0]["reason"] == "boom"


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


def test_compare_runs_flags_regressions(tmp_path: Path) -> None:
    make_run(tmp_path, [], [bench("k", 512, 1.0), bench("k", 1024, 1.0)], now=NOW)
    make_run(tmp_path, [], [bench("k", 512, 1.5), bench("k", 1024, 0.9)], now=datetime(2026, 11, 23, tzinfo=UTC))
    runs, _ = load_runs([tmp_path])
    table = compare_runs(benchmarks_frame(runs), runs[0].name, runs[1].name, threshold=0.1)
    flagged = dict(zip(table.case.map(lambda c: json.loads(c)["seqlen"]), table.regression, strict=True))
    assert flagged == {512: True, 1024: False}


def test_strings_from_implementations_are_escaped(tmp_path: Path) -> None:
    make_run(tmp_path, [outcome("<script>alert(1)</script>", "failed", "<img src=x onerror=alert(2)>")],
             [bench("<script>alert(3)</script>", 512, 1.0)])
    runs, _ = load_runs([tmp_path])
    page = render(runs)
    assert "<script" not in page.lower() and "onerror=alert" not in page.replace("&lt;img src=x onerror=alert", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_report_from_100000_rows_takes_under_10_seconds(tmp_path: Path) -> None:
    outcomes = [outcome(f"impl-{i % 40}", ("passed", "skipped", "failed")[i % 3], f"reason {i % 7}",
                        area=("attention", "billing", "kv_cache")[i % 3]) for i in range(90_000)]
    benchmarks = [bench(f"impl-{i % 20}", 2 ** (9 + i % 6), 1.0 + i % 5) for i in range(10_000)]
    make_run(tmp_path, outcomes, benchmarks)
    started = time.perf_counter()
    runs, _ = load_runs([tmp_path])
    page = render(runs)
    elapsed = time.perf_counter() - started
    assert "<svg" in page and "matrix" in page
    assert elapsed < 10, f"report from 100,000 rows took {elapsed:.1f} s"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (./tokenspec setup installs it "
                                               "when run as root with apt)")
def test_report_renders_in_a_real_browser(tmp_path: Path) -> None:
    make_run(tmp_path, [outcome("<script>window.pwned=1</script>", "failed", "boom"), outcome("good", "passed")],
             [bench("base", 512, 2.0, baseline=""), bench("base", 1024, 3.0, baseline=""), bench("fast", 512, 1.0),
              bench("fast", 1024, 1.0)])
    runs, _ = load_runs([tmp_path])
    page = tmp_path / "report.html"
    page.write_text(render(runs))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
             "--enable-logging=stderr", "--v=0"]
    assert CHROMIUM is not None
    done = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                          timeout=120)
    dom = done.stdout
    assert 'class="matrix"' in dom and "<svg" in dom and "<polyline" in dom, dom[:2000]
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in dom  # shown as text
    assert "<script" not in dom.lower()  # and never became an element
    console_errors = [line for line in done.stderr.splitlines() if "CONSOLE" in line and "ERROR" in line.upper()]
    assert not console_errors, console_errors


def test_xdist_workers_are_merged_into_one_stored_run(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    args = ["-q", "-p", "no:cacheprovider", "suite/attention/test_attention_reference.py", "--store",
            str(tmp_path)]
    import sys

    done = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", *args], cwd=root, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    serial = tmp_path / "serial"
    subprocess.run([sys.executable, "-m", "pytest", *args[:-1], str(serial)], cwd=root, capture_output=True,
                   timeout=300, check=True)
    (merged,), errors = load_runs([p for p in tmp_path.iterdir() if p.name != "serial"])
    (alone,), _ = load_runs([serial])
    assert errors == [] and len(alone.outcomes) > 10
    assert sorted(o["nodeid"] for o in merged.outcomes) == sorted(o["nodeid"] for o in alone.outcomes)

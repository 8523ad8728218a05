"""The pytest plugin that turns the registry into parametrized, self-explaining tests.

A test asks for an implementation of an area by naming the fixture ``<area>_impl``
(``attention_impl``, ``billing_impl``, ...). It is parametrized over every registered
implementation of that area. One that cannot run here is still collected and skipped with its
reasons; one named in no ``--impl`` is deselected. Expected failures declared by an adapter become
strict xfails, and one that passes is reported as a stale expected failure.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from impls import registry
from impls.base import AREAS, Implementation

AREA_FIXTURES = {f"{area}_impl": area for area in AREAS}
STALE = "stale expected failure"
_recorded: list[dict[str, Any]] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tokenspec")
    group.addoption("--impl", action="append", default=[], metavar="NAME",
                    help="run only this implementation (fnmatch pattern; repeatable)")
    group.addoption("--impl-module", action="append", default=[], metavar="MODULE_OR_FILE",
                    help="import a module or .py file that registers implementations (repeatable)")
    group.addoption("--no-entry-points", action="store_true",
                    help=f"do not load implementations from the {registry.ENTRY_POINT_GROUP!r} entry points")
    group.addoption("--store", metavar="DIR", default=None,
                    help="save this run (outcomes, benchmark records, environment) as a new directory under DIR")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("store") and getattr(config.option, "benchmark_json", "absent") is None:
        import tempfile
        from pathlib import Path

        # pytest-benchmark builds its JSON only when asked for a file; the store wants it too.
        config.option.benchmark_json = Path(tempfile.mkdtemp(prefix="tokenspec-bench-")) / "benchmarks.json"
    modules = list(config.getoption("impl_module"))
    modules += [m for m in os.environ.get("TOKENSPEC_IMPL_MODULES", "").split(os.pathsep) if m]
    registry.discover(modules, entry_points=not config.getoption("no_entry_points"))
    patterns = config.getoption("impl")
    try:
        config._tokenspec_selected = registry.select(patterns) if patterns else None  # type: ignore[attr-defined]
    except LookupError as err:
        raise pytest.UsageError(str(err)) from None


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = []
    for area in AREAS:
        impls = registry.all_implementations(area)
        if impls:
            names = ", ".join(i.name + ("" if not i.unavailable() else " (unavailable)") for i in impls)
            lines.append(f"tokenspec {area}: {names}")
    for broken in registry.broken_modules():
        lines.append(f"tokenspec: module {broken.origin} failed to import")
    return lines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for fixture, area in AREA_FIXTURES.items():
        if fixture not in metafunc.fixturenames:
            continue
        params = []
        for impl in registry.all_implementations(area):
            reasons = impl.unavailable()
            marks = [pytest.mark.skip(reason=f"{impl.name} unavailable: {'; '.join(reasons)}")] if reasons else []
            params.append(pytest.param(impl, id=impl.name, marks=marks))
        metafunc.parametrize(fixture, params)


def implementation_of(item: pytest.Item) -> Implementation | None:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return next((v for k, v in params.items() if k in AREA_FIXTURES), None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    selected = getattr(config, "_tokenspec_selected", None)
    keep, drop = [], []
    for item in items:
        impl = implementation_of(item)
        if impl is None:
            keep.append(item)
            continue
        if selected is not None and impl.name not in selected:
            drop.append(item)
            continue
        keep.append(item)
        expected = impl.expected_failure(getattr(item, "originalname", item.name))
        if expected is not None and expected.when is None:
            item.add_marker(pytest.mark.xfail(reason=f"{expected.reason} ({expected.link})", strict=True))
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    impl = implementation_of(item)
    if impl is not None:
        params = {k: repr(v) for k, v in item.callspec.params.items() if k not in AREA_FIXTURES}  # type: ignore[attr-defined]
        report.user_properties.append(("tokenspec", {"impl": impl.name, "area": impl.area, "params": params}))
    if report.failed and "XPASS(strict)" in str(report.longrepr):
        report.longrepr = f"{STALE}: {report.longrepr} -- this entry no longer fails; remove it from the list"
        report.user_properties.append(("tokenspec_stale", True))


def outcome_of(report: pytest.TestReport) -> str:
    props = dict(report.user_properties)
    if props.get("tokenspec_stale"):
        return "stale"
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    return report.outcome


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep one tidy record per test (its call, or the phase that skipped or broke it)."""
    if report.when != "call" and report.passed:
        return
    props: dict[str, Any] = dict(report.user_properties)
    info: dict[str, Any] = props.get("tokenspec", {})
    reason = ""
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
    elif report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        reason = crash.message if crash is not None else str(report.longrepr)[-2000:]
    elif hasattr(report, "wasxfail"):
        reason = report.wasxfail
    _recorded.append({
        "nodeid": report.nodeid, "phase": report.when, "impl": info.get("impl", ""),
        "area": info.get("area", ""), "params": info.get("params", {}),
        "outcome": outcome_of(report), "reason": reason, "duration_s": report.duration,
    })


def recorded_outcomes() -> list[dict[str, Any]]:
    return list(_recorded)


_benchmark_json: dict[str, Any] = {}


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]) -> None:
    _benchmark_json.clear()
    _benchmark_json.update(output_json)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Save the run into the results store (on the xdist controller only, with every worker's outcomes)."""
    store = config.getoption("store", None)
    if not store or hasattr(config, "workerinput"):
        return
    import sys
    from datetime import UTC, datetime
    from pathlib import Path

    from reports.environment import environment
    from reports.store import save_run

    meta = {**environment(), "command": sys.argv, "saved": datetime.now(UTC).isoformat(),
            "hypothesis_profile": os.environ.get("TOKENSPEC_PROFILE", "quick")}
    path = save_run(meta, _recorded, dict(_benchmark_json), root=Path(store))
    print(f"\ntokenspec: run stored in {path}")

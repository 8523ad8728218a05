"""The pytest plugin that turns the registry and the area declarations into self-explaining tests.

- ``suite/test_conformance.py`` and ``suite/test_benchmarks.py`` are parametrized here over every declared
  area × every registered implementation of it × every check (or benchmark case) of the area.
- A plain test asks for one area's implementations by naming the fixture ``<area>_impl``.
- An implementation that cannot run here is still collected and skipped with its reasons; one named in no
  ``--impl`` is deselected.
- Expected failures: a declaration without ``when`` marks the whole check a strict xfail at collection; one
  with ``when`` marks the pinned examples it covers (at run time) and gets its own ``test_declared_failure``
  item for the property cases it covers. An entry that passes is reported as a *stale expected failure*,
  listed once per entry at the end of the run.
- Every item's record (outcome, tally of checked / unsupported / declared cases, the verdict) goes to the
  results store with ``--store``.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from impls import registry
from impls.base import AREAS, ExpectedFailure, Implementation
from suite.engine.area import Area, Benchmark, Property, declared_areas
from suite.engine.runner import Tally

AREA_FIXTURES = {f"{area}_impl": area for area in AREAS}
STALE = "stale expected failure"
GENERIC = {"test_property": "properties", "test_example": "examples", "test_error_input": "errors"}
_recorded: list[dict[str, Any]] = []
_stale: dict[tuple[str, str], list[str]] = {}
_started = datetime.now(UTC).isoformat()


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


# ---- parametrization -----------------------------------------------------------------------------------------------

def _unavailable_marks(impl: Implementation) -> list[pytest.MarkDecorator]:
    reasons = impl.unavailable()
    return [pytest.mark.skip(reason=f"{impl.name} unavailable: {'; '.join(reasons)}")] if reasons else []


def _whole_check_xfail(impl: Implementation, name: str) -> list[pytest.MarkDecorator]:
    known = next((x for x in impl.expected_failures if x.when is None and x.matches(name)), None)
    return [pytest.mark.xfail(reason=f"{known.reason} ({known.link})", strict=True)] if known else []


def _declared_items(area: Area, impl: Implementation) -> Iterator[tuple[ExpectedFailure, list[Property]]]:
    for known in impl.expected_failures:
        if known.when is None:
            continue
        props = [p for p in area.properties if fnmatch.fnmatchcase(p.name, known.test)]
        if props:
            yield known, props


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    name = metafunc.function.__name__
    if {"impl", "check"} <= set(metafunc.fixturenames) and name in (*GENERIC, "test_declared_failure"):
        params = []
        for area in declared_areas():
            for impl in registry.all_implementations(area.id):
                marks = _unavailable_marks(impl)
                if name == "test_declared_failure":
                    for n, (known, props) in enumerate(_declared_items(area, impl)):
                        xfail = pytest.mark.xfail(reason=f"{known.reason} ({known.link})", strict=True)
                        params.append(pytest.param(impl, (known, props), marks=[*marks, xfail],
                                                   id=f"{impl.name}-{area.id}.declared.{n}"))
                    continue
                for check in getattr(area, GENERIC[name]):
                    params.append(pytest.param(impl, check, marks=[*marks, *_whole_check_xfail(impl, check.name)],
                                               id=f"{impl.name}-{area.id}.{check.id}"))
        metafunc.parametrize(("impl", "check"), params)
        return
    if {"impl", "bench"} <= set(metafunc.fixturenames):
        params = []
        for area in declared_areas():
            for bench in area.benchmarks:
                for impl in registry.all_implementations(area.id):
                    for i, case in enumerate(bench.cases):
                        params.append(pytest.param(impl, (bench, case), marks=_unavailable_marks(impl),
                                                   id=f"{impl.name}-{area.id}.{bench.name}.{_case_id(bench, case, i)}"))
        metafunc.parametrize(("impl", "bench"), params)
        return
    for fixture, area_id in AREA_FIXTURES.items():
        if fixture not in metafunc.fixturenames:
            continue
        params = [pytest.param(impl, id=impl.name, marks=[*_unavailable_marks(impl),
                                                         *_whole_check_xfail(impl, name)])
                  for impl in registry.all_implementations(area_id)]
        metafunc.parametrize(fixture, params)


def _case_id(bench: Benchmark, case: Any, index: int) -> str:
    fields = bench.describe(case)
    return "-".join(f"{v}" for v in fields.values()) if fields else str(index)


def implementation_of(item: pytest.Item) -> Implementation | None:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return next((v for v in params.values() if isinstance(v, Implementation)), None)


def check_of(item: pytest.Item) -> str:
    params = getattr(getattr(item, "callspec", None), "params", {})
    check = params.get("check")
    if isinstance(check, tuple):
        return f"declared:{check[0].test}"
    return getattr(check, "id", "") or getattr(item, "originalname", item.name)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    selected = getattr(config, "_tokenspec_selected", None)
    if selected is None:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        impl = implementation_of(item)
        (drop if impl is not None and impl.name not in selected else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# ---- inside a test ----------------------------------------------------------------------------------------------

def expect_failure_if_declared(node: pytest.Item, impl: Implementation, check: str, case: Any = None) -> None:
    """A pinned case covered by a declared expected failure runs as a strict expected failure."""
    known = impl.expected_failure(check, case)
    if known is not None and known.when is not None:
        node.add_marker(pytest.mark.xfail(reason=f"{known.reason} ({known.link})", strict=True))


@contextmanager
def keep_tally(node: pytest.Item) -> Iterator[Tally]:
    """The item's tally (and the verdict of a failure) goes into its record, whatever the outcome."""
    tally = Tally()
    try:
        yield tally
    finally:
        node.user_properties.append(("tokenspec_tally", tally.record()))
        if tally.last_failure:
            node.user_properties.append(("tokenspec_verdict", tally.last_failure[:4000]))


# ---- outcomes ------------------------------------------------------------------------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    impl = implementation_of(item)
    if impl is not None and registry.is_registered(impl):  # planted bugs are the suite's own tests, not entries
        params = {k: repr(v) for k, v in item.callspec.params.items()  # type: ignore[attr-defined]
                  if not isinstance(v, Implementation) and k != "check"}
        report.user_properties.append(("tokenspec", {"impl": impl.name, "area": impl.area,
                                                     "check": check_of(item), "params": params}))
    if report.failed and "XPASS(strict)" in str(report.longrepr):
        reason = str(report.longrepr).removeprefix("[XPASS(strict)] ")
        report.longrepr = f"{STALE}: {reason} -- this entry no longer fails; remove it from the list"
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
    if hasattr(report, "wasxfail"):
        reason = report.wasxfail
    elif report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
    elif report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        reason = crash.message if crash is not None else str(report.longrepr)[-2000:]
    if props.get("tokenspec_stale"):
        _stale.setdefault((info.get("impl", ""), reason), []).append(report.nodeid)
    _recorded.append({
        "nodeid": report.nodeid, "phase": report.when, "impl": info.get("impl", ""),
        "area": info.get("area", ""), "check": info.get("check", ""), "params": info.get("params", {}),
        "outcome": outcome_of(report), "reason": reason, "duration_s": report.duration,
        "tally": props.get("tokenspec_tally", {}), "verdict": props.get("tokenspec_verdict", ""),
    })


def recorded_outcomes() -> list[dict[str, Any]]:
    return list(_recorded)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    _cases_summary(terminalreporter)
    if not _stale:
        return
    terminalreporter.section(STALE + "s")
    for (impl, reason), nodes in sorted(_stale.items()):
        terminalreporter.write_line(f"{impl}: {reason}")
        terminalreporter.write_line(f"    passes on {len(nodes)} item(s), e.g. {nodes[0]}")


def _cases_summary(terminalreporter: Any) -> None:
    """Per implementation: the cases checked, and the drawn cases declined or declared, with the commonest reasons."""
    from collections import Counter

    checked: Counter[str] = Counter()
    declined: dict[str, Counter[str]] = {}
    declared: Counter[str] = Counter()
    for row in _recorded:
        tally, impl = row.get("tally") or {}, row.get("impl")
        if not impl or not tally:
            continue
        checked[impl] += tally.get("checked", 0)
        declined.setdefault(impl, Counter()).update(tally.get("unsupported", {}))
        declared[impl] += sum(tally.get("declared", {}).values())
    if not checked and not declined:
        return
    terminalreporter.section("tokenspec: cases checked per implementation")
    for impl in sorted(set(checked) | set(declined)):
        reasons = declined.get(impl, Counter())
        top = "; ".join(f"{n}× {r[:70]}" for r, n in reasons.most_common(2))
        line = f"{impl}: {checked[impl]} checked, {sum(reasons.values())} declined"
        line += f", {declared[impl]} covered by declared failures" if declared[impl] else ""
        terminalreporter.write_line(line + (f" ({top})" if top else ""))


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
    from pathlib import Path

    from hypothesis import settings

    from reports.declared import catalogue
    from reports.environment import environment
    from reports.store import save_run

    meta = {**environment(), "command": sys.argv, "started": _started, "saved": datetime.now(UTC).isoformat(),
            "hypothesis_profile": settings.get_current_profile_name(),
            "implementations": catalogue(registry.all_implementations())}
    path = save_run(meta, _recorded, dict(_benchmark_json), root=Path(store))
    print(f"\ntokenspec: run stored in {path}")

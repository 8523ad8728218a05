"""What every area's planted-bug self-test needs: run a set of probes, and judge the result.

A probe is a (check, case) pair; an area's own probes are the pinned cases of its properties and its bad calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from impls.base import Implementation, declared_reasons
from suite.engine.area import Area, CheckFn


def failing_probes(impl: Implementation, probes: Mapping[str, tuple[CheckFn, Any]], dtype: str | None = None,
                   seed: int = 7) -> dict[str, str]:
    """Probe name → the failure's description, for every probe ``impl`` fails (each case in ``dtype`` if given)."""
    failures = {}
    for name, (check, case) in probes.items():
        result = check(impl, dataclasses.replace(case, dtype=dtype) if dtype else case, seed)
        if not result.ok:
            failures[name] = result.describe()
    return failures


def area_probe_failures(area: Area, impl: Implementation) -> list[str]:
    """The descriptions of every pinned property case and every bad call of ``area`` that ``impl`` fails."""
    found = []
    for prop in area.properties:
        if prop.declined_by(impl):
            continue
        for n, case in enumerate(prop.pinned):
            if not declared_reasons(impl, case):
                result = prop.check(impl, case, n)
                if not result.ok:
                    found.append(result.describe())
    for bad in area.errors:
        if not bad.applies(impl):
            result = bad.run(impl)
            if not result.ok:
                found.append(result.describe())
    return found


def assert_caught(name: str, failures: Mapping[str, str] | list[str], what: str,
                  undetectable: str | None = None) -> None:
    """A planted bug must fail some probe; one declared ``undetectable`` (with why) must fail none."""
    if undetectable is None:
        assert failures, f"{name} passed every probe{what}: the checks missed a planted bug"
    else:
        assert not failures, (f"{name} is declared undetectable{what} ({undetectable}) but is now caught: "
                              f"remove the declaration\n{failures}")

"""The suite tests itself: every planted usage bug is rejected by the area's own checks, every run.

The probes are what the engine runs first every time: each property's pinned cases, the examples and the bad
payloads of ``suite.usage.area.AREA``. A correct parser (the reference) passes all of them.
"""

from __future__ import annotations

import pytest

from impls.base import declared_reasons
from impls.usage.api import UsageImpl
from impls.usage.reference_parsers import ReferenceUsage
from suite.usage.area import AREA
from suite.usage.planted import PLANTED


def failures(impl: UsageImpl) -> list[str]:
    """Every pinned probe of the area that ``impl`` fails, as the verdict's description."""
    found = []
    for prop in AREA.properties:
        for n, case in enumerate(prop.pinned):
            if not declared_reasons(impl, case):
                result = prop.check(impl, case, n)
                if not result.ok:
                    found.append(result.describe())
    for bad in AREA.errors:
        if not bad.applies(impl):
            result = bad.run(impl)
            if not result.ok:
                found.append(result.describe())
    return found


def test_probes_pass_for_the_reference() -> None:
    assert failures(ReferenceUsage()) == []


@pytest.mark.parametrize("planted", PLANTED, ids=lambda p: p.name)
def test_planted_bug_is_caught(planted: UsageImpl) -> None:
    assert failures(planted), f"{planted.name} passed every probe: the usage checks missed a planted bug"

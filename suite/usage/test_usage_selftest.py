"""The suite tests itself: every planted usage bug is rejected by the area's own checks, every run.

The probes are what the engine runs first every time: each property's pinned cases, the examples and the bad
payloads of ``suite.usage.area.AREA``. A correct parser (the reference) passes all of them.
"""

from __future__ import annotations

import pytest

from impls.usage.api import UsageImpl
from impls.usage.reference_parsers import ReferenceUsage
from suite.engine.selftest import area_probe_failures, assert_caught
from suite.usage.area import AREA
from suite.usage.planted import PLANTED


def failures(impl: UsageImpl) -> list[str]:
    return area_probe_failures(AREA, impl)


def test_probes_pass_for_the_reference() -> None:
    assert failures(ReferenceUsage()) == []


@pytest.mark.parametrize("planted", PLANTED, ids=lambda p: p.name)
def test_planted_bug_is_caught(planted: UsageImpl) -> None:
    assert_caught(planted.name, failures(planted), "")

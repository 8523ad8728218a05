"""The suite tests itself: every planted pricing bug is rejected by the area's own checks, every run.

The probes are what the engine runs first every time: each property's pinned cases (the hand-computed requests)
and the bad calls of ``suite.billing.area.AREA``. The reference pricer passes all of them.
"""

from __future__ import annotations

import pytest

from impls.billing.api import BillingImpl
from impls.billing.reference_pricer import ReferencePricer
from impls.billing.vectorized import VectorizedPricer
from suite.billing.area import AREA
from suite.billing.planted import PLANTED
from suite.engine.selftest import area_probe_failures, assert_caught


def failures(impl: BillingImpl) -> list[str]:
    return area_probe_failures(AREA, impl)


@pytest.mark.parametrize("correct", [ReferencePricer(), VectorizedPricer()], ids=lambda i: i.name)
def test_probes_pass_for_correct_pricers(correct: BillingImpl) -> None:
    assert failures(correct) == []


@pytest.mark.parametrize("planted", PLANTED, ids=lambda p: p.name)
def test_planted_bug_is_caught(planted: BillingImpl) -> None:
    assert_caught(planted.name, failures(planted), "")

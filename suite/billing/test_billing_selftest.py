"""The suite tests itself: every planted pricing bug is rejected by the area's own checks, every run.

The probes are what the engine runs first every time: each property's pinned cases (the hand-computed requests)
and the bad calls of ``suite.billing.area.AREA``. The reference pricer passes all of them.
"""

from __future__ import annotations

import pytest

from impls.base import declared_reasons
from impls.billing.api import BillingImpl
from impls.billing.reference_pricer import ReferencePricer
from impls.billing.vectorized import VectorizedPricer
from suite.billing.area import AREA
from suite.billing.planted import PLANTED


def failures(impl: BillingImpl) -> list[str]:
    found = []
    for prop in AREA.properties:
        if prop.applies(impl):
            continue
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


@pytest.mark.parametrize("correct", [ReferencePricer(), VectorizedPricer()], ids=lambda i: i.name)
def test_probes_pass_for_correct_pricers(correct: BillingImpl) -> None:
    assert failures(correct) == []


@pytest.mark.parametrize("planted", PLANTED, ids=lambda p: p.name)
def test_planted_bug_is_caught(planted: BillingImpl) -> None:
    assert failures(planted), f"{planted.name} passed every probe: the billing checks missed a planted bug"

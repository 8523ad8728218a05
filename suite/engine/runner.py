"""Running declared checks: unsupported draws and known failures handled in one place.

- A property runs under hypothesis. A drawn case the implementation declines is rejected inside
  hypothesis (``reject()``) and its reasons are counted and reported with ``hypothesis.event`` (shown by
  ``--hypothesis-show-statistics``); a property in which no drawn case was supported is skipped with the
  union of the reasons.
- A case covered by a declared expected failure (``ExpectedFailure.when``) is not checked by the property;
  it is counted, and the declaration is checked on its own item (:func:`run_declared_failure`) as a strict
  expected failure: xfailed while it fails, *stale* once it passes.
- A pinned example covered by a declaration is itself a strict expected failure.
- In the quick profile every item draws from its own fixed seed (derived from its test id), so the items
  of one property (dtypes, features) draw different cases, and a run is repeatable.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, reject, seed, settings
from hypothesis import errors as hypothesis_errors
from hypothesis import example as pinned_example
from hypothesis import strategies as st

from impls.base import ExpectedFailure, Implementation, declared_reasons
from suite.engine.area import ErrorInput, Example, Property

SEEDS = st.integers(0, 2**31 - 1)
QUICK = "quick"


class ConformanceError(AssertionError):
    """A check that did not hold; the message is the verdict's description."""


@dataclass
class Tally:
    """What one test item checked, and why the rest was not."""

    checked: set[str] = field(default_factory=set)
    unsupported: Counter[str] = field(default_factory=Counter)
    declared: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    last_failure: str = ""

    def record(self) -> dict[str, Any]:
        return {"checked": len(self.checked), "unsupported": dict(self.unsupported),
                "declared": dict(self.declared), "notes": self.notes[:5]}

    def skip_reason(self, impl: Implementation) -> str:
        why = "; ".join(sorted(self.unsupported)) or "no case was drawn"
        if self.declared:
            why += "; declared non-conformant: " + "; ".join(sorted(self.declared))
        return f"{impl.name} supports none of the drawn cases: {why}"


def budget(impl: Implementation) -> int:
    """Examples per property for ``impl`` under the loaded hypothesis profile."""
    profile = _loaded().max_examples
    if settings.get_current_profile_name() == QUICK and impl.example_budget:
        return min(profile, impl.example_budget)
    return profile


def _loaded() -> settings:
    return settings.get_profile(settings.get_current_profile_name())


def item_seed(nodeid: str) -> int:
    return int.from_bytes(hashlib.sha256(nodeid.encode()).digest()[:8], "big")


def _check_case(impl: Implementation, check: Any, case: Any, seed_: int, tally: Tally) -> None:
    tally.checked.add(repr(case))
    result = check(impl, case, seed_)
    for note in getattr(result, "notes", ()):
        if note not in tally.notes:
            tally.notes.append(note)
    if not result.ok:
        tally.last_failure = result.describe()
        raise ConformanceError(f"{impl.name} does not conform:\n{tally.last_failure}")


def run_property(impl: Implementation, prop: Property, nodeid: str, tally: Tally,
                 region: ExpectedFailure | None = None) -> None:
    """Check every supported drawn case; ``region``: only the cases that declaration covers (stale search)."""
    declined = prop.declined_by(impl)
    if declined:  # every case would be rejected: say so without drawing
        tally.unsupported.update(declined)
        if region is not None:
            return
        pytest.skip(f"{impl.name} supports none of the cases of {prop.id}: {'; '.join(declined)}")

    def body(case: Any, seed_: int) -> None:
        reasons = declared_reasons(impl, case)
        if reasons:
            tally.unsupported.update(reasons)
            for reason in reasons:
                event(f"unsupported: {reason}")
            reject()
        known = impl.expected_failure(prop.name, case)
        if region is None and known is not None and known.when is not None:
            tally.declared[known.reason] += 1
            event(f"declared non-conformance: {known.reason}")
            reject()
        if region is not None and known is not region:
            reject()
        _check_case(impl, prop.check, case, seed_, tally)

    test = given(case=prop.cases, seed_=SEEDS)(body)
    pins = list(prop.pinned) if region is None else ([region.example] if region.example is not None else [])
    for i, case in enumerate(reversed(pins)):
        test = pinned_example(case=case, seed_=len(pins) - 1 - i)(test)
    test = settings(max_examples=budget(impl), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])(test)
    if _loaded().derandomize:
        test = seed(item_seed(nodeid))(test)
    with contextlib.suppress(hypothesis_errors.Unsatisfiable):  # nothing supported: skipped below
        test()
    if not tally.checked:
        pytest.skip(tally.skip_reason(impl))


def run_example(impl: Implementation, ex: Example, tally: Tally) -> None:
    reasons = declared_reasons(impl, ex.case)
    if reasons:
        tally.unsupported.update(reasons)
        pytest.skip(f"{impl.name}: " + "; ".join(reasons))
    _check_case(impl, ex.check, ex.case, ex.seed, tally)


def run_error_input(impl: Implementation, bad: ErrorInput, tally: Tally) -> None:
    reasons = bad.applies(impl)
    if reasons:  # a call that cannot be made to this implementation: no case was declined
        pytest.skip(f"{impl.name}: " + "; ".join(reasons))
    result = bad.run(impl)
    tally.checked.add(bad.name)
    if not result.ok:
        tally.last_failure = result.describe()
        raise ConformanceError(f"{impl.name} does not reject a bad call as it must:\n{tally.last_failure}")


def run_declared_failure(impl: Implementation, known: ExpectedFailure, props: list[Property], nodeid: str,
                         tally: Tally) -> None:
    """Look for a failing case inside the declaration's region (its example first, then drawn cases).

    Run as a strict expected failure: a failure found is the declared non-conformance (xfailed); none found
    means the declaration is stale.
    """
    if not props:
        raise LookupError(f"{impl.name}: expected failure {known.test!r} matches no declared check")
    for prop in props:
        try:
            run_property(impl, prop, f"{nodeid}:{prop.id}", tally, region=known)
        except pytest.skip.Exception:
            continue
    if not tally.checked:
        pytest.skip(f"{impl.name}: no case inside the declared non-conformance {known.reason!r} is supported "
                    f"here ({'; '.join(sorted(tally.unsupported)) or 'none drawn'})")

"""A correct kernel that declares an expected failure it does not have: reported as stale."""

from __future__ import annotations

from impls.attention.eager import EagerAttention
from impls.base import ExpectedFailure


class OverCautious(EagerAttention):
    name = "stale-xfail-example"
    expected_failures = (ExpectedFailure(test="test_lse", reason="believed to return lse in base 2",
                                         link="https://example.invalid/issue/1"),)


def implementations() -> list[EagerAttention]:
    return [OverCautious()]

"""Declaring one known non-conformance that several checks show: one ExpectedFailure per check name."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from impls.base import ExpectedFailure


def each(tests: Iterable[str], reason: str, link: str, when: Callable[[Any], bool] | None = None,
         example: Any = None) -> tuple[ExpectedFailure, ...]:
    """The same finding on each of ``tests`` (check names or fnmatch patterns)."""
    return tuple(ExpectedFailure(test=t, reason=reason, link=link, when=when, example=example) for t in tests)

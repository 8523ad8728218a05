"""Correct kernels that declare expected failures they do not have: both reported as stale.

- ``stale-xfail-example`` declares the whole ``lse`` check failing (no ``when``);
- ``stale-when-example`` declares windowed cases failing (``when``, with the example that would show it).
"""

from __future__ import annotations

from impls.attention.api import AttentionCase
from impls.attention.eager import EagerAttention
from impls.base import ExpectedFailure
from reference.attention import AttentionOptions

WINDOW = AttentionOptions(window_left=2, window_right=0, alignment="bottom_right")


class OverCautious(EagerAttention):
    name = "stale-xfail-example"
    expected_failures = (ExpectedFailure(test="lse", reason="believed to return lse in base 2",
                                         link="https://example.invalid/issue/1"),)


class OverCautiousWindows(EagerAttention):
    name = "stale-when-example"
    expected_failures = (ExpectedFailure(
        test="forward", reason="believed to drop the window's left edge", link="https://example.invalid/issue/2",
        when=lambda case: case.options.window_left is not None,
        example=AttentionCase(1, 1, 1, 9, 9, 16, "float32", "cpu", WINDOW)),)


def implementations() -> list[EagerAttention]:
    return [OverCautious(), OverCautiousWindows()]

"""The reference parsers, registered as an implementation so the suite's own checks run on them too."""

from __future__ import annotations

from typing import Any

from impls.registry import register
from impls.usage.api import UsageImpl
from reference import usage as ref


class ReferenceUsage(UsageImpl):
    name = "usage-reference"
    description = "reference.usage parsers (the spec)"
    formats = ref.FORMATS
    call_cost_s = 3e-5  # an Anthropic stream; a body is 5e-6 (measured under load)

    def parse(self, fmt: str, payload: Any) -> ref.Usage | None:
        return ref.parse(fmt, payload)


register(ReferenceUsage())

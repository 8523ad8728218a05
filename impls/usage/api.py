"""The usage area's call API: a provider payload in a named format → the canonical usage record.

Formats are those of :data:`reference.usage.FORMATS` (``openai.chat``, ``anthropic.messages.stream``, ...).
``parse`` returns a :class:`reference.usage.Usage`, or None when the payload carries no usage (unknown).
An implementation that wraps a library converts the library's own result into the canonical record;
it raises :class:`reference.usage.UsageError` for malformed input (wrapping the library's own error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from impls.base import Implementation
from reference.usage import Usage


@dataclass(frozen=True)
class UsageCase:
    """What a test is about to ask: the format, and whether the payload is deliberately malformed."""

    fmt: str
    malformed: bool = False


class UsageImpl(Implementation):
    area: ClassVar[str] = "usage"
    formats: tuple[str, ...] = ()
    validates: bool = True  # False: the library accepts malformed payloads by design (declared, not hidden)
    reports_service_tier: bool = True  # False: the service tier is not part of what it extracts

    def unsupported(self, case: Any) -> list[str]:
        if not isinstance(case, UsageCase):
            return []
        reasons = []
        if case.fmt not in self.formats:
            reasons.append(f"{self.name} does not parse {case.fmt!r} (it parses {', '.join(self.formats)})")
        if case.malformed and not self.validates:
            reasons.append(f"{self.name} does not validate payloads")
        return reasons

    def parse(self, fmt: str, payload: Any) -> Usage | None:
        raise NotImplementedError

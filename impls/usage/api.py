"""The usage area's call API: a provider payload in a named format → the canonical usage record.

Formats are those of :data:`reference.usage.FORMATS` (``openai.chat``, ``anthropic.messages.stream``,
``bedrock.converse``, ...). ``parse`` returns a :class:`reference.usage.Usage`, or None when the payload carries
no usage (unknown). An implementation that wraps a library converts the library's own result into the
canonical record; it raises :class:`reference.usage.UsageError` for malformed input (wrapping the library's
own error). Capabilities, declared as data on the class:

- ``formats``: the formats it parses; a case in another format is unsupported, naming the ones it takes;
- ``lacks`` (feature → why): ``validation`` (it does not reject malformed payloads: fuzzing and the bad
  payloads are not asked of it), ``service_tier`` (it does not report the tier: the check compares counts only);
- ``reports_service_tier`` [True]: False when the service tier is not part of what it extracts (the check
  then compares the counts only, and says so);
- ``call_cost_s``: seconds one ``parse`` costs here; fuzzing sizes its sample from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from impls.base import Implementation
from reference.usage import FORMATS, Usage, UsageError

FEATURES = ("validation", *FORMATS)


@dataclass(frozen=True)
class UsageCase:
    """A payload in one format and the record it must parse to (``None``: the usage is unknown).

    ``label`` says where it comes from: a golden body's reason, or ``rendered`` for a record drawn and written
    in the format's shape.
    """

    fmt: str
    payload: Any
    expected: Usage | None
    label: str = "rendered"

    def features(self) -> set[str]:
        return {self.fmt}

    def __str__(self) -> str:
        body = json.dumps(self.payload, separators=(",", ":"))
        return f"{self.fmt} [{self.label}] {body if len(body) < 400 else body[:397] + '...'}"


@dataclass(frozen=True)
class MalformedCase:
    """A malformed payload: parsing it must raise UsageError naming ``field`` (None: any UsageError will do)."""

    fmt: str
    payload: Any
    field: str | None
    label: str = ""

    def features(self) -> set[str]:
        return {self.fmt, "validation"}

    def __str__(self) -> str:
        body = json.dumps(self.payload, separators=(",", ":"))
        return f"{self.fmt} malformed [{self.label}] {body if len(body) < 400 else body[:397] + '...'}"


@dataclass(frozen=True)
class FuzzCase:
    """Mutated payloads of one format (``suite.usage.fuzz``); how many is sized from the call cost."""

    fmt: str

    def features(self) -> set[str]:
        return {self.fmt, "validation"}

    def __str__(self) -> str:
        return f"{self.fmt} fuzzed payloads"


class UsageImpl(Implementation):
    area: ClassVar[str] = "usage"
    formats: tuple[str, ...] = ()
    reports_service_tier: bool = True

    def unsupported(self, case: Any) -> list[str]:
        fmt = getattr(case, "fmt", None)
        if fmt is not None and fmt not in self.formats:
            return [f"{self.name} does not parse {fmt!r} (it parses {', '.join(self.formats)})"]
        return []

    def parse(self, fmt: str, payload: Any) -> Usage | None:
        raise NotImplementedError


def validate(fmt: str, payload: Any) -> None:
    """Reject a call the area's API does not take: an unknown format, a payload that is not JSON-shaped."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {FORMATS}")
    stream = fmt.endswith(".stream")
    if not isinstance(payload, list if stream else dict):
        raise UsageError("events" if stream else "body",
                         f"must be {'a list of events' if stream else 'a JSON object'}; got {type(payload).__name__}")

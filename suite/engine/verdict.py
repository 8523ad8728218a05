"""One verdict type for every area, and the assertion vocabulary that builds it.

A :class:`Verdict` is what a check of one implementation on one case returns: the case, then one line per
thing compared, each with the numbers and the bound it was held to. ``describe()`` is what a failure shows
and what the results store keeps, so a message reads the same in every area:

    out: max err 3.1e-02 (bound 4.2e-03, baseline 1.9e-03) ... -- max error exceeds 2·baseline + noise
    cost=0.0210, but should be 0.0105 [litellm on claude-sonnet-4-5 ...]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol


class Check(Protocol):
    """One comparison inside a verdict: a name, whether it held, and a line with its numbers."""

    @property
    def name(self) -> str: ...

    @property
    def ok(self) -> bool: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Line:
    """A check stated in words: ``ok`` and the line that says what was compared with what."""

    name: str
    ok: bool
    text: str

    def describe(self) -> str:
        return f"{self.name}: {self.text}"


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one case: passed when every check held."""

    case: str
    checks: tuple[Check, ...] = ()
    notes: tuple[str, ...] = field(default=())  # said alongside, never decisive (the power a test kept, ...)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def describe(self) -> str:
        lines = [f"case: {self.case}"]
        lines += [("  ok    " if c.ok else "  FAIL  ") + c.describe() for c in self.checks]
        lines += [f"  note  {n}" for n in self.notes]
        return "\n".join(lines)

    def __add__(self, other: Verdict) -> Verdict:
        return Verdict(self.case, self.checks + other.checks, self.notes + other.notes)


def verdict(case: Any, *checks: Check | Iterable[Check], notes: Iterable[str] = ()) -> Verdict:
    flat: list[Check] = []
    for c in checks:
        flat.extend(c if isinstance(c, (list, tuple)) else [c])  # type: ignore[list-item]
    return Verdict(str(case), tuple(flat), tuple(notes))


def equal(name: str, got: Any, want: Any, context: str = "") -> Line:
    """Exact equality: ``name=got, but should be want [context]``."""
    ok = type(got) is type(want) and got == want if isinstance(want, bool) else got == want
    where = f" [{context}]" if context else ""
    text = f"{got!r}" if ok else f"{name}={got!r}, but should be {want!r}{where}"
    return Line(name, bool(ok), text)


def close(name: str, got: float, want: float, rel: float, context: str = "") -> Line:
    """|got − want| ≤ rel·|want| (for implementations that return floats where the spec is exact)."""
    err = abs(float(got) - float(want))
    ok = err <= rel * abs(float(want)) and got == got
    where = f" [{context}]" if context else ""
    text = (f"{got!r} (relative error {err / abs(want) if want else err:.2g} ≤ {rel:g})" if ok else
            f"{name}={got!r}, but should be {want!r} within relative {rel:g}{where}")
    return Line(name, ok, text)


def holds(name: str, ok: bool, text: str) -> Line:
    return Line(name, bool(ok), text)


def raises(name: str, call: Callable[[], Any], errors: tuple[type[BaseException], ...],
           must_name: Iterable[str] = ()) -> Line:
    """``call()`` raises one of ``errors`` whose message names every fragment of ``must_name``."""
    fragments = tuple(must_name)
    try:
        result = call()
    except errors as err:
        message = str(err)
        missing = [f for f in fragments if f not in message]
        if missing:
            return Line(name, False, f"raised {type(err).__name__}({message!r}), which does not name {missing}")
        return Line(name, True, f"raised {type(err).__name__}({message[:200]!r})")
    except Exception as err:  # the wrong kind of error is a finding, not a crash of the suite
        return Line(name, False, f"raised {type(err).__name__}({err!s:.200}), expected one of "
                                 f"{', '.join(e.__name__ for e in errors)}")
    return Line(name, False, f"returned {_short(result)} instead of raising {', '.join(e.__name__ for e in errors)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 120 else text[:117] + "..."

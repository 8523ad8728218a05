"""An area's declaration: its cases, its checks, its bad calls and its benchmarks, as data.

Each area declares one :class:`Area` in ``suite/<area>/area.py``. The generic modules
``suite/test_conformance.py`` and ``suite/test_benchmarks.py`` parametrize over every declared area ×
every registered implementation of it; nothing there is written per area. See docs/adding_an_area.md.

- A :class:`Property` is a hypothesis strategy of case objects and a check ``(impl, case, seed) → Verdict``.
  Cases an implementation declines are rejected inside hypothesis and counted by reason.
- An :class:`Example` is one pinned case (a known trap) with its check.
- An :class:`ErrorInput` is a bad call that must raise, naming the constraint it violates.
- A :class:`Benchmark` is a sweep of cases with its x-axis, metrics and baseline.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from impls.base import AREAS, Implementation

CheckFn = Callable[[Any, Any, int], Any]  # (impl, case, seed) -> Verdict


@dataclass(frozen=True)
class Property:
    """A property test: every drawn case the implementation supports must pass ``check``."""

    name: str  # the check's name: what ExpectedFailure.test matches
    cases: st.SearchStrategy[Any]
    check: CheckFn
    variant: str = ""  # tells apart the items of one name (dtype, feature)
    pinned: tuple[Any, ...] = ()  # cases always run first (the known traps of this property)
    # Optional: what every drawn case has in common. An implementation that lacks one of these features, or does
    # not compute in this dtype, declines every case, so the property is skipped with that reason at once instead
    # of rejecting draws until hypothesis gives up (about 460 of them).
    needs: tuple[str, ...] = ()
    dtype: str | None = None
    # Optional: reasons a given implementation declines every case that no feature names (e.g. a format it does
    # not parse); added to those of ``needs`` and ``dtype``. Default: none.
    applies: Callable[[Any], list[str]] = lambda impl: []

    @property
    def id(self) -> str:
        return f"{self.name}.{self.variant}" if self.variant else self.name

    def declined_by(self, impl: Implementation) -> list[str]:
        """Reasons ``impl`` declines every case of this property (``needs``, ``dtype``, ``applies``); empty if none."""
        reasons = []
        if self.dtype is not None and impl.dtypes is not None and self.dtype not in impl.dtypes:
            reasons.append(f"{impl.name} computes in {', '.join(impl.dtypes)}, not {self.dtype}")
        return reasons + [impl.lacks[f] for f in self.needs if f in impl.lacks] + self.applies(impl)


@dataclass(frozen=True)
class Example:
    """One pinned case with its check (and the seed of its inputs)."""

    name: str
    case: Any
    check: CheckFn
    variant: str = ""
    seed: int = 0

    @property
    def id(self) -> str:
        return f"{self.name}.{self.variant}" if self.variant else self.name


@dataclass(frozen=True)
class ErrorInput:
    """A bad call: ``run(impl)`` returns the verdict (built with ``suite.engine.verdict.raises``).

    ``applies(impl)`` returns the reasons the call cannot be made to this implementation (empty: it can).
    """

    name: str
    run: Callable[[Any], Any]
    applies: Callable[[Any], list[str]] = lambda impl: []

    @property
    def id(self) -> str:
        return self.name


@dataclass(frozen=True)
class Benchmark:
    """A sweep: one timed case each; ``x`` is the case field plotted along the axis.

    ``prepare(impl, case)`` returns ``(make_inputs, run, cost)`` where ``cost`` is a dict of ``flops``,
    ``min_bytes`` and ``items`` (any may be 0). ``baseline`` maps a device kind (``cuda``,
    ``cpu``) to the implementation the speedup is taken against; ``series`` names the case fields that tell
    lines apart in a chart.
    """

    name: str
    cases: Sequence[Any]
    prepare: Callable[[Any, Any], tuple[Callable[[], Sequence[Any]], Callable[..., Any], dict[str, int]]]
    x: str
    metrics: tuple[str, ...]
    baseline: dict[str, str] = field(default_factory=dict)
    series: tuple[str, ...] = ()
    describe: Callable[[Any], dict[str, Any]] = lambda case: dict(vars(case))
    rounds: dict[str, int] = field(default_factory=lambda: {"cuda": 10, "cpu": 3})


@dataclass(frozen=True)
class Area:
    """Everything the generic suite needs to know about one spec area."""

    id: str
    impl_type: type[Implementation]
    features: tuple[str, ...] = ()  # the names an implementation's ``lacks`` may use
    properties: tuple[Property, ...] = ()
    examples: tuple[Example, ...] = ()
    errors: tuple[ErrorInput, ...] = ()
    benchmarks: tuple[Benchmark, ...] = ()

    def __post_init__(self) -> None:
        if self.id not in AREAS:
            raise ValueError(f"area {self.id!r} is not one of {AREAS}")
        checks: list[Property | Example | ErrorInput] = [*self.properties, *self.examples, *self.errors]
        ids = [c.id for c in checks]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"area {self.id}: check ids declared twice: {twice}")

    def check_named(self, name: str) -> list[Property | Example]:
        checks: list[Property | Example] = [*self.properties, *self.examples]
        return [c for c in checks if c.name == name]


def declared_areas() -> list[Area]:
    """The declaration of every area that has one (``suite/<area>/area.py`` defining ``AREA``)."""
    found = []
    for area in AREAS:
        try:
            module = importlib.import_module(f"suite.{area}.area")
        except ModuleNotFoundError as err:
            if err.name in (f"suite.{area}", f"suite.{area}.area"):
                continue
            raise
        found.append(module.AREA)
    return found

"""What every implementation declares, whatever its spec area.

An implementation is an object with an ``area``, a ``name``, the ``requires`` it needs to run
here, the inputs it supports (``unsupported(case)`` returns reasons, never a bare False) and a
list of known non-conformances (``expected_failures``). Each area adds its own call API in
``impls/<area>/api.py``; nothing here knows about tensors or money.
"""

from __future__ import annotations

import fnmatch
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

AREAS = ("attention", "paged_attention", "kv_cache", "speculative", "usage", "billing")


@dataclass(frozen=True)
class Requirements:
    """What an implementation needs from the machine it runs on."""

    modules: tuple[str, ...] = ()
    device: str = "any"  # "cpu", "cuda" or "any"
    min_compute_capability: tuple[int, int] | None = None
    env: tuple[str, ...] = ()  # environment variables that must be set, e.g. TRITON_INTERPRET

    def unmet(self) -> list[str]:
        """Reasons this machine cannot run the implementation; empty when it can."""
        import os

        reasons = [f"module {m!r} is not installed" for m in self.modules if not _importable(m)]
        reasons += [f"environment variable {v} is not set" for v in self.env if not os.environ.get(v)]
        if self.device == "cuda" or self.min_compute_capability:
            cuda = _cuda_capability()
            if cuda is None:
                reasons.append("needs a CUDA device; none is visible")
            elif self.min_compute_capability and cuda < self.min_compute_capability:
                need = ".".join(map(str, self.min_compute_capability))
                have = ".".join(map(str, cuda))
                reasons.append(f"needs compute capability >= {need}; this GPU has {have}")
        return reasons


@dataclass(frozen=True)
class ExpectedFailure:
    """A known non-conformance: the tests it fails, why, and where that is documented.

    ``test`` is an fnmatch pattern over the test function's name; ``when`` narrows it to the
    cases (the area's case object) where the failure is expected. The suite reports an entry
    that no longer fails as stale.
    """

    test: str
    reason: str
    link: str
    when: Callable[[Any], bool] | None = None

    def __post_init__(self) -> None:
        if not self.reason or not self.link:
            raise ValueError(f"expected failure for {self.test!r} needs both a reason and a link")

    def matches(self, test_name: str, case: Any = None) -> bool:
        if not fnmatch.fnmatchcase(test_name, self.test):
            return False
        return self.when is None or (case is not None and bool(self.when(case)))


class Implementation:
    """Base of every implementation. Subclasses set the class attributes and the area's API."""

    area: ClassVar[str] = ""
    name: str = ""
    description: str = ""
    requires: Requirements = Requirements()
    expected_failures: tuple[ExpectedFailure, ...] = ()
    origin: str = ""  # set by the registry: the module or file that registered it

    def unavailable(self) -> list[str]:
        """Reasons it cannot run on this machine at all."""
        return self.requires.unmet()

    def unsupported(self, case: Any) -> list[str]:
        """Reasons it cannot handle ``case``; empty when it claims to."""
        return []

    def not_a_timing_target(self) -> str | None:
        """Why timings of this implementation here would mean nothing (e.g. an interpreter), or None."""
        return None

    def expected_failure(self, test_name: str, case: Any = None) -> ExpectedFailure | None:
        return next((x for x in self.expected_failures if x.matches(test_name, case)), None)

    def __repr__(self) -> str:
        return f"<{self.area} implementation {self.name!r}>"


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _cuda_capability() -> tuple[int, int] | None:
    if not _importable("torch"):
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability()
    return (major, minor)

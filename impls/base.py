"""What every implementation declares, whatever its spec area.

An implementation is an object with an ``area``, a ``name``, the ``requires`` it needs to run here, its
capabilities as data (the attributes below, each with a documented default), the inputs it cannot handle
(``unsupported(case)`` returns reasons, never a bare False) and its known non-conformances
(``expected_failures``). The suite reads these attributes; it never guesses and never looks at a name.
Each area adds its call API in ``impls/<area>/api.py``; nothing here knows about tensors or money.
"""

from __future__ import annotations

import fnmatch
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

AREAS = ("attention", "paged", "kv_cache", "speculative", "usage", "billing", "rope")


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
    """A known non-conformance: the checks it fails, why, where that is documented, and the case that shows it.

    ``test`` is an fnmatch pattern over the check's name (an area declaration's check, e.g. ``forward`` or
    ``nan_in_masked_out_key``, or a plain test function's name). ``when`` narrows it to the cases (the area's
    case object) where the failure is expected; without it every case of the check is expected to fail.
    ``example`` is the smallest case known to show the failure: the suite runs it as a strict expected
    failure, so that an entry that no longer fails is reported as stale (without one, the suite searches the
    check's cases for one that matches ``when`` and fails).
    """

    test: str
    reason: str
    link: str
    when: Callable[[Any], bool] | None = None
    example: Any = None

    def __post_init__(self) -> None:
        if not self.reason or not self.link:
            raise ValueError(f"expected failure for {self.test!r} needs both a reason and a link")

    def matches(self, check: str, case: Any = None) -> bool:
        if not fnmatch.fnmatchcase(check, self.test):
            return False
        return self.when is None or (case is not None and bool(self.when(case)))


class Implementation:
    """Base of every implementation. Subclasses set the class attributes and the area's API.

    Capabilities, read by the suite (defaults in brackets):

    - ``dtypes`` [None: every dtype the area draws]: the dtypes it computes in; a drawn case in another
      dtype is unsupported, with the reason saying which dtypes it takes.
    - ``lacks`` [{}]: feature → why it is missing, for the features the area's cases name (``lse``, ``grad``,
      ``greedy``, ``uniforms``, ...). A case that needs a feature listed here is unsupported with that reason.
    - ``example_budget`` [None: the hypothesis profile's count]: examples per property test in the quick
      profile, for an implementation whose calls are slow (an interpreter, a Python loop per request,
      per-shape compilation). The thorough profile always runs the full count.
    - ``call_cost_s`` [0.0]: wall seconds of one call here, roughly. Checks that need many calls (statistical
      tests, fuzzing) size their sample from it and say what power or coverage remains.
    """

    area: ClassVar[str] = ""
    name: str = ""
    description: str = ""
    requires: Requirements = Requirements()
    expected_failures: tuple[ExpectedFailure, ...] = ()
    dtypes: tuple[str, ...] | None = None
    lacks: Mapping[str, str] = {}
    example_budget: int | None = None
    call_cost_s: float = 0.0
    origin: str = ""  # set by the registry: the module or file that registered it

    def unavailable(self) -> list[str]:
        """Reasons it cannot run on this machine at all."""
        return self.requires.unmet()

    def unsupported(self, case: Any) -> list[str]:
        """Reasons it cannot handle ``case`` beyond its declared dtypes and ``lacks`` (shape limits, devices)."""
        return []

    def not_a_timing_target(self) -> str | None:
        """Why timings of this implementation here would mean nothing (e.g. an interpreter), or None."""
        return None

    def expected_failure(self, check: str, case: Any = None) -> ExpectedFailure | None:
        return next((x for x in self.expected_failures if x.matches(check, case)), None)

    def __repr__(self) -> str:
        return f"<{self.area} implementation {self.name!r}>"


def declared_reasons(impl: Implementation, case: Any) -> list[str]:
    """Every reason ``impl`` declines ``case``: its dtypes, its missing features, then its own ``unsupported``.

    A case names its dtype as ``case.dtype`` and the features it needs as ``case.features()``.
    """
    reasons = []
    dtype = getattr(case, "dtype", None)
    if impl.dtypes is not None and dtype is not None and dtype not in impl.dtypes:
        reasons.append(f"{impl.name} computes in {', '.join(impl.dtypes)}, not {dtype}")
    features = case.features() if hasattr(case, "features") else ()
    reasons += [impl.lacks[f] for f in sorted(features) if f in impl.lacks]
    return reasons + list(impl.unsupported(case))


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

"""What every registered implementation declares, as plain data a run keeps in its ``run.json``.

The plugin stores this catalogue with every run (``implementations``), so the report lists each declared
non-conformance with its reason, link and smallest case even when the implementation did not run here
(unavailable, or not selected), and groups findings by the library an implementation adapts.
Nothing here imports ``impls``: the objects are read by their attributes, so ``reports`` only reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

PLATFORM_MODULES = ("torch", "triton", "numpy")  # what an adapter runs on, not the library it adapts
IN_REPO = "tokenspec (in-repo)"


def library_of(modules: Iterable[str]) -> str:
    """The library an implementation adapts: its first required module beyond the platform ones."""
    tops = [m.split(".")[0] for m in modules]
    return next((m for m in tops if m not in PLATFORM_MODULES), tops[0] if tops else IN_REPO)


def catalogue(impls: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """name → area, library, why it cannot run here, and its expected failures (``ExpectedFailure`` as data)."""
    found = {}
    for impl in impls:
        found[impl.name] = {
            "area": impl.area,
            "library": library_of(impl.requires.modules),
            "unavailable": list(impl.unavailable()),
            "expected_failures": [
                {"test": known.test, "reason": known.reason, "link": known.link,
                 "scope": "every case" if known.when is None else "the cases its `when` selects",
                 "example": None if known.example is None else str(known.example),
                 "xfail_reason": f"{known.reason} ({known.link})"}  # as the plugin stores an xfail's reason
                for known in impl.expected_failures],
        }
    return found

"""A finding counts only if it is the library's doing: every declared non-conformance's case passes for the
reference-backed implementations (rope-torch, and the in-repo Triton kernel where it can run)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from impls import registry
from impls.base import ExpectedFailure
from impls.rope.api import RopeCase, RopeImpl
from suite.rope.area import AREA
from suite.rope.check import check_inputs_untouched, check_rotation, check_schedule

CHECKS: dict[str, Callable[..., Any]] = {"rotation*": check_rotation, "length_schedule": check_schedule,
                                         "inputs_untouched": check_inputs_untouched}


def findings() -> list[tuple[str, ExpectedFailure, RopeCase, Callable[..., Any]]]:
    """(library, declaration, its smallest case, the check it fails) for every rope declaration."""
    out = []
    for impl in registry.all_implementations("rope"):
        for known in impl.expected_failures:
            if known.example is not None:
                out.append((impl.name, known, known.example, CHECKS[known.test]))
            else:  # covers pinned examples of the declaration: those are its cases
                out += [(impl.name, known, ex.case, ex.check) for ex in AREA.examples
                        if known.matches(ex.name, ex.case)]
    return out


FINDINGS = findings()


def test_every_rope_adapter_declares_what_it_was_found_to_do() -> None:
    libraries = {name for name, *_ in FINDINGS}
    assert {"transformers-rope-phi3", "transformers-rope-glm", "vllm-rope", "liger-rope"} <= libraries


@pytest.mark.parametrize("reference_backed", ["rope-torch", "rope-triton"])
@pytest.mark.parametrize("finding", FINDINGS, ids=lambda f: f"{f[0]}:{f[1].test}:{f[2].config.name}")
def test_the_finding_s_case_passes_for_the_reference_backed_implementation(finding: Any, reference_backed: str) -> None:
    _, known, case, check = finding
    impl = next(i for i in registry.all_implementations("rope") if i.name == reference_backed)
    assert isinstance(impl, RopeImpl)
    if impl.unavailable():
        pytest.skip(f"{impl.name} unavailable: {'; '.join(impl.unavailable())}")
    result = check(impl, case, 0)
    assert result.ok, f"{known.reason}\nis not the library's doing: {impl.name} fails the same case\n{result.describe()}"

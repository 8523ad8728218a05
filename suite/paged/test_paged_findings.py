"""A declared non-conformance of a paged implementation is a finding only if it is the library's doing: its
smallest case passes for the in-repo kernel and for the gather + SDPA baseline (both must take it)."""

from __future__ import annotations

import pytest

from impls import registry
from impls.base import ExpectedFailure, declared_reasons
from impls.paged.api import PagedAttentionImpl
from impls.paged.gather_sdpa import GatherSdpa
from impls.paged.triton_paged_decode import TritonPagedDecode
from suite.paged.check import check

REFERENCE_IMPLEMENTATIONS = (TritonPagedDecode(), GatherSdpa())
DECLARED = [(impl, known) for impl in registry.all_implementations("paged") for known in impl.expected_failures
            if known.example is not None]


@pytest.mark.parametrize(("impl", "known"), DECLARED, ids=[f"{impl.name}-{n}" for n, (impl, _) in enumerate(DECLARED)])
def test_declared_example_passes_for_the_in_repo_implementations(impl: PagedAttentionImpl,
                                                                 known: ExpectedFailure) -> None:
    for reference in REFERENCE_IMPLEMENTATIONS:
        reasons = declared_reasons(reference, known.example)
        assert not reasons, f"{reference.name} cannot run the example of {impl.name}'s finding: {reasons}"
        result = check(reference, known.example, seed=0)
        assert result.ok, f"{reference.name} fails the example of {impl.name}'s finding:\n{result.describe()}"

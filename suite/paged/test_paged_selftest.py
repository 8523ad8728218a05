"""The suite catches the planted bugs of the issue, and the interpreter's bf16 defect still exists.

Each planted kernel bug is a build of ``paged-triton`` with one defect switched on; the same case
passes with the correct build, so the rejection is the bug's doing. (The stale-block-after-CoW bug
is an allocator defect: see test_paged_allocator.py.)
"""

from __future__ import annotations

import os

import pytest
import torch

from impls.paged import _paged_kernels as kern
from impls.paged.triton_paged_decode import TritonPagedDecode
from reference.attention import AttentionOptions
from suite.paged.paged_check import DEVICE, PagedSpec, check_paged, describe

pytestmark = pytest.mark.skipif(not torch.cuda.is_available() and not os.environ.get("TRITON_INTERPRET"),
                                reason="needs a CUDA device or the Triton interpreter (TRITON_INTERPRET=1)")

# non-causal decode (the causal mask would hide slots past the end), lengths ending mid-block,
# two kv heads with a group of 4, three splits of unequal weight
SPEC = PagedSpec((70, 5, 45), 8, 2, 1, 16, 8, "float32", AttentionOptions(), seed=5)
PLANTED = {
    "last partial block read unmasked": kern.BUG_TAIL_UNMASKED,
    "block table indexed with the wrong stride": kern.BUG_TABLE_STRIDE,
    "split-KV combine ignores the LSE": kern.BUG_COMBINE_NO_LSE,
    "GQA heads mapped to the wrong kv head": kern.BUG_GQA_MAP,
}


def test_paged_correct_build_passes_the_selftest_case() -> None:
    comparisons = check_paged(TritonPagedDecode(num_splits=3), SPEC)
    assert all(c.ok for c in comparisons), describe(comparisons)


@pytest.mark.parametrize("bug", PLANTED, ids=list(PLANTED))
def test_paged_planted_bug_is_rejected(bug: str) -> None:
    comparisons = check_paged(TritonPagedDecode(num_splits=3, bug=PLANTED[bug]), SPEC)
    assert not all(c.ok for c in comparisons), f"planted bug not caught: {bug}\n{describe(comparisons)}"


@pytest.mark.skipif(DEVICE == "cuda", reason="the defect is the interpreter's; compiled kernels are checked on GPU")
def test_paged_interpreter_bf16_dot_is_still_broken() -> None:
    """Without the upcast, bf16 under the interpreter is wrong: the reason for UPCAST (triton 3.9)."""
    spec = PagedSpec((40, 23), 8, 2, 1, 16, 8, "bfloat16", AttentionOptions(), seed=2)
    assert all(c.ok for c in check_paged(TritonPagedDecode(num_splits=1), spec))
    raw = TritonPagedDecode(num_splits=1)
    raw_kernel = kern.paged_decode_kernel

    def no_upcast(grid):  # type: ignore[no-untyped-def]
        def launch(*args, **kwargs):  # type: ignore[no-untyped-def]
            kwargs["UPCAST"] = False
            return raw_kernel[grid](*args, **kwargs)
        return launch

    class Patched:
        def __getitem__(self, grid):  # type: ignore[no-untyped-def]
            return no_upcast(grid)

    kern.paged_decode_kernel = Patched()  # type: ignore[assignment]
    try:
        comparisons = check_paged(raw, spec)
    finally:
        kern.paged_decode_kernel = raw_kernel
    assert not all(c.ok for c in comparisons), ("bf16 tl.dot under the interpreter now looks right: the interpreter "
                                                "upcast in triton_paged may be removable\n" + describe(comparisons))

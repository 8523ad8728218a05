"""Compiled paged kernels at serving sizes (marker ``gpu``; skipped with the reason where no CUDA device is visible).

What the CPU run cannot show: the compiled ``paged-triton`` (no interpreter, tuned split counts, bf16 MMA)
and every other paged implementation that runs on the GPU, at serving shapes (D 128, 32 query heads on 8 kv
heads, contexts of thousands of tokens, block sizes 1 and 256), and a pool of 140,000 blocks
(> 32,768; 4.6 GB per pool) whose sequences sit at its far end, so element offsets pass 2³¹ and byte offsets
2³². Every case goes through the area's check (the tolerance policy, NaN-poisoned output). ``pytest suite``
on a GPU runs them (``scripts/gpu_session.sh``); the timings are the area's declared benchmark.
"""

from __future__ import annotations

import pytest

from impls.base import declared_reasons
from impls.paged.api import PagedAttentionImpl, PagedCase
from impls.tensors import default_device
from reference.attention import AttentionOptions
from suite.paged.check import check
from suite.plugin import expect_failure_if_declared

DEVICE = default_device()
CAUSAL = AttentionOptions(causal=True, alignment="bottom_right")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(DEVICE != "cuda", reason="compiled kernels at serving sizes need a CUDA device; "
                                                          "none is visible here")]

SERVING = {
    "mixed_bf16_prefix_lse": PagedCase((1, 300, 77, 1000), 32, 8, 1, 128, 16, "bfloat16", DEVICE, needs_lse=True,
                                       shared_prefix=20),
    "verify5_fp16_causal": PagedCase((5, 4096, 999), 32, 8, 5, 128, 16, "float16", DEVICE, CAUSAL),
    "block1_sq16_mqa": PagedCase((16, 1, 513), 8, 1, 16, 64, 1, "bfloat16", DEVICE, CAUSAL),
    "block256_window_softcap": PagedCase((3000, 700), 16, 2, 2, 128, 256, "float16", DEVICE,
                                         AttentionOptions(causal=True, window_left=100, softcap=30.0,
                                                          alignment="bottom_right")),
    "fp32_long_lse": PagedCase((2000, 1), 4, 4, 1, 80, 32, "float32", DEVICE, needs_lse=True),
    "fp8_e4m3_cache": PagedCase((4000, 17), 32, 8, 1, 128, 16, "bfloat16", DEVICE, kv_dtype="float8_e4m3fn",
                                k_scale=1 / 16, v_scale=1 / 32),
    # 140,000 blocks of 16 × 8 × 128: block 131,072 starts at element 2³¹; the sequences own the last 65 blocks
    "pool_offsets_past_2_31": PagedCase((700, 333), 32, 8, 1, 128, 16, "bfloat16", DEVICE, needs_lse=True,
                                        spare_blocks=0, pool_blocks=140_000),
}


@pytest.mark.parametrize("name", list(SERVING))
def test_paged_compiled_at_serving_sizes(paged_impl: PagedAttentionImpl, name: str,
                                         request: pytest.FixtureRequest) -> None:
    case = SERVING[name]
    reasons = declared_reasons(paged_impl, case)
    if reasons:
        pytest.skip(f"{paged_impl.name}: " + "; ".join(reasons))
    expect_failure_if_declared(request.node, paged_impl, "forward", case)
    result = check(paged_impl, case, seed=len(name))
    assert result.ok, result.describe()

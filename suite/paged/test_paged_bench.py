"""Paged decode throughput of every implementation on the device at hand.

On CUDA: bf16, D = 128, 32 query heads on 8 kv heads, block size 16 (256 for implementations that
need it), batch {1, 16, 64} × context {1K, 4K, 16K} within memory. On the CPU: a small fp32 case (the
Triton kernel is skipped there: the interpreter's timings mean nothing). GB/s come from the minimum
bytes (every K/V byte once, plus Q and O); ``scripts/gpu_paged.py`` runs the full grid.
"""

from __future__ import annotations

import pytest
import torch

from impls.paged.api import PagedAttentionImpl, PagedCase
from reference.attention import AttentionOptions
from reference.paged_attention import decode_min_bytes
from suite.bench.harness import device_peaks, measure, record

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
if CUDA:
    BATCHES, CONTEXTS, HQ, HKV, D, DTYPE = [1, 16, 64], [1024, 4096, 16384], 32, 8, 128, "bfloat16"
else:
    BATCHES, CONTEXTS, HQ, HKV, D, DTYPE = [4], [512], 8, 2, 64, "float32"
OPTS = AttentionOptions()


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("batch", BATCHES)
def test_paged_decode_throughput(benchmark, paged_impl: PagedAttentionImpl, batch: int,
                                 context: int) -> None:
    impl = paged_impl
    block_size = 16 if 16 in impl.block_sizes else min(impl.block_sizes)
    blocks_per_seq = -(-context // block_size)
    case = PagedCase(batch, HQ, HKV, 1, context, D, block_size, batch * blocks_per_seq, DTYPE, DTYPE, DEVICE, OPTS)
    why_not = impl.not_a_timing_target() or "; ".join(impl.unsupported(case))
    if why_not:
        pytest.skip(f"{impl.name}: {why_not}")
    dtype = getattr(torch, DTYPE)
    elt = torch.tensor([], dtype=dtype).element_size()
    num_blocks = batch * blocks_per_seq

    def make_inputs() -> tuple[torch.Tensor, ...]:
        pool = (num_blocks, block_size, HKV, D)
        k, v = torch.randn(pool, device=DEVICE, dtype=dtype), torch.randn(pool, device=DEVICE, dtype=dtype)
        table = torch.randperm(num_blocks, device=DEVICE).to(torch.int32).view(batch, blocks_per_seq)
        seqlens = torch.full((batch,), context, device=DEVICE, dtype=torch.int32)
        return torch.randn(batch, 1, HQ, D, device=DEVICE, dtype=dtype), k, v, table, seqlens

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, table: torch.Tensor, seqlens: torch.Tensor) -> None:
        impl.forward(q, k, v, table, seqlens, OPTS, max_seqlen=context)

    min_bytes = decode_min_bytes([context] * batch, HQ, HKV, 1, D, elt, elt)
    benchmark.group = "paged-decode"
    seconds = measure(benchmark, make_inputs, run, DEVICE, rounds=10 if CUDA else 3,
                      warmup=2 if CUDA else 1)
    record(benchmark, impl=impl.name, area="paged",
           case={"batch": batch, "context": context, "heads_q": HQ, "heads_kv": HKV, "head_dim": D,
                 "block_size": block_size, "dtype": DTYPE},
           seconds=seconds, min_bytes=min_bytes, baseline="paged-gather-sdpa", peak=device_peaks(DEVICE))

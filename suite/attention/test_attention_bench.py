"""Attention throughput of every implementation, side by side, on the device at hand.

On CUDA: the flash-attention sizes (B·S = 16K, H·D = 2048, D ∈ {64, 128}, bf16, causal and not,
S from 512 to 16K), forward and forward+backward, speedup over SDPA's flash backend. On the CPU:
small fp32 sizes, speedup over SDPA's math backend. TFLOP/s come from the exact visible-pair count.
"""

from __future__ import annotations

import pytest
import torch

from impls.attention.api import AttentionCase, AttentionImpl
from reference.attention import AttentionOptions
from reference.attention_cost import backward_flops, forward_flops, forward_min_bytes
from suite.bench.harness import device_peaks, measure, record

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
if CUDA:
    SEQLENS, TOKENS, WIDTH, HEAD_DIMS, DTYPE, BASELINE = [512, 1024, 2048, 4096, 8192, 16384], 16384, 2048, [64, 128], \
        "bfloat16", "sdpa-flash"
else:
    SEQLENS, TOKENS, WIDTH, HEAD_DIMS, DTYPE, BASELINE = [128, 256, 512], 512, 256, [64], "float32", "sdpa-math"


def _case(seqlen: int, head_dim: int, causal: bool, grad: bool) -> AttentionCase:
    opts = AttentionOptions(causal=True, alignment="bottom_right") if causal else AttentionOptions()
    return AttentionCase(TOKENS // seqlen, WIDTH // head_dim, WIDTH // head_dim, seqlen, seqlen, head_dim, DTYPE,
                         DEVICE, opts, needs_grad=grad)


@pytest.mark.parametrize("direction", ["fwd", "fwd_bwd"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("head_dim", HEAD_DIMS)
@pytest.mark.parametrize("seqlen", SEQLENS)
def test_attention_throughput(benchmark, attention_impl: AttentionImpl, seqlen: int, head_dim: int, causal: bool,
                              direction: str) -> None:
    grad = direction == "fwd_bwd"
    case = _case(seqlen, head_dim, causal, grad)
    why_not = attention_impl.not_a_timing_target() or "; ".join(attention_impl.unsupported(case))
    if why_not:
        pytest.skip(f"{attention_impl.name}: {why_not}")
    dtype = getattr(torch, DTYPE)

    def make_inputs() -> tuple[torch.Tensor, ...]:
        shape = (case.batch, case.heads_q, seqlen, head_dim)
        q, k, v = (torch.randn(shape, device=DEVICE, dtype=dtype, requires_grad=grad) for _ in range(3))
        return q, k, v, torch.randn(shape, device=DEVICE, dtype=dtype)

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, d_out: torch.Tensor) -> None:
        out, _ = attention_impl.forward(q, k, v, case.options)
        if grad:
            out.backward(d_out)

    elt = torch.tensor([], dtype=dtype).element_size()
    flops = forward_flops(case.batch, case.heads_q, seqlen, seqlen, head_dim, case.options)
    if grad:
        flops += backward_flops(case.batch, case.heads_q, seqlen, seqlen, head_dim, case.options)
    min_bytes = forward_min_bytes(case.batch, case.heads_q, case.heads_kv, seqlen, seqlen, head_dim, elt)
    benchmark.group = f"attention-{direction}"
    seconds = measure(benchmark, make_inputs, run, DEVICE, input_bytes=4 * TOKENS * WIDTH * elt,
                      rounds=10 if CUDA else 3, warmup=2 if CUDA else 1)
    record(benchmark, impl=attention_impl.name, area="attention",
           case={"seqlen": seqlen, "batch": case.batch, "heads": case.heads_q, "head_dim": head_dim,
                 "causal": causal, "dtype": DTYPE, "direction": direction},
           seconds=seconds, flops=flops, min_bytes=min_bytes, baseline=BASELINE, peak=device_peaks(DEVICE))

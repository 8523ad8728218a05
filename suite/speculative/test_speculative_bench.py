"""Sampler throughput: verified (drafted) tokens per second, batch {1, 16, 256} × vocab {32K, 128K, 256K} × γ {1, 4, 8}.

Runs on the device the inputs are on (CUDA when present, else the CPU), synchronising before each clock
read (suite.bench.harness). On the CPU only sizes up to 16 · 5 · 128K probabilities per tensor run unless
TOKENSPEC_BENCH_FULL=1: the largest (256 · 9 · 256K floats ≈ 2.4 GB per tensor) would take the shared CI
machine's memory and minutes.
"""

from __future__ import annotations

import os

import pytest
import torch

from impls.speculative.api import SpecCase, SpeculativeImpl
from suite.bench.harness import measure, record

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
CPU_LIMIT = 16 * 5 * 128 * 1024  # elements of target_probs
FULL = os.environ.get("TOKENSPEC_BENCH_FULL") == "1"


@pytest.mark.parametrize("gamma", [1, 4, 8])
@pytest.mark.parametrize("vocab", [32_768, 131_072, 262_144], ids=["32K", "128K", "256K"])
@pytest.mark.parametrize("batch", [1, 16, 256])
def test_speculative_throughput(benchmark, speculative_impl: SpeculativeImpl, batch: int, vocab: int,
                                gamma: int) -> None:
    size = batch * (gamma + 1) * vocab
    if DEVICE == "cpu" and size > CPU_LIMIT and not FULL:
        pytest.skip(f"{size:,} probabilities per tensor exceed the CPU CI limit {CPU_LIMIT:,}; "
                    "set TOKENSPEC_BENCH_FULL=1 to run")
    why_not = speculative_impl.not_a_timing_target() or "; ".join(
        speculative_impl.unsupported(SpecCase(batch, vocab, gamma)))
    if why_not:
        pytest.skip(f"{speculative_impl.name}: {why_not}")
    gen = torch.Generator(device=DEVICE).manual_seed(0)

    def make_inputs() -> tuple[torch.Tensor, ...]:
        p = torch.softmax(torch.randn(batch, gamma + 1, vocab, device=DEVICE, generator=gen), -1)
        q = torch.softmax(torch.randn(batch, gamma, vocab, device=DEVICE, generator=gen), -1)
        d = torch.multinomial(q.reshape(-1, vocab), 1, generator=gen).reshape(batch, gamma)
        return p, q, d, torch.full((batch,), gamma, device=DEVICE)

    def run(p: torch.Tensor, q: torch.Tensor, d: torch.Tensor, lengths: torch.Tensor) -> None:
        speculative_impl.verify(p, q, d, lengths, generator=gen)

    benchmark.group = f"speculative-b{batch}"
    seconds = measure(benchmark, make_inputs, run, DEVICE,
                      rounds=20 if DEVICE == "cuda" else 5, warmup=2)
    record(benchmark, impl=speculative_impl.name, area="speculative",
           case={"batch": batch, "vocab": vocab, "gamma": gamma, "dtype": "float32"},
           seconds=seconds, items=batch * gamma, baseline="tokenspec-batched")

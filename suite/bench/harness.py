"""Shared benchmark machinery: a device-synchronising timer, peak calibration, tidy records.

A benchmark test calls :func:`measure` with the pytest-benchmark fixture. Set-up, compilation and
warm-up happen before the timed rounds; on CUDA every timed call ends with a device synchronise,
and inputs are rotated among copies when one set fits in L2, so the cache does not flatter the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import torch

from reports.environment import environment


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@cache
def l2_bytes() -> int:
    if not torch.cuda.is_available():
        return 0
    return int(getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 * 2**20))


def rotations(bytes_per_input: int, device: str) -> int:
    """How many input copies make one round's inputs larger than L2 (1 on the CPU)."""
    if not device.startswith("cuda") or bytes_per_input <= 0:
        return 1
    return max(1, min(16, -(-4 * l2_bytes() // bytes_per_input)))


def measure(benchmark: Any, make_inputs: Callable[[], Sequence[Any]], run: Callable[..., Any], device: str, *,
            input_bytes: int = 0, warmup: int = 3, rounds: int = 20) -> float:
    """Time ``run(*inputs)`` with pytest-benchmark; returns the median seconds of one call."""
    copies = [make_inputs() for _ in range(rotations(input_bytes, device))]
    for i in range(warmup):  # compilation, autotuning and caches, outside the timed rounds
        run(*copies[i % len(copies)])
    synchronize(device)
    state = {"i": 0}

    def one_call() -> None:
        run(*copies[state["i"] % len(copies)])
        state["i"] += 1
        synchronize(device)

    started = time.perf_counter()
    benchmark.pedantic(one_call, rounds=rounds, iterations=1, warmup_rounds=0)
    if benchmark.stats is None:  # --benchmark-disable: one untimed pass; a rough figure keeps records whole
        return time.perf_counter() - started
    return float(benchmark.stats.stats.median)


def record(benchmark: Any, *, impl: str, area: str, case: dict[str, Any], seconds: float, flops: int = 0,
           min_bytes: int = 0, items: int = 0, baseline: str = "", peak: dict[str, float] | None = None) -> None:
    """Attach the tidy record: what ran, where, and the derived metrics."""
    metrics: dict[str, float] = {}
    if flops:
        metrics["tflops"] = flops / seconds / 1e12
    if min_bytes:
        metrics["gbps"] = min_bytes / seconds / 1e9
    if items:
        metrics["per_second"] = items / seconds
    if peak:
        if flops and peak.get("tflops"):
            metrics["fraction_of_peak"] = metrics["tflops"] / peak["tflops"]
        elif min_bytes and peak.get("gbps"):
            metrics["fraction_of_peak"] = metrics["gbps"] / peak["gbps"]
    env = environment()
    benchmark.extra_info.update({"impl": impl, "area": area, "case": case, "baseline": baseline, "metrics": metrics,
                                 "peak": peak or {}, "device": env.get("device"), "driver": env.get("driver"),
                                 "libraries": env.get("libraries")})


@cache
def device_peaks(device: str) -> dict[str, float]:
    """Measured in this run: matrix-multiply TFLOP/s (bf16 on CUDA, fp32 on the CPU) and read bandwidth."""
    if device.startswith("cuda"):
        n, dtype = 8192, torch.bfloat16
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        tflops = 2 * n**3 / _median_seconds(lambda: a @ b, device) / 1e12
        src = torch.randn(2**28 // 2, device=device, dtype=torch.bfloat16)  # 256 MiB, far beyond L2
        dst = torch.empty_like(src)
        # A device-to-device copy: bytes read plus bytes written over the time.
        gbps = 2 * src.numel() * 2 / _median_seconds(lambda: dst.copy_(src), device) / 1e9
        return {"tflops": tflops, "gbps": gbps}
    n = 512
    a, b = torch.randn(n, n), torch.randn(n, n)
    tflops = 2 * n**3 / _median_seconds(lambda: a @ b, device) / 1e12
    src = torch.randn(2**24)
    dst = torch.empty_like(src)
    gbps = 2 * src.numel() * 4 / _median_seconds(lambda: dst.copy_(src), device) / 1e9
    return {"tflops": tflops, "gbps": gbps}


def _median_seconds(fn: Callable[[], Any], device: str, repeats: int = 15) -> float:
    for _ in range(3):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]

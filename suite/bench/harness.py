"""The one benchmark timer, peak calibration, and tidy records.

Every timing in the project goes through :func:`measure` (with the pytest-benchmark fixture) or
:func:`time_call` (without it, e.g. the peak calibration); both time the same way:

- warm-up calls first (compilation, autotuning, caches), outside the timed rounds;
- on CUDA, L2 is flushed before every timed call (a write of twice its size, outside the timed region,
  as ``triton.testing.do_bench`` does) and each timed call ends with a device synchronise;
- on the CPU, wall-clock time of the call (perf_counter, which pytest-benchmark uses too).
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


@cache
def _flush_buffer(device: str) -> torch.Tensor | None:
    if not device.startswith("cuda"):
        return None
    return torch.empty(2 * l2_bytes() // 4 + 1, dtype=torch.int32, device=device)


def flush_l2(device: str) -> None:
    """Evict the inputs of the last call from L2 (a no-op on the CPU)."""
    buffer = _flush_buffer(device)
    if buffer is not None:
        buffer.zero_()


def measure(benchmark: Any, make_inputs: Callable[[], Sequence[Any]], run: Callable[..., Any], device: str, *,
            warmup: int = 3, rounds: int = 20) -> float:
    """Time ``run(*inputs)`` with pytest-benchmark; returns the median seconds of one call."""
    inputs = make_inputs()
    for _ in range(warmup):
        run(*inputs)
    synchronize(device)

    def one_call() -> None:
        run(*inputs)
        synchronize(device)

    def setup() -> None:
        flush_l2(device)
        synchronize(device)

    started = time.perf_counter()
    benchmark.pedantic(one_call, setup=setup, rounds=rounds, iterations=1, warmup_rounds=0)
    if benchmark.stats is None:  # --benchmark-disable: one untimed pass; a rough figure keeps records whole
        return time.perf_counter() - started
    return float(benchmark.stats.stats.median)


def time_call(fn: Callable[[], Any], device: str, *, warmup: int = 3, repeats: int = 15) -> float:
    """Median seconds of ``fn()``, timed as :func:`measure` times (for use outside a benchmark test)."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        flush_l2(device)
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def record(benchmark: Any, *, impl: str, area: str, case: dict[str, Any], seconds: float, flops: int = 0,
           min_bytes: int = 0, items: int = 0, baseline: str = "", peak: dict[str, float] | None = None,
           x: str = "", series: Sequence[str] = ()) -> None:
    """Attach the tidy record: what ran, where, the derived metrics, and the axis the area plots it against."""
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
                                 "peak": peak or {}, "x": x, "series": list(series), "device": env.get("device"),
                                 "driver": env.get("driver"), "libraries": env.get("libraries")})


@cache
def device_peaks(device: str) -> dict[str, float]:
    """Measured in this run: matrix-multiply TFLOP/s (bf16 on CUDA, fp32 on the CPU) and copy bandwidth."""
    if device.startswith("cuda"):
        n, dtype = 8192, torch.bfloat16
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        tflops = 2 * n**3 / time_call(lambda: a @ b, device) / 1e12
        src = torch.randn(2**28 // 2, device=device, dtype=torch.bfloat16)  # 256 MiB, far beyond L2
        dst = torch.empty_like(src)
        # A device-to-device copy: bytes read plus bytes written over the time.
        gbps = 2 * src.numel() * 2 / time_call(lambda: dst.copy_(src), device) / 1e9
        return {"tflops": tflops, "gbps": gbps}
    n = 512
    a, b = torch.randn(n, n), torch.randn(n, n)
    tflops = 2 * n**3 / time_call(lambda: a @ b, device) / 1e12
    src = torch.randn(2**24)
    dst = torch.empty_like(src)
    gbps = 2 * src.numel() * 4 / time_call(lambda: dst.copy_(src), device) / 1e9
    return {"tflops": tflops, "gbps": gbps}

"""The adapters to CPU-only libraries are unavailable where the suite puts its tensors on a GPU."""

from __future__ import annotations

from impls.tensors import default_device


def elsewhere(runtime: str) -> list[str]:
    """Why ``runtime`` (a CPU backend) cannot run the suite's cases here, or nothing when they are on the CPU."""
    device = default_device()
    return [] if device == "cpu" else [f"{runtime} computes on the CPU, and the suite's tensors are on {device}"]

"""What a result depends on: machine, device, driver and library versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
from functools import cache
from typing import Any

LIBRARIES = ("torch", "triton", "numpy", "pandas", "hypothesis", "pytest-benchmark", "transformers", "litellm",
             "genai-prices", "tokencost", "openai", "anthropic", "flash-attn", "flash-attn-4", "vllm")


@cache
def environment() -> dict[str, Any]:
    env: dict[str, Any] = {
        "host": socket.gethostname(), "python": platform.python_version(), "platform": platform.platform(),
        "machine": platform.machine(), "cpu_count": os.cpu_count(), "device": "cpu",
        "triton_interpret": os.environ.get("TRITON_INTERPRET", ""),
        "libraries": {name: _version(name) for name in LIBRARIES if _version(name)},
    }
    try:
        import torch
    except ImportError:
        return env
    env["cuda_runtime"] = torch.version.cuda
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env |= {"device": torch.cuda.get_device_name(0), "compute_capability": f"{props.major}.{props.minor}",
                "gpu_memory_bytes": props.total_memory, "multiprocessors": props.multi_processor_count,
                "driver": _nvidia_smi("driver_version")}
    return env


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _nvidia_smi(field: str) -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[0] if out.strip() else None

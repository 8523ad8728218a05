"""Where a Triton kernel runs: compiled on a GPU, or in Triton's interpreter on the CPU (TRITON_INTERPRET=1)."""

from __future__ import annotations

import os


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "") not in ("", "0")


class TritonKernel:
    """Mixin for an implementation whose kernels are Triton: available with a GPU or with the interpreter, and
    never a timing target in the interpreter. Put it before the area's base class."""

    def unavailable(self) -> list[str]:
        reasons: list[str] = super().unavailable()  # type: ignore[misc]
        if not reasons:
            import torch

            if not torch.cuda.is_available() and not interpreting():
                reasons.append("no CUDA device and TRITON_INTERPRET is not set (the kernels need one or the other)")
        return reasons

    def not_a_timing_target(self) -> str | None:
        return "runs under the Triton interpreter here" if interpreting() else None

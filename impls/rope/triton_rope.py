"""In-repo Triton rotary embedding: both layouts, partial rotary, any position ids, in place or out of place.

The frequencies and the attention factor come from ``reference.rope`` (float64, rounded once to fp32; a
dynamic or LongRoPE embedding recomputes them for each call's current length, so it keeps no state). The
kernel (``_triton_rope_kernels``) forms the angle m·θ in fp32 and rotates in fp32; the result is rounded
once to the input dtype. On a CUDA device it is compiled; without one it runs under the Triton
interpreter (``TRITON_INTERPRET=1``, set by the suite's conftest). See docs/rope.md.
"""

from __future__ import annotations

from typing import Any

import torch

from impls.base import Requirements
from impls.registry import register
from impls.rope.api import RopeImpl, validate
from impls.triton_runtime import TritonKernel, interpreting
from reference import rope as ref
from reference.rope import RopeConfig


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def launch(x: torch.Tensor, out: torch.Tensor, positions: torch.Tensor, inv: torch.Tensor, scale: float,
           layout: str, rotary_dim: int) -> None:
    """Rotate x [T, H, D] into out (which may be x itself)."""
    from impls.rope._triton_rope_kernels import rope_kernel

    tokens, heads, head_dim = x.shape
    if tokens == 0 or heads == 0:
        return
    half = rotary_dim // 2
    block_p = _next_pow2(half)
    # under the interpreter one program per token (its cost is per program); on a GPU about 2K elements each
    block_h = _next_pow2(heads) if interpreting() else max(1, min(_next_pow2(heads), 2048 // block_p))
    copy_pass = head_dim - rotary_dim if out.data_ptr() != x.data_ptr() else 0
    grid = (tokens, triton_cdiv(heads, block_h))
    rope_kernel[grid](x, out, positions.contiguous(), inv, float(scale), heads, x.stride(0), x.stride(1), out.stride(0),
                      out.stride(1), HALF=half, BLOCK_P=block_p, BLOCK_H=block_h,
                      INTERLEAVED=layout == ref.INTERLEAVED, PASS=copy_pass,
                      BLOCK_PASS=_next_pow2(max(copy_pass, 1)), num_warps=4)


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)


class TritonRope(TritonKernel, RopeImpl):
    name = "rope-triton"
    description = ("in-repo Triton kernel: fp32 angle product with the spec's frequencies, angle reduced to "
                   "[−π, π], fp32 rotation; both layouts, partial rotary, position ids, in place or not")
    requires = Requirements(modules=("triton", "torch"))
    lacks = {"frequencies": "rope-triton takes its frequencies from reference.rope; it has none of its own"}

    example_budget = 4 if interpreting() else None  # about 0.1 s a call under the interpreter
    call_cost_s = 0.1 if interpreting() else 0.0

    def embedding(self, config: RopeConfig, dtype: str, device: str) -> TritonEmbedding:
        return TritonEmbedding(config)


class TritonEmbedding:
    def __init__(self, config: RopeConfig) -> None:
        self.config = config
        self.scale = ref.attention_factor(config)
        self._inv: dict[tuple[Any, str], torch.Tensor] = {}

    def inv_freq(self, positions: torch.Tensor) -> torch.Tensor:
        length = None
        if self.config.rope_type in ref.LENGTH_DEPENDENT:  # reads the current length (a device sync)
            length = int(positions.max()) + 1 if positions.numel() else 0
        key = (length, str(positions.device))
        if key not in self._inv:
            self._inv[key] = torch.tensor(ref.inv_freq(self.config, length), dtype=torch.float32,
                                          device=positions.device)
        return self._inv[key]

    def apply(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, *,
              in_place: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        validate(q, k, positions, self.config)
        for name, x in (("q", q), ("k", k)):
            if x.stride(2) != 1:
                raise ValueError(f"rope-triton needs {name}'s head_dim to be contiguous (stride 1); got strides "
                                 f"{tuple(x.stride())}")
        inv = self.inv_freq(positions)
        results = []
        for x in (q, k):
            out = x if in_place else torch.empty_like(x, memory_format=torch.contiguous_format)
            launch(x, out, positions, inv, self.scale, self.config.layout, self.config.rotary_dim)
            results.append(out)
        return results[0], results[1]


register(TritonRope())

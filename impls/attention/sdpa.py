"""PyTorch scaled_dot_product_attention with one backend forced per implementation.

Options reach SDPA as it documents them: top-left causal as ``is_causal``; bottom-right causal as
``torch.nn.attention.bias.causal_lower_right`` (never ``is_causal`` when Sq ≠ Sk); windows and ALiBi
as an explicit additive ``attn_mask``; GQA as ``enable_gqa``. Softcap cannot be expressed as an additive bias, so no backend supports it here.
SDPA does not return the log-sum-exp, except the CPU flash kernel's aten op, which the
``sdpa-cpu-flash`` implementation calls directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from impls.attention._masks import additive_bias, needs_mask
from impls.attention.api import AttentionCase, AttentionImpl, has_empty_rows, varlen_by_sequence, write_into
from impls.base import ExpectedFailure, Requirements
from impls.registry import register
from reference.attention import AttentionOptions


@dataclass(frozen=True)
class BackendLimits:
    """What one SDPA backend accepts, from the torch documentation and sdp_utils checks."""

    backend: str  # SDPBackend member name
    device: str
    dtypes: tuple[str, ...]
    max_head_dim: int
    head_dim_multiple: int
    takes_mask: bool
    min_capability: tuple[int, int] | None = None


class SdpaAttention(AttentionImpl):
    lacks = {"lse": "SDPA does not return the log-sum-exp", "softcap": "SDPA has no softcap (it is not an additive bias)"}

    def __init__(self, name: str, limits: BackendLimits, description: str,
                 expected_failures: tuple[ExpectedFailure, ...] = ()) -> None:
        self.name = name
        self.limits = limits
        self.description = description
        self.dtypes = limits.dtypes
        self.requires = Requirements(modules=("torch",), device=limits.device,
                                     min_compute_capability=limits.min_capability)
        self.expected_failures = expected_failures

    def unsupported(self, case: AttentionCase) -> list[str]:
        lim, o = self.limits, case.options
        reasons = []
        if lim.device != "any" and case.device != lim.device:
            reasons.append(f"runs on {lim.device}, not {case.device}")
        if case.head_dim > lim.max_head_dim or case.head_dim % lim.head_dim_multiple:
            reasons.append(f"{lim.backend} needs head_dim <= {lim.max_head_dim} and a multiple of "
                           f"{lim.head_dim_multiple}; got {case.head_dim}")
        if needs_mask(o, case.seqlen_q, case.seqlen_k) and not lim.takes_mask:
            reasons.append(f"{lim.backend} takes no attn_mask; only top-left is_causal")
        return reasons

    def _call(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions) -> torch.Tensor:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        from torch.nn.attention.bias import causal_lower_right
        from torch.nn.functional import scaled_dot_product_attention

        sq, sk = q.shape[2], k.shape[2]
        mask: Any = None
        if needs_mask(opts, sq, sk):
            plain_bottom_right = opts.causal and opts.window_left is None and opts.window_right is None and \
                opts.alibi_slopes is None
            # Bottom-right causal alone goes through torch's causal-bias API; anything more is a float mask.
            mask = causal_lower_right(sq, sk) if plain_bottom_right else \
                additive_bias(sq, sk, q.shape[1], opts, q.dtype, q.device)
        with sdpa_kernel(getattr(SDPBackend, self.limits.backend)):
            return scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=opts.causal and mask is None,
                                                scale=opts.resolved_scale(q.shape[-1]),
                                                enable_gqa=q.shape[1] != k.shape[1])

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions,
                out: torch.Tensor | None = None, *, need_lse: bool = False,
                need_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        self.admit(q, k, v, opts, need_lse=need_lse, need_grad=need_grad)
        return write_into(out, self._call(q, k, v, opts)), None

    def forward_varlen(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens_q: torch.Tensor,
                       cu_seqlens_k: torch.Tensor, max_seqlen_q: int, max_seqlen_k: int, opts: AttentionOptions,
                       out: torch.Tensor | None = None, *, need_lse: bool = False
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return varlen_by_sequence(self, q, k, v, cu_seqlens_q, cu_seqlens_k, opts, out, need_lse)


class SdpaCpuFlash(SdpaAttention):
    """The CPU flash kernel through its aten op, which also returns the log-sum-exp."""

    lacks = {"softcap": SdpaAttention.lacks["softcap"]}

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions,
                out: torch.Tensor | None = None, *, need_lse: bool = False,
                need_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        self.admit(q, k, v, opts, need_lse=need_lse, need_grad=need_grad)
        sq, sk, group = q.shape[2], k.shape[2], q.shape[1] // k.shape[1]
        mask = additive_bias(sq, sk, q.shape[1], opts, q.dtype, q.device) if needs_mask(opts, sq, sk) else None
        # The aten op has no enable_gqa: the kv heads are repeated (materialised) for it.
        k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
        result, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, is_causal=opts.causal and mask is None, attn_mask=mask, scale=opts.resolved_scale(q.shape[-1]))
        return write_into(out, result), lse

    def forward_varlen(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens_q: torch.Tensor,
                       cu_seqlens_k: torch.Tensor, max_seqlen_q: int, max_seqlen_k: int, opts: AttentionOptions,
                       out: torch.Tensor | None = None, *, need_lse: bool = False
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return varlen_by_sequence(self, q, k, v, cu_seqlens_q, cu_seqlens_k, opts, out, need_lse)


ALL_DTYPES = ("float32", "float16", "bfloat16")
HALF_DTYPES = ("float16", "bfloat16")
_NAN_THROUGH_ADDITIVE_MASK = ("an additive attn_mask cannot hide a NaN score (NaN + -inf = NaN), so a NaN in a "
                              "key that no query may see reaches the output")
_SDPA_DOC = "https://pytorch.org/docs/stable/generated/torch.nn.functional.scaled_dot_product_attention.html"
_TOP_LEFT = AttentionOptions(causal=True, alignment="top_left")
_WINDOW_0_0 = AttentionOptions(window_left=0, window_right=0, alignment="top_left")
_BOTTOM_RIGHT = AttentionOptions(causal=True, alignment="bottom_right")

_CPU_LSE_EMPTY_ROW = ExpectedFailure(
    test="*",
    reason="the CPU flash kernel returns logsumexp 0 instead of -inf for a row whose keys are all masked "
           "(output is correctly 0); measured with torch 2.13",
    link="https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/cpu/FlashAttentionKernel.cpp",
    when=lambda case: case.needs_lse and has_empty_rows(case),
    example=AttentionCase(1, 1, 1, 2, 1, 16, "float32", "cpu", _BOTTOM_RIGHT, needs_lse=True))

for _impl in (
    SdpaAttention("sdpa-math", BackendLimits("MATH", "any", ALL_DTYPES, 1 << 16, 1, True),
                  "SDPA math backend: the composite reference implementation inside PyTorch",
                  (ExpectedFailure("nan_in_masked*", _NAN_THROUGH_ADDITIVE_MASK + "; the math backend also applies "
                                   "is_causal as an additive mask (measured, torch 2.13)", _SDPA_DOC),)),
    SdpaCpuFlash("sdpa-cpu-flash", BackendLimits("FLASH_ATTENTION", "cpu", ALL_DTYPES, 1 << 16, 1, True),
                 "SDPA's CPU flash kernel (aten _scaled_dot_product_flash_attention_for_cpu), with its LSE",
                 (_CPU_LSE_EMPTY_ROW,
                  ExpectedFailure("nan_in_masked*", _NAN_THROUGH_ADDITIVE_MASK + " (whenever the options need an "
                                  "attn_mask: bottom-right causal with Sq != Sk, windows, ALiBi)", _SDPA_DOC,
                                  when=lambda case: needs_mask(case.options, case.seqlen_q, case.seqlen_k),
                                  example=AttentionCase(1, 1, 1, 3, 9, 16, "float32", "cpu", _WINDOW_0_0,
                                                        poison_masked_keys=True)))),
    SdpaAttention("sdpa-flash", BackendLimits("FLASH_ATTENTION", "cuda", HALF_DTYPES, 256, 8, False, (8, 0)),
                  "SDPA's CUDA flash backend (FlashAttention-2 inside PyTorch)"),
    SdpaAttention("sdpa-efficient", BackendLimits("EFFICIENT_ATTENTION", "cuda", ALL_DTYPES, 256, 8, True, (5, 0)),
                  "SDPA's memory-efficient backend (xFormers cutlass kernels inside PyTorch)"),
    SdpaAttention("sdpa-cudnn", BackendLimits("CUDNN_ATTENTION", "cuda", HALF_DTYPES, 128, 8, False, (8, 0)),
                  "SDPA's cuDNN backend"),
):
    register(_impl)

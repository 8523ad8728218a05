"""The in-repo Triton paged-decode kernel (split-KV with an LSE combine), registered as ``paged-triton``.

On a GPU the kernels are compiled; without one they run under the Triton interpreter
(``TRITON_INTERPRET=1``, set by the suite's conftest). See docs/paged.md.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from impls.base import Requirements
from impls.paged.api import FP8_DTYPES, PagedAttentionImpl, PagedCase, write_into
from impls.registry import register
from impls.triton_runtime import TritonKernel, interpreting
from reference.attention import AttentionOptions

if TYPE_CHECKING:
    import torch

BF16_INTERPRETER_NOTE = ("bf16 under the Triton interpreter: bf16 arithmetic (tl.dot, products, sums) is wrong "
                         "there (see test_paged_interpreter_bf16_dot_is_still_broken and "
                         "test_interpreter_bf16_arithmetic_is_still_broken), so in interpreter mode only the kernel "
                         "upcasts bf16 tiles to fp32 right after loading them; compiled kernels use bf16 MMA with "
                         "fp32 accumulation")
MAX_SEQLEN_Q = 16


class TritonPagedDecode(TritonKernel, PagedAttentionImpl):
    name = "paged-triton"
    description = ("Triton paged decode: one program per (sequence, kv head, split) serving the whole GQA group, "
                   "per-token gather through the block table, split-KV with an LSE combine. " + BF16_INTERPRETER_NOTE)
    requires = Requirements(modules=("torch", "triton"))
    example_budget = 6  # about 0.3 s a call under the interpreter

    def __init__(self, num_splits: int | None = None, bug: int = 0, name: str | None = None,
                 block_n: int | None = None):
        self.num_splits = num_splits  # None: chosen from the batch and the context length
        self.bug = bug  # a planted defect (suite self-test only)
        self.block_n = block_n
        if name:
            self.name = name

    def limits(self, case: PagedCase) -> list[str]:
        reasons = []
        if not 1 <= case.seqlen_q <= MAX_SEQLEN_Q:
            reasons.append(f"query length {case.seqlen_q} is outside 1..{MAX_SEQLEN_Q}")
        if case.cache_dtype != case.dtype and case.cache_dtype not in FP8_DTYPES:
            reasons.append(f"the cache dtype {case.cache_dtype} must equal the query dtype or be fp8 "
                           f"({', '.join(FP8_DTYPES)})")
        if case.device == "cpu" and not interpreting():
            reasons.append("CPU tensors need the Triton interpreter (TRITON_INTERPRET=1)")
        return reasons

    def choose_splits(self, batch: int, heads_kv: int, max_seqlen: int, device: torch.device) -> int:
        if self.num_splits is not None:
            return self.num_splits
        if device.type != "cuda":
            return max(1, min(4, max_seqlen // 32))
        import torch

        sms = torch.cuda.get_device_properties(device).multi_processor_count
        programs = batch * heads_kv
        want = math.ceil(2 * sms / programs)  # two waves' worth of programs
        return max(1, min(want, max_seqlen // 512, 64))

    def forward(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, block_table: torch.Tensor,
                seqlens: torch.Tensor, opts: AttentionOptions, out: torch.Tensor | None = None,
                k_scale: float = 1.0, v_scale: float = 1.0,
                max_seqlen: int | None = None, *, need_lse: bool = False,
                sinks: tuple[float, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        import torch

        from impls.paged import _paged_kernels as kern

        longest = self.admit(q, k_cache, v_cache, block_table, seqlens, opts, max_seqlen, need_lse, sinks)
        bsz, sq, hq, dim = q.shape
        _, block_size, hkv, _ = k_cache.shape
        group = hq // hkv
        max_seqlen = longest
        block_n = self.block_n or (16 if interpreting() else 64)
        splits = max(1, self.choose_splits(bsz, hkv, max_seqlen, q.device))
        split_tokens = max(block_n, math.ceil(math.ceil(max(max_seqlen, 1) / splits) / block_n) * block_n)
        splits = max(1, math.ceil(max(max_seqlen, 1) / split_tokens))
        result = torch.empty_like(q) if out is None else out
        if result.shape != q.shape:
            raise ValueError(f"out has shape {tuple(result.shape)} but the result has {tuple(q.shape)}")
        lse = torch.empty((bsz, sq, hq), device=q.device, dtype=torch.float32)
        if splits > 1:
            o_part = torch.empty((bsz, sq, hq, splits, dim), device=q.device, dtype=torch.float32)
            l_part = torch.empty((bsz, sq, hq, splits), device=q.device, dtype=torch.float32)
            o_strides = (o_part.stride(0), o_part.stride(1), o_part.stride(2), o_part.stride(3), o_part.stride(4))
            l_strides = l_part.stride()
        else:
            o_part, l_part = result, lse
            o_strides = (result.stride(0), result.stride(1), result.stride(2), 0, result.stride(3))
            l_strides = (*lse.stride(), 0)
        slopes = (torch.tensor(opts.alibi_slopes, device=q.device, dtype=torch.float32)
                  if opts.alibi_slopes is not None else lse)
        sink_logits = torch.tensor(sinks, device=q.device, dtype=torch.float32) if sinks is not None else lse
        upcast = interpreting() and (q.dtype == torch.bfloat16 or k_cache.dtype.itemsize == 1)
        block_m = max(16, kern.next_pow2(group * sq))
        block_d = max(16, kern.next_pow2(dim))
        extra = {} if interpreting() else {"num_warps": 4 if block_m <= 64 else 8, "num_stages": 2}
        kern.paged_decode_kernel[(bsz * hkv, splits)](
            q, k_cache, v_cache, block_table, seqlens, slopes, sink_logits, o_part, l_part,
            *q.stride(), *k_cache.stride(), *v_cache.stride(), *block_table.stride(),
            *o_strides, *l_strides,
            opts.resolved_scale(dim) * k_scale, v_scale, opts.softcap or 1.0,
            opts.window_left or 0, opts.window_right or 0,
            sq, hkv, dim, block_size, split_tokens,
            G=group, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=block_d,
            CAUSAL=opts.causal, HAS_WL=opts.window_left is not None, HAS_WR=opts.window_right is not None,
            HAS_CAP=opts.softcap is not None, HAS_ALIBI=opts.alibi_slopes is not None, HAS_SINKS=sinks is not None,
            UPCAST=upcast,
            IEEE=upcast or q.dtype == torch.float32,
            BUG=self.bug, **extra)
        if splits > 1:
            kern.combine_kernel[(bsz * sq * hq,)](
                o_part, l_part, result, lse, *o_part.stride(), *l_part.stride(), *result.stride(), *lse.stride(),
                sq, hq, dim, splits, BLOCK_S=max(2, kern.next_pow2(splits)), BLOCK_D=block_d, BUG=self.bug)
        return write_into(out, result), lse


register(TritonPagedDecode())

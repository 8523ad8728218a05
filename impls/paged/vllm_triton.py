"""vLLM's Triton paged-attention kernels, run as vLLM runs them (under the Triton interpreter on a CPU).

* ``paged-vllm-unified``: ``vllm.v1.attention.ops.triton_unified_attention.unified_attention``, the kernel of
  vLLM's ``TritonAttentionBackend`` (paged prefill and decode in one launch; sliding window, softcap, ALiBi,
  attention sinks, fp8 caches with per-tensor scales). It is called with the split-K scratch and threshold that
  backend sets up at its defaults (``seq_threshold_3D = MIN_LAUNCH_GRID_SIZE_2D // Hkv``, 16 softmax segments),
  so a small decode batch takes the 3D (split-K + ``reduce_segments``) path and the rest the 2D path. Under
  the interpreter it uses 4 segments (the segment count is a launch parameter, which vLLM itself sets to 16 or
  64; each segment is one interpreted program).
* ``paged-vllm-decode``: ``vllm.v1.attention.ops.triton_decode_attention.decode_attention_fwd`` (split-KV
  decode with its LSE; MHA and grouped kernels), with several queries per sequence expressed as vLLM's
  ``TritonMLABackend`` expresses them: one row per query, the block table repeated, and causal per-row extents
  up to each query's diagonal key (``seq_len − Sq + i + 1`` keys).

Both take vLLM's layout (q [tokens, Hq, D], caches [num_blocks, block_size, Hkv, D]), which is this area's
after a reshape; the kernels are vLLM's own code, loaded by ``impls.paged._vllm_kernels`` (see there why
that is sound). vLLM's contract: ``seq_lens`` count the new query tokens, so no sequence is shorter than its
queries (declared as the ``short_context`` feature these lack).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from impls.base import ExpectedFailure, Requirements
from impls.paged.api import BLOCK_SIZES, PagedAttentionImpl, PagedCase, validate, write_into
from impls.registry import register
from impls.tensors import default_device
from impls.triton_runtime import TritonKernel, interpreting
from reference.attention import AttentionOptions

if TYPE_CHECKING:
    import torch

SOURCE = "https://github.com/vllm-project/vllm/blob/v0.33.0/vllm"
CONTRACT = ("vLLM's seq_lens count the new query tokens too (seq_len >= query_len; context_len = seq_len - "
            "query_len), so a sequence shorter than its queries is outside its contract")
BF16_INTERPRETER = ("bf16 under the Triton interpreter: triton 3.9's interpreter computes bf16 arithmetic wrongly "
                    "(a bf16 product or tl.sum of a bf16 tile is off by up to 1e36: "
                    "suite/paged/test_paged_selftest.py::test_interpreter_bf16_arithmetic_is_still_broken); vLLM's "
                    "kernels compute in the query dtype and cannot be upcast without editing them")
MIN_LAUNCH_GRID_SIZE_2D = 128  # vllm/v1/attention/backends/triton_attn.py: the 3D path's batch threshold × Hkv
NUM_PAR_SOFTMAX_SEGMENTS = 16  # ibid.: softmax segments of the 3D (split-K) path
MIN_WORK_PER_SPLIT = 512  # vllm/v1/attention/backends/mla/triton_mla.py: _compute_num_kv_splits


class _VllmKernel(TritonKernel, PagedAttentionImpl):
    requires = Requirements(modules=("vllm", "triton", "torch"))
    example_budget = 4  # under the interpreter a call takes about half a second here

    def limits(self, case: PagedCase) -> list[str]:
        reasons = []
        if case.cache_dtype != case.dtype and case.cache_dtype != "float8_e4m3fn":
            reasons.append("the cache must be in the query dtype or float8_e4m3fn (vLLM's fp8 dtype here)")
        if case.dtype == "bfloat16" and interpreting():
            reasons.append(BF16_INTERPRETER)
        return reasons

    def _check_call(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, block_table: torch.Tensor,
                    seqlens: torch.Tensor, opts: AttentionOptions, max_seqlen: int | None, need_lse: bool,
                    k_scale: float, v_scale: float, sinks: tuple[float, ...] | None) -> int:
        longest = validate(q, k_cache, v_cache, block_table, seqlens, opts, max_seqlen, sinks)
        self.refuse(PagedCase.of(q, k_cache, seqlens, opts, need_lse=need_lse, max_seqlen=max_seqlen,
                                 k_scale=k_scale, v_scale=v_scale, sinks=sinks))
        if k_cache.dtype == q.dtype and (k_scale != 1.0 or v_scale != 1.0):
            raise ValueError(f"scales dequantize an fp8 cache; got k_scale {k_scale}, v_scale {v_scale} for a "
                             f"{k_cache.dtype} cache")
        return longest


def num_kv_splits(max_seqlen: int, device: torch.device) -> int:
    """vLLM's MLA-backend rule on a GPU (a power of two, 512 keys per split, at most 2 per SM); 2 on the CPU,
    so the split-KV merge runs at the suite's short lengths."""
    import torch

    if device.type != "cuda":
        return 2
    ideal = 1 << (max(1, max_seqlen // MIN_WORK_PER_SPLIT) - 1).bit_length()
    return min(ideal, 2 * torch.cuda.get_device_properties(device).multi_processor_count)


def _scale_tensor(value: float, rows: int, heads_kv: int, device: torch.device) -> torch.Tensor:
    import torch

    return torch.tensor(float(value), dtype=torch.float32, device=device).expand(rows, heads_kv)


class VllmUnifiedAttention(_VllmKernel):
    name = "paged-vllm-unified"
    description = ("vLLM's unified_attention (the TritonAttentionBackend kernel: paged prefill + decode, 2D and "
                   "split-K 3D paths), vLLM's own kernel code under the Triton interpreter on the CPU")
    block_sizes = tuple(b for b in (*BLOCK_SIZES, 512) if b % 16 == 0)  # TritonAttentionBackend: MultipleOf(16)
    lacks = {"lse": "unified_attention writes no LSE (its softmax state stays inside the kernel)",
             "short_context": CONTRACT}
    expected_failures = (
        ExpectedFailure(
            test="*",
            reason="vLLM's ALiBi is the causal form slope·(j − p₀), p₀ the position of the sequence's first "
                   "query (apply_alibi_to_score: alibi_offset = seq_offset - context_len); the spec (and "
                   "flash-attn) define −slope·|i − j|. Equal up to a per-row constant where every visible key is "
                   "at or left of the query, it differs without causal masking when a query sees keys to its "
                   "right (Sq > 1)",
            link=f"{SOURCE}/v1/attention/ops/triton_attention_helpers.py#L440",
            when=lambda case: (case.options.alibi_slopes is not None and not case.options.causal
                               and case.seqlen_q > 1 and case.options.window_right != 0),
            example=PagedCase((6,), 2, 2, 3, 32, 16, "float32", default_device(),
                              AttentionOptions(alibi_slopes=(0.5, 0.25), alignment="bottom_right"))),
        ExpectedFailure(
            test="*",
            reason="without causal masking, a sliding window zeroes V where the key is outside the window of the "
                   "*first* query of the kernel's query block (sw_mask_v uses qpos_lo), although the score mask "
                   "(compute_kv_seq_mask) lets a later query of the block see it: that query's output loses the "
                   "weight of its rightmost keys (Sq 2, window (0, 0): query 1 returns 0 instead of v[n-1])",
            link=f"{SOURCE}/v1/attention/ops/triton_unified_attention.py#L572-L585",
            when=lambda case: (not case.options.causal and case.options.window_left is not None
                               and case.seqlen_q > 1 and case.options.window_left < case.seqlen_q - 1
                               and case.heads_q // case.heads_kv < 16),
            example=PagedCase((6,), 1, 1, 2, 32, 16, "float32", default_device(),
                              AttentionOptions(window_left=0, window_right=0, alignment="bottom_right"))),
    )

    def limits(self, case: PagedCase) -> list[str]:
        reasons = super().limits(case)
        o = case.options
        if case.head_dim < 32:
            reasons.append(f"TritonAttentionBackend.supports_head_size needs head_size >= 32; got {case.head_dim}")
        if not o.causal and case.seqlen_q > 1 and o.window_right != o.window_left:
            reasons.append("unified_attention takes one window size (window_size[0]), symmetric without causal: "
                           "a window whose right side differs from its left cannot be expressed")
        return reasons

    def forward(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, block_table: torch.Tensor,
                seqlens: torch.Tensor, opts: AttentionOptions, out: torch.Tensor | None = None,
                k_scale: float = 1.0, v_scale: float = 1.0, max_seqlen: int | None = None, *,
                need_lse: bool = False, sinks: tuple[float, ...] | None = None) -> tuple[torch.Tensor,
                                                                                           torch.Tensor | None]:
        import torch
        from vllm.v1.kv_cache_interface import KVQuantMode

        from impls.paged._vllm_kernels import UNIFIED, kernels

        longest = self._check_call(q, k_cache, v_cache, block_table, seqlens, opts, max_seqlen, need_lse,
                                   k_scale, v_scale, sinks)
        bsz, sq, hq, dim = q.shape
        hkv, tokens = k_cache.shape[2], bsz * sq
        result = out if out is not None and out.is_contiguous() else torch.empty_like(q)
        segments = 4 if interpreting() else NUM_PAR_SOFTMAX_SEGMENTS
        padded = 1 << (dim - 1).bit_length()
        scratch: dict[str, Any] = {
            "seq_threshold_3D": MIN_LAUNCH_GRID_SIZE_2D // hkv, "num_par_softmax_segments": segments,
            "softmax_segm_output": torch.empty(tokens, hq, segments, padded, dtype=torch.float32, device=q.device),
            "softmax_segm_max": torch.empty(tokens, hq, segments, dtype=torch.float32, device=q.device),
            "softmax_segm_expsum": torch.empty(tokens, hq, segments, dtype=torch.float32, device=q.device)}
        left = -1 if opts.window_left is None else opts.window_left
        fp8 = k_cache.dtype != q.dtype
        kernels()[UNIFIED].unified_attention(
            q=q.reshape(tokens, hq, dim), k=k_cache, v=v_cache, out=result.view(tokens, hq, dim),
            cu_seqlens_q=torch.arange(0, tokens + 1, sq, dtype=torch.int32, device=q.device), max_seqlen_q=sq,
            seqused_k=seqlens, max_seqlen_k=longest, softmax_scale=opts.resolved_scale(dim), causal=opts.causal,
            window_size=(left, left), block_table=block_table, softcap=opts.softcap or 0.0, q_descale=None,
            k_descale=_scale_tensor(k_scale, bsz, hkv, q.device), v_descale=_scale_tensor(v_scale, bsz, hkv, q.device),
            alibi_slopes=(torch.tensor(opts.alibi_slopes, dtype=torch.float32, device=q.device)
                          if opts.alibi_slopes is not None else None),
            sinks=torch.tensor(sinks, dtype=torch.float32, device=q.device) if sinks is not None else None,
            kv_quant_mode=KVQuantMode.FP8_PER_TENSOR if fp8 else KVQuantMode.NONE, **scratch)
        return write_into(out, result), None


class VllmDecodeAttention(_VllmKernel):
    name = "paged-vllm-decode"
    description = ("vLLM's decode_attention_fwd (split-KV paged decode with its LSE; the MHA and grouped "
                   "kernels), vLLM's own kernel code under the Triton interpreter on the CPU")
    lacks = {"window": "decode_attention_fwd has no sliding window", "alibi": "decode_attention_fwd has no ALiBi",
             "sinks": "decode_attention_fwd has no attention sinks", "short_context": CONTRACT}

    def forward(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, block_table: torch.Tensor,
                seqlens: torch.Tensor, opts: AttentionOptions, out: torch.Tensor | None = None,
                k_scale: float = 1.0, v_scale: float = 1.0, max_seqlen: int | None = None, *,
                need_lse: bool = False, sinks: tuple[float, ...] | None = None) -> tuple[torch.Tensor,
                                                                                           torch.Tensor | None]:
        import torch

        from impls.paged._vllm_kernels import DECODE, kernels

        longest = self._check_call(q, k_cache, v_cache, block_table, seqlens, opts, max_seqlen, need_lse, k_scale,
                                   v_scale, sinks)
        bsz, sq, hq, dim = q.shape
        rows = bsz * sq
        table, extents = block_table, seqlens
        if sq > 1:  # one row per query, as vLLM's TritonMLABackend.forward_mqa does for multi-token decode
            table = block_table.repeat_interleave(sq, dim=0)
            if opts.causal:  # row i reads keys 0 … its diagonal key
                diag = torch.arange(sq, device=seqlens.device) + opts.diagonal_offset(sq, cast(int, seqlens[:, None]))
                extents = (diag + 1).flatten().clamp(min=0).to(torch.int32)
            else:
                extents = seqlens.repeat_interleave(sq)
        result = out if out is not None and out.is_contiguous() else torch.empty_like(q)
        lse = torch.empty(rows, hq, dtype=torch.float32, device=q.device)
        splits = num_kv_splits(longest, q.device)
        logits = torch.empty(rows, hq, splits, dim + 1, dtype=torch.float32, device=q.device)
        scales = {"k_scale": torch.tensor(float(k_scale), dtype=torch.float32, device=q.device),
                  "v_scale": torch.tensor(float(v_scale), dtype=torch.float32, device=q.device)}
        kernels()[DECODE].decode_attention_fwd(
            q.reshape(rows, hq, dim), k_cache, v_cache, result.view(rows, hq, dim), lse, table, extents, logits,
            splits, opts.resolved_scale(dim), k_cache.shape[1], logit_cap=opts.softcap or 0.0, **scales)
        return write_into(out, result), lse.view(bsz, sq, hq)


register(VllmUnifiedAttention())
register(VllmDecodeAttention())

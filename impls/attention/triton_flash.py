"""In-repo FlashAttention in Triton: forward and backward (recomputation from the LSE), as a plug-in.

Kernels live in ``_triton_flash_kernels`` (imported lazily: triton is optional). On a CUDA device
they are compiled and autotuned per architecture; without one they run under the Triton interpreter
(``TRITON_INTERPRET=1``, which the suite's conftest sets). See docs/triton_flash.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import torch

from impls.attention.api import DTYPES, AttentionCase, AttentionImpl, validate
from impls.base import Requirements
from impls.registry import register
from impls.triton_runtime import TritonKernel, interpreting
from reference.attention import AttentionOptions

MIN_HEAD_DIM, MAX_HEAD_DIM = 16, 256
BF16_INTERPRETER_NOTE = ("bf16 under the Triton interpreter: tl.dot on bf16 operands is wrong in the interpreter "
                         "(see test_triton_flash_interpreter_bf16_dot_is_still_broken), so in interpreter mode only the "
                         "bf16 tiles are upcast to fp32 before tl.dot: exact products with fp32 accumulation, the "
                         "function a GPU's bf16 MMA computes. Everything else (loads, the bf16 rounding of P and dS "
                         "before their dots, stores) stays bf16. Compiled GPU runs use native bf16 dots.")


@dataclass(frozen=True)
class Bugs:
    """Planted kernel mistakes for the self-test (all off in the registered implementation)."""

    no_rescale: bool = False  # the accumulator is not rescaled when the running max changes
    unmasked_tail: bool = False  # keys past the end of the last partial K block are not masked out
    drop_diagonal: bool = False  # the causal loop bound stops before the block holding the diagonal


def _kernels() -> Any:
    from impls.attention import _triton_flash_kernels

    return _triton_flash_kernels


def _next_pow2(n: int) -> int:
    return 1 << max(4, (n - 1).bit_length())


# ---- configurations -----------------------------------------------------------------------------------------------

INTERPRETER_BLOCKS = (32, 32)  # (BLOCK_M, BLOCK_N): one fixed config, no autotuning under the interpreter


def gpu_configs(capability: tuple[int, int], block_d: int, backward: bool) -> list[Any]:
    """A small autotune space per architecture and head-dim bucket."""
    import triton

    if backward:
        shapes = [(64, 64, 4, 2), (32, 64, 4, 2), (64, 32, 4, 2)] if block_d <= 128 else [(32, 32, 4, 1), (32, 64, 8, 1)]
    elif capability >= (9, 0):  # Hopper and newer: bigger tiles, deeper pipelines
        shapes = ([(128, 64, 4, 3), (128, 128, 8, 3), (128, 64, 8, 4), (64, 64, 4, 3)] if block_d <= 128
                  else [(64, 64, 4, 2), (128, 32, 8, 2), (64, 32, 4, 2)])
    elif capability >= (8, 0):  # Ampere / Ada
        shapes = ([(128, 64, 4, 3), (128, 32, 4, 3), (64, 64, 4, 3)] if block_d <= 128
                  else [(64, 32, 4, 2), (64, 64, 8, 2)])
    else:
        shapes = [(64, 32, 4, 2), (32, 32, 4, 1)]
    return [triton.Config({"BLOCK_M": m, "BLOCK_N": n}, num_warps=w, num_stages=s) for m, n, w, s in shapes]


@cache
def _tuned(kind: str, capability: tuple[int, int], block_d: int) -> Any:
    import triton

    fn = {"fwd": _kernels().fwd_kernel, "dq": _kernels().bwd_dq_kernel, "dkdv": _kernels().bwd_dkdv_kernel}[kind]
    key = ["seqlen_q_dense", "seqlen_k_dense", "head_dim", "GROUP", "IS_VARLEN", "HAS_LEFT", "HAS_RIGHT"]
    return triton.autotune(configs=gpu_configs(capability, block_d, kind != "fwd"), key=key)(fn)


def _launch(kind: str, grid_of: Any, device: torch.device, block_d: int, args: tuple, consts: dict) -> None:
    blocks = consts.pop("_blocks", None)
    if device.type == "cuda" and not interpreting() and blocks is None:
        kernel = _tuned(kind, torch.cuda.get_device_capability(device), block_d)
        kernel[lambda meta: grid_of(meta["BLOCK_M"] if kind != "dkdv" else meta["BLOCK_N"])](*args, **consts)
        return
    fn = {"fwd": _kernels().fwd_kernel, "dq": _kernels().bwd_dq_kernel, "dkdv": _kernels().bwd_dkdv_kernel}[kind]
    block_m, block_n = blocks or INTERPRETER_BLOCKS
    fn[(grid_of(block_m if kind != "dkdv" else block_n))](*args, BLOCK_M=block_m, BLOCK_N=block_n, **consts)


# ---- the launcher -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """Shapes of one call, dense [B, H, S, D] or packed [T, H, D] with cu_seqlens."""

    batch: int
    heads_q: int
    heads_kv: int
    max_q: int
    max_k: int
    head_dim: int
    varlen: bool


def _strides3(t: torch.Tensor, varlen: bool) -> tuple[int, int, int]:
    """(batch, head, seq) strides; a packed tensor has no batch stride (sequences start at cu_seqlens)."""
    return (0, t.stride(1), t.stride(0)) if varlen else (t.stride(0), t.stride(1), t.stride(2))


def _lse_strides(lse: torch.Tensor, varlen: bool) -> tuple[int, int, int]:
    return (0, lse.stride(1), lse.stride(0)) if varlen else (lse.stride(0), lse.stride(1), lse.stride(2))


def _unit_last(t: torch.Tensor) -> torch.Tensor:
    return t if t.stride(-1) == 1 else t.contiguous()


def _options_consts(opts: AttentionOptions, q: torch.Tensor, prob: Problem, bugs: Bugs | None,
                    slopes: torch.Tensor | None) -> tuple[tuple, dict]:
    right = opts.window_right
    if opts.causal:
        right = 0 if right is None else min(right, 0)
    scalars = (opts.resolved_scale(prob.head_dim), float(opts.softcap or 1.0), int(opts.window_left or 0),
               int(right or 0))
    upcast = interpreting() and q.dtype == torch.bfloat16
    consts = dict(GROUP=prob.heads_q // prob.heads_kv, BLOCK_D=_next_pow2(prob.head_dim), IS_VARLEN=prob.varlen,
                  ALIGN_BR=opts.alignment == "bottom_right", HAS_SOFTCAP=opts.softcap is not None,
                  HAS_ALIBI=slopes is not None, HAS_LEFT=opts.window_left is not None, HAS_RIGHT=right is not None,
                  UPCAST=upcast, IEEE=q.dtype == torch.float32)
    if bugs is not None:
        consts |= dict(BUG_NO_RESCALE=bugs.no_rescale, BUG_UNMASKED_TAIL=bugs.unmasked_tail,
                       BUG_DROP_DIAG=bugs.drop_diagonal)
    return scalars, consts


def _slopes(opts: AttentionOptions, device: torch.device) -> torch.Tensor | None:
    if opts.alibi_slopes is None:
        return None
    return torch.tensor(opts.alibi_slopes, dtype=torch.float32, device=device)


def flash_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions, prob: Problem,
                  cu_q: torch.Tensor | None, cu_k: torch.Tensor | None, out: torch.Tensor | None = None,
                  bugs: Bugs = Bugs(), blocks: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the forward kernel; returns (out, lse float32)."""
    q, k, v = _unit_last(q), _unit_last(k), _unit_last(v)
    o = torch.empty(q.shape, dtype=q.dtype, device=q.device) if out is None or out.stride(-1) != 1 else out
    lse_shape = (q.shape[0], q.shape[1]) if prob.varlen else (prob.batch, prob.heads_q, prob.max_q)
    lse = torch.empty(lse_shape, dtype=torch.float32, device=q.device)
    slopes = _slopes(opts, q.device)
    dummy = torch.zeros(1, dtype=torch.int32, device=q.device)
    scalars, consts = _options_consts(opts, q, prob, bugs, slopes)
    if blocks is not None:
        consts["_blocks"] = blocks
    args = (q, k, v, o, lse, cu_q if cu_q is not None else dummy, cu_k if cu_k is not None else dummy,
            slopes if slopes is not None else dummy.float(),
            *_strides3(q, prob.varlen), *_strides3(k, prob.varlen), *_strides3(v, prob.varlen),
            *_strides3(o, prob.varlen), *_lse_strides(lse, prob.varlen),
            prob.heads_q, prob.max_q, prob.max_k, prob.head_dim, *scalars)
    if prob.max_q > 0 and prob.batch > 0 and prob.heads_q > 0:
        _launch("fwd", lambda bm: (-(-prob.max_q // bm), prob.batch * prob.heads_q), q.device,
                consts["BLOCK_D"], args, consts)
    if out is not None and o is not out:
        out.copy_(o)
        o = out
    return o, lse


def flash_backward(d_out: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, o: torch.Tensor,
                   lse: torch.Tensor, opts: AttentionOptions, prob: Problem, cu_q: torch.Tensor | None,
                   cu_k: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dQ, dK, dV by recomputing P from the saved LSE, one kernel for dQ and one for dK/dV."""
    q, k, v = _unit_last(q), _unit_last(k), _unit_last(v)
    d_out = d_out.contiguous() if d_out.stride() != q.stride() else d_out
    if d_out.stride() != q.stride():
        q = q.contiguous()
        d_out = d_out.contiguous()
    delta = (d_out.float() * o.float()).sum(-1)  # rowsum(dO ⊙ O), same layout as lse
    delta = delta if delta.stride() == lse.stride() else delta.contiguous()
    lse = lse if lse.stride() == delta.stride() else lse.contiguous()
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    if dq.stride() != q.stride() or dk.stride() != k.stride() or dv.stride() != v.stride():
        q, k, v, d_out = q.contiguous(), k.contiguous(), v.contiguous(), d_out.contiguous()
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    slopes = _slopes(opts, q.device)
    dummy = torch.zeros(1, dtype=torch.int32, device=q.device)
    scalars, consts = _options_consts(opts, q, prob, None, slopes)
    common = (cu_q if cu_q is not None else dummy, cu_k if cu_k is not None else dummy,
              slopes if slopes is not None else dummy.float(),
              *_strides3(q, prob.varlen), *_strides3(k, prob.varlen), *_strides3(v, prob.varlen),
              *_lse_strides(lse, prob.varlen))
    sizes = (prob.max_q, prob.max_k, prob.head_dim, *scalars)
    if prob.max_q > 0:
        _launch("dq", lambda bm: (-(-prob.max_q // bm), prob.batch * prob.heads_q), q.device, consts["BLOCK_D"],
                (q, k, v, d_out, lse, delta, dq, *common, prob.heads_q, *sizes), dict(consts))
    else:
        dq.zero_()
    if prob.max_k > 0:
        _launch("dkdv", lambda bn: (-(-prob.max_k // bn), prob.batch * prob.heads_kv), q.device, consts["BLOCK_D"],
                (q, k, v, d_out, lse, delta, dk, dv, *common, prob.heads_kv, *sizes), dict(consts))
    return dq, dk, dv


class _FlashFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions,
                prob: Problem, cu_q: torch.Tensor | None, cu_k: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        o, lse = flash_forward(q, k, v, opts, prob, cu_q, cu_k)
        ctx.save_for_backward(q, k, v, o, lse, cu_q, cu_k)
        ctx.opts, ctx.prob = opts, prob
        ctx.mark_non_differentiable(lse)
        return o, lse

    @staticmethod
    def backward(ctx: Any, d_out: torch.Tensor, _d_lse: torch.Tensor | None) -> tuple[Any, ...]:
        q, k, v, o, lse, cu_q, cu_k = ctx.saved_tensors
        dq, dk, dv = flash_backward(d_out, q, k, v, o, lse, ctx.opts, ctx.prob, cu_q, cu_k)
        return dq, dk, dv, None, None, None, None


def flash_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions,
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable dense attention, [B, H, S, D] → (out, lse [B, Hq, Sq])."""
    validate(q, k, v, opts)
    prob = Problem(q.shape[0], q.shape[1], k.shape[1], q.shape[2], k.shape[2], q.shape[3], False)
    return _FlashFunction.apply(q, k, v, opts, prob, None, None)  # type: ignore[no-any-return]


class TritonFlashAttention(TritonKernel, AttentionImpl):
    name = "triton-flash"
    requires = Requirements(modules=("torch", "triton"))
    dtypes = DTYPES
    # Under the interpreter every example costs seconds: a few drawn examples per test in the quick profile.
    example_budget = 6 if not torch.cuda.is_available() else None

    def __init__(self, bugs: Bugs = Bugs(), name: str | None = None) -> None:
        self.bugs = bugs
        if name:
            self.name = name

    @property
    def description(self) -> str:  # type: ignore[override]
        mode = ("compiled, autotuned per GPU architecture" if torch.cuda.is_available() and not interpreting()
                else "Triton interpreter on the CPU; " + BF16_INTERPRETER_NOTE)
        return ("FlashAttention-2-style Triton kernels (online softmax, fully masked blocks skipped, GQA without "
                f"repeats, softcap, ALiBi, windows, varlen, LSE; backward from the LSE): {mode}")

    def unsupported(self, case: AttentionCase) -> list[str]:
        reasons = []
        if not MIN_HEAD_DIM <= case.head_dim <= MAX_HEAD_DIM:
            reasons.append(f"head_dim {case.head_dim} is outside {MIN_HEAD_DIM}..{MAX_HEAD_DIM} (tiles pad D to a power "
                           "of two up to 256)")
        if case.device == "cuda":
            cap = torch.cuda.get_device_capability() if torch.cuda.is_available() else None
            if cap is not None and cap < (8, 0) and case.dtype == "bfloat16":
                reasons.append(f"bfloat16 tl.dot needs compute capability >= 8.0; this GPU has {cap[0]}.{cap[1]}")
        elif case.device == "cpu" and not interpreting():
            reasons.append("on the CPU the kernels run only under TRITON_INTERPRET=1")
        return reasons

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions,
                out: torch.Tensor | None = None, *, need_lse: bool = False,
                need_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        validate(q, k, v, opts)
        prob = Problem(q.shape[0], q.shape[1], k.shape[1], q.shape[2], k.shape[2], q.shape[3], False)
        if any(t.requires_grad for t in (q, k, v)) and torch.is_grad_enabled():
            if self.bugs != Bugs():
                raise NotImplementedError("planted bugs live in the forward kernel only")
            o, lse = _FlashFunction.apply(q, k, v, opts, prob, None, None)
            return o, lse
        return flash_forward(q, k, v, opts, prob, None, None, out=out, bugs=self.bugs)

    def forward_varlen(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens_q: torch.Tensor,
                       cu_seqlens_k: torch.Tensor, max_seqlen_q: int, max_seqlen_k: int, opts: AttentionOptions,
                       out: torch.Tensor | None = None, *, need_lse: bool = False
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        from reference.attention import validate_cu_seqlens

        cu_q, cu_k = cu_seqlens_q.cpu().numpy(), cu_seqlens_k.cpu().numpy()
        validate_cu_seqlens(cu_q, q.shape[0], "cu_seqlens_q")
        validate_cu_seqlens(cu_k, k.shape[0], "cu_seqlens_k")
        if len(cu_q) != len(cu_k):
            raise ValueError(f"cu_seqlens_q has {len(cu_q)} entries but cu_seqlens_k has {len(cu_k)}")
        if q.dim() != 3 or k.shape != v.shape or q.shape[2] != k.shape[2] or q.shape[1] % k.shape[1]:
            raise ValueError(f"packed q [Tq, Hq, D] and k, v [Tk, Hkv, D] with Hq a multiple of Hkv; got "
                             f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
        longest_q, longest_k = int((cu_q[1:] - cu_q[:-1]).max()), int((cu_k[1:] - cu_k[:-1]).max())
        if max_seqlen_q < longest_q or max_seqlen_k < longest_k:
            raise ValueError(f"max_seqlen_q {max_seqlen_q} / max_seqlen_k {max_seqlen_k} are below the longest "
                             f"sequences {longest_q} / {longest_k}")
        prob = Problem(len(cu_q) - 1, q.shape[1], k.shape[1], max_seqlen_q, max_seqlen_k, q.shape[2], True)
        cq, ck = cu_seqlens_q.to(torch.int32), cu_seqlens_k.to(torch.int32)
        if any(t.requires_grad for t in (q, k, v)) and torch.is_grad_enabled():
            o, lse = _FlashFunction.apply(q, k, v, opts, prob, cq, ck)
            return o, lse
        return flash_forward(q, k, v, opts, prob, cq, ck, out=out, bugs=self.bugs)


register(TritonFlashAttention())

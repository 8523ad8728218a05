"""The attention area's API: what a kernel or adapter implements, and the case it is asked about.

Dense layout is [B, H, S, D] (SDPA's); an adapter to a library with another layout translates.
Packed variable-length batches use [T, H, D] with int32 ``cu_seqlens`` (flash-attn's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from impls.base import Implementation
from reference.attention import AttentionOptions

if TYPE_CHECKING:
    import torch

DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class AttentionCase:
    """Everything an implementation may need to decide whether it supports a call."""

    batch: int
    heads_q: int
    heads_kv: int
    seqlen_q: int
    seqlen_k: int
    head_dim: int
    dtype: str  # one of DTYPES
    device: str  # "cpu" or "cuda"
    options: AttentionOptions
    varlen: bool = False
    needs_grad: bool = False
    needs_lse: bool = False


class AttentionImpl(Implementation):
    """Computes softmax(scale·QKᵀ + bias)·V as the reference defines it.

    ``forward`` returns (out [B, Hq, Sq, D], lse [B, Hq, Sq] natural log, or None when the
    implementation cannot give it). When ``out`` is passed (only for calls without gradients),
    the result must be written into it and that tensor returned: the suite fills it with NaN
    first, so an element the implementation never writes fails. With inputs that require grad,
    the returned output must be differentiable by autograd.
    """

    area: ClassVar[str] = "attention"

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions,
                out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def forward_varlen(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens_q: torch.Tensor,
                       cu_seqlens_k: torch.Tensor, max_seqlen_q: int, max_seqlen_k: int, opts: AttentionOptions,
                       out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Packed: q [Tq, Hq, D], k/v [Tk, Hkv, D] → out [Tq, Hq, D], lse [Tq, Hq]."""
        raise NotImplementedError


def validate_inputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions) -> None:
    """Reject bad calls with an error naming the constraint and the values given."""
    from reference.attention import check_shapes

    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k, v must share a dtype; got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v must be on one device; got {q.device}, {k.device}, {v.device}")
    check_shapes(tuple(q.shape), tuple(k.shape), tuple(v.shape), opts)


def write_into(out: torch.Tensor | None, result: torch.Tensor) -> torch.Tensor:
    """Honour the ``out`` contract for adapters whose library allocates its own output."""
    if out is None:
        return result
    if out.shape != result.shape:
        raise ValueError(f"out has shape {tuple(out.shape)} but the result has {tuple(result.shape)}")
    out.copy_(result)
    return out


def dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def varlen_by_sequence(impl: AttentionImpl, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                       cu_seqlens_q: torch.Tensor, cu_seqlens_k: torch.Tensor, opts: AttentionOptions,
                       out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A packed batch through the dense ``forward``, one sequence at a time (for simple backends)."""
    import torch

    cu_q, cu_k = cu_seqlens_q.tolist(), cu_seqlens_k.tolist()
    if len(cu_q) != len(cu_k) or cu_q[-1] != q.shape[0] or cu_k[-1] != k.shape[0]:
        raise ValueError(f"cu_seqlens_q {cu_q} and cu_seqlens_k {cu_k} must have one length and end at the "
                         f"packed sizes {q.shape[0]} and {k.shape[0]}")
    result = torch.zeros_like(q) if out is None else out
    lse: torch.Tensor | None = torch.full((q.shape[0], q.shape[1]), float("-inf"), device=q.device, dtype=torch.float32)
    for n in range(len(cu_q) - 1):
        qs, ks = slice(cu_q[n], cu_q[n + 1]), slice(cu_k[n], cu_k[n + 1])
        if qs.start == qs.stop:
            continue
        if ks.start == ks.stop:
            result[qs] = 0
            continue
        o, seq_lse = impl.forward(q[qs].transpose(0, 1)[None], k[ks].transpose(0, 1)[None], v[ks].transpose(0, 1)[None],
                            opts)
        result[qs] = o[0].transpose(0, 1)
        if seq_lse is None:
            lse = None
        elif lse is not None:
            lse[qs] = seq_lse[0].transpose(0, 1).float()
    return result, lse

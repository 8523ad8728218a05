"""The attention area's API: what a kernel or adapter implements, and the case it is asked about.

Dense layout is [B, H, S, D] (SDPA's); an adapter to a library with another layout translates.
Packed variable-length batches use [T, H, D] with int32 ``cu_seqlens`` (flash-attn's).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, ClassVar

from impls.base import Implementation, declared_reasons
from impls.tensors import FLOAT_DTYPES, dtype_name
from reference.attention import AttentionOptions

if TYPE_CHECKING:
    import torch

DTYPES = FLOAT_DTYPES
FEATURES = ("lse", "grad", "varlen", "causal", "window", "alibi", "softcap", "gqa", "scale")


@dataclass(frozen=True)
class AttentionCase:
    """Everything an implementation may need to decide whether it supports a call, and what the suite draws.

    ``seqlens``: for a packed batch, the (Sq, Sk) of each sequence (``batch``, ``seqlen_q`` and ``seqlen_k``
    are then the count and the longest). ``logit_scale`` multiplies the drawn q (large logits);
    ``poison_masked_keys`` puts NaN in every key that no query may see.
    """

    batch: int
    heads_q: int
    heads_kv: int
    seqlen_q: int
    seqlen_k: int
    head_dim: int
    dtype: str  # one of DTYPES
    device: str  # "cpu" or "cuda"
    options: AttentionOptions = AttentionOptions()
    seqlens: tuple[tuple[int, int], ...] = ()
    needs_grad: bool = False
    needs_lse: bool = False
    logit_scale: float = 1.0
    poison_masked_keys: bool = False

    @property
    def varlen(self) -> bool:
        return bool(self.seqlens)

    def features(self) -> set[str]:
        o = self.options
        named = {"lse": self.needs_lse, "grad": self.needs_grad, "varlen": self.varlen, "causal": o.causal,
                 "window": o.window_left is not None or o.window_right is not None,
                 "alibi": o.alibi_slopes is not None, "softcap": o.softcap is not None,
                 "gqa": self.heads_q != self.heads_kv, "scale": o.scale is not None}
        return {f for f, on in named.items() if on}

    def __str__(self) -> str:
        o = self.options
        opts = [f"scale={o.scale:g}" if o.scale is not None else "", "causal" if o.causal else "",
                f"window=({o.window_left},{o.window_right})" if "window" in self.features() else "",
                "alibi" if o.alibi_slopes else "", f"softcap={o.softcap:g}" if o.softcap else "",
                o.alignment or "" if ({"causal", "window", "alibi"} & self.features()) else ""]
        extra = ["lse" if self.needs_lse else "", "grad" if self.needs_grad else "",
                 f"logits×{self.logit_scale:g}" if self.logit_scale != 1 else "",
                 "NaN in masked keys" if self.poison_masked_keys else "",
                 f"packed {list(self.seqlens)}" if self.seqlens else ""]
        shape = (f"B{self.batch} Hq{self.heads_q} Hkv{self.heads_kv} Sq{self.seqlen_q} Sk{self.seqlen_k} "
                 f"D{self.head_dim}")
        return " ".join(x for x in (shape, self.dtype, self.device, *opts, *extra) if x)

    def lengths(self) -> tuple[tuple[int, int], ...]:
        """(Sq, Sk) of each sequence: the packed lengths, or the dense shape's once."""
        return self.seqlens or ((self.seqlen_q, self.seqlen_k),)

    @staticmethod
    def of(q: torch.Tensor, k: torch.Tensor, opts: AttentionOptions, *, need_lse: bool = False,
           need_grad: bool = False, cu_seqlens: tuple[torch.Tensor, torch.Tensor] | None = None) -> AttentionCase:
        """The case a dense ([B, H, S, D]) or packed ([T, H, D] with cu_seqlens) call asks for."""
        if cu_seqlens is not None:
            cu_q, cu_k = (c.tolist() for c in cu_seqlens)
            lengths = tuple((b - a, d - c) for (a, b), (c, d) in zip(pairwise(cu_q), pairwise(cu_k), strict=True))
            return AttentionCase(len(lengths), q.shape[1], k.shape[1], max((a for a, _ in lengths), default=0),
                                 max((b for _, b in lengths), default=0), q.shape[2], dtype_name(q), q.device.type,
                                 opts, seqlens=lengths, needs_lse=need_lse, needs_grad=need_grad)
        return AttentionCase(q.shape[0], q.shape[1], k.shape[1], q.shape[2], k.shape[2], q.shape[3], dtype_name(q),
                             q.device.type, opts, needs_lse=need_lse, needs_grad=need_grad)


class AttentionImpl(Implementation):
    """Computes softmax(scale·QKᵀ + bias)·V as the reference defines it.

    ``forward`` returns (out [B, Hq, Sq, D], lse [B, Hq, Sq] natural log, or None). The call says what is
    asked: ``need_lse`` (the LSE must be returned) and ``need_grad`` (the output must be differentiable by
    autograd; the inputs then require grad). When ``out`` is passed (only for calls without gradients), the
    result must be written into it and that tensor returned: the suite fills it with NaN first, so an
    element the implementation never writes fails. Capabilities (``lacks`` names from :data:`FEATURES`,
    ``dtypes`` from :data:`DTYPES`) are declared as data; ``unsupported`` adds shape and device limits.
    """

    area: ClassVar[str] = "attention"

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions,
                out: torch.Tensor | None = None, *, need_lse: bool = False,
                need_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def forward_varlen(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens_q: torch.Tensor,
                       cu_seqlens_k: torch.Tensor, max_seqlen_q: int, max_seqlen_k: int, opts: AttentionOptions,
                       out: torch.Tensor | None = None, *, need_lse: bool = False) -> tuple[torch.Tensor,
                                                                                            torch.Tensor | None]:
        """Packed: q [Tq, Hq, D], k/v [Tk, Hkv, D] → out [Tq, Hq, D], lse [Tq, Hq]."""
        raise NotImplementedError

    def refuse(self, case: AttentionCase) -> None:
        """Raise NotImplementedError with the reasons, if this implementation declines ``case``."""
        reasons = declared_reasons(self, case)
        if reasons:
            raise NotImplementedError(f"{self.name}: " + "; ".join(reasons))

    def admit(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions, *,
              need_lse: bool = False, need_grad: bool = False) -> None:
        """``validate`` the call, then ``refuse`` it if this implementation declines it."""
        validate(q, k, v, opts)
        self.refuse(AttentionCase.of(q, k, opts, need_lse=need_lse, need_grad=need_grad))


def has_empty_rows(case: AttentionCase) -> bool:
    """Whether some query row of ``case`` sees no key at all (output 0, LSE −inf by the spec)."""
    from reference.attention import visible

    return any(sq and not visible(sq, sk, case.options).any(-1).all() for sq, sk in case.lengths())


def validate(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions) -> None:
    """Reject bad calls with an error naming the constraint and the values given."""
    from reference.attention import validate_shapes

    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k, v must share a dtype; got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v must be on one device; got {q.device}, {k.device}, {v.device}")
    validate_shapes(tuple(q.shape), tuple(k.shape), tuple(v.shape), opts)


def write_into(out: torch.Tensor | None, result: torch.Tensor) -> torch.Tensor:
    """Honour the ``out`` contract for adapters whose library allocates its own output."""
    if out is None:
        return result
    if out.shape != result.shape:
        raise ValueError(f"out has shape {tuple(out.shape)} but the result has {tuple(result.shape)}")
    out.copy_(result)
    return out


def varlen_by_sequence(impl: AttentionImpl, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                       cu_seqlens_q: torch.Tensor, cu_seqlens_k: torch.Tensor, opts: AttentionOptions,
                       out: torch.Tensor | None = None, need_lse: bool = False) -> tuple[torch.Tensor,
                                                                                        torch.Tensor | None]:
    """A packed batch through the dense ``forward``, one sequence at a time (for simple backends)."""
    import torch

    cu_q, cu_k = cu_seqlens_q.tolist(), cu_seqlens_k.tolist()
    if len(cu_q) != len(cu_k) or cu_q[-1] != q.shape[0] or cu_k[-1] != k.shape[0]:
        raise ValueError(f"cu_seqlens_q {cu_q} and cu_seqlens_k {cu_k} must have one length and end at the "
                         f"packed sizes {q.shape[0]} and {k.shape[0]}")
    result = torch.zeros_like(q) if out is None else out
    lse: torch.Tensor | None = torch.full((q.shape[0], q.shape[1]), float("-inf"), device=q.device,
                                          dtype=torch.float32)
    for n in range(len(cu_q) - 1):
        qs, ks = slice(cu_q[n], cu_q[n + 1]), slice(cu_k[n], cu_k[n + 1])
        if qs.start == qs.stop:
            continue
        if ks.start == ks.stop:
            result[qs] = 0
            continue
        o, seq_lse = impl.forward(q[qs].transpose(0, 1)[None], k[ks].transpose(0, 1)[None],
                                  v[ks].transpose(0, 1)[None], opts, need_lse=need_lse)
        result[qs] = o[0].transpose(0, 1)
        if seq_lse is None:
            lse = None
        elif lse is not None:
            lse[qs] = seq_lse[0].transpose(0, 1).float()
    return result, lse

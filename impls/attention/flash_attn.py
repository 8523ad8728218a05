"""flash-attn through whichever API is installed: 2.x ``flash_attn``, 3.x ``flash_attn_interface``,
4.x ``flash_attn.cute``.

Translation: layout [B, H, S, D] → [B, S, H, D]; flash-attn aligns causal masks, windows and ALiBi
bottom-right (query i sits at key i + Sk − Sq), so a top-left request with Sq ≠ Sk is declared
unsupported rather than silently realigned; an unbounded window side is −1 in 2.x/3.x and None in
4.x; the LSE comes back as [B, H, Sq] (dense) or [H, Tq] (packed).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import torch

from impls.attention.api import AttentionCase, AttentionImpl, write_into
from impls.base import Requirements
from impls.registry import register
from reference.attention import AttentionOptions


@dataclass(frozen=True)
class FlashApi:
    """What differs between the flash-attn generations, as data."""

    module: str
    unbounded: int | None  # how an unbounded window side is written
    lse_flag: str  # the keyword that makes the function return the LSE
    has_alibi: bool
    max_head_dim: int
    head_dim_multiple: int
    min_capability: tuple[int, int]
    max_capability: tuple[int, int] | None = None


class FlashAttn(AttentionImpl):
    dtypes = ("float16", "bfloat16")

    def __init__(self, name: str, api: FlashApi, description: str) -> None:
        self.name, self.api, self.description = name, api, description
        self.requires = Requirements(modules=(api.module,), device="cuda", min_compute_capability=api.min_capability)
        self.lacks = {} if api.has_alibi else {"alibi": f"{api.module} has no alibi_slopes argument"}

    def unsupported(self, case: AttentionCase) -> list[str]:
        o, api = case.options, self.api
        reasons = []
        if case.head_dim > api.max_head_dim or case.head_dim % api.head_dim_multiple:
            reasons.append(f"{api.module} needs head_dim <= {api.max_head_dim} and a multiple of "
                           f"{api.head_dim_multiple}; got {case.head_dim}")
        positional = o.causal or o.window_left is not None or o.window_right is not None or o.alibi_slopes
        if positional and o.alignment == "top_left" and any(sq != sk for sq, sk in case.lengths()):
            reasons.append("flash-attn aligns causal masks, windows and ALiBi bottom-right; top_left differs when "
                           "Sq != Sk")
        if self.api.max_capability and case.device == "cuda" and torch.cuda.is_available() and \
                torch.cuda.get_device_capability() > self.api.max_capability:
            reasons.append(f"{api.module} is built for compute capability up to {api.max_capability}")
        return reasons

    def module(self) -> Any:
        return importlib.import_module(self.api.module)

    def _options(self, opts: AttentionOptions, head_dim: int) -> dict[str, Any]:
        unbounded = self.api.unbounded
        left = unbounded if opts.window_left is None else opts.window_left
        right = unbounded if opts.window_right is None else opts.window_right
        kwargs: dict[str, Any] = {"softmax_scale": opts.resolved_scale(head_dim), "causal": opts.causal,
                                  "window_size": (left, right), "softcap": opts.softcap or 0.0}
        if opts.alibi_slopes is not None:
            kwargs["alibi_slopes"] = torch.tensor(opts.alibi_slopes, dtype=torch.float32)
        return kwargs

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        result = fn(*args, **{self.api.lse_flag: True}, **kwargs)
        return result[0], result[1]

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions,
                out: torch.Tensor | None = None, *, need_lse: bool = False,
                need_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        self.admit(q, k, v, opts, need_lse=need_lse, need_grad=need_grad)
        kwargs = self._options(opts, q.shape[-1])
        if "alibi_slopes" in kwargs:
            kwargs["alibi_slopes"] = kwargs["alibi_slopes"].to(q.device)
        q_, k_, v_ = (t.transpose(1, 2).contiguous() for t in (q, k, v))
        result, lse = self._call(self.module().flash_attn_func, q_, k_, v_, **kwargs)
        return write_into(out, result.transpose(1, 2)), lse

    def forward_varlen(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens_q: torch.Tensor,
                       cu_seqlens_k: torch.Tensor, max_seqlen_q: int, max_seqlen_k: int, opts: AttentionOptions,
                       out: torch.Tensor | None = None, *, need_lse: bool = False
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        self.refuse(AttentionCase.of(q, k, opts, need_lse=need_lse, cu_seqlens=(cu_seqlens_q, cu_seqlens_k)))
        kwargs = self._options(opts, q.shape[-1])
        if "alibi_slopes" in kwargs:
            kwargs["alibi_slopes"] = kwargs["alibi_slopes"].to(q.device)
        result, lse = self._call(self.module().flash_attn_varlen_func, q, k, v, cu_seqlens_q=cu_seqlens_q,
                                 cu_seqlens_k=cu_seqlens_k, max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k,
                                 **kwargs)
        return write_into(out, result), lse.transpose(0, 1)


FLASH_ATTN_2 = FlashApi("flash_attn", unbounded=-1, lse_flag="return_attn_probs", has_alibi=True, max_head_dim=256, head_dim_multiple=1,
                        min_capability=(8, 0))
FLASH_ATTN_3 = FlashApi("flash_attn_interface", unbounded=-1, lse_flag="return_attn_probs", has_alibi=False, max_head_dim=256, head_dim_multiple=8,
                        min_capability=(9, 0), max_capability=(9, 0))
FLASH_ATTN_4 = FlashApi("flash_attn.cute", unbounded=None, lse_flag="return_lse", has_alibi=False, max_head_dim=256, head_dim_multiple=8,
                        min_capability=(9, 0))

register(FlashAttn("flash-attn-2", FLASH_ATTN_2, "flash-attn 2.x (flash_attn_func / flash_attn_varlen_func)"))
register(FlashAttn("flash-attn-3", FLASH_ATTN_3, "flash-attn 3.x for Hopper (flash_attn_interface)"))
register(FlashAttn("flash-attn-4", FLASH_ATTN_4, "flash-attn 4.x CuTe DSL kernels (flash_attn.cute)"))

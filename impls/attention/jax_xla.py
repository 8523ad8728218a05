"""JAX ``jax.nn.dot_product_attention`` on XLA's CPU backend (``implementation="xla"``).

Layout: JAX takes [B, S, H, D]; the adapter transposes. Options reach JAX as it documents them: top-left
causal as ``is_causal``, a top-left window as ``local_window_size=(left, right)``, ALiBi as an additive
``bias``, GQA through fewer kv heads, the LSE through ``return_residual=True``. JAX's causal and window
masks are top-left only, so a bottom-right alignment with Sq ≠ Sk goes in as an explicit boolean ``mask``.
Packed batches are padded to [B, max S, H, D] and sent with ``query_seq_lengths`` /
``key_value_seq_lengths`` (JAX's ragged-batch path); a bottom-right alignment there is a per-sequence mask.
Each (shape, options) signature is jit-compiled once (about 0.2 s here) and cached by ``jax.jit``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import torch

from impls.attention._cpu_only import elsewhere
from impls.attention._masks import modified_score, positions, visible
from impls.attention.api import AttentionCase, AttentionImpl, has_empty_rows, write_into
from impls.base import ExpectedFailure, Requirements
from impls.registry import register
from impls.tensors import dtype_name
from reference.attention import AttentionOptions

SOURCE = "https://github.com/jax-ml/jax/blob/jax-v0.10.2/jax/_src/nn/functions.py"
_BOTTOM_RIGHT = AttentionOptions(causal=True, alignment="bottom_right")
FLOAT16_UNDER_JIT = (
    "under jax.jit on the CPU, float16 inputs do not compile: the logits einsum asks for the F16_F16_F32 dot "
    "algorithm, which XLA's CPU backend rejects ('The precision F16_F16_F32 is not supported by dot_general on "
    "CPU'); the function's fallback to the default precision (a try/except around the einsum) only catches it "
    "outside jit; measured, jax 0.10.2", f"{SOURCE}#L933")
_BF16_SINGLE_DOT = (
    "under jax.jit on the CPU, bfloat16 with batch, heads, Sq and Sk all 1 does not compile: the whole logits einsum "
    "is one vector dot, which XLA's elemental emitter cannot do with the BF16_BF16_F32 algorithm the function "
    "asks for ('Algorithm not supported by the ElementalIrEmitter: ALG_DOT_BF16_BF16_F32'); any larger shape "
    "compiles; measured, jax 0.10.2")


@cache
def _attend() -> Any:
    import jax

    jax.config.update("jax_platforms", "cpu")

    def attend(q: Any, k: Any, v: Any, bias: Any, mask: Any, q_len: Any, kv_len: Any, scale: Any, *,
               is_causal: bool, window: tuple[int, int] | None, lse: bool) -> Any:
        options: dict[str, Any] = {"scale": scale, "is_causal": is_causal, "query_seq_lengths": q_len,
                                   "key_value_seq_lengths": kv_len, "local_window_size": window,
                                   "implementation": "xla", "return_residual": lse}
        result = jax.nn.dot_product_attention(q, k, v, bias, mask, **options)
        # widened inside the compiled function (exact), so that one call compiles once
        out, residual = result if lse else (result, None)
        return out.astype("float32"), None if residual is None else residual.astype("float32")

    # the scale is traced (a float32 scalar), so that cases differing only in it share one compilation
    return jax.jit(attend, static_argnames=("is_causal", "window", "lse"))


def _to_jax(t: torch.Tensor) -> np.ndarray:
    """A torch tensor already in JAX's layout → a numpy array of the same dtype (bfloat16 via ml_dtypes)."""
    x = t.detach().to("cpu").contiguous()
    if x.dtype == torch.bfloat16:
        import ml_dtypes

        return x.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return x.numpy()


def _to_torch(x: Any, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A float32 result that holds values of ``dtype`` → that dtype (exact)."""
    return torch.from_numpy(np.array(x)).to(device, dtype)


def _top_left_masking(opts: AttentionOptions, sq: int, sk: int) -> tuple[bool, tuple[int, int] | None]:
    """``is_causal`` and ``local_window_size`` for a top-left alignment (an unbounded side spans every key)."""
    if opts.window_left is None and opts.window_right is None:
        return opts.causal, None
    every = sq + sk
    left = every if opts.window_left is None else opts.window_left
    right = every if opts.window_right is None else opts.window_right
    return opts.causal, (left, right)


def _alibi(opts: AttentionOptions, sq: int, sk: int) -> torch.Tensor | None:
    """[1, Hq, Sq, Sk] float32: −slope·|d − j| (finite everywhere; masking is JAX's)."""
    if opts.alibi_slopes is None:
        return None
    diag, key = positions(sq, sk, opts, torch.device("cpu"))
    slopes = torch.tensor(opts.alibi_slopes, dtype=torch.float32)[:, None, None]
    return modified_score(AttentionOptions(), torch.zeros(sq, sk), slopes, (diag - key).abs().float())[None]


class JaxAttention(AttentionImpl):
    name = "jax-xla"
    description = "jax.nn.dot_product_attention(implementation='xla') on XLA's CPU backend, jit-compiled per shape"
    requires = Requirements(modules=("jax",))
    dtypes = ("float32", "bfloat16")  # float16 does not compile under jit here (FLOAT16_UNDER_JIT, a finding)
    lacks = {"softcap": "jax.nn.dot_product_attention has no logit softcap (only an additive bias, added before "
                        "any nonlinearity could be)",
             "grad": "the adapter does not bridge JAX's autodiff into torch autograd"}
    example_budget = 1  # every new shape compiles (0.2-0.4 s here); the pinned traps still run in full
    call_cost_s = 0.25
    expected_failures = (
        ExpectedFailure(
            test="*",
            reason="a row with no visible key is filled with a large finite negative (-0.7·float32 max), not -inf, "
                   "so it gets the mean of all values instead of 0 and an LSE of about -2.4e38 instead of -inf "
                   "(measured, jax 0.10.2)",
            link=f"{SOURCE}#L859",
            when=has_empty_rows,
            example=AttentionCase(1, 1, 1, 2, 1, 16, "float32", "cpu", _BOTTOM_RIGHT, needs_lse=True)),
        ExpectedFailure(
            test="*", reason=_BF16_SINGLE_DOT, link=f"{SOURCE}#L933",
            when=lambda case: case.dtype == "bfloat16" and (case.batch, case.heads_q, case.seqlen_q,
                                                            case.seqlen_k) == (1, 1, 1, 1),
            example=AttentionCase(1, 1, 1, 1, 1, 16, "bfloat16", "cpu")),
    )

    def unavailable(self) -> list[str]:
        return super().unavailable() + elsewhere("XLA's CPU backend")

    def unsupported(self, case: AttentionCase) -> list[str]:
        reasons = [] if case.device == "cpu" else [f"runs on XLA's CPU backend; the case is on {case.device}"]
        if case.varlen and case.options.alibi_slopes is not None:
            reasons.append("ALiBi in a packed batch would need a per-sequence bias (the adapter sends none)")
        return reasons

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions,
                out: torch.Tensor | None = None, *, need_lse: bool = False,
                need_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        self.admit(q, k, v, opts, need_lse=need_lse, need_grad=need_grad)
        sq, sk = q.shape[2], k.shape[2]
        mask, is_causal, window = None, False, None
        if opts.diagonal_offset(sq, sk) == 0:
            is_causal, window = _top_left_masking(opts, sq, sk)
        else:  # JAX's own masks are top-left: the bottom-right pattern goes in as a boolean mask
            mask = visible(sq, sk, opts, torch.device("cpu"))[None, None].numpy()
        bias = _alibi(opts, sq, sk)
        q_, k_, v_ = (_to_jax(t.transpose(1, 2)) for t in (q, k, v))
        result, lse = _attend()(q_, k_, v_, None if bias is None else bias.numpy(), mask, None, None,
                                np.float32(opts.resolved_scale(q.shape[-1])), is_causal=is_causal, window=window,
                                lse=need_lse)
        # JAX returns the LSE in the inputs' dtype (``.astype(key.dtype)``): it is kept, and judged, in it
        return write_into(out, _to_torch(result, q.dtype, q.device).transpose(1, 2)), \
            None if lse is None else _to_torch(lse, q.dtype, q.device).transpose(1, 2)

    def forward_varlen(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens_q: torch.Tensor,
                       cu_seqlens_k: torch.Tensor, max_seqlen_q: int, max_seqlen_k: int, opts: AttentionOptions,
                       out: torch.Tensor | None = None, *, need_lse: bool = False
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Packed → padded [B, max S, H, D] with ``query_seq_lengths`` / ``key_value_seq_lengths`` → packed."""
        cu_q, cu_k = cu_seqlens_q.tolist(), cu_seqlens_k.tolist()
        lengths = tuple((b - a, d - c) for a, b, c, d in zip(cu_q, cu_q[1:], cu_k, cu_k[1:], strict=False))
        if len(cu_q) != len(cu_k) or cu_q[-1] != q.shape[0] or cu_k[-1] != k.shape[0]:
            raise ValueError(f"cu_seqlens_q {cu_q} and cu_seqlens_k {cu_k} must have one length and end at the "
                             f"packed sizes {q.shape[0]} and {k.shape[0]}")
        self.refuse(AttentionCase(len(lengths), q.shape[1], k.shape[1], max_seqlen_q, max_seqlen_k, q.shape[2],
                                  dtype_name(q), q.device.type, opts, seqlens=lengths, needs_lse=need_lse))
        if opts.alibi_slopes is not None:
            raise NotImplementedError(f"{self.name}: ALiBi in a packed batch would need a per-sequence bias")
        batch, tq, tk = len(lengths), max(max_seqlen_q, 1), max(max_seqlen_k, 1)
        pq = q.new_zeros(batch, tq, *q.shape[1:])
        pk, pv = k.new_zeros(batch, tk, *k.shape[1:]), v.new_zeros(batch, tk, *v.shape[1:])
        for n, (a, b) in enumerate(lengths):
            pq[n, :a], pk[n, :b], pv[n, :b] = q[cu_q[n]:cu_q[n + 1]], k[cu_k[n]:cu_k[n + 1]], v[cu_k[n]:cu_k[n + 1]]
        mask, is_causal, window = None, False, None
        if opts.alignment == "bottom_right" and any(a != b for a, b in lengths):
            mask = np.zeros((batch, 1, tq, tk), dtype=bool)  # each sequence's own bottom-right diagonal
            for n, (a, b) in enumerate(lengths):
                mask[n, 0, :a, :b] = visible(a, b, opts, torch.device("cpu")).numpy()
        else:
            is_causal, window = _top_left_masking(opts, tq, tk)
        seq_q = np.array([a for a, _ in lengths], dtype=np.int32)
        seq_k = np.array([b for _, b in lengths], dtype=np.int32)
        padded, lse = _attend()(_to_jax(pq), _to_jax(pk), _to_jax(pv), None, mask, seq_q, seq_k,
                                np.float32(opts.resolved_scale(q.shape[-1])), is_causal=is_causal, window=window,
                                lse=need_lse)
        padded = _to_torch(padded, q.dtype, q.device)
        result = torch.cat([padded[n, :a] for n, (a, _) in enumerate(lengths)])
        if lse is None:
            return write_into(out, result), None
        padded_lse = _to_torch(lse, q.dtype, q.device)
        return write_into(out, result), torch.cat([padded_lse[n, :a] for n, (a, _) in enumerate(lengths)])


register(JaxAttention())

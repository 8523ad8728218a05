"""The attention spec: softmax(scale·QKᵀ + bias)·V in float64, every option explicit.

Shapes (dense): q [B, Hq, Sq, D], k and v [B, Hkv, Sk, D]; output [B, Hq, Sq, D]; lse [B, Hq, Sq].
Query head h reads kv head h // (Hq // Hkv).

Positions: query i sits at key position i + offset on the diagonal, where offset is 0 for the
``top_left`` alignment (SDPA ``is_causal``) and Sk − Sq for ``bottom_right`` (flash-attn ≥ 2.1,
decoding against a cache). With d = i + offset, key j is visible when
    j ≤ d                      if causal
    d − window_left ≤ j        if window_left is set
    j ≤ d + window_right       if window_right is set
The score of a visible pair is s = softcap·tanh(scale·q·k / softcap) (when softcap is set) plus the
ALiBi bias −slope_h·|d − j| (when slopes are set). A row with no visible key outputs 0 and has
lse = −inf. lse is the natural log of Σ exp(s) over visible keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ALIGNMENTS = ("top_left", "bottom_right")


@dataclass(frozen=True)
class AttentionOptions:
    scale: float | None = None  # None means 1/sqrt(D)
    causal: bool = False
    window_left: int | None = None
    window_right: int | None = None
    alibi_slopes: tuple[float, ...] | None = None  # one per query head
    softcap: float | None = None
    alignment: str | None = None  # required when causal, a window or ALiBi is used

    def __post_init__(self) -> None:
        positional = self.causal or self.window_left is not None or self.window_right is not None or self.alibi_slopes
        if positional and self.alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {ALIGNMENTS} when causal, a window or ALiBi is used; "
                             f"got {self.alignment!r}")
        if self.alignment is not None and self.alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {ALIGNMENTS}; got {self.alignment!r}")
        for side in ("window_left", "window_right"):
            value = getattr(self, side)
            if value is not None and value < 0:
                raise ValueError(f"{side} must be >= 0 or None (unbounded); got {value}")
        if self.softcap is not None and not self.softcap > 0:
            raise ValueError(f"softcap must be > 0 or None; got {self.softcap}")
        if self.scale is not None and not math.isfinite(self.scale):
            raise ValueError(f"scale must be finite; got {self.scale}")

    def resolved_scale(self, head_dim: int) -> float:
        return 1.0 / math.sqrt(head_dim) if self.scale is None else float(self.scale)

    def diagonal_offset(self, seqlen_q: int, seqlen_k: int) -> int:
        return seqlen_k - seqlen_q if self.alignment == "bottom_right" else 0


def visible(seqlen_q: int, seqlen_k: int, opts: AttentionOptions) -> np.ndarray:
    """Boolean [Sq, Sk]: which key each query may attend to."""
    d = np.arange(seqlen_q)[:, None] + opts.diagonal_offset(seqlen_q, seqlen_k)
    j = np.arange(seqlen_k)[None, :]
    mask = np.ones((seqlen_q, seqlen_k), dtype=bool)
    if opts.causal:
        mask &= j <= d
    if opts.window_left is not None:
        mask &= j >= d - opts.window_left
    if opts.window_right is not None:
        mask &= j <= d + opts.window_right
    return mask


def validate_shapes(q_shape: tuple[int, ...], k_shape: tuple[int, ...], v_shape: tuple[int, ...],
                 opts: AttentionOptions) -> None:
    """Raise ValueError naming the violated constraint."""
    if len(q_shape) != 4 or len(k_shape) != 4 or len(v_shape) != 4:
        raise ValueError(f"q, k, v must be 4-D [B, H, S, D]; got {q_shape}, {k_shape}, {v_shape}")
    if k_shape != v_shape:
        raise ValueError(f"k and v must have the same shape; got k {k_shape} and v {v_shape}")
    (b, hq, _, d), (bk, hkv, _, dk) = q_shape, k_shape
    if b != bk:
        raise ValueError(f"q has batch {b} but k has batch {bk}")
    if d != dk:
        raise ValueError(f"q has head_dim {d} but k has head_dim {dk}")
    validate_heads(hq, hkv, opts)


def validate_heads(hq: int, hkv: int, opts: AttentionOptions) -> None:
    """Query heads share kv heads in equal groups; ALiBi has one slope per query head."""
    if hkv == 0 or hq % hkv:
        raise ValueError(f"query heads ({hq}) must be a multiple of kv heads ({hkv})")
    if opts.alibi_slopes is not None and len(opts.alibi_slopes) != hq:
        raise ValueError(f"alibi_slopes has {len(opts.alibi_slopes)} entries but there are {hq} query heads")


def alibi_bias(seqlen_q: int, seqlen_k: int, opts: AttentionOptions) -> np.ndarray:
    """The ALiBi term −slope_h·|d − j| as [Hq, Sq, Sk] (zeros [1, Sq, Sk] without slopes)."""
    if opts.alibi_slopes is None:
        return np.zeros((1, seqlen_q, seqlen_k))
    d = np.arange(seqlen_q)[:, None] + opts.diagonal_offset(seqlen_q, seqlen_k)
    distance = np.abs(d - np.arange(seqlen_k)[None, :])
    return -np.asarray(opts.alibi_slopes, dtype=np.float64)[:, None, None] * distance


def scores(q: np.ndarray, k: np.ndarray, opts: AttentionOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores [B, Hq, Sq, Sk] (−inf where not visible), the pre-softcap scaled logits, and the mask."""
    hq, sq, dim = q.shape[1:]
    hkv, sk = k.shape[1], k.shape[2]
    k_per_q = np.repeat(k, hq // hkv, axis=1)  # head h reads kv head h // group
    raw = opts.resolved_scale(dim) * np.einsum("bhid,bhjd->bhij", q, k_per_q)
    s = opts.softcap * np.tanh(raw / opts.softcap) if opts.softcap is not None else raw.copy()
    s = s + alibi_bias(sq, sk, opts)[None]
    mask = visible(sq, sk, opts)
    s = np.where(mask, s, -np.inf)
    return s, raw, mask


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, opts: AttentionOptions) -> tuple[np.ndarray, np.ndarray]:
    """Output [B, Hq, Sq, D] and lse [B, Hq, Sq], computed in float64."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    validate_shapes(q.shape, k.shape, v.shape, opts)
    if k.shape[2] == 0:  # no keys at all: every row is fully masked
        return np.zeros(q.shape), np.full(q.shape[:3], -np.inf)
    s, _, _ = scores(q, k, opts)
    row_max = s.max(axis=-1, keepdims=True)
    any_visible = np.isfinite(row_max)
    shifted = np.exp(s - np.where(any_visible, row_max, 0.0))  # exp(−inf) = 0 for masked keys
    total = shifted.sum(axis=-1, keepdims=True)
    p = np.where(any_visible, shifted / np.where(any_visible, total, 1.0), 0.0)
    hq, hkv = q.shape[1], k.shape[1]
    out = np.einsum("bhij,bhjd->bhid", p, np.repeat(v, hq // hkv, axis=1))
    lse = np.where(any_visible, row_max + np.log(np.where(any_visible, total, 1.0)), -np.inf)[..., 0]
    return out, lse


def attention_grads(q: np.ndarray, k: np.ndarray, v: np.ndarray, d_out: np.ndarray,
                    opts: AttentionOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dQ, dK, dV of ⟨out, d_out⟩, in float64.

    With P the softmax, O = P·V:  dV = Pᵀ·dO,  dP = dO·Vᵀ,  dS = P ⊙ (dP − rowsum(dO ⊙ O)),
    through the softcap dRaw = dS ⊙ (1 − tanh²(raw/softcap)),  dQ = scale·dRaw·K,  dK = scale·dRawᵀ·Q.
    Gradients of the kv heads sum over the query heads that share them.
    """
    q, k, v, d_out = (np.asarray(x, dtype=np.float64) for x in (q, k, v, d_out))
    out, lse = attention(q, k, v, opts)
    s, raw, _ = scores(q, k, opts)
    p = np.where(np.isfinite(lse)[..., None], np.exp(s - np.where(np.isfinite(lse), lse, 0.0)[..., None]), 0.0)
    b, hq, _, dim = q.shape
    hkv, sk = k.shape[1], k.shape[2]
    group = hq // hkv
    k_per_q, v_per_q = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    dv_per_q = np.einsum("bhij,bhid->bhjd", p, d_out)
    dp = np.einsum("bhid,bhjd->bhij", d_out, v_per_q)
    ds = p * (dp - (d_out * out).sum(axis=-1, keepdims=True))
    if opts.softcap is not None:
        ds = ds * np.where(p > 0, 1.0 - np.tanh(raw / opts.softcap) ** 2, 0.0)
    scale = opts.resolved_scale(dim)
    dq = scale * np.einsum("bhij,bhjd->bhid", ds, k_per_q)
    dk_per_q = scale * np.einsum("bhij,bhid->bhjd", ds, q)
    dk = dk_per_q.reshape(b, hkv, group, sk, dim).sum(axis=2)
    dv = dv_per_q.reshape(b, hkv, group, sk, dim).sum(axis=2)
    return dq, dk, dv


def validate_cu_seqlens(cu_seqlens: np.ndarray, total: int, name: str) -> None:
    cu = np.asarray(cu_seqlens)
    if cu.ndim != 1 or len(cu) < 2 or cu[0] != 0:
        raise ValueError(f"{name} must be 1-D, start at 0 and have at least 2 entries; got {cu.tolist()}")
    if np.any(np.diff(cu) < 0):
        raise ValueError(f"{name} must be non-decreasing; got {cu.tolist()}")
    if cu[-1] != total:
        raise ValueError(f"{name} ends at {cu[-1]} but the packed tensor has {total} tokens")


def attention_varlen(q: np.ndarray, k: np.ndarray, v: np.ndarray, cu_seqlens_q: np.ndarray,
                     cu_seqlens_k: np.ndarray, opts: AttentionOptions) -> tuple[np.ndarray, np.ndarray]:
    """Packed batches: q [Tq, Hq, D], k and v [Tk, Hkv, D]; sequence n is rows cu[n]:cu[n+1].

    Each sequence is attended on its own, with its own Sq and Sk for the alignment.
    Returns output [Tq, Hq, D] and lse [Tq, Hq].
    """
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    validate_cu_seqlens(cu_seqlens_q, q.shape[0], "cu_seqlens_q")
    validate_cu_seqlens(cu_seqlens_k, k.shape[0], "cu_seqlens_k")
    if len(cu_seqlens_q) != len(cu_seqlens_k):
        raise ValueError(f"cu_seqlens_q has {len(cu_seqlens_q)} entries but cu_seqlens_k has {len(cu_seqlens_k)}")
    out = np.zeros(q.shape, dtype=np.float64)
    lse = np.full(q.shape[:2], -np.inf)
    for n in range(len(cu_seqlens_q) - 1):
        qs = slice(int(cu_seqlens_q[n]), int(cu_seqlens_q[n + 1]))
        ks = slice(int(cu_seqlens_k[n]), int(cu_seqlens_k[n + 1]))
        if qs.start == qs.stop:
            continue
        o, seq_lse = attention(q[None, qs].transpose(0, 2, 1, 3), k[None, ks].transpose(0, 2, 1, 3),
                         v[None, ks].transpose(0, 2, 1, 3), opts)
        out[qs] = o[0].transpose(1, 0, 2)
        lse[qs] = seq_lse[0].T
    return out, lse


def alibi_slopes(num_heads: int) -> tuple[float, ...]:
    """The ALiBi slopes of Press et al. 2022 (a geometric sequence starting at 2^(−8/n))."""
    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    if math.log2(num_heads).is_integer():
        return tuple(power_of_two(num_heads))
    closest = 2 ** math.floor(math.log2(num_heads))
    return tuple(power_of_two(closest) + power_of_two(2 * closest)[0::2][: num_heads - closest])

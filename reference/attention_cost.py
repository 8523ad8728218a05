"""The attention cost model: exact FLOPs from the visible pairs, minimum bytes, score-matrix size."""

from __future__ import annotations

from reference.attention import AttentionOptions


def visible_pairs(seqlen_q: int, seqlen_k: int, opts: AttentionOptions = AttentionOptions()) -> int:
    """The number of (query, key) pairs with a visible score, counted row by row (exact)."""
    offset = opts.diagonal_offset(seqlen_q, seqlen_k)
    total = 0
    for i in range(seqlen_q):
        d = i + offset
        lo, hi = 0, seqlen_k - 1
        if opts.causal:
            hi = min(hi, d)
        if opts.window_right is not None:
            hi = min(hi, d + opts.window_right)
        if opts.window_left is not None:
            lo = max(lo, d - opts.window_left)
        total += max(0, hi - lo + 1)
    return total


def forward_flops(batch: int, heads_q: int, seqlen_q: int, seqlen_k: int, head_dim: int,
                  opts: AttentionOptions = AttentionOptions()) -> int:
    """Two matrix products (QKᵀ and PV), 2·D multiply-adds' FLOPs each, for every visible pair.

    Without masking this is the usual 4·B·Hq·Sq·Sk·D.
    """
    return 4 * batch * heads_q * head_dim * visible_pairs(seqlen_q, seqlen_k, opts)


def backward_flops(batch: int, heads_q: int, seqlen_q: int, seqlen_k: int, head_dim: int,
                   opts: AttentionOptions = AttentionOptions()) -> int:
    """Five products per visible pair (QKᵀ recomputed, dV, dP, dQ, dK): 2.5× the forward."""
    return 10 * batch * heads_q * head_dim * visible_pairs(seqlen_q, seqlen_k, opts)


def forward_min_bytes(batch: int, heads_q: int, heads_kv: int, seqlen_q: int, seqlen_k: int, head_dim: int,
                      dtype_bytes: int, lse_bytes: int = 4) -> int:
    """Each input read once and each output written once: Q, K, V in; O (and a float32 LSE) out."""
    q_and_o = 2 * batch * heads_q * seqlen_q * head_dim * dtype_bytes
    k_and_v = 2 * batch * heads_kv * seqlen_k * head_dim * dtype_bytes
    return q_and_o + k_and_v + batch * heads_q * seqlen_q * lse_bytes


def score_matrix_bytes(seqlen_q: int, seqlen_k: int, dtype_bytes: int, batch: int = 1, heads: int = 1) -> int:
    """What a naive kernel materialises: one Sq×Sk score matrix per batch element and head."""
    return batch * heads * seqlen_q * seqlen_k * dtype_bytes


def handshakes(n: int) -> int:
    """Unordered pairs of n distinct tokens, n(n−1)/2."""
    return n * (n - 1) // 2

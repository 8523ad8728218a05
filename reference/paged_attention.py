"""Paged attention, the spec: gather each sequence's K/V through its block table, then dense attention.

Pools: k_pool and v_pool [num_blocks, block_size, Hkv, D]. Token t of sequence b is
pool[block_table[b, t // block_size], t % block_size]. ``seqlens[b]`` counts the cached tokens of
sequence b, including the K/V of its current queries. Queries q [B, Sq, Hq, D] are the last Sq
positions of each sequence: bottom-right alignment, query i sits at key position seqlens[b] − Sq + i.
Output [B, Sq, Hq, D] and lse [B, Sq, Hq] (natural log) in float64, by ``reference.attention.attention``.
``k_scale``/``v_scale`` dequantize a quantized (fp8) cache: the K/V values are pool · scale.

Attention sinks (``sinks``, one logit per query head, as gpt-oss and vLLM's ``sinks`` define them): every
row's softmax gets one more term exp(sink_h) in its denominator, for a key with no value. So with the
row's plain ``out`` and ``lse``: out · e^lse / (e^lse + e^sink) and lse = log(e^lse + e^sink); a row with no
visible key then gives 0 and lse = sink.
"""

from __future__ import annotations

import numpy as np

from reference.attention import AttentionOptions, attention, validate_heads


def validate_shapes(q_shape: tuple[int, ...], pool_shape: tuple[int, ...], table_shape: tuple[int, ...],
                    seqlens: np.ndarray, opts: AttentionOptions) -> None:
    """Raise ValueError naming the violated constraint and the values given."""
    if len(q_shape) != 4 or len(pool_shape) != 4:
        raise ValueError(f"q must be [B, Sq, Hq, D] and the pools [num_blocks, block_size, Hkv, D]; "
                         f"got q {q_shape} and pool {pool_shape}")
    b, _, hq, d = q_shape
    _, block_size, hkv, dk = pool_shape
    if d != dk:
        raise ValueError(f"q has head_dim {d} but the cache has {dk}")
    validate_heads(hq, hkv, opts)
    if len(table_shape) != 2 or table_shape[0] != b:
        raise ValueError(f"block_table must be [B={b}, max_blocks]; got {table_shape}")
    if seqlens.shape != (b,):
        raise ValueError(f"seqlens must have one entry per sequence ({b}); got shape {seqlens.shape}")
    if (seqlens < 0).any():
        raise ValueError(f"seqlens must be >= 0; got {seqlens.tolist()}")
    needs = -(-seqlens // block_size)
    short = np.flatnonzero(needs > table_shape[1])
    if short.size:
        i = int(short[0])
        raise ValueError(f"block_table has {table_shape[1]} columns but seq {i} needs {int(needs[i])} blocks of "
                         f"{block_size} for {int(seqlens[i])} tokens")
    if opts.alignment == "top_left":
        raise ValueError("paged attention places queries at the end of the cache: alignment must be "
                         "'bottom_right' (or None without causal, window or ALiBi); got 'top_left'")


def gather(pool: np.ndarray, block_table: np.ndarray, seqlen: int) -> np.ndarray:
    """The dense [seqlen, Hkv, D] K or V of one sequence (one row of the block table)."""
    block_size = pool.shape[1]
    blocks = block_table[: -(-seqlen // block_size)]
    if ((blocks < 0) | (blocks >= pool.shape[0])).any():
        raise ValueError(f"block table entries {blocks.tolist()} must lie in [0, {pool.shape[0]})")
    return pool[blocks].reshape(-1, *pool.shape[2:])[:seqlen]


def paged_attention(q: np.ndarray, k_pool: np.ndarray, v_pool: np.ndarray, block_table: np.ndarray,
                    seqlens: np.ndarray, opts: AttentionOptions, k_scale: float = 1.0, v_scale: float = 1.0,
                    sinks: tuple[float, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Output [B, Sq, Hq, D] and lse [B, Sq, Hq], float64."""
    q, k_pool, v_pool = (np.asarray(x, dtype=np.float64) for x in (q, k_pool, v_pool))
    block_table, seqlens = np.asarray(block_table, dtype=np.int64), np.asarray(seqlens, dtype=np.int64)
    if k_pool.shape != v_pool.shape:
        raise ValueError(f"k and v pools must have one shape; got {k_pool.shape} and {v_pool.shape}")
    validate_shapes(q.shape, k_pool.shape, block_table.shape, seqlens, opts)
    out = np.zeros(q.shape)
    lse = np.full(q.shape[:3], -np.inf)
    for b, n in enumerate(seqlens.tolist()):
        k = gather(k_pool, block_table[b], n) * k_scale
        v = gather(v_pool, block_table[b], n) * v_scale
        o, s = attention(q[b].transpose(1, 0, 2)[None], k.transpose(1, 0, 2)[None], v.transpose(1, 0, 2)[None], opts)
        out[b] = o[0].transpose(1, 0, 2)
        lse[b] = s[0].T
    if sinks is not None:
        if len(sinks) != q.shape[2] or not np.isfinite(sinks).all():
            raise ValueError(f"sinks must be {q.shape[2]} finite logits, one per query head; got {list(sinks)}")
        sink = np.asarray(sinks, dtype=np.float64)  # broadcasts over [B, Sq, Hq]
        total = np.logaddexp(lse, sink)
        out = out * np.exp(lse - total)[..., None]
        lse = total
    return out, lse


def decode_min_bytes(seqlens: list[int], heads_q: int, heads_kv: int, seqlen_q: int, head_dim: int,
                     kv_elt: int, q_elt: int) -> int:
    """The least traffic of one paged-attention call: every cached K and V element once, Q read and O written."""
    kv = 2 * sum(seqlens) * heads_kv * head_dim * kv_elt
    return kv + 2 * len(seqlens) * seqlen_q * heads_q * head_dim * q_elt

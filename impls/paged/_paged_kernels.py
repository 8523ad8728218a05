"""Triton kernels of the paged decode: a split-KV attention pass and the LSE combine.

One program serves one (sequence, kv head, split): it loads the queries of every query head of the
KV group (G heads × Sq positions as the rows of one tile), so each K/V token is read once for the
whole group. Tokens are gathered one by one through the block table, so any block size works.
Offsets into the pools are 64-bit. ``BUG`` plants a defect for the suite's self-test only (0 = none).
Kept to language features that triton 3.6 and 3.9 share.
"""

from __future__ import annotations

import triton
import triton.language as tl

from impls._triton_math import tanh as _tanh

BUG_NONE, BUG_TAIL_UNMASKED, BUG_TABLE_STRIDE, BUG_COMBINE_NO_LSE, BUG_GQA_MAP = 0, 1, 2, 3, 4
BUG_ACC_IN_INPUT_DTYPE, BUG_LSE_LOG2, BUG_SINK_EVERY_SPLIT = 5, 6, 7


@triton.jit
def paged_decode_kernel(
    Q, K, V, TABLE, SEQLENS, SLOPES, SINKS, OUT, LSE,
    sq_b, sq_i, sq_h, sq_d,
    sk_blk, sk_slot, sk_h, sk_d,
    sv_blk, sv_slot, sv_h, sv_d,
    st_b, st_c,
    so_b, so_i, so_h, so_s, so_d,
    sl_b, sl_i, sl_h, sl_s,
    scale, v_scale, softcap, window_left, window_right,
    SQ, HKV, D, BLOCK_SIZE, SPLIT_TOKENS,
    G: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    CAUSAL: tl.constexpr, HAS_WL: tl.constexpr, HAS_WR: tl.constexpr, HAS_CAP: tl.constexpr,
    HAS_ALIBI: tl.constexpr, HAS_SINKS: tl.constexpr, UPCAST: tl.constexpr, IEEE: tl.constexpr,
    BUG: tl.constexpr,
):
    pid = tl.program_id(0)
    split = tl.program_id(1)
    b = pid // HKV
    kvh = pid % HKV
    rows = tl.arange(0, BLOCK_M)
    g = rows // SQ
    i = rows % SQ
    row_ok = rows < G * SQ
    qh = g * HKV + kvh if BUG == 4 else kvh * G + g  # BUG 4 (planted): heads interleaved over kv heads
    dims = tl.arange(0, BLOCK_D)
    dim_ok = dims < D

    seqlen = tl.load(SEQLENS + b)
    diag = seqlen - SQ + i  # bottom-right: key position of each query row
    lo = split * SPLIT_TOKENS
    hi = tl.minimum(lo + SPLIT_TOKENS, seqlen)
    if BUG == 1:
        hi = tl.minimum(lo + SPLIT_TOKENS, tl.cdiv(seqlen, BLOCK_SIZE) * BLOCK_SIZE)  # planted: tail unmasked
    if HAS_WL:
        lo = tl.maximum(lo, seqlen - SQ - window_left)
    lo = tl.maximum(lo, 0)

    b64 = b.to(tl.int64)
    q_ptr = Q + b64 * sq_b + i[:, None].to(tl.int64) * sq_i + qh[:, None] * sq_h + dims[None, :] * sq_d
    q = tl.load(q_ptr, mask=row_ok[:, None] & dim_ok[None, :], other=0.0)
    if UPCAST:
        q = q.to(tl.float32)
    if HAS_ALIBI:
        slope = tl.load(SLOPES + qh, mask=row_ok, other=0.0)

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    if HAS_SINKS:  # split 0 starts from the sink: a term e^sink in the denominator, no value
        sink = tl.load(SINKS + qh, mask=row_ok, other=float("-inf"))
        first = (split == 0) | (BUG == 7)  # BUG 7 (planted): every split adds the sink
        m_i = tl.where(first, sink, m_i)
        l_i = tl.where(first, 1.0, l_i)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    cols = tl.arange(0, BLOCK_N)
    for start in range(lo, hi, BLOCK_N):
        j = start + cols
        j_ok = j < hi
        if BUG == 2:
            col = b * st_c + j // BLOCK_SIZE  # planted: the table's row stride taken as its column stride
            blk = tl.load(TABLE + col, mask=j_ok, other=0).to(tl.int64)
        else:
            blk = tl.load(TABLE + b64 * st_b + (j // BLOCK_SIZE) * st_c, mask=j_ok, other=0).to(tl.int64)
        slot = (j % BLOCK_SIZE).to(tl.int64)
        kv_mask = j_ok[:, None] & dim_ok[None, :]
        k = tl.load(K + (blk * sk_blk + slot * sk_slot + kvh * sk_h)[:, None] + dims[None, :] * sk_d,
                    mask=kv_mask, other=0.0)
        v = tl.load(V + (blk * sv_blk + slot * sv_slot + kvh * sv_h)[:, None] + dims[None, :] * sv_d,
                    mask=kv_mask, other=0.0)
        if UPCAST:
            k = k.to(tl.float32)
            v = v.to(tl.float32)
        else:
            k = k.to(Q.dtype.element_ty)
            v = v.to(Q.dtype.element_ty)
        if IEEE:  # noqa: SIM108 - fp32 inputs: full-precision products, not tf32
            s = tl.dot(q, tl.trans(k), input_precision="ieee") * scale
        else:
            s = tl.dot(q, tl.trans(k)) * scale
        if HAS_CAP:
            s = softcap * _tanh(s / softcap)
        if HAS_ALIBI:
            dist = tl.abs(diag[:, None] - j[None, :]).to(tl.float32)
            s = s - slope[:, None] * dist
        visible = j_ok[None, :] & row_ok[:, None]
        if CAUSAL:
            visible = visible & (j[None, :] <= diag[:, None])
        if HAS_WL:
            visible = visible & (j[None, :] >= diag[:, None] - window_left)
        if HAS_WR:
            visible = visible & (j[None, :] <= diag[:, None] + window_right)
        s = tl.where(visible, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.exp(m_i - m_safe)
        p = tl.exp(s - m_safe[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        if IEEE:
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision="ieee")
        else:
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        if BUG == 5:  # planted: the running output kept in the input dtype between tiles
            acc = acc.to(Q.dtype.element_ty).to(tl.float32)
        m_i = m_new

    has = l_i > 0.0
    out = acc / tl.where(has, l_i, 1.0)[:, None] * v_scale
    lse = tl.where(has, m_i + tl.log(tl.where(has, l_i, 1.0)), float("-inf"))
    o_ptr = OUT + b64 * so_b + i[:, None].to(tl.int64) * so_i + qh[:, None] * so_h + split * so_s + dims[None, :] * so_d
    tl.store(o_ptr, out.to(OUT.dtype.element_ty), mask=row_ok[:, None] & dim_ok[None, :])
    tl.store(LSE + b64 * sl_b + i.to(tl.int64) * sl_i + qh * sl_h + split * sl_s, lse, mask=row_ok)


@triton.jit
def combine_kernel(
    OP, LP, OUT, LSE,
    sp_b, sp_i, sp_h, sp_s, sp_d,
    slp_b, slp_i, slp_h, slp_s,
    so_b, so_i, so_h, so_d,
    sl_b, sl_i, sl_h,
    SQ, HQ, D, SPLITS,
    BLOCK_S: tl.constexpr, BLOCK_D: tl.constexpr, BUG: tl.constexpr,
):
    pid = tl.program_id(0).to(tl.int64)
    h = pid % HQ
    i = (pid // HQ) % SQ
    b = pid // (HQ * SQ)
    sp = tl.arange(0, BLOCK_S)
    dims = tl.arange(0, BLOCK_D)
    s_ok = sp < SPLITS
    lse = tl.load(LP + b * slp_b + i * slp_i + h * slp_h + sp * slp_s, mask=s_ok, other=float("-inf"))
    parts = tl.load(OP + b * sp_b + i * sp_i + h * sp_h + sp[:, None] * sp_s + dims[None, :] * sp_d,
                    mask=s_ok[:, None] & (dims[None, :] < D), other=0.0)
    m = tl.max(lse, 0)
    m_safe = tl.where(m == float("-inf"), 0.0, m)
    w = tl.exp(lse - m_safe)
    if BUG == 3:
        w = tl.where(lse > float("-inf"), 1.0, 0.0)  # planted: splits weighted equally, the LSE ignored
    total = tl.sum(w, 0)
    out = tl.sum(parts * w[:, None], 0) / tl.where(total > 0, total, 1.0)
    tl.store(OUT + b * so_b + i * so_i + h * so_h + dims * so_d, out.to(OUT.dtype.element_ty), mask=dims < D)
    lse_out = tl.where(total > 0, m + tl.log(tl.where(total > 0, total, 1.0)), float("-inf"))
    if BUG == 6:
        lse_out = lse_out * 1.4426950408889634  # planted: the LSE returned in log2 units (the output is right)
    tl.store(LSE + b * sl_b + i * sl_i + h * sl_h, lse_out)


def next_pow2(n: int) -> int:
    return int(triton.next_power_of_2(max(1, n)))

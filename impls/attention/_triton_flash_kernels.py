"""Triton kernels of the in-repo flash attention: forward, dQ, and dK/dV by recomputation from the LSE.

Imported lazily by ``triton_flash`` (it imports triton at module level). Scores are kept in
base-2 units inside the loops (exp2 is the fast path on GPUs); the LSE is stored in natural log.
Every tile of keys outside a row block's visible range (causal, window) is skipped by the loop
bounds, not computed and masked. The ``BUG_*`` flags plant classic kernel mistakes for the
self-test; they default to off and the registered implementation never sets them.
"""

from __future__ import annotations

import triton
import triton.language as tl

from impls._triton_math import tanh as _tanh

LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453


@triton.jit
def _dot(a, b, UPCAST: tl.constexpr, IEEE: tl.constexpr):
    # UPCAST: interpreter-only bf16 workaround (fp32 products, fp32 accumulation = what bf16 MMA computes)
    if UPCAST:
        r = tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    elif IEEE:
        r = tl.dot(a, b, input_precision="ieee")
    else:
        r = tl.dot(a, b)
    return r


@triton.jit
def _scores(qk, offs_m, offs_n, diag_off, seqlen_q, seqlen_k, scale, softcap, slope, left, right,
            HAS_SOFTCAP: tl.constexpr, HAS_ALIBI: tl.constexpr, HAS_LEFT: tl.constexpr, HAS_RIGHT: tl.constexpr,
            BUG_UNMASKED_TAIL: tl.constexpr):
    """Scores in natural units (−inf where not visible) and tanh(raw/softcap) for the backward."""
    raw = qk * scale
    if HAS_SOFTCAP:
        t = _tanh(raw / softcap)
        s = softcap * t
    else:
        t = raw
        s = raw
    d = offs_m[:, None] + diag_off
    j = offs_n[None, :]
    if HAS_ALIBI:
        s = s - slope * tl.abs(d - j).to(tl.float32)
    if BUG_UNMASKED_TAIL:
        vis = (offs_m[:, None] < seqlen_q) & (j >= 0)
    else:
        vis = (offs_m[:, None] < seqlen_q) & (j < seqlen_k)
    if HAS_LEFT:
        vis = vis & (j >= d - left)
    if HAS_RIGHT:
        vis = vis & (j <= d + right)
    return tl.where(vis, s, float("-inf")), t


@triton.jit
def _bounds(b, CU_Q, CU_K, seqlen_q_dense, seqlen_k_dense, IS_VARLEN: tl.constexpr, ALIGN_BR: tl.constexpr):
    if IS_VARLEN:
        q_start = tl.load(CU_Q + b)
        k_start = tl.load(CU_K + b)
        seqlen_q = tl.load(CU_Q + b + 1) - q_start
        seqlen_k = tl.load(CU_K + b + 1) - k_start
    else:
        q_start = b * 0
        k_start = b * 0
        seqlen_q = seqlen_q_dense + b * 0
        seqlen_k = seqlen_k_dense + b * 0
    if ALIGN_BR:  # noqa: SIM108 - a constexpr branch, the triton idiom
        diag_off = seqlen_k - seqlen_q
    else:
        diag_off = seqlen_k * 0
    return q_start, k_start, seqlen_q, seqlen_k, diag_off


@triton.jit
def _key_range(m0, diag_off, seqlen_q, seqlen_k, left, right, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
               HAS_LEFT: tl.constexpr, HAS_RIGHT: tl.constexpr, BUG_DROP_DIAG: tl.constexpr):
    """[lo, hi) of keys any row of the block m0.. can see; lo is a multiple of BLOCK_N."""
    lo = seqlen_k * 0
    hi = seqlen_k
    if HAS_LEFT:
        lo = (tl.maximum(m0 + diag_off - left, 0) // BLOCK_N) * BLOCK_N
    if HAS_RIGHT:
        if BUG_DROP_DIAG:  # stops before the block holding the first row's diagonal
            hi = tl.minimum(hi, (tl.maximum(m0 + diag_off + right, 0) // BLOCK_N) * BLOCK_N)
        else:
            hi = tl.minimum(hi, m0 + BLOCK_M + diag_off + right)
    hi = hi * (m0 < seqlen_q).to(tl.int32)  # a block past this sequence's end does nothing
    return lo, hi


@triton.jit
def fwd_kernel(Q, K, V, Out, LSE, CU_Q, CU_K, SLOPES,
               sqb, sqh, sqs, skb, skh, sks, svb, svh, svs, sob, soh, sos, slb, slh, sls,
               num_heads_q, seqlen_q_dense, seqlen_k_dense, head_dim, scale, softcap, left, right,
               GROUP: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
               IS_VARLEN: tl.constexpr, ALIGN_BR: tl.constexpr, HAS_SOFTCAP: tl.constexpr,
               HAS_ALIBI: tl.constexpr, HAS_LEFT: tl.constexpr, HAS_RIGHT: tl.constexpr,
               UPCAST: tl.constexpr, IEEE: tl.constexpr, BUG_NO_RESCALE: tl.constexpr,
               BUG_UNMASKED_TAIL: tl.constexpr, BUG_DROP_DIAG: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // num_heads_q
    h = pid_bh % num_heads_q
    hk = h // GROUP  # GQA: read the shared kv head, never a repeated copy
    q_start, k_start, seqlen_q, seqlen_k, diag_off = _bounds(b, CU_Q, CU_K, seqlen_q_dense, seqlen_k_dense,
                                                              IS_VARLEN, ALIGN_BR)
    m0 = pid_m * BLOCK_M
    offs_m = m0 + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    offs_nb = tl.arange(0, BLOCK_N)
    d_ok = offs_d < head_dim
    q = tl.load(Q + b * sqb + h * sqh + (q_start + offs_m)[:, None] * sqs + offs_d[None, :],
                mask=(offs_m[:, None] < seqlen_q) & d_ok[None, :], other=0.0)
    slope = 0.0
    if HAS_ALIBI:
        slope = tl.load(SLOPES + h)
    lo, hi = _key_range(m0, diag_off, seqlen_q, seqlen_k, left, right, BLOCK_M, BLOCK_N, HAS_LEFT, HAS_RIGHT,
                        BUG_DROP_DIAG)
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    k_base = K + b * skb + hk * skh
    v_base = V + b * svb + hk * svh
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + offs_nb
        n_ok = offs_n < seqlen_k
        kt = tl.load(k_base + (k_start + offs_n)[None, :] * sks + offs_d[:, None],
                     mask=n_ok[None, :] & d_ok[:, None], other=0.0)
        v = tl.load(v_base + (k_start + offs_n)[:, None] * svs + offs_d[None, :],
                    mask=n_ok[:, None] & d_ok[None, :], other=0.0)
        qk = _dot(q, kt, UPCAST, IEEE)
        s, _t = _scores(qk, offs_m, offs_n, diag_off, seqlen_q, seqlen_k, scale, softcap, slope, left, right,
                        HAS_SOFTCAP, HAS_ALIBI, HAS_LEFT, HAS_RIGHT, BUG_UNMASKED_TAIL)
        s2 = s * LOG2E
        m_new = tl.maximum(m_i, tl.max(s2, 1))
        m_use = tl.where(m_new == float("-inf"), 0.0, m_new)  # rows with nothing visible yet
        p = tl.exp2(s2 - m_use[:, None])
        alpha = tl.exp2(m_i - m_use)
        l_i = l_i * alpha + tl.sum(p, 1)
        pv = _dot(p.to(v.dtype), v, UPCAST, IEEE)
        if BUG_NO_RESCALE:  # noqa: SIM108 - a constexpr branch
            acc = acc + pv
        else:
            acc = acc * alpha[:, None] + pv
        m_i = m_new
    has_key = l_i > 0.0
    l_safe = tl.where(has_key, l_i, 1.0)
    out = tl.where(has_key[:, None], acc / l_safe[:, None], 0.0)
    lse = tl.where(has_key, (m_i + tl.log2(l_safe)) * LN2, float("-inf"))
    row_ok = offs_m < seqlen_q
    tl.store(Out + b * sob + h * soh + (q_start + offs_m)[:, None] * sos + offs_d[None, :],
             out.to(Out.dtype.element_ty), mask=row_ok[:, None] & d_ok[None, :])
    tl.store(LSE + b * slb + h * slh + (q_start + offs_m) * sls, lse, mask=row_ok)


@triton.jit
def bwd_dq_kernel(Q, K, V, DO, LSE, DELTA, DQ, CU_Q, CU_K, SLOPES,
                  sqb, sqh, sqs, skb, skh, sks, svb, svh, svs, slb, slh, sls,
                  num_heads_q, seqlen_q_dense, seqlen_k_dense, head_dim, scale, softcap, left, right,
                  GROUP: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                  IS_VARLEN: tl.constexpr, ALIGN_BR: tl.constexpr, HAS_SOFTCAP: tl.constexpr,
                  HAS_ALIBI: tl.constexpr, HAS_LEFT: tl.constexpr, HAS_RIGHT: tl.constexpr,
                  UPCAST: tl.constexpr, IEEE: tl.constexpr):
    """dQ = scale · Σ_j dS_ij K_j. Q, DO and DQ share strides (sq*), LSE and DELTA share (sl*)."""
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // num_heads_q
    h = pid_bh % num_heads_q
    hk = h // GROUP
    q_start, k_start, seqlen_q, seqlen_k, diag_off = _bounds(b, CU_Q, CU_K, seqlen_q_dense, seqlen_k_dense,
                                                              IS_VARLEN, ALIGN_BR)
    m0 = pid_m * BLOCK_M
    offs_m = m0 + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    offs_nb = tl.arange(0, BLOCK_N)
    d_ok = offs_d < head_dim
    row_ok = offs_m < seqlen_q
    row_off = b * sqb + h * sqh + (q_start + offs_m)[:, None] * sqs + offs_d[None, :]
    tile_ok = row_ok[:, None] & d_ok[None, :]
    q = tl.load(Q + row_off, mask=tile_ok, other=0.0)
    do = tl.load(DO + row_off, mask=tile_ok, other=0.0)
    lse = tl.load(LSE + b * slb + h * slh + (q_start + offs_m) * sls, mask=row_ok, other=0.0)
    delta = tl.load(DELTA + b * slb + h * slh + (q_start + offs_m) * sls, mask=row_ok, other=0.0)
    lse2 = tl.where(lse == float("-inf"), 0.0, lse * LOG2E)
    slope = 0.0
    if HAS_ALIBI:
        slope = tl.load(SLOPES + h)
    lo, hi = _key_range(m0, diag_off, seqlen_q, seqlen_k, left, right, BLOCK_M, BLOCK_N, HAS_LEFT, HAS_RIGHT, False)
    dq = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + offs_nb
        n_ok = offs_n < seqlen_k
        kt = tl.load(K + b * skb + hk * skh + (k_start + offs_n)[None, :] * sks + offs_d[:, None],
                     mask=n_ok[None, :] & d_ok[:, None], other=0.0)
        vt = tl.load(V + b * svb + hk * svh + (k_start + offs_n)[None, :] * svs + offs_d[:, None],
                     mask=n_ok[None, :] & d_ok[:, None], other=0.0)
        s, t = _scores(_dot(q, kt, UPCAST, IEEE), offs_m, offs_n, diag_off, seqlen_q, seqlen_k, scale, softcap,
                       slope, left, right, HAS_SOFTCAP, HAS_ALIBI, HAS_LEFT, HAS_RIGHT, False)
        p = tl.exp2(s * LOG2E - lse2[:, None])
        dp = _dot(do, vt, UPCAST, IEEE)
        ds = p * (dp - delta[:, None])
        if HAS_SOFTCAP:
            ds = ds * (1.0 - t * t)
        dq += _dot(ds.to(kt.dtype), tl.trans(kt), UPCAST, IEEE)
    tl.store(DQ + row_off, (dq * scale).to(DQ.dtype.element_ty), mask=tile_ok)


@triton.jit
def bwd_dkdv_kernel(Q, K, V, DO, LSE, DELTA, DK, DV, CU_Q, CU_K, SLOPES,
                    sqb, sqh, sqs, skb, skh, sks, svb, svh, svs, slb, slh, sls,
                    num_heads_kv, seqlen_q_dense, seqlen_k_dense, head_dim, scale, softcap, left, right,
                    GROUP: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                    IS_VARLEN: tl.constexpr, ALIGN_BR: tl.constexpr, HAS_SOFTCAP: tl.constexpr,
                    HAS_ALIBI: tl.constexpr, HAS_LEFT: tl.constexpr, HAS_RIGHT: tl.constexpr,
                    UPCAST: tl.constexpr, IEEE: tl.constexpr):
    """dV = Σ Pᵀ dO and dK = scale · Σ dSᵀ Q over the GROUP query heads sharing this kv head.

    K, DK share strides (sk*); V, DV share (sv*); Q, DO share (sq*); LSE, DELTA share (sl*).
    """
    pid_n = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // num_heads_kv
    hk = pid_bh % num_heads_kv
    q_start, k_start, seqlen_q, seqlen_k, diag_off = _bounds(b, CU_Q, CU_K, seqlen_q_dense, seqlen_k_dense,
                                                              IS_VARLEN, ALIGN_BR)
    n0 = pid_n * BLOCK_N
    offs_n = n0 + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    offs_mb = tl.arange(0, BLOCK_M)
    d_ok = offs_d < head_dim
    n_ok = offs_n < seqlen_k
    kt_off = b * skb + hk * skh + (k_start + offs_n)[None, :] * sks + offs_d[:, None]
    vt_off = b * svb + hk * svh + (k_start + offs_n)[None, :] * svs + offs_d[:, None]
    t_ok = n_ok[None, :] & d_ok[:, None]
    kt = tl.load(K + kt_off, mask=t_ok, other=0.0)
    vt = tl.load(V + vt_off, mask=t_ok, other=0.0)
    # query rows that can see a key of this block: d ≥ j − right and d ≤ j + left, d = i + diag_off
    lo = seqlen_q * 0
    hi = seqlen_q
    if HAS_RIGHT:
        lo = (tl.maximum(n0 - right - diag_off, 0) // BLOCK_M) * BLOCK_M
    if HAS_LEFT:
        hi = tl.minimum(hi, n0 + BLOCK_N + left - diag_off)
    hi = hi * (n0 < seqlen_k).to(tl.int32)
    dk = tl.zeros([BLOCK_D, BLOCK_N], dtype=tl.float32)
    dv = tl.zeros([BLOCK_D, BLOCK_N], dtype=tl.float32)
    for g in range(GROUP):
        h = hk * GROUP + g
        slope = 0.0
        if HAS_ALIBI:
            slope = tl.load(SLOPES + h)
        for start_m in range(lo, hi, BLOCK_M):
            offs_m = start_m + offs_mb
            row_ok = offs_m < seqlen_q
            row_off = b * sqb + h * sqh + (q_start + offs_m)[:, None] * sqs + offs_d[None, :]
            tile_ok = row_ok[:, None] & d_ok[None, :]
            q = tl.load(Q + row_off, mask=tile_ok, other=0.0)
            do = tl.load(DO + row_off, mask=tile_ok, other=0.0)
            lse = tl.load(LSE + b * slb + h * slh + (q_start + offs_m) * sls, mask=row_ok, other=0.0)
            delta = tl.load(DELTA + b * slb + h * slh + (q_start + offs_m) * sls, mask=row_ok, other=0.0)
            lse2 = tl.where(lse == float("-inf"), 0.0, lse * LOG2E)
            s, t = _scores(_dot(q, kt, UPCAST, IEEE), offs_m, offs_n, diag_off, seqlen_q, seqlen_k, scale,
                           softcap, slope, left, right, HAS_SOFTCAP, HAS_ALIBI, HAS_LEFT, HAS_RIGHT, False)
            p = tl.exp2(s * LOG2E - lse2[:, None])
            dv += _dot(tl.trans(do), p.to(do.dtype), UPCAST, IEEE)
            dp = _dot(do, vt, UPCAST, IEEE)
            ds = p * (dp - delta[:, None])
            if HAS_SOFTCAP:
                ds = ds * (1.0 - t * t)
            dk += _dot(tl.trans(q), ds.to(q.dtype), UPCAST, IEEE)
    tl.store(DK + kt_off, (dk * scale).to(DK.dtype.element_ty), mask=t_ok)
    tl.store(DV + vt_off, dv.to(DV.dtype.element_ty), mask=t_ok)

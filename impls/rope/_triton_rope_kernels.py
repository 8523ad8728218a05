"""The in-repo Triton rotary kernel: one program per (token, block of heads), for q and for k in turn.

Each program loads its token's position, turns it into fp32 and multiplies it by the fp32 inverse
frequencies (the careful angle product), reduces the angle to [−π, π] with a three-part Cody–Waite
constant (so the result does not depend on whether the backend's cos/sin reduce large arguments
themselves), and rotates its heads' pairs in fp32. Both layouts, partial rotary (the pass-through
dimensions are copied when the output is a new tensor), arbitrary strides over tokens and heads, in
place (``out`` is ``x``: every element is loaded before it is stored) or not. Imported lazily by
``triton_rope`` (it imports triton at module level).
"""

from __future__ import annotations

import triton
import triton.language as tl

# 2π = HI + MID + LO; HI has 8 significant bits, so k·HI is exact in fp32 for k < 2^16 (|angle| < 4·10^5)
TWO_PI_HI: tl.constexpr = 6.28125
TWO_PI_MID: tl.constexpr = 0.0019353071693331003  # fp32(2π − HI)
TWO_PI_LO: tl.constexpr = 1.0253131677018246e-11  # 2π − HI − MID
INV_TWO_PI: tl.constexpr = 0.15915493667125702


@triton.jit
def rope_kernel(x_ptr, out_ptr, pos_ptr, inv_ptr, scale, n_heads,
                stride_xt, stride_xh, stride_ot, stride_oh,
                HALF: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_H: tl.constexpr, INTERLEAVED: tl.constexpr,
                PASS: tl.constexpr, BLOCK_PASS: tl.constexpr):
    t = tl.program_id(0).to(tl.int64)
    h = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    p = tl.arange(0, BLOCK_P)
    in_heads = h < n_heads
    in_pairs = p < HALF

    pos = tl.load(pos_ptr + t).to(tl.float32)
    inv = tl.load(inv_ptr + p, mask=in_pairs, other=0.0)
    phi = pos * inv
    turns = tl.floor(phi * INV_TWO_PI + 0.5)
    r = phi - turns * TWO_PI_HI
    r = r - turns * TWO_PI_MID
    r = r - turns * TWO_PI_LO
    c = tl.cos(r) * scale
    s = tl.sin(r) * scale

    if INTERLEAVED:
        dim_a = 2 * p
        dim_b = 2 * p + 1
    else:
        dim_a = p
        dim_b = p + HALF
    rows_x = x_ptr + t * stride_xt + h[:, None].to(tl.int64) * stride_xh
    rows_o = out_ptr + t * stride_ot + h[:, None].to(tl.int64) * stride_oh
    mask = in_heads[:, None] & in_pairs[None, :]
    xa = tl.load(rows_x + dim_a[None, :], mask=mask, other=0.0).to(tl.float32)
    xb = tl.load(rows_x + dim_b[None, :], mask=mask, other=0.0).to(tl.float32)
    out_a = xa * c[None, :] - xb * s[None, :]
    out_b = xb * c[None, :] + xa * s[None, :]
    tl.store(rows_o + dim_a[None, :], out_a.to(out_ptr.dtype.element_ty), mask=mask)
    tl.store(rows_o + dim_b[None, :], out_b.to(out_ptr.dtype.element_ty), mask=mask)
    if PASS > 0:  # a new output of a partial rotary: copy the dimensions that are not rotated
        j = 2 * HALF + tl.arange(0, BLOCK_PASS)
        keep = in_heads[:, None] & (j[None, :] < 2 * HALF + PASS)
        tl.store(rows_o + j[None, :], tl.load(rows_x + j[None, :], mask=keep), mask=keep)

"""The one low-precision baseline of the attention areas: plain eager PyTorch in the inputs' dtype.

Masks and ALiBi come from the reference (float64, then rounded to the dtype), so only the arithmetic is
in low precision and nothing is shared with an implementation under test. Rows with no visible key give
0 and LSE −inf. The paged area runs it on each sequence's gathered K/V.
"""

from __future__ import annotations

import numpy as np
import torch

from reference import attention as ref


def eager_baseline(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: ref.AttentionOptions,
                   d_out: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """out and lse of dense [B, H, S, D] inputs (and dq, dk, dv when ``d_out`` is given)."""
    grads = d_out is not None
    q, k, v = (t.detach().clone().requires_grad_(grads) for t in (q, k, v))
    sq, sk = q.shape[2], k.shape[2]
    group = q.shape[1] // k.shape[1]
    kk, vv = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    s = (q @ kk.transpose(-1, -2)) * opts.resolved_scale(q.shape[3])
    if opts.softcap is not None:
        s = opts.softcap * torch.tanh(s / opts.softcap)
    if opts.alibi_slopes is not None:
        s = s + torch.from_numpy(ref.alibi_bias(sq, sk, opts)).to(s.dtype).to(s.device)
    mask = torch.from_numpy(ref.visible(sq, sk, opts)).to(s.device)
    has_key = mask.any(-1)[:, None]
    s = s.masked_fill(~mask, float("-inf")).masked_fill(~has_key, 0.0)
    p = torch.softmax(s, dim=-1) * has_key
    out = p @ vv
    result = {"out": out.detach(), "lse": torch.logsumexp(s, -1).masked_fill(~has_key[..., 0], float("-inf"))}
    if grads:
        out.backward(d_out)
        result |= {"dq": q.grad, "dk": k.grad, "dv": v.grad}  # type: ignore[dict-item]
    return result


def row_score_bounds(q: np.ndarray, k: np.ndarray, opts: ref.AttentionOptions) -> np.ndarray:
    """r [B, Hq, Sq]: per query row, the largest scale·Σ_d|q_d k_d| + |ALiBi| over the keys it sees (0 if none).

    What rounding a score in T moves it by, in units of ε_T (see suite.tolerance). NaN and infinite inputs
    (poisoned keys) count as 0: they are masked out and carry no rounding.
    """
    q, k = np.abs(q), np.abs(k)
    q, k = np.where(np.isfinite(q), q, 0.0), np.where(np.isfinite(k), k, 0.0)
    sq, sk = q.shape[2], k.shape[2]
    if sq == 0 or sk == 0:
        return np.zeros(q.shape[:3])
    group = q.shape[1] // k.shape[1]
    a = opts.resolved_scale(q.shape[3]) * np.einsum("bhid,bhjd->bhij", q, np.repeat(k, group, 1))
    a = a + np.abs(ref.alibi_bias(sq, sk, opts))[None]
    return np.where(ref.visible(sq, sk, opts), a, 0.0).max(axis=-1)

"""The paged check: one implementation on one case against the float64 reference → a Verdict.

Inputs come from ``suite.paged.inputs`` (through the block allocator; the gather is checked against what
was written before anything else). The reference reads the owned blocks in float64; the baseline is the
attention area's eager baseline (``suite.attention.baseline.eager_baseline``) in the case's dtype on each
sequence's gathered, dequantized K/V; the noise terms are its per-row score bounds. The output buffer is
poisoned with NaN before the call. An LSE the call asked for must be returned; any LSE returned is checked,
under the rounding noise of the inputs' dtype (a kernel may round its scores in it).
"""

from __future__ import annotations

import numpy as np
import torch

from impls.paged.api import PagedAttentionImpl, PagedCase
from reference.paged_attention import paged_attention
from suite.attention.baseline import eager_baseline, row_score_bounds
from suite.attention.check import lse_dtype, missing
from suite.engine.verdict import Verdict, verdict
from suite.paged.inputs import PagedInputs, build_inputs, compact_pool
from suite.tolerance import K_OUTPUT, Comparison, compare


def as64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def baseline(inputs: PagedInputs, case: PagedCase) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Eager out [B, Sq, Hq, D] and lse [B, Sq, Hq] in the case's dtype, row score bounds [B, Sq, Hq], max|V|."""
    q, opts = inputs.q, case.options
    out = np.zeros(q.shape)
    lse = np.full(q.shape[:3], -np.inf)
    rows = np.zeros(q.shape[:3])
    vmax = 0.0
    if case.sinks is not None:  # a sequence with no key: 0 and lse = sink
        lse[:] = np.asarray(case.sinks, dtype=np.float64)
    for b, n in enumerate(case.seqlens):
        if n == 0:
            continue
        q_b = q[b].transpose(0, 1)[None]  # [1, Hq, Sq, D]
        k64 = inputs.dense_k[b].transpose(1, 0, 2)[None] * case.k_scale  # [1, Hkv, n, D]
        v64 = inputs.dense_v[b].transpose(1, 0, 2)[None] * case.v_scale
        k_b, v_b = (torch.from_numpy(x).to(q.device, q.dtype) for x in (k64, v64))
        base = eager_baseline(q_b, k_b, v_b, opts)
        if case.sinks is not None:
            base = with_sinks(base, case.sinks)
        out[b] = as64(base["out"][0].transpose(0, 1))
        lse[b] = as64(base["lse"][0]).T
        rows[b] = row_score_bounds(as64(q_b), k64, opts)[0].T
        vmax = max(vmax, float(np.abs(v64).max(initial=0.0)))
    return out, lse, rows, vmax


def with_sinks(base: dict[str, torch.Tensor], sinks: tuple[float, ...]) -> dict[str, torch.Tensor]:
    """The eager out [1, Hq, Sq, D] and lse [1, Hq, Sq] with one sink logit per head, in their dtype."""
    lse = base["lse"]
    sink = torch.tensor(sinks, dtype=lse.dtype, device=lse.device)[None, :, None]
    total = torch.logaddexp(lse, sink)
    return {"out": base["out"] * torch.exp(lse - total)[..., None], "lse": total}


def check(impl: PagedAttentionImpl, case: PagedCase, seed: int) -> Verdict:
    """Run ``impl`` on one case and compare its output (and LSE) with the reference."""
    inputs = build_inputs(case, seed)
    pool = compact_pool(inputs)
    opts = case.options
    want_out, want_lse = paged_attention(as64(inputs.q), pool.k, pool.v, pool.block_table, pool.seqlens, opts,
                                         k_scale=case.k_scale, v_scale=case.v_scale, sinks=case.sinks)
    base_out, base_lse, rows, vmax = baseline(inputs, case)
    smax, smean = (float(rows.max()), float(rows.mean())) if rows.size else (0.0, 0.0)
    poisoned = torch.full_like(inputs.q, float("nan"))
    with torch.no_grad():
        out, lse = impl.forward(inputs.q, inputs.k_cache, inputs.v_cache, inputs.block_table, inputs.seqlens, opts,
                                out=poisoned, k_scale=case.k_scale, v_scale=case.v_scale, need_lse=case.needs_lse,
                                sinks=case.sinks)
    checks: list[Comparison] = [compare("out", as64(out), want_out, base_out, case.dtype, K_OUTPUT, smax * vmax,
                                        vmax, smean * vmax)]
    if out.data_ptr() != poisoned.data_ptr():
        checks.append(missing("out", "the result was not written into the out buffer given"))
    if lse is not None:  # the LSE's own rounding in the dtype it comes back in, its scores' in the inputs' (T)
        checks.append(compare("lse", as64(lse), want_lse, base_lse, lse_dtype(lse, case.dtype), K_OUTPUT, smax, smax, smean,
                              input_dtype=case.dtype))
    elif case.needs_lse:
        checks.append(missing("lse", "no lse returned although the call asked for it"))
    return verdict(case, checks)

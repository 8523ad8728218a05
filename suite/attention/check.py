"""The attention check: one implementation on one case against the float64 reference → a Verdict.

Inputs are fresh random draws from the seed, rounded to the case's dtype and laid out as [B, S, H, D]
storage viewed as [B, H, S, D] (non-contiguous); the reference runs on the rounded values in float64; the
baseline is plain eager PyTorch in the same dtype (``suite.attention.baseline``); the output buffer is
poisoned with NaN before the call. The case says what is asked: the LSE, gradients, a packed batch, large
logits, NaN in the keys no query may see.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from impls.attention.api import AttentionCase, AttentionImpl
from impls.tensors import dtype_name, torch_dtype
from reference import attention as ref
from suite.attention.baseline import eager_baseline, row_score_bounds
from suite.engine.verdict import Verdict, verdict
from suite.tolerance import K_GRADIENT, K_OUTPUT, Comparison, compare


@dataclass
class Inputs:
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    d_out: torch.Tensor


def as64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def invisible_keys(seqlen_q: int, seqlen_k: int, opts: ref.AttentionOptions) -> np.ndarray:
    """Boolean [Sk]: keys that no query may see."""
    if not seqlen_q:
        return np.ones(seqlen_k, dtype=bool)
    return np.asarray(~ref.visible(seqlen_q, seqlen_k, opts).any(axis=0))


def make_inputs(case: AttentionCase, seed: int) -> Inputs:
    """Random q, k, v, dO in the case's dtype and device; [B, S, H, D] storage viewed as [B, H, S, D]."""
    gen = torch.Generator().manual_seed(seed)
    dtype = torch_dtype(case.dtype)

    def draw(heads: int, seqlen: int, factor: float = 1.0) -> torch.Tensor:
        x = torch.randn((case.batch, seqlen, heads, case.head_dim), generator=gen, dtype=torch.float64) * factor
        return x.to(dtype).to(case.device).transpose(1, 2)

    q = draw(case.heads_q, case.seqlen_q, case.logit_scale)
    k, v = draw(case.heads_kv, case.seqlen_k), draw(case.heads_kv, case.seqlen_k)
    d_out = draw(case.heads_q, case.seqlen_q)
    if case.poison_masked_keys:
        hidden = torch.from_numpy(invisible_keys(case.seqlen_q, case.seqlen_k, case.options)).to(case.device)
        k[:, :, hidden, :] = float("nan")
    return Inputs(q, k, v, d_out)


def missing(name: str, why: str) -> Comparison:
    return Comparison(name, np.inf, np.inf, 0, 0, 0, 0, (why,))


def check(impl: AttentionImpl, case: AttentionCase, seed: int) -> Verdict:
    """Run ``impl`` on one case and compare every output it gives with the reference."""
    return check_varlen(impl, case, seed) if case.varlen else check_dense(impl, case, seed)


def check_dense(impl: AttentionImpl, case: AttentionCase, seed: int) -> Verdict:
    opts = case.options
    inputs = make_inputs(case, seed)
    q64, k64, v64 = as64(inputs.q), as64(inputs.k), as64(inputs.v)
    want_out, want_lse = ref.attention(q64, k64, v64, opts)
    base = eager_baseline(inputs.q, inputs.k, inputs.v, opts, inputs.d_out if case.needs_grad else None)
    rows = row_score_bounds(q64, k64, opts)
    vmax = float(np.nanmax(np.abs(v64))) if v64.size else 0.0
    smax, smean = (float(rows.max()), float(rows.mean())) if rows.size else (0.0, 0.0)
    checks: list[Comparison] = []
    if case.needs_grad:
        q, k, v = (t.detach().clone().requires_grad_(True) for t in (inputs.q, inputs.k, inputs.v))
        out, lse = impl.forward(q, k, v, opts, need_lse=case.needs_lse, need_grad=True)
        out.backward(inputs.d_out)
        grads = ref.attention_grads(q64, k64, v64, as64(inputs.d_out), opts)
        magnitudes = gradient_magnitudes(q64, k64, v64, as64(inputs.d_out), opts, smax, smean)
        for name, got, want in zip(("dq", "dk", "dv"), (q.grad, k.grad, v.grad), grads, strict=True):
            if got is None:
                checks.append(missing(name, f"{name} is None: the output was not differentiable"))
                continue
            propagated, terms, propagated_mean = magnitudes[name]
            checks.append(compare(name, as64(got), want, as64(base[name]), case.dtype, K_GRADIENT, propagated,
                                  terms, propagated_mean))
    else:
        poisoned = torch.full((case.batch, case.heads_q, case.seqlen_q, case.head_dim), float("nan"),
                              dtype=inputs.q.dtype, device=inputs.q.device)
        with torch.no_grad():
            out, lse = impl.forward(inputs.q, inputs.k, inputs.v, opts, out=poisoned, need_lse=case.needs_lse)
        if out.data_ptr() != poisoned.data_ptr():
            checks.append(missing("out", "the result was not written into the out buffer given"))
    checks.append(compare("out", as64(out), want_out, as64(base["out"]), case.dtype, K_OUTPUT, smax * vmax, vmax,
                          smean * vmax))
    if case.needs_lse:
        if lse is None:
            checks.append(missing("lse", "no lse returned although the call asked for it"))
        else:
            checks.append(compare("lse", as64(lse), want_lse, as64(base["lse"]), lse_dtype(lse, case.dtype), K_OUTPUT,
                                  smax, smax, smean, input_dtype=case.dtype))
    return verdict(case, checks)


def lse_dtype(lse: torch.Tensor, inputs_dtype: str) -> str:
    """The precision an LSE was returned in: a float32 LSE of half inputs rounds as float32 itself (its scores
    are held to the inputs' rounding: ``input_dtype`` of the comparison)."""
    name = dtype_name(lse)
    return name if name != "float64" else inputs_dtype


def gradient_magnitudes(q: np.ndarray, k: np.ndarray, v: np.ndarray, d_out: np.ndarray, opts: ref.AttentionOptions,
                        smax: float, smean: float) -> dict[str, tuple[float, float, float]]:
    """(propagated, terms, propagated_mean) magnitudes of each gradient, in units of ε_T (see suite.tolerance).

    dS = P ⊙ (dP − D) with dP = dO·Vᵀ: rounding the scores moves P by about ε·r relative (r the row's score
    bound: its maximum for the max rule, its mean over rows for the mean rule), and dP by ε·max|dP|.
    dQ_i = scale·Σ_j dS_ij K_j sums over a row of P (Σ_j P_ij = 1); dK_j and dV_j sum over a column of P,
    whose total c_max can exceed 1.
    """
    group = q.shape[1] // k.shape[1]
    q, k, v, d_out = (np.where(np.isfinite(x), x, 0.0) for x in (q, k, v, d_out))
    kk, vv = np.repeat(k, group, 1), np.repeat(v, group, 1)
    abs_dp = np.einsum("bhid,bhjd->bhij", np.abs(d_out), np.abs(vv))
    dp_max = float(abs_dp.max()) if abs_dp.size else 0.0
    _, lse = ref.attention(q, k, v, opts)
    s, _, _ = ref.scores(q, k, opts)
    p = np.where(np.isfinite(lse)[..., None], np.exp(s - np.where(np.isfinite(lse), lse, 0.0)[..., None]), 0.0)
    col_max = float(p.sum(axis=2).max()) * group if p.size else 0.0
    scale = opts.resolved_scale(q.shape[3])
    ds_terms = 2.0 * dp_max  # |dP − D| ≤ 2·max|dP|; P itself moves by about ε·r relative
    dq = scale * float(np.abs(kk).max(initial=0.0)) * ds_terms
    dk = scale * float(np.abs(q).max(initial=0.0)) * ds_terms * col_max
    dv = float(np.abs(d_out).max(initial=0.0)) * col_max
    return {name: ((1.0 + smax) * x, x, (1.0 + smean) * x) for name, x in (("dq", dq), ("dk", dk), ("dv", dv))}


def check_varlen(impl: AttentionImpl, case: AttentionCase, seed: int) -> Verdict:
    """Packed batch: sequence n has case.seqlens[n] = (Sq, Sk); forward only."""
    opts, dtype = case.options, torch_dtype(case.dtype)
    gen = torch.Generator().manual_seed(seed)
    seqlens_q, seqlens_k = [a for a, _ in case.seqlens], [b for _, b in case.seqlens]
    tq, tk = sum(seqlens_q), sum(seqlens_k)

    def draw(rows: int, heads: int, factor: float = 1.0) -> torch.Tensor:
        x = torch.randn(rows, heads, case.head_dim, generator=gen, dtype=torch.float64) * factor
        return x.to(dtype).to(case.device)

    q, k, v = draw(tq, case.heads_q, case.logit_scale), draw(tk, case.heads_kv), draw(tk, case.heads_kv)
    cu_q = np.concatenate([[0], np.cumsum(seqlens_q)]).astype(np.int64)
    cu_k = np.concatenate([[0], np.cumsum(seqlens_k)]).astype(np.int64)
    if case.poison_masked_keys:
        for n, (sq, sk) in enumerate(case.seqlens):
            hidden = np.flatnonzero(invisible_keys(sq, sk, opts)) + cu_k[n]
            k[torch.from_numpy(hidden).to(case.device)] = float("nan")
    want_out, want_lse = ref.attention_varlen(as64(q), as64(k), as64(v), cu_q, cu_k, opts)
    base_out = torch.zeros(tq, case.heads_q, case.head_dim, dtype=torch.float64)
    base_lse = torch.full((tq, case.heads_q), float("-inf"), dtype=torch.float64)
    rows = np.zeros((tq, case.heads_q))
    for n in range(len(seqlens_q)):
        qs, ks = slice(int(cu_q[n]), int(cu_q[n + 1])), slice(int(cu_k[n]), int(cu_k[n + 1]))
        if qs.start == qs.stop or ks.start == ks.stop:
            continue
        dq_, dk_, dv_ = (t[s].transpose(0, 1)[None] for t, s in ((q, qs), (k, ks), (v, ks)))
        b = eager_baseline(dq_, dk_, dv_, opts)
        base_out[qs] = b["out"][0].transpose(0, 1).double().cpu()
        base_lse[qs] = b["lse"][0].transpose(0, 1).double().cpu()
        rows[qs] = row_score_bounds(as64(dq_), as64(dk_), opts)[0].T
    poisoned = torch.full((tq, case.heads_q, case.head_dim), float("nan"), dtype=dtype, device=case.device)
    cu_q_t = torch.tensor(cu_q, device=case.device, dtype=torch.int32)
    cu_k_t = torch.tensor(cu_k, device=case.device, dtype=torch.int32)
    with torch.no_grad():
        out, lse = impl.forward_varlen(q, k, v, cu_q_t, cu_k_t, max(seqlens_q), max(seqlens_k), opts, out=poisoned,
                                       need_lse=case.needs_lse)
    vmax = float(np.nanmax(np.abs(as64(v)))) if tk else 0.0
    smax, smean = (float(rows.max()), float(rows.mean())) if rows.size else (0.0, 0.0)
    checks = [compare("out", as64(out), want_out, base_out.numpy(), case.dtype, K_OUTPUT, smax * vmax, vmax,
                      smean * vmax)]
    if out.data_ptr() != poisoned.data_ptr():
        checks.append(missing("out", "the result was not written into the out buffer given"))
    if case.needs_lse:
        checks.append(missing("lse", "no lse returned although the call asked for it") if lse is None else
                      compare("lse", as64(lse), want_lse, base_lse.numpy(), lse_dtype(lse, case.dtype), K_OUTPUT, smax,
                              smax, smean, input_dtype=case.dtype))
    return verdict(case, checks)


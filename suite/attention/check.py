"""One conformance check of an attention implementation against the float64 reference.

Inputs are fresh random draws from a seed, rounded to the case's dtype; the reference runs on the
rounded values in float64, the baseline is plain eager PyTorch in the same dtype (masks and ALiBi
taken from the reference, so only its arithmetic is in the low precision), and the implementation's
output buffer is poisoned with NaN before the call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from impls.attention.api import AttentionCase, AttentionImpl
from reference import attention as ref
from suite.tolerance import K_GRADIENT, K_OUTPUT, Comparison, compare

TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class Inputs:
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    d_out: torch.Tensor


@dataclass
class CheckResult:
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.comparisons)

    def describe(self) -> str:
        return "\n".join(c.describe() for c in self.comparisons)


def make_inputs(case: AttentionCase, seed: int, *, noncontiguous: bool = True, logit_scale: float = 1.0,
                nan_key: int | None = None) -> Inputs:
    """Random q, k, v, dO in the case's dtype and device; [B, S, H, D] storage viewed as [B, H, S, D]."""
    gen = torch.Generator().manual_seed(seed)
    dtype = TORCH_DTYPES[case.dtype]

    def draw(heads: int, seqlen: int, factor: float = 1.0) -> torch.Tensor:
        shape = (case.batch, seqlen, heads, case.head_dim) if noncontiguous else (case.batch, heads, seqlen,
                                                                                   case.head_dim)
        x = (torch.randn(shape, generator=gen, dtype=torch.float64) * factor).to(dtype).to(case.device)
        return x.transpose(1, 2) if noncontiguous else x

    q = draw(case.heads_q, case.seqlen_q, logit_scale)
    k, v = draw(case.heads_kv, case.seqlen_k), draw(case.heads_kv, case.seqlen_k)
    d_out = draw(case.heads_q, case.seqlen_q)
    if nan_key is not None:
        k[:, :, nan_key, :] = float("nan")
    return Inputs(q, k, v, d_out)


def as64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def baseline(inputs: Inputs, opts: ref.AttentionOptions, grads: bool) -> dict[str, torch.Tensor]:
    """Eager PyTorch in the inputs' dtype; rows with no visible key give 0 and lse −inf."""
    q, k, v = (t.detach().clone().requires_grad_(grads) for t in (inputs.q, inputs.k, inputs.v))
    sq, sk, dim = q.shape[2], k.shape[2], q.shape[3]
    group = q.shape[1] // k.shape[1]
    kk, vv = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    s = (q @ kk.transpose(-1, -2)) * opts.resolved_scale(dim)
    if opts.softcap is not None:
        s = opts.softcap * torch.tanh(s / opts.softcap)
    if opts.alibi_slopes is not None:
        diag = np.arange(sq)[:, None] + opts.diagonal_offset(sq, sk)
        bias = -np.asarray(opts.alibi_slopes)[:, None, None] * np.abs(diag - np.arange(sk)[None, :])
        s = s + torch.from_numpy(bias).to(s.dtype).to(s.device)
    mask = torch.from_numpy(ref.visible(sq, sk, opts)).to(s.device)
    has_key = mask.any(-1)[:, None]
    s = s.masked_fill(~mask, float("-inf")).masked_fill(~has_key, 0.0)
    p = torch.softmax(s, dim=-1) * has_key
    out = p @ vv
    result = {"out": out.detach(), "lse": torch.logsumexp(s, -1).masked_fill(~has_key[..., 0], float("-inf"))}
    if grads:
        out.backward(inputs.d_out)
        result |= {"dq": q.grad, "dk": k.grad, "dv": v.grad}  # type: ignore[dict-item]
    return result


def score_bound(inputs: Inputs, opts: ref.AttentionOptions) -> float:
    """max scale·Σ|q_d k_d| plus |ALiBi bias| over visible pairs: the scale of a score's rounding."""
    q, k = np.abs(as64(inputs.q)), np.abs(as64(inputs.k))
    q, k = np.where(np.isfinite(q), q, 0.0), np.where(np.isfinite(k), k, 0.0)
    group = q.shape[1] // k.shape[1]
    raw = opts.resolved_scale(q.shape[3]) * np.einsum("bhid,bhjd->bhij", q, np.repeat(k, group, 1))
    mask = ref.visible(q.shape[2], k.shape[2], opts)
    bound = np.abs(np.where(mask, raw, 0.0))
    if opts.alibi_slopes is not None:
        diag = np.arange(q.shape[2])[:, None] + opts.diagonal_offset(q.shape[2], k.shape[2])
        bound = bound + max(opts.alibi_slopes) * np.abs(diag - np.arange(k.shape[2])[None, :])
    finite = np.where(mask, bound, 0.0)
    return float(np.nanmax(finite)) if finite.size else 0.0


def check_attention(impl: AttentionImpl, case: AttentionCase, seed: int, *, noncontiguous: bool = True,
                    logit_scale: float = 1.0, nan_key: int | None = None) -> CheckResult:
    """Run ``impl`` on one case and compare every output it gives with the reference."""
    opts = case.options
    inputs = make_inputs(case, seed, noncontiguous=noncontiguous, logit_scale=logit_scale, nan_key=nan_key)
    q64, k64, v64 = as64(inputs.q), as64(inputs.k), as64(inputs.v)
    want_out, want_lse = ref.attention(q64, k64, v64, opts)
    base = baseline(inputs, opts, grads=case.needs_grad)
    smax = score_bound(inputs, opts)
    vmax = float(np.abs(v64).max()) if v64.size else 0.0
    result = CheckResult()

    if case.needs_grad:
        q, k, v = (t.detach().clone().requires_grad_(True) for t in (inputs.q, inputs.k, inputs.v))
        out, lse = impl.forward(q, k, v, opts)
        out.backward(inputs.d_out)
        grads = ref.attention_grads(q64, k64, v64, as64(inputs.d_out), opts)
        magnitudes = gradient_magnitudes(q64, k64, v64, as64(inputs.d_out), opts, smax)
        for name, got, want in zip(("dq", "dk", "dv"), (q.grad, k.grad, v.grad), grads, strict=True):
            if got is None:
                result.comparisons.append(Comparison(name, np.inf, np.inf, 0, 0, 0, 0, (f"{name} is None",)))
                continue
            propagated, terms = magnitudes[name]
            result.comparisons.append(compare(name, as64(got), want, as64(base[name]), case.dtype, K_GRADIENT,
                                              propagated, terms))
    else:
        poisoned = torch.full((case.batch, case.heads_q, case.seqlen_q, case.head_dim), float("nan"),
                              dtype=inputs.q.dtype, device=inputs.q.device)
        with torch.no_grad():
            out, lse = impl.forward(inputs.q, inputs.k, inputs.v, opts, out=poisoned)
        if out.data_ptr() != poisoned.data_ptr():
            result.comparisons.append(Comparison("out", np.inf, np.inf, 0, 0, 0, 0,
                                                 ("the result was not written into the out buffer given",)))
    result.comparisons.append(compare("out", as64(out), want_out, as64(base["out"]), case.dtype, K_OUTPUT,
                                      smax * vmax, vmax))
    if case.needs_lse:
        if lse is None:
            result.comparisons.append(Comparison("lse", np.inf, np.inf, 0, 0, 0, 0, ("no lse returned",)))
        else:
            result.comparisons.append(compare("lse", as64(lse), want_lse, as64(base["lse"]), _lse_dtype(lse, case),
                                              K_OUTPUT, smax, smax))
    return result


def _lse_dtype(lse: torch.Tensor, case: AttentionCase) -> str:
    """The precision an LSE was returned in: a float32 LSE of half inputs is held to float32 rounding."""
    return str(lse.dtype).removeprefix("torch.") if str(lse.dtype) != "torch.float64" else case.dtype


def gradient_magnitudes(q: np.ndarray, k: np.ndarray, v: np.ndarray, d_out: np.ndarray, opts: ref.AttentionOptions,
                        smax: float) -> dict[str, tuple[float, float]]:
    """(propagated, terms) magnitudes of each gradient, in units of ε_T (see suite.tolerance).

    dS = P ⊙ (dP − D) with dP = dO·Vᵀ: rounding the scores moves P by about ε·smax relative, and
    dP by ε·max|dP|. dQ_i = scale·Σ_j dS_ij K_j sums over a row of P (Σ_j P_ij = 1); dK_j and dV_j
    sum over a column of P, whose total c_max can exceed 1.
    """
    group = q.shape[1] // k.shape[1]
    kk, vv = np.repeat(k, group, 1), np.repeat(v, group, 1)
    abs_dp = np.einsum("bhid,bhjd->bhij", np.abs(d_out), np.abs(vv))
    dp_max = float(abs_dp.max()) if abs_dp.size else 0.0
    _, lse = ref.attention(q, k, v, opts)
    s, _, _ = ref._scores(q, k, opts)
    p = np.where(np.isfinite(lse)[..., None], np.exp(s - np.where(np.isfinite(lse), lse, 0.0)[..., None]), 0.0)
    col_max = float(p.sum(axis=2).max()) * group if p.size else 0.0
    scale = opts.resolved_scale(q.shape[3])
    ds_terms = 2.0 * dp_max  # |dP − D| ≤ 2·max|dP|; P itself moves by about ε·smax relative
    dq, dk = scale * float(np.abs(kk).max()) * ds_terms, scale * float(np.abs(q).max()) * ds_terms * col_max
    dv = float(np.abs(d_out).max()) * col_max
    return {"dq": ((1.0 + smax) * dq, dq), "dk": ((1.0 + smax) * dk, dk), "dv": ((1.0 + smax) * dv, dv)}


def check_attention_varlen(impl: AttentionImpl, case: AttentionCase, seqlens_q: list[int], seqlens_k: list[int],
                           seed: int) -> CheckResult:
    """Packed batch: sequence n has seqlens_q[n] queries and seqlens_k[n] keys; forward only."""
    opts, dtype = case.options, TORCH_DTYPES[case.dtype]
    gen = torch.Generator().manual_seed(seed)
    tq, tk = sum(seqlens_q), sum(seqlens_k)

    def draw(rows: int, heads: int) -> torch.Tensor:
        return torch.randn(rows, heads, case.head_dim, generator=gen, dtype=torch.float64).to(dtype).to(case.device)

    q, k, v = draw(tq, case.heads_q), draw(tk, case.heads_kv), draw(tk, case.heads_kv)
    cu_q = np.concatenate([[0], np.cumsum(seqlens_q)]).astype(np.int64)
    cu_k = np.concatenate([[0], np.cumsum(seqlens_k)]).astype(np.int64)
    want_out, want_lse = ref.attention_varlen(as64(q), as64(k), as64(v), cu_q, cu_k, opts)
    base_out = torch.zeros(tq, case.heads_q, case.head_dim, dtype=torch.float64)
    base_lse = torch.full((tq, case.heads_q), float("-inf"), dtype=torch.float64)
    smax = 0.0
    for n in range(len(seqlens_q)):
        qs, ks = slice(int(cu_q[n]), int(cu_q[n + 1])), slice(int(cu_k[n]), int(cu_k[n + 1]))
        if qs.start == qs.stop or ks.start == ks.stop:
            continue
        one = Inputs(q[qs].transpose(0, 1)[None], k[ks].transpose(0, 1)[None], v[ks].transpose(0, 1)[None],
                     torch.zeros(1))
        b = baseline(one, opts, grads=False)
        base_out[qs] = b["out"][0].transpose(0, 1).double().cpu()
        base_lse[qs] = b["lse"][0].transpose(0, 1).double().cpu()
        smax = max(smax, score_bound(one, opts))
    poisoned = torch.full((tq, case.heads_q, case.head_dim), float("nan"), dtype=dtype, device=case.device)
    cu_q_t = torch.tensor(cu_q, device=case.device, dtype=torch.int32)
    cu_k_t = torch.tensor(cu_k, device=case.device, dtype=torch.int32)
    with torch.no_grad():
        out, lse = impl.forward_varlen(q, k, v, cu_q_t, cu_k_t,
                                       max(seqlens_q), max(seqlens_k), opts, out=poisoned)
    vmax = float(np.abs(as64(v)).max()) if tk else 0.0
    result = CheckResult([compare("out", as64(out), want_out, base_out.numpy(), case.dtype, K_OUTPUT, smax * vmax,
                                  vmax)])
    if out.data_ptr() != poisoned.data_ptr():
        result.comparisons.append(Comparison("out", np.inf, np.inf, 0, 0, 0, 0,
                                             ("the result was not written into the out buffer given",)))
    if lse is not None:  # optional for packed batches: checked whenever it is returned
        result.comparisons.append(compare("lse", as64(lse), want_lse, base_lse.numpy(), _lse_dtype(lse, case),
                                          K_OUTPUT, smax, smax))
    elif case.needs_lse:
        result.comparisons.append(Comparison("lse", np.inf, np.inf, 0, 0, 0, 0, ("no lse returned",)))
    return result

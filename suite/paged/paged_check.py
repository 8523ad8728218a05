"""Building paged inputs through the allocator and checking a paged implementation against the reference.

The K/V of every sequence are drawn densely first (the truth), then written into shuffled pool
blocks through ``BlockAllocator`` (prefix sharing by ``fork``, copy-on-write copies performed as the
allocator asks). The reference runs on the pool and table, after the gather has been checked
against the truth; the baseline is eager PyTorch in the case's dtype on the same gathered K/V.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from impls.paged.allocator import BlockAllocator
from impls.paged.api import PagedAttentionImpl
from reference.attention import AttentionOptions, visible
from reference.paged_attention import gather, paged_attention
from suite.tolerance import K_OUTPUT, Comparison, compare

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class PagedSpec:
    """A case as the tests draw it."""

    seqlens: tuple[int, ...]
    heads_q: int
    heads_kv: int
    seqlen_q: int
    head_dim: int
    block_size: int
    dtype: str
    options: AttentionOptions
    shared_prefix: int = 0  # sequences 1.. fork this many tokens of sequence 0 (capped by its length)
    spare_blocks: int = 3
    seed: int = 0


@dataclass
class PagedInputs:
    q: torch.Tensor
    k_cache: torch.Tensor
    v_cache: torch.Tensor
    block_table: torch.Tensor
    seqlens: torch.Tensor
    dense_k: list[np.ndarray] = field(default_factory=list)  # the truth, float64 [n, Hkv, D] per sequence
    dense_v: list[np.ndarray] = field(default_factory=list)


def build_inputs(spec: PagedSpec, allocator_cls: type[BlockAllocator] = BlockAllocator) -> PagedInputs:
    gen = torch.Generator().manual_seed(spec.seed)
    dtype = TORCH_DTYPES[spec.dtype]
    bs, hkv, dim = spec.block_size, spec.heads_kv, spec.head_dim
    need = sum(-(-n // bs) for n in spec.seqlens) + len(spec.seqlens)  # + one CoW copy per forked sequence
    alloc = allocator_cls(need + spec.spare_blocks, bs, seed=spec.seed)
    # the unused pool holds large values, so a read of a slot that no sequence owns shows up
    k_cache = (torch.randn((alloc.num_blocks, bs, hkv, dim), generator=gen, dtype=torch.float64) * 30).to(dtype)
    v_cache = (torch.randn((alloc.num_blocks, bs, hkv, dim), generator=gen, dtype=torch.float64) * 30).to(dtype)
    dense_k: list[np.ndarray] = []
    dense_v: list[np.ndarray] = []
    for b, n in enumerate(spec.seqlens):
        k = torch.randn((n, hkv, dim), generator=gen, dtype=torch.float64).to(dtype)
        v = torch.randn((n, hkv, dim), generator=gen, dtype=torch.float64).to(dtype)
        start = 0
        if b > 0 and spec.shared_prefix:
            start = min(spec.shared_prefix, spec.seqlens[0], n)
            alloc.fork(0, b, start)
            k[:start] = torch.from_numpy(dense_k[0][:start]).to(dtype)
            v[:start] = torch.from_numpy(dense_v[0][:start]).to(dtype)
            for src, dst in alloc.append(b, n - start):
                k_cache[dst], v_cache[dst] = k_cache[src], v_cache[src]
        else:
            alloc.allocate(b, n)
        slots = torch.tensor(alloc.slots(b, start, n), dtype=torch.long)
        k_cache.view(-1, hkv, dim)[slots] = k[start:]
        v_cache.view(-1, hkv, dim)[slots] = v[start:]
        dense_k.append(k.double().numpy())
        dense_v.append(v.double().numpy())
    table = alloc.block_table(list(range(len(spec.seqlens))))
    if table.shape[1] == 0:
        table = torch.full((len(spec.seqlens), 1), -1, dtype=torch.int32)
    q = torch.randn((len(spec.seqlens), spec.seqlen_q, spec.heads_q, dim), generator=gen,
                    dtype=torch.float64).to(dtype)
    return PagedInputs(q, k_cache, v_cache, table, torch.tensor(spec.seqlens, dtype=torch.int32), dense_k, dense_v)


def gather_matches_truth(inputs: PagedInputs) -> list[str]:
    """Sequences whose K/V read through the table differ from what was written for them."""
    bad = []
    kc, vc = inputs.k_cache.double().numpy(), inputs.v_cache.double().numpy()
    table = inputs.block_table.numpy()
    for b, n in enumerate(inputs.seqlens.tolist()):
        if not (np.array_equal(gather(kc, table[b], n), inputs.dense_k[b])
                and np.array_equal(gather(vc, table[b], n), inputs.dense_v[b])):
            bad.append(f"sequence {b}: gathered K/V differ from what was written")
    return bad


def eager_baseline(inputs: PagedInputs, opts: AttentionOptions) -> np.ndarray:
    """Plain eager attention in the case's dtype on the truth K/V (masks from the reference)."""
    q = inputs.q
    sq, hq = q.shape[1], q.shape[2]
    out = torch.zeros_like(q)
    for b, n in enumerate(inputs.seqlens.tolist()):
        if n == 0:
            continue
        k = torch.from_numpy(inputs.dense_k[b]).to(q.dtype).transpose(0, 1)
        v = torch.from_numpy(inputs.dense_v[b]).to(q.dtype).transpose(0, 1)
        group = hq // k.shape[0]
        k, v = k.repeat_interleave(group, 0), v.repeat_interleave(group, 0)
        s = (q[b].transpose(0, 1) @ k.transpose(-1, -2)) * opts.resolved_scale(q.shape[-1])
        if opts.softcap is not None:
            s = opts.softcap * torch.tanh(s / opts.softcap)
        d = np.arange(sq)[:, None] + (n - sq)
        if opts.alibi_slopes is not None:
            dist = torch.from_numpy(np.abs(d - np.arange(n)[None, :])).to(s.dtype)
            s = s - torch.tensor(opts.alibi_slopes, dtype=s.dtype)[:, None, None] * dist
        mask = torch.from_numpy(visible(sq, n, opts))
        s = s.masked_fill(~mask, float("-inf"))
        p = torch.softmax(s.masked_fill(~mask.any(-1, keepdim=True), 0.0), -1) * mask.any(-1, keepdim=True)
        out[b] = (p @ v).transpose(0, 1)
    return out.double().numpy()


def score_bound(inputs: PagedInputs, opts: AttentionOptions) -> float:
    """max over sequences, heads and pairs of scale·Σ_d |q_d k_d| (+ the ALiBi bias): what score rounding scales with."""
    q = np.abs(inputs.q.double().numpy())
    sq, hq, dim = q.shape[1:]
    scale = opts.resolved_scale(dim)
    best = 0.0
    for b, n in enumerate(inputs.seqlens.tolist()):
        if n == 0:
            continue
        k = np.repeat(np.abs(inputs.dense_k[b]), hq // inputs.dense_k[b].shape[1], axis=1)  # [n, Hq, D]
        bound = scale * np.einsum("ihd,jhd->hij", q[b], k)
        if opts.alibi_slopes is not None:
            d = np.arange(sq)[:, None] + (n - sq)
            bound = bound + max(opts.alibi_slopes) * np.abs(d - np.arange(n)[None, :])
        best = max(best, float(bound.max()))
    return best


def check_paged(impl: PagedAttentionImpl, spec: PagedSpec, inputs: PagedInputs | None = None) -> list[Comparison]:
    """Compare output and LSE with the reference under the tolerance policy; raises if the inputs are wrong."""
    inputs = inputs or build_inputs(spec)
    problems = gather_matches_truth(inputs)
    assert not problems, problems  # the harness itself (allocator, writes) must be right first
    opts = spec.options
    ref_o, ref_lse = paged_attention(inputs.q.double().numpy(), inputs.k_cache.double().numpy(),
                                     inputs.v_cache.double().numpy(), inputs.block_table.numpy(),
                                     inputs.seqlens.numpy(), opts)
    dev = DEVICE
    out = torch.full_like(inputs.q, float("nan")).to(dev)
    got_o, got_lse = impl.forward(inputs.q.to(dev), inputs.k_cache.to(dev), inputs.v_cache.to(dev),
                                  inputs.block_table.to(dev), inputs.seqlens.to(dev), opts, out=out)
    assert got_o is out, f"{impl.name} did not return the out tensor it was given"
    base = eager_baseline(inputs, opts)
    v_max = max((np.abs(v).max(initial=0.0) for v in inputs.dense_v), default=0.0)
    smax = score_bound(inputs, opts)
    comparisons = [compare("out", got_o.double().cpu().numpy(), ref_o, base, spec.dtype, K_OUTPUT, smax * v_max,
                           v_max)]
    if got_lse is not None:
        lse = got_lse.double().cpu().numpy()
        # LSE has no eager baseline here: its bounds are the rounding of the scores alone, for max and mean
        comparisons.append(compare("lse", lse, ref_lse, ref_lse, spec.dtype, K_OUTPUT, smax, smax))
    return comparisons


def describe(comparisons: list[Comparison]) -> str:
    return "\n".join(c.describe() for c in comparisons)

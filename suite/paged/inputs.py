"""Paged inputs built through the block allocator, and the compact pool the reference reads.

The K/V of every sequence are drawn densely first (the truth), then written into the pool blocks the
``BlockAllocator`` hands out (shuffled, so tables are not contiguous; prefix sharing by ``fork``, the
copy-on-write copies performed as the allocator asks). Every slot no sequence owns holds large random
values, so a read of one shows. A pool with ``case.pool_blocks`` gives its low blocks to a filler first, so
the sequences sit at its far end. fp8 caches hold raw values; the values meant are raw · scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from impls.paged.allocator import BlockAllocator
from impls.paged.api import FP8_DTYPES, PagedCase
from impls.tensors import torch_dtype
from reference.paged_attention import gather

UNOWNED_SCALE = 30.0  # the raw magnitude of slots no sequence owns
FP8_LIMIT = 400.0  # below float8_e4m3fn's largest finite value (448) and e5m2's (57344)


@dataclass
class PagedInputs:
    q: torch.Tensor  # [B, Sq, Hq, D] in the case's dtype, on its device
    k_cache: torch.Tensor  # [num_blocks, block_size, Hkv, D] in the cache dtype
    v_cache: torch.Tensor
    block_table: torch.Tensor  # int32 [B, max_blocks], −1 past each sequence's last block
    seqlens: torch.Tensor  # int32 [B]
    dense_k: list[np.ndarray] = field(default_factory=list)  # the truth: raw float64 [n, Hkv, D] per sequence
    dense_v: list[np.ndarray] = field(default_factory=list)


@dataclass
class CompactPool:
    """The blocks the sequences own, renumbered: what the reference reads (float64, raw values)."""

    k: np.ndarray
    v: np.ndarray
    block_table: np.ndarray
    seqlens: np.ndarray


class HarnessError(AssertionError):
    """The suite's own input construction is wrong (not the implementation's doing)."""


def _draw(shape: tuple[int, ...], gen: torch.Generator, cache_dtype: str, scale: float = 1.0) -> torch.Tensor:
    """Random raw values as the cache stores them, upcast to float64 (fp8: values/scale, kept in range)."""
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    if cache_dtype in FP8_DTYPES:
        x = (x / scale).clamp(-FP8_LIMIT, FP8_LIMIT)
    return x.to(torch_dtype(cache_dtype)).double()


def _work_dtype(cache_dtype: str) -> torch.dtype:
    """The pool is written in this dtype (fp8 pools in float32, converted exactly at the end)."""
    return torch.float32 if cache_dtype in FP8_DTYPES else torch_dtype(cache_dtype)


def _unowned_pool(case: PagedCase, seed: int) -> torch.Tensor:
    shape = (case.num_blocks, case.block_size, case.heads_kv, case.head_dim)
    gen = torch.Generator(device=case.device).manual_seed(seed + 1)
    pool = torch.empty(shape, dtype=_work_dtype(case.cache_dtype), device=case.device)
    pool.normal_(0.0, UNOWNED_SCALE, generator=gen)
    if case.cache_dtype in FP8_DTYPES:
        pool.clamp_(-FP8_LIMIT, FP8_LIMIT).copy_(pool.to(torch_dtype(case.cache_dtype)))
    return pool


def build_inputs(case: PagedCase, seed: int, allocator_cls: type[BlockAllocator] = BlockAllocator) -> PagedInputs:
    gen = torch.Generator().manual_seed(seed)
    bs, hkv, dim, dev = case.block_size, case.heads_kv, case.head_dim, case.device
    alloc = allocator_cls(case.num_blocks, bs, seed=None if case.pool_blocks else seed)
    if case.pool_blocks:  # the sequences take the far end of the pool
        alloc.allocate("filler", (case.num_blocks - case.blocks_needed - case.spare_blocks) * bs)
    k_cache, v_cache = _unowned_pool(case, seed), _unowned_pool(case, seed + 7)
    dense_k: list[np.ndarray] = []
    dense_v: list[np.ndarray] = []
    for b, n in enumerate(case.seqlens):
        k = _draw((n, hkv, dim), gen, case.cache_dtype, case.k_scale)
        v = _draw((n, hkv, dim), gen, case.cache_dtype, case.v_scale)
        start = 0
        if b > 0 and case.shared_prefix:
            start = min(case.shared_prefix, case.seqlens[0], n)
            alloc.fork(0, b, start)
            k[:start], v[:start] = torch.from_numpy(dense_k[0][:start]), torch.from_numpy(dense_v[0][:start])
            for src, dst in alloc.append(b, n - start):
                k_cache[dst], v_cache[dst] = k_cache[src], v_cache[src]
        else:
            alloc.allocate(b, n)
        slots = torch.tensor(alloc.slots(b, start, n), dtype=torch.long, device=dev)
        k_cache.view(-1, hkv, dim)[slots] = k[start:].to(dev, k_cache.dtype)
        v_cache.view(-1, hkv, dim)[slots] = v[start:].to(dev, v_cache.dtype)
        dense_k.append(k.numpy())
        dense_v.append(v.numpy())
    table = alloc.block_table(list(range(case.batch)))
    if table.shape[1] == 0:
        table = torch.full((case.batch, 1), -1, dtype=torch.int32)
    q = torch.randn((case.batch, case.seqlen_q, case.heads_q, dim), generator=gen, dtype=torch.float64)
    cache_dtype = torch_dtype(case.cache_dtype)
    return PagedInputs(q.to(torch_dtype(case.dtype)).to(dev), k_cache.to(cache_dtype), v_cache.to(cache_dtype),
                       table.to(dev), torch.tensor(case.seqlens, dtype=torch.int32, device=dev), dense_k, dense_v)


def compact_pool(inputs: PagedInputs) -> CompactPool:
    """The owned blocks only, with the table renumbered to them; checks the gather against the truth."""
    table = inputs.block_table.cpu().numpy().astype(np.int64)
    lengths = inputs.seqlens.cpu().numpy().astype(np.int64)
    bs, num_blocks = inputs.k_cache.shape[1], inputs.k_cache.shape[0]
    owned = [table[b, : -(-int(n) // bs)] for b, n in enumerate(lengths)]
    used = np.unique(np.concatenate(owned)) if owned else np.zeros(0, dtype=np.int64)
    if used.size and (used[0] < 0 or used[-1] >= num_blocks):
        raise HarnessError(f"block table entries {used.tolist()} must lie in [0, {num_blocks})")
    renumbered = np.full(table.shape, -1, dtype=np.int64)
    for b, blocks in enumerate(owned):
        renumbered[b, : blocks.size] = np.searchsorted(used, blocks)
    index = torch.from_numpy(used).to(inputs.k_cache.device)
    pool = CompactPool(inputs.k_cache[index].double().cpu().numpy(), inputs.v_cache[index].double().cpu().numpy(),
                       renumbered, lengths)
    for b, n in enumerate(lengths.tolist()):
        if not (np.array_equal(gather(pool.k, pool.block_table[b], n), inputs.dense_k[b])
                and np.array_equal(gather(pool.v, pool.block_table[b], n), inputs.dense_v[b])):
            raise HarnessError(f"sequence {b}: the K/V read through the block table differ from what was written")
    return pool

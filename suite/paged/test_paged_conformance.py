"""Every paged-attention implementation against the float64 reference (gather, then dense attention).

Hypothesis draws batches mixing 1-token and longer contexts, lengths ending mid-block, shuffled
non-contiguous block tables, shared prefixes with copy-on-write, GQA ratios 1/4/8, query lengths
1..16 and the options (causal, sliding window, softcap, ALiBi). A drawn case the implementation does
not support is counted, not checked; a test where none was supported is skipped with the reasons.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from impls.paged.api import PagedAttentionImpl, PagedCase
from reference.attention import AttentionOptions, alibi_slopes
from reference.paged_attention import gather, paged_attention
from suite.paged.paged_check import DEVICE, PagedInputs, PagedSpec, check_paged, describe, eager_baseline
from suite.tolerance import K_OUTPUT, compare

DTYPES = ("float32", "float16", "bfloat16")


def case_of(spec: PagedSpec, needs_lse: bool = False) -> PagedCase:
    nb = sum(-(-n // spec.block_size) for n in spec.seqlens) + len(spec.seqlens) + spec.spare_blocks
    return PagedCase(len(spec.seqlens), spec.heads_q, spec.heads_kv, spec.seqlen_q, max(spec.seqlens),
                     spec.head_dim, spec.block_size, nb, spec.dtype, spec.dtype, DEVICE, spec.options, needs_lse)


class Tally:
    def __init__(self) -> None:
        self.checked = 0
        self.unsupported: Counter[str] = Counter()

    def supports(self, impl: PagedAttentionImpl, spec: PagedSpec) -> bool:
        reasons = impl.unsupported(case_of(spec))
        self.unsupported.update(reasons)
        self.checked += not reasons
        return not reasons

    def finish(self) -> None:
        if not self.checked:
            pytest.skip("no drawn case was supported: " + "; ".join(sorted(self.unsupported)))


@st.composite
def options(draw: st.DrawFn, heads_q: int) -> AttentionOptions:
    causal = draw(st.booleans())
    window = draw(st.one_of(st.none(), st.integers(0, 40)))
    softcap = draw(st.one_of(st.none(), st.sampled_from([0.5, 5.0, 30.0])))
    alibi = alibi_slopes(heads_q) if draw(st.integers(0, 4)) == 0 else None
    positional = causal or window is not None or alibi is not None
    return AttentionOptions(causal=causal, window_left=window, softcap=softcap, alibi_slopes=alibi,
                            alignment="bottom_right" if positional else None)


@st.composite
def specs(draw: st.DrawFn, block_sizes: tuple[int, ...], dtype: str) -> PagedSpec:
    block_size = draw(st.sampled_from([b for b in block_sizes if b <= 64] or list(block_sizes)))
    batch = draw(st.integers(1, 4))
    # lengths: 1, ends of blocks ± 1, and anything up to a few blocks; one long context per batch at most
    length = st.one_of(st.just(1), st.integers(1, 3 * block_size + 1), st.integers(1, 150))
    seqlens = tuple(draw(length) for _ in range(batch))
    heads_kv = draw(st.sampled_from([1, 2]))
    group = draw(st.sampled_from([1, 4, 8]))
    seqlen_q = draw(st.sampled_from([1, 1, 2, 5, 16]))
    head_dim = draw(st.sampled_from([16, 32, 40]))
    shared = draw(st.sampled_from([0, 0, block_size, block_size + 1, 2 * block_size - 1]))
    return PagedSpec(seqlens, heads_kv * group, heads_kv, seqlen_q, head_dim, block_size, dtype,
                     draw(options(heads_kv * group)), shared_prefix=shared, seed=draw(st.integers(0, 2**16)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_paged_matches_reference(paged_impl: PagedAttentionImpl, dtype: str) -> None:
    impl, tally = paged_impl, Tally()

    @given(specs(impl.block_sizes, dtype))
    def run(spec: PagedSpec) -> None:
        if tally.supports(impl, spec):
            comparisons = check_paged(impl, spec)
            assert all(c.ok for c in comparisons), f"{spec}\n{describe(comparisons)}"

    run()
    tally.finish()


def test_paged_every_declared_block_size(paged_impl: PagedAttentionImpl) -> None:
    """Each block size the implementation declares, with lengths ending mid-block and at a boundary."""
    impl, checked = paged_impl, 0
    for bs in impl.block_sizes:
        seqlens = (1, bs + bs // 2 + 1, 2 * bs, min(3 * bs - 1, 300))
        spec = PagedSpec(seqlens, 8, 2, 2, 32, bs, "float16",
                         AttentionOptions(causal=True, alignment="bottom_right"), shared_prefix=bs // 2 + 1,
                         seed=bs)
        if impl.unsupported(case_of(spec)):
            continue
        comparisons = check_paged(impl, spec)
        assert all(c.ok for c in comparisons), f"block size {bs}\n{describe(comparisons)}"
        checked += 1
    if not checked:
        pytest.skip(f"{impl.name} supports none of its declared block sizes here")


@pytest.mark.parametrize("group", [1, 4, 8])
def test_paged_mixed_batch_gqa(paged_impl: PagedAttentionImpl, group: int) -> None:
    """A 1-token context beside long ones in one batch, for each GQA ratio; decode (Sq = 1) without causal."""
    spec = PagedSpec((1, 200, 17, 64), 2 * group, 2, 1, 32, 16, "float16", AttentionOptions(), seed=group)
    reasons = paged_impl.unsupported(case_of(spec))
    if reasons:
        pytest.skip("; ".join(reasons))
    comparisons = check_paged(paged_impl, spec)
    assert all(c.ok for c in comparisons), describe(comparisons)


def test_paged_empty_sequence_gives_zero_and_minus_inf(paged_impl: PagedAttentionImpl) -> None:
    """A sequence with no cached tokens: output 0 and LSE −inf (the reference's fully masked row)."""
    spec = PagedSpec((0, 5), 4, 2, 1, 16, 16, "float32", AttentionOptions(), seed=3)
    reasons = paged_impl.unsupported(case_of(spec))
    if reasons:
        pytest.skip("; ".join(reasons))
    comparisons = check_paged(paged_impl, spec)
    assert all(c.ok for c in comparisons), describe(comparisons)


def test_paged_fp8_cache_with_scales(paged_impl: PagedAttentionImpl) -> None:
    """An fp8 (e4m3) cache with per-tensor scales: the reference reads pool · scale in float64."""
    bs, hkv, hq, dim, seqlens = 8, 2, 8, 32, (37, 1, 64)
    spec = PagedSpec(seqlens, hq, hkv, 1, dim, bs, "float16", AttentionOptions())
    nb = sum(-(-n // bs) for n in seqlens)
    case = PagedCase(len(seqlens), hq, hkv, 1, max(seqlens), dim, bs, nb, "float16", "float8_e4m3fn", DEVICE,
                     spec.options)
    reasons = paged_impl.unsupported(case)
    if reasons:
        pytest.skip("; ".join(reasons))
    gen = torch.Generator().manual_seed(8)
    k_scale, v_scale = 0.01, 0.02
    kc = (torch.randn((nb, bs, hkv, dim), generator=gen) * 100).to(torch.float8_e4m3fn)
    vc = (torch.randn((nb, bs, hkv, dim), generator=gen) * 50).to(torch.float8_e4m3fn)
    table = torch.randperm(nb, generator=gen).to(torch.int32)
    rows = torch.full((len(seqlens), -(-max(seqlens) // bs)), -1, dtype=torch.int32)
    start = 0
    for b, n in enumerate(seqlens):
        rows[b, : -(-n // bs)] = table[start: start + -(-n // bs)]
        start += -(-n // bs)
    q = torch.randn((len(seqlens), 1, hq, dim), generator=gen).to(torch.float16)
    sl = torch.tensor(seqlens, dtype=torch.int32)
    kd, vd = kc.double().numpy() * k_scale, vc.double().numpy() * v_scale
    ref_o, _ = paged_attention(q.double().numpy(), kc.double().numpy(), vc.double().numpy(), rows.numpy(), sl.numpy(),
                               spec.options, k_scale=k_scale, v_scale=v_scale)
    truth = PagedInputs(q, kc, vc, rows, sl, [gather(kd, rows[b].numpy(), n) for b, n in enumerate(seqlens)],
                        [gather(vd, rows[b].numpy(), n) for b, n in enumerate(seqlens)])
    base = eager_baseline(truth, spec.options)
    got, _ = paged_impl.forward(q.to(DEVICE), kc.to(DEVICE), vc.to(DEVICE), rows.to(DEVICE), sl.to(DEVICE),
                                          spec.options, k_scale=k_scale, v_scale=v_scale)
    v_max = float(np.abs(vd).max())
    propagated = spec.options.resolved_scale(dim) * float(q.abs().max()) * float(np.abs(kd).max()) * dim * v_max
    c = compare("out", got.double().cpu().numpy(), ref_o, base, "float16", K_OUTPUT, propagated, v_max)
    assert c.ok, c.describe()


def test_paged_rejects_a_short_block_table(paged_impl: PagedAttentionImpl) -> None:
    q = torch.zeros((2, 1, 4, 16), dtype=torch.float16, device=DEVICE)
    pool = torch.zeros((8, 16, 2, 16), dtype=torch.float16, device=DEVICE)
    table = torch.zeros((2, 3), dtype=torch.int32, device=DEVICE)
    seqlens = torch.tensor([10, 70], dtype=torch.int32, device=DEVICE)
    with pytest.raises(ValueError, match=r"block_table has 3 columns but seq 1 needs 5 blocks of 16 for 70 tokens"):
        paged_impl.forward(q, pool, pool, table, seqlens, AttentionOptions())

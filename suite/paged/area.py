"""The paged-attention area, declared: cases, the property check, pinned traps, bad calls, the benchmark.

Drawn batches mix 1-token and longer contexts, lengths ending mid-block, shuffled non-contiguous block
tables, shared prefixes with copy-on-write, GQA ratios 1/4/8, query lengths 1..16, fp8 caches with scales,
attention sinks, the LSE asked for half the time, and the options (causal, sliding window on either side,
softcap, ALiBi, an explicit scale). One property per dtype; in the quick profile each draws its own cases.
"""

from __future__ import annotations

from typing import Any

import torch
from hypothesis import strategies as st

from impls.base import declared_reasons
from impls.paged.api import BLOCK_SIZES, DTYPES, FEATURES, PagedAttentionImpl, PagedCase
from impls.tensors import default_device, torch_dtype
from reference.attention import AttentionOptions, alibi_slopes
from reference.paged_attention import decode_min_bytes
from suite.engine.area import Area, Benchmark, ErrorInput, Example, Property
from suite.engine.verdict import raises, verdict
from suite.paged.check import check

DEVICE = default_device()
DRAWN_BLOCK_SIZES = (1, 2, 8, 16, 16, 32, 64, 256)
CAUSAL = AttentionOptions(causal=True, alignment="bottom_right")


@st.composite
def options(draw: st.DrawFn, heads_q: int) -> AttentionOptions:
    causal = draw(st.booleans())
    left = draw(st.one_of(st.none(), st.integers(0, 40)))
    right = None if causal else draw(st.one_of(st.none(), st.just(left), st.integers(0, 40)))
    softcap = draw(st.one_of(st.none(), st.sampled_from([0.5, 5.0, 30.0])))
    alibi = alibi_slopes(heads_q) if draw(st.integers(0, 4)) == 0 else None
    scale = draw(st.one_of(st.none(), st.none(), st.none(), st.floats(0.05, 1.0)))
    positional = causal or left is not None or right is not None or alibi is not None
    return AttentionOptions(scale=scale, causal=causal, window_left=left, window_right=right, softcap=softcap,
                            alibi_slopes=alibi, alignment="bottom_right" if positional else None)


@st.composite
def cases(draw: st.DrawFn, dtype: str) -> PagedCase:
    block_size = draw(st.sampled_from(DRAWN_BLOCK_SIZES))
    seqlen_q = draw(st.sampled_from([1, 1, 1, 2, 5, 8, 16]))
    short = draw(st.integers(0, 5)) == 0  # a sequence may hold fewer tokens than there are queries
    length = st.one_of(st.just(1), st.integers(1, min(3 * block_size + 1, 200)), st.integers(1, 150))
    lengths = [draw(st.one_of(length, st.just(0)) if short else length) for _ in range(draw(st.integers(1, 4)))]
    seqlens = tuple(n if short else max(n, seqlen_q) for n in lengths)
    heads_kv = draw(st.sampled_from([1, 2]))
    # the query tile of a GQA group holds group × Sq rows; above 40 the interpreter's fp16 dots take seconds
    heads_q = heads_kv * draw(st.sampled_from([g for g in (1, 4, 8) if g * seqlen_q <= 40]))
    fp8 = draw(st.integers(0, 4)) == 0
    sinks = tuple(draw(st.lists(st.floats(-3.0, 3.0), min_size=heads_q, max_size=heads_q))) \
        if draw(st.integers(0, 5)) == 0 else None
    return PagedCase(seqlens, heads_q, heads_kv, seqlen_q, draw(st.sampled_from([16, 32, 40, 64, 80])), block_size,
                     dtype, DEVICE, draw(options(heads_q)), kv_dtype="float8_e4m3fn" if fp8 else "",
                     needs_lse=draw(st.booleans()),
                     shared_prefix=draw(st.sampled_from([0, 0, block_size, block_size + 1, 2 * block_size - 1])),
                     k_scale=1 / 16 if fp8 else 1.0, v_scale=1 / 32 if fp8 else 1.0, sinks=sinks)


# ---- pinned traps ----------------------------------------------------------------------------------------------------

def _block_size_case(bs: int) -> PagedCase:
    """One token, lengths ending mid-block (a prefix ending mid-block shared with the first) and at a boundary."""
    return PagedCase((bs + bs // 2 + 1, 1, bs), 2, 1, 1, 32, bs, "float16", DEVICE, CAUSAL, shared_prefix=bs // 2 + 1)


def _examples() -> list[Example]:
    out = [Example("mixed_batch_1_token_context", PagedCase((1, 100, 17, 33), group, 1, 1, 32, 16, "float16",
                                                            DEVICE), check, variant=f"gqa{group}", seed=group)
           for group in (1, 4, 8)]
    for lse in (False, True):  # a sequence with no cached token: output 0 and LSE −inf
        out.append(Example("empty_sequence", PagedCase((0, 5), 4, 2, 1, 32, 16, "float32", DEVICE, needs_lse=lse),
                           check, variant="lse" if lse else "out", seed=3))
    out += [Example("every_block_size", _block_size_case(bs), check, variant=str(bs), seed=bs)
            for bs in (*BLOCK_SIZES, 512)]
    # a sink that dominates one head, and one that hardly counts; with and without causal masking of Sq = 3
    for name, opts in (("decode", AttentionOptions()), ("causal_sq3", CAUSAL)):
        out.append(Example("attention_sinks", PagedCase((37, 5), 4, 2, 3 if opts.causal else 1, 32, 16, "float32",
                                                        DEVICE, opts, sinks=(-2.0, 0.0, 1.5, 6.0)),
                           check, variant=name, seed=9))
    for kv_dtype in ("float8_e4m3fn", "float8_e5m2"):
        out.append(Example("fp8_cache_with_scales", PagedCase((37, 1, 64), 8, 2, 1, 32, 16, "float16", DEVICE,
                                                              kv_dtype=kv_dtype, k_scale=0.03, v_scale=0.02),
                           check, variant=kv_dtype, seed=8))
    return out


# ---- bad calls -------------------------------------------------------------------------------------------------------

def _probe(impl: PagedAttentionImpl, case: PagedCase) -> PagedCase | None:
    """``case`` in a block size and dtype this implementation takes, or None."""
    for bs in (16, *impl.block_sizes):
        for dtype in ("float16", "float32", "bfloat16"):
            probe = PagedCase(case.seqlens, case.heads_q, case.heads_kv, case.seqlen_q, case.head_dim, bs, dtype,
                              DEVICE, case.options)
            if not declared_reasons(impl, probe):
                return probe
    return None


BASE = PagedCase((10, 70), 4, 2, 1, 32, 16, "float16", DEVICE)


def _tensors(case: PagedCase, q_heads: int | None = None, kv_heads: int | None = None, dim: int | None = None,
             columns: int | None = None) -> dict[str, Any]:
    t: dict[str, Any] = {"device": DEVICE, "dtype": torch_dtype(case.dtype)}
    bs = case.block_size
    width = max(-(-n // bs) for n in case.seqlens) if columns is None else columns
    nb = case.batch * width + 1
    return {"q": torch.randn(case.batch, case.seqlen_q, q_heads or case.heads_q, case.head_dim, **t),
            "k": torch.randn(nb, bs, kv_heads or case.heads_kv, dim or case.head_dim, **t),
            "table": torch.arange(case.batch * width, dtype=torch.int32, device=DEVICE).view(case.batch, width),
            "seqlens": torch.tensor(case.seqlens, dtype=torch.int32, device=DEVICE)}


def _bad_call(name: str, make: Any, errors: tuple[type[BaseException], ...] = (ValueError, TypeError)) -> ErrorInput:
    """``make(probe)`` returns (description, call, fragments the message must name)."""

    def run(impl: PagedAttentionImpl) -> Any:
        probe = _probe(impl, BASE)
        assert probe is not None
        what, call, fragments = make(impl, probe)
        return verdict(what, raises("error", call, errors, fragments))

    return ErrorInput(name, run, lambda impl: [] if _probe(impl, BASE) else
                      [f"{impl.name} takes no dtype or block size of the probe ({BASE})"])


def _short_table(impl: PagedAttentionImpl, case: PagedCase) -> tuple[str, Any, tuple[str, ...]]:
    bs = case.block_size
    seqlens = (bs // 2 + 1, 4 * bs + 6)  # 1 and 5 blocks (bs > 1); the table has 3 columns
    needs = -(-seqlens[1] // bs)
    t = _tensors(PagedCase(seqlens, case.heads_q, case.heads_kv, 1, case.head_dim, bs, case.dtype, DEVICE), columns=3)
    return (f"seqlens {seqlens}, block size {bs}, a table of 3 columns",
            lambda: impl.forward(t["q"], t["k"], t["k"], t["table"], t["seqlens"], AttentionOptions()),
            (f"block_table has 3 columns but seq 1 needs {needs} blocks of {bs} for {seqlens[1]} tokens",))


def _heads_not_divisible(impl: PagedAttentionImpl, case: PagedCase) -> tuple[str, Any, tuple[str, ...]]:
    t = _tensors(case, kv_heads=3)
    return ("4 query heads on 3 kv heads",
            lambda: impl.forward(t["q"], t["k"], t["k"], t["table"], t["seqlens"], AttentionOptions()), ("4", "3"))


def _head_dim_mismatch(impl: PagedAttentionImpl, case: PagedCase) -> tuple[str, Any, tuple[str, ...]]:
    t = _tensors(case, dim=64)
    return ("q head_dim 32, cache head_dim 64",
            lambda: impl.forward(t["q"], t["k"], t["k"], t["table"], t["seqlens"], AttentionOptions()), ("32", "64"))


def _seqlens_count(impl: PagedAttentionImpl, case: PagedCase) -> tuple[str, Any, tuple[str, ...]]:
    t = _tensors(case)
    three = torch.tensor([10, 70, 5], dtype=torch.int32, device=DEVICE)
    return ("2 sequences, 3 lengths",
            lambda: impl.forward(t["q"], t["k"], t["k"], t["table"], three, AttentionOptions()), ("2", "(3,)"))


def _int64_table(impl: PagedAttentionImpl, case: PagedCase) -> tuple[str, Any, tuple[str, ...]]:
    t = _tensors(case)
    return ("an int64 block table",
            lambda: impl.forward(t["q"], t["k"], t["k"], t["table"].long(), t["seqlens"], AttentionOptions()),
            ("int32", "int64"))


def _k_v_mismatch(impl: PagedAttentionImpl, case: PagedCase) -> tuple[str, Any, tuple[str, ...]]:
    t = _tensors(case)
    v = t["k"][:-1]
    return (f"k_cache {tuple(t['k'].shape)}, v_cache {tuple(v.shape)}",
            lambda: impl.forward(t["q"], t["k"], v, t["table"], t["seqlens"], AttentionOptions()),
            (str(tuple(t["k"].shape)), str(tuple(v.shape))))


def _top_left(impl: PagedAttentionImpl, case: PagedCase) -> tuple[str, Any, tuple[str, ...]]:
    t = _tensors(case)
    opts = AttentionOptions(causal=True, alignment="top_left")
    return ("causal with the top-left alignment",
            lambda: impl.forward(t["q"], t["k"], t["k"], t["table"], t["seqlens"], opts), ("bottom_right", "top_left"))


def _alibi_count(impl: PagedAttentionImpl, case: PagedCase) -> tuple[str, Any, tuple[str, ...]]:
    t = _tensors(case)
    opts = AttentionOptions(alibi_slopes=alibi_slopes(2), alignment="bottom_right")
    return ("2 ALiBi slopes for 4 query heads",
            lambda: impl.forward(t["q"], t["k"], t["k"], t["table"], t["seqlens"], opts), ("2", "4"))


UNSUPPORTED_PROBES = {  # feature: the probe case that needs it
    "lse": PagedCase((10, 70), 4, 2, 1, 32, 16, "float16", DEVICE, needs_lse=True),
    "softcap": PagedCase((10, 70), 4, 2, 1, 32, 16, "float16", DEVICE, AttentionOptions(softcap=5.0)),
    "alibi": PagedCase((10, 70), 4, 2, 1, 32, 16, "float16", DEVICE,
                       AttentionOptions(causal=True, alibi_slopes=alibi_slopes(4), alignment="bottom_right")),
    "window": PagedCase((10, 70), 4, 2, 1, 32, 16, "float16", DEVICE,
                        AttentionOptions(causal=True, window_left=3, alignment="bottom_right")),
    "multi_query": PagedCase((10, 70), 4, 2, 3, 32, 16, "float16", DEVICE, CAUSAL),
    "fp8": PagedCase((10, 70), 4, 2, 1, 32, 16, "float16", DEVICE, kv_dtype="float8_e4m3fn", k_scale=0.5,
                     v_scale=0.5),
    "sinks": PagedCase((10, 70), 4, 2, 1, 32, 16, "float16", DEVICE, sinks=(0.5, 0.5, 1.0, 1.0)),
}


def _declines(impl: PagedAttentionImpl, feature: str) -> str | None:
    """Why ``impl`` declines the feature's probe (its lacks entry), when it takes the plain probe."""
    probe = UNSUPPORTED_PROBES[feature]
    if declared_reasons(impl, BASE) or feature not in impl.lacks:
        return None
    return impl.lacks[feature] if declared_reasons(impl, probe) else None


def _unsupported_option(feature: str) -> ErrorInput:
    probe = UNSUPPORTED_PROBES[feature]

    def run(impl: PagedAttentionImpl) -> Any:
        t = _tensors(probe)
        k = t["k"].to(torch_dtype(probe.cache_dtype))
        return verdict(f"{feature} on {impl.name}, which declares it missing", raises(
            "error", lambda: impl.forward(t["q"], k, k, t["table"], t["seqlens"], probe.options,
                                          k_scale=probe.k_scale, v_scale=probe.v_scale, need_lse=probe.needs_lse,
                                          sinks=probe.sinks),
            (NotImplementedError, ValueError, TypeError)))

    return ErrorInput(f"unsupported_feature_raises.{feature}", run,
                      lambda impl: [] if _declines(impl, feature) else
                      [f"{impl.name} declares {feature} supported (nothing to refuse)"])


def _errors() -> list[ErrorInput]:
    bad = {"short_block_table": _short_table, "heads_not_divisible": _heads_not_divisible,
           "head_dim_mismatch": _head_dim_mismatch, "seqlens_count": _seqlens_count, "int64_block_table": _int64_table,
           "k_v_cache_mismatch": _k_v_mismatch, "top_left_alignment": _top_left, "alibi_slopes_count": _alibi_count}
    return [*(_bad_call(name, make) for name, make in bad.items()),
            *(_unsupported_option(feature) for feature in UNSUPPORTED_PROBES)]


# ---- benchmark -------------------------------------------------------------------------------------------------------

CUDA = DEVICE == "cuda"  # bf16, D 128, 32 query heads on 8 kv heads; B·context ≤ 2M tokens (8 GiB of K and V)
CONTEXTS: tuple[int, ...] = (1024, 4096, 16384, 65536, 131072) if CUDA else (256, 1024)
BATCHES: tuple[int, ...] = (1, 16, 64, 256) if CUDA else (1, 4)
HEADS, BENCH_DIM, BENCH_DTYPE = ((32, 8), 128, "bfloat16") if CUDA else ((8, 2), 64, "float32")
MAX_TOKENS = 2**21 if CUDA else 2**12


def _bench_cases(block_size: int) -> list[PagedCase]:
    return [PagedCase((ctx,) * batch, *HEADS, 1, BENCH_DIM, block_size, BENCH_DTYPE, DEVICE, spare_blocks=0)
            for ctx in CONTEXTS for batch in BATCHES if batch * ctx <= MAX_TOKENS]


def _prepare(impl: PagedAttentionImpl, case: PagedCase) -> tuple[Any, Any, dict[str, int]]:
    dtype, bs, ctx = torch_dtype(case.dtype), case.block_size, case.max_seqlen_k
    per_seq = -(-ctx // bs)
    blocks = case.batch * per_seq

    def make_inputs() -> tuple[torch.Tensor, ...]:
        pool = (blocks, bs, case.heads_kv, case.head_dim)
        k, v = torch.randn(pool, device=DEVICE, dtype=dtype), torch.randn(pool, device=DEVICE, dtype=dtype)
        table = torch.randperm(blocks, device=DEVICE).to(torch.int32).view(case.batch, per_seq)
        seqlens = torch.full((case.batch,), ctx, device=DEVICE, dtype=torch.int32)
        return torch.randn(case.batch, 1, case.heads_q, case.head_dim, device=DEVICE, dtype=dtype), k, v, table, seqlens

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, table: torch.Tensor, seqlens: torch.Tensor) -> None:
        impl.forward(q, k, v, table, seqlens, case.options, max_seqlen=ctx)

    elt = torch.tensor([], dtype=dtype).element_size()
    return make_inputs, run, {"min_bytes": decode_min_bytes(list(case.seqlens), case.heads_q, case.heads_kv, 1,
                                                            case.head_dim, elt, elt)}


def _describe(case: PagedCase) -> dict[str, Any]:
    return {"context": case.max_seqlen_k, "batch": case.batch, "heads_q": case.heads_q, "heads_kv": case.heads_kv,
            "head_dim": case.head_dim, "block_size": case.block_size, "dtype": case.dtype}


BASELINE = {"cuda": "paged-gather-sdpa", "cpu": "paged-gather-sdpa"}
AREA = Area(
    id="paged", impl_type=PagedAttentionImpl, features=FEATURES,
    properties=tuple(Property("forward", cases(dtype), check, variant=dtype) for dtype in DTYPES),
    examples=tuple(_examples()), errors=tuple(_errors()),
    benchmarks=(
        Benchmark("decode", _bench_cases(16), _prepare, x="context", metrics=("gbps", "fraction_of_peak", "speedup"),
                  baseline=BASELINE, series=("batch",), describe=_describe),
        # flash-attn 2.x's paged path takes block sizes that are multiples of 256 only
        Benchmark("decode_block256", _bench_cases(256) if CUDA else [], _prepare, x="context",
                  metrics=("gbps", "fraction_of_peak", "speedup"), baseline=BASELINE, series=("batch",),
                  describe=_describe),
    ),
)

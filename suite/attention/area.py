"""The attention area, declared: cases, property checks, pinned traps, bad calls, benchmarks.

Shapes are drawn with the awkward sizes (lengths 1, 2, primes, Sq ≠ Sk both ways; head dims that are not
powers of two; GQA ratios 2–8); options are drawn per feature. Every property runs once per dtype, and in
the quick profile each of those items draws its own cases.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from hypothesis import strategies as st

from impls.attention.api import DTYPES, FEATURES, AttentionCase, AttentionImpl
from impls.base import declared_reasons
from impls.tensors import default_device, torch_dtype
from reference.attention import ALIGNMENTS, AttentionOptions, alibi_slopes
from reference.attention_cost import backward_flops, forward_flops, forward_min_bytes
from suite.attention.check import check, invisible_keys
from suite.engine.area import Area, Benchmark, ErrorInput, Example, Property
from suite.engine.verdict import raises, verdict

DEVICE = default_device()
LENGTHS = st.one_of(st.sampled_from([1, 2, 17, 97, 113]), st.integers(1, 128))
HEAD_DIMS = st.sampled_from([16, 32, 40, 64, 80, 96, 128])
WINDOW_SIDE = st.one_of(st.none(), st.integers(0, 24))
BOTTOM_RIGHT = AttentionOptions(causal=True, alignment="bottom_right")
TOP_LEFT = AttentionOptions(causal=True, alignment="top_left")
OPTION_FEATURES = ("plain", "scale", "causal_top_left", "causal_bottom_right", "window", "alibi", "softcap",
                   "combined", "gqa")


def options(feature: str, heads_q: int) -> st.SearchStrategy[AttentionOptions]:
    align = st.sampled_from(ALIGNMENTS)
    if feature == "plain":
        return st.just(AttentionOptions())
    if feature == "scale":
        return st.builds(AttentionOptions, scale=st.floats(0.01, 2.0))
    if feature in ("causal_top_left", "causal_bottom_right"):
        return st.just(AttentionOptions(causal=True, alignment=feature.removeprefix("causal_")))
    if feature == "window":
        return st.builds(AttentionOptions, causal=st.booleans(), window_left=WINDOW_SIDE, window_right=WINDOW_SIDE,
                         alignment=align).filter(lambda o: o.window_left is not None or o.window_right is not None)
    if feature == "alibi":
        return st.builds(AttentionOptions, causal=st.booleans(), alibi_slopes=st.just(alibi_slopes(heads_q)),
                         alignment=align)
    if feature == "softcap":
        return st.builds(AttentionOptions, softcap=st.sampled_from([1.0, 5.0, 30.0]))
    if feature in ("combined", "gqa"):
        return st.builds(AttentionOptions, scale=st.one_of(st.none(), st.floats(0.05, 1.0)), causal=st.booleans(),
                         window_left=WINDOW_SIDE, window_right=st.one_of(st.none(), st.integers(0, 8)),
                         alibi_slopes=st.one_of(st.none(), st.just(alibi_slopes(heads_q))),
                         softcap=st.one_of(st.none(), st.sampled_from([2.0, 20.0])), alignment=align)
    raise ValueError(f"unknown option feature {feature!r}; known: {OPTION_FEATURES}")


@st.composite
def cases(draw: st.DrawFn, dtype: str, feature: str = "plain", *, gqa: bool = False, lse: bool | None = False,
          grad: bool = False, poison: bool = False) -> AttentionCase:
    """One dense case; ``lse=None`` draws whether the LSE is asked for."""
    heads_kv = draw(st.integers(1, 2))
    heads_q = heads_kv * (draw(st.sampled_from([2, 3, 4, 8])) if gqa or feature == "gqa" else 1)
    opts = draw(options(feature, heads_q))
    sq, sk = draw(LENGTHS), draw(LENGTHS)
    needs_lse = draw(st.booleans()) if lse is None else lse
    return AttentionCase(draw(st.integers(1, 2)), heads_q, heads_kv, sq, sk, draw(HEAD_DIMS), dtype, DEVICE, opts,
                         needs_lse=needs_lse, needs_grad=grad, poison_masked_keys=poison)


@st.composite
def packed_cases(draw: st.DrawFn, dtype: str) -> AttentionCase:
    lengths = tuple(draw(st.lists(st.tuples(LENGTHS, LENGTHS), min_size=1, max_size=4)))
    heads = draw(st.integers(1, 2))
    feature = draw(st.sampled_from(["plain", "causal_bottom_right", "causal_top_left", "window"]))
    return AttentionCase(len(lengths), heads, heads, max(a for a, _ in lengths), max(b for _, b in lengths),
                         draw(HEAD_DIMS), dtype, DEVICE, draw(options(feature, heads)), seqlens=lengths,
                         needs_lse=draw(st.booleans()))


@st.composite
def gqa_alibi_lse_cases(draw: st.DrawFn, dtype: str) -> AttentionCase:
    heads_kv = draw(st.integers(1, 2))
    heads_q = heads_kv * draw(st.sampled_from([2, 4, 8]))
    opts = AttentionOptions(causal=draw(st.booleans()), window_left=draw(WINDOW_SIDE),
                            alibi_slopes=alibi_slopes(heads_q), alignment=draw(st.sampled_from(ALIGNMENTS)))
    return AttentionCase(draw(st.integers(1, 2)), heads_q, heads_kv, draw(LENGTHS), draw(LENGTHS), draw(HEAD_DIMS),
                         dtype, DEVICE, opts, needs_lse=True)


def _lse_cases(dtype: str, feature: str) -> st.SearchStrategy[AttentionCase]:
    return cases(dtype, feature, lse=True)


def _poisoned_cases(dtype: str, feature: str) -> st.SearchStrategy[AttentionCase]:
    return cases(dtype, feature, lse=None, poison=True)


def _hides_a_key(case: AttentionCase) -> bool:
    return bool(invisible_keys(case.seqlen_q, case.seqlen_k, case.options).any())


def _pinned(feature: str, dtype: str) -> tuple[AttentionCase, ...]:
    """The feature's sharpest options on the known traps: Sq ≠ Sk both ways, head dims 40 and 80."""
    group = 4 if feature == "gqa" else 1
    sharpest = {
        "plain": AttentionOptions(), "scale": AttentionOptions(scale=0.3), "causal_top_left": TOP_LEFT,
        "causal_bottom_right": BOTTOM_RIGHT,
        "window": AttentionOptions(window_left=2, window_right=1, alignment="bottom_right"),
        "alibi": AttentionOptions(causal=True, alibi_slopes=alibi_slopes(2 * group), alignment="bottom_right"),
        "softcap": AttentionOptions(softcap=1.0),
        "combined": AttentionOptions(causal=True, window_left=3, softcap=5.0, alibi_slopes=alibi_slopes(2),
                                     alignment="bottom_right"),
        "gqa": TOP_LEFT,
    }[feature]
    heads_q = 2 * group if feature in ("gqa", "alibi") else 2
    one_q = 1 * group if feature == "gqa" else 1
    return (AttentionCase(1, heads_q, heads_q // group, 3, 17, 40, dtype, DEVICE, sharpest),
            AttentionCase(2, one_q, one_q // group if feature == "gqa" else 1, 17, 5, 80, dtype, DEVICE,
                          _with_slopes(sharpest, one_q)))


def _with_slopes(opts: AttentionOptions, heads_q: int) -> AttentionOptions:
    if opts.alibi_slopes is None:
        return opts
    return AttentionOptions(**{**opts.__dict__, "alibi_slopes": alibi_slopes(heads_q)})


NEEDS = {"causal_top_left": ("causal",), "causal_bottom_right": ("causal",), "window": ("window",),
         "alibi": ("alibi",), "softcap": ("softcap",), "gqa": ("gqa",)}  # what every case of a feature has


def _properties() -> list[Property]:
    props = []
    for dtype in DTYPES:
        props += [Property("forward", cases(dtype, feature), check, variant=f"{dtype}.{feature}",
                           pinned=_pinned(feature, dtype), needs=NEEDS.get(feature, ()), dtype=dtype)
                  for feature in OPTION_FEATURES]
        lse_options = st.sampled_from(["plain", "causal_bottom_right", "window", "softcap"])
        props.append(Property("lse", lse_options.flatmap(partial(_lse_cases, dtype)), check, variant=dtype,
                              needs=("lse",), dtype=dtype))
        props += [Property("backward", cases(dtype, feature, grad=True), check, variant=f"{dtype}.{feature}",
                           needs=("grad", *NEEDS.get(feature, ())), dtype=dtype)
                  for feature in ("plain", "causal_bottom_right", "window", "softcap", "alibi", "gqa")]
        props.append(Property("varlen", packed_cases(dtype), check, variant=dtype, pinned=(
            AttentionCase(3, 1, 1, 17, 97, 64, dtype, DEVICE, BOTTOM_RIGHT, seqlens=((1, 1), (17, 5), (3, 97))),),
            needs=("varlen",), dtype=dtype))
        masked = st.sampled_from(["causal_top_left", "window", "combined", "gqa"]).flatmap(
            partial(_poisoned_cases, dtype)).filter(_hides_a_key)
        props.append(Property("nan_in_masked_keys", masked, check, variant=dtype, pinned=(
            AttentionCase(1, 2, 2, 20, 33, 64, dtype, DEVICE, TOP_LEFT, poison_masked_keys=True),), dtype=dtype))
        props.append(Property("gqa_alibi_lse", gqa_alibi_lse_cases(dtype), check, variant=dtype,
                              needs=("gqa", "alibi", "lse"), dtype=dtype))
    return props


EMPTY_ROWS = {  # name: (Sq, Sk, options); each leaves some query rows with no visible key
    "bottom_right_17_5": (17, 5, BOTTOM_RIGHT),  # rows 0..11 sit before key 0
    "bottom_right_2_1": (2, 1, BOTTOM_RIGHT),
    "top_left_window_0_0_9_4": (9, 4, AttentionOptions(causal=True, window_left=0, window_right=0,
                                                       alignment="top_left")),  # rows 4..8: their key is past Sk
}


def _examples() -> list[Example]:
    out = []
    for dtype in DTYPES:
        for name, opts in (("causal_top_left", TOP_LEFT),
                           ("window_0_0", AttentionOptions(window_left=0, window_right=0, alignment="top_left"))):
            # keys 20.. are beyond every diagonal and hold NaN; the output must not
            out.append(Example("nan_in_masked_out_key", AttentionCase(1, 2, 2, 20, 33, 64, dtype, DEVICE, opts,
                                                                      poison_masked_keys=True), check,
                               variant=f"{dtype}.{name}", seed=11))
        for name, (sq, sk, opts) in EMPTY_ROWS.items():
            out.append(Example("rows_with_no_visible_key", AttentionCase(1, 2, 2, sq, sk, 64, dtype, DEVICE, opts,
                                                                         needs_lse=True), check,
                               variant=f"{dtype}.{name}", seed=sq * 100 + sk))
        for d in (40, 80, 96, 136, 256):
            out.append(Example("head_dims_not_a_power_of_two", AttentionCase(1, 2, 2, 29, 31, d, dtype, DEVICE,
                                                                             BOTTOM_RIGHT), check,
                               variant=f"{dtype}.{d}", seed=d))
    for dtype in ("float16", "float32"):
        # scores around ±3·10⁴ (fp16 max is 65504): exp must be taken after subtracting the row max
        out.append(Example("logits_near_the_fp16_limit", AttentionCase(1, 2, 2, 33, 47, 40, dtype, DEVICE,
                                                                       AttentionOptions(scale=1.0), needs_lse=True,
                                                                       logit_scale=30.0), check,
                           variant=dtype, seed=5))
    return out


# ---- bad calls ------------------------------------------------------------------------------------------------------

BAD_SHAPES = {  # name: (q shape, k shape, v shape, fragments the error must mention)
    "heads_not_divisible": ((1, 3, 4, 16), (1, 2, 4, 16), (1, 2, 4, 16), ("3", "2")),
    "head_dim_mismatch": ((1, 2, 4, 16), (1, 2, 4, 32), (1, 2, 4, 32), ("16", "32")),
    "batch_mismatch": ((2, 2, 4, 16), (1, 2, 4, 16), (1, 2, 4, 16), ("2", "1")),
    "k_v_mismatch": ((1, 2, 4, 16), (1, 2, 4, 16), (1, 2, 5, 16), ("4", "5")),
}
UNSUPPORTED_PROBES = {
    "causal_bottom_right": BOTTOM_RIGHT,
    "window": AttentionOptions(window_left=3, window_right=0, alignment="bottom_right"),
    "alibi": AttentionOptions(alibi_slopes=alibi_slopes(2), alignment="top_left"),
    "softcap": AttentionOptions(softcap=5.0),
}


def _small(dtype: str, opts: AttentionOptions = AttentionOptions(), sq: int = 4, sk: int = 4,
           d: int = 16) -> AttentionCase:
    return AttentionCase(1, 2, 2, sq, sk, d, dtype, DEVICE, opts)


def _first_dtype(impl: AttentionImpl) -> str | None:
    return next((d for d in ("float16", "float32", "bfloat16") if not declared_reasons(impl, _small(d))), None)


def _bad_shape(name: str) -> ErrorInput:
    qs, ks, vs, fragments = BAD_SHAPES[name]

    def run(impl: AttentionImpl) -> Any:
        t: dict[str, Any] = {"device": DEVICE, "dtype": torch_dtype(_first_dtype(impl) or "float32")}
        q, k, v = torch.randn(qs, **t), torch.randn(ks, **t), torch.randn(vs, **t)
        return verdict(f"q {qs}, k {ks}, v {vs}", raises("error", lambda: impl.forward(q, k, v, AttentionOptions()),
                                                        (ValueError, TypeError, RuntimeError), fragments))

    return ErrorInput(f"bad_shapes.{name}", run,
                      lambda impl: [] if _first_dtype(impl) else [f"{impl.name} supports no dtype at head dim 16"])


def _mixed_dtypes(impl: AttentionImpl) -> Any:
    q = torch.randn(1, 2, 4, 16, device=DEVICE)
    k = torch.randn(1, 2, 4, 16, device=DEVICE, dtype=torch.float16)
    return verdict("q float32, k and v float16", raises(
        "error", lambda: impl.forward(q, k, k, AttentionOptions()), (ValueError, TypeError, RuntimeError),
        ("float16", "float32")))


def _probe_dtype(impl: AttentionImpl, opts: AttentionOptions) -> str | None:
    """A dtype in which ``impl`` takes plain attention but declines ``opts`` (5 × 7, D 64)."""
    return next((d for d in DTYPES if declared_reasons(impl, _small(d, opts, 5, 7, 64))
                 and not declared_reasons(impl, _small(d, AttentionOptions(), 5, 7, 64))), None)


def _unsupported_option(probe: str) -> ErrorInput:
    opts = UNSUPPORTED_PROBES[probe]

    def run(impl: AttentionImpl) -> Any:
        t: dict[str, Any] = {"device": DEVICE, "dtype": torch_dtype(_probe_dtype(impl, opts) or "float32")}
        q, k = torch.randn(1, 2, 5, 64, **t), torch.randn(1, 2, 7, 64, **t)
        return verdict(f"{probe} on {impl.name}, which declares it unsupported", raises(
            "error", lambda: impl.forward(q, k, k, opts), (ValueError, NotImplementedError, TypeError)))

    def applies(impl: AttentionImpl) -> list[str]:
        return [] if _probe_dtype(impl, opts) else [f"{impl.name} declares {probe} supported (nothing to refuse)"]

    return ErrorInput(f"unsupported_option_raises.{probe}", run, applies)


def _errors() -> list[ErrorInput]:
    return [*(_bad_shape(n) for n in BAD_SHAPES),
            ErrorInput("mixed_dtypes", _mixed_dtypes,
                       lambda impl: [] if not declared_reasons(impl, _small("float32")) else
                       [f"{impl.name} does not take float32 at head dim 16"]),
            *(_unsupported_option(p) for p in UNSUPPORTED_PROBES)]


# ---- benchmarks ------------------------------------------------------------------------------------------------------

CUDA = DEVICE == "cuda"
if CUDA:  # the flash-attention sizes: B·S = 16K, H·D = 2048
    SEQLENS, TOKENS, WIDTH, BENCH_DIMS, BENCH_DTYPE = [512, 1024, 2048, 4096, 8192, 16384], 16384, 2048, [64, 128], \
        "bfloat16"
else:
    SEQLENS, TOKENS, WIDTH, BENCH_DIMS, BENCH_DTYPE = [128, 256, 512], 512, 256, [64], "float32"


def _bench_cases(grad: bool) -> list[AttentionCase]:
    return [AttentionCase(TOKENS // s, WIDTH // d, WIDTH // d, s, s, d, BENCH_DTYPE, DEVICE,
                          BOTTOM_RIGHT if causal else AttentionOptions(), needs_grad=grad)
            for s in SEQLENS for d in BENCH_DIMS for causal in (False, True)]


def _prepare(impl: AttentionImpl, case: AttentionCase) -> tuple[Any, Any, dict[str, int]]:
    dtype, grad = torch_dtype(case.dtype), case.needs_grad
    shape = (case.batch, case.heads_q, case.seqlen_q, case.head_dim)

    def make_inputs() -> tuple[torch.Tensor, ...]:
        q, k, v = (torch.randn(shape, device=DEVICE, dtype=dtype, requires_grad=grad) for _ in range(3))
        return q, k, v, torch.randn(shape, device=DEVICE, dtype=dtype)

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, d_out: torch.Tensor) -> None:
        out, _ = impl.forward(q, k, v, case.options, need_grad=grad)
        if grad:
            out.backward(d_out)

    args = (case.batch, case.heads_q, case.seqlen_q, case.seqlen_k, case.head_dim, case.options)
    elt = torch.tensor([], dtype=dtype).element_size()
    flops = forward_flops(*args) + (backward_flops(*args) if grad else 0)
    min_bytes = forward_min_bytes(case.batch, case.heads_q, case.heads_kv, case.seqlen_q, case.seqlen_k,
                                  case.head_dim, elt)
    return make_inputs, run, {"flops": flops, "min_bytes": min_bytes}


def _describe(case: AttentionCase) -> dict[str, Any]:
    return {"seqlen": case.seqlen_q, "head_dim": case.head_dim, "causal": case.options.causal,
            "batch": case.batch, "heads": case.heads_q, "dtype": case.dtype}


BASELINE = {"cuda": "sdpa-flash", "cpu": "sdpa-math"}
AREA = Area(
    id="attention", impl_type=AttentionImpl, features=FEATURES,
    properties=tuple(_properties()), examples=tuple(_examples()), errors=tuple(_errors()),
    benchmarks=tuple(Benchmark(name, _bench_cases(grad), _prepare, x="seqlen",
                               metrics=("tflops", "fraction_of_peak", "speedup"), baseline=BASELINE,
                               series=("head_dim", "causal"), describe=_describe)
                     for name, grad in (("fwd", False), ("fwd_bwd", True))),
)

"""Hypothesis strategies for attention cases: shapes with the awkward sizes, options per feature."""

from __future__ import annotations

from hypothesis import strategies as st

from reference.attention import ALIGNMENTS, AttentionOptions, alibi_slopes

LENGTHS = st.one_of(st.sampled_from([1, 2, 17, 97, 113]), st.integers(1, 128))
HEAD_DIMS = st.sampled_from([16, 32, 40, 64, 80, 96, 128])
SEEDS = st.integers(0, 2**31 - 1)
WINDOW_SIDE = st.one_of(st.none(), st.integers(0, 24))


@st.composite
def dims(draw: st.DrawFn, gqa: bool = False) -> dict[str, int]:
    heads_kv = draw(st.integers(1, 2))
    group = draw(st.sampled_from([2, 3, 4, 8])) if gqa else 1
    return {"batch": draw(st.integers(1, 2)), "heads_q": heads_kv * group, "heads_kv": heads_kv,
            "seqlen_q": draw(LENGTHS), "seqlen_k": draw(LENGTHS), "head_dim": draw(HEAD_DIMS), "seed": draw(SEEDS)}


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
    raise ValueError(f"unknown feature {feature!r}")


FEATURES = ("plain", "scale", "causal_top_left", "causal_bottom_right", "window", "alibi", "softcap", "combined", "gqa")

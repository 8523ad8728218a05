"""The attention reference checked against independent computations and the design brief's figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.attention import AttentionOptions, alibi_slopes, attention, attention_grads, attention_varlen
from reference.attention_cost import (
    backward_flops,
    forward_flops,
    forward_min_bytes,
    handshakes,
    score_matrix_bytes,
    visible_pairs,
)

MiB, GiB, TiB = 2**20, 2**30, 2**40


def scalar_attention(q, k, v, opts):  # type: ignore[no-untyped-def]
    """The definition, one query row at a time with Python floats: no vectorisation to get wrong."""
    b_, hq, sq, dim = q.shape
    hkv, sk = k.shape[1], k.shape[2]
    scale = 1 / math.sqrt(dim) if opts.scale is None else opts.scale
    offset = sk - sq if opts.alignment == "bottom_right" else 0
    out, lse = np.zeros(q.shape), np.full(q.shape[:3], -math.inf)
    for b in range(b_):
        for h in range(hq):
            kv = h // (hq // hkv)
            for i in range(sq):
                d = i + offset
                scores = {}
                for j in range(sk):
                    if (opts.causal and j > d) or (opts.window_left is not None and j < d - opts.window_left) or \
                            (opts.window_right is not None and j > d + opts.window_right):
                        continue
                    s = scale * sum(q[b, h, i, x] * k[b, kv, j, x] for x in range(dim))
                    if opts.softcap is not None:
                        s = opts.softcap * math.tanh(s / opts.softcap)
                    if opts.alibi_slopes is not None:
                        s -= opts.alibi_slopes[h] * abs(d - j)
                    scores[j] = s
                if scores:
                    top = max(scores.values())
                    total = sum(math.exp(s - top) for s in scores.values())
                    lse[b, h, i] = top + math.log(total)
                    for j, s in scores.items():
                        out[b, h, i] += math.exp(s - top) / total * v[b, kv, j]
    return out, lse


option_sets = st.builds(
    AttentionOptions, scale=st.one_of(st.none(), st.floats(0.1, 1.0)), causal=st.booleans(),
    window_left=st.one_of(st.none(), st.integers(0, 4)), window_right=st.one_of(st.none(), st.integers(0, 4)),
    alibi_slopes=st.one_of(st.none(), st.just(alibi_slopes(4))), softcap=st.one_of(st.none(), st.just(2.0)),
    alignment=st.sampled_from(["top_left", "bottom_right"]))


@given(opts=option_sets, sq=st.integers(1, 6), sk=st.integers(1, 6), seed=st.integers(0, 1000))
def test_reference_matches_the_scalar_definition(opts: AttentionOptions, sq: int, sk: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    q, k, v = rng.normal(size=(1, 4, sq, 8)), rng.normal(size=(1, 2, sk, 8)), rng.normal(size=(1, 2, sk, 8))
    out, lse = attention(q, k, v, opts)
    want_out, want_lse = scalar_attention(q, k, v, opts)
    np.testing.assert_allclose(out, want_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(np.isinf(lse), np.isinf(want_lse))
    np.testing.assert_allclose(lse[np.isfinite(lse)], want_lse[np.isfinite(want_lse)], rtol=1e-12)


@given(opts=option_sets, seed=st.integers(0, 1000))
def test_gradients_match_finite_differences(opts: AttentionOptions, seed: int) -> None:
    rng = np.random.default_rng(seed)
    q, k, v = rng.normal(size=(1, 4, 3, 5)), rng.normal(size=(1, 2, 4, 5)), rng.normal(size=(1, 2, 4, 5))
    d_out = rng.normal(size=q.shape)
    grads = attention_grads(q, k, v, d_out, opts)

    def loss(q_, k_, v_):  # type: ignore[no-untyped-def]
        return float((attention(q_, k_, v_, opts)[0] * d_out).sum())

    h = 1e-6
    for which, grad in enumerate(grads):
        args = [q, k, v]
        for index in np.ndindex(args[which].shape):
            plus, minus = [a.copy() for a in args], [a.copy() for a in args]
            plus[which][index] += h
            minus[which][index] -= h
            numeric = (loss(*plus) - loss(*minus)) / (2 * h)
            assert abs(numeric - grad[index]) < 1e-6 * max(1.0, abs(numeric)), (which, index, numeric, grad[index])


def test_row_with_no_visible_key_is_zero_with_lse_minus_infinity() -> None:
    rng = np.random.default_rng(0)
    q, k = rng.normal(size=(1, 1, 5, 4)), rng.normal(size=(1, 1, 2, 4))
    out, lse = attention(q, k, k, AttentionOptions(causal=True, alignment="bottom_right"))
    assert np.all(out[0, 0, :3] == 0) and np.all(lse[0, 0, :3] == -np.inf)  # rows 0..2 sit before key 0
    assert np.all(np.isfinite(lse[0, 0, 3:]))


def test_alignments_differ_exactly_by_the_offset() -> None:
    # Sq = 2, Sk = 5: top-left row 0 sees key 0; bottom-right row 0 sees keys 0..3.
    rng = np.random.default_rng(1)
    q, k, v = rng.normal(size=(1, 1, 2, 4)), rng.normal(size=(1, 1, 5, 4)), rng.normal(size=(1, 1, 5, 4))
    top, _ = attention(q, k, v, AttentionOptions(causal=True, alignment="top_left"))
    bottom, _ = attention(q, k, v, AttentionOptions(causal=True, alignment="bottom_right"))
    np.testing.assert_allclose(top[0, 0, 0], v[0, 0, 0])
    assert visible_pairs(2, 5, AttentionOptions(causal=True, alignment="top_left")) == 1 + 2
    assert visible_pairs(2, 5, AttentionOptions(causal=True, alignment="bottom_right")) == 4 + 5
    assert not np.allclose(top, bottom)


def test_varlen_is_each_sequence_on_its_own() -> None:
    rng = np.random.default_rng(2)
    lens_q, lens_k = [3, 1, 4], [5, 2, 4]
    q, k, v = rng.normal(size=(8, 2, 4)), rng.normal(size=(11, 1, 4)), rng.normal(size=(11, 1, 4))
    cu_q, cu_k = np.cumsum([0, *lens_q]), np.cumsum([0, *lens_k])
    opts = AttentionOptions(causal=True, alignment="bottom_right")
    out, _ = attention_varlen(q, k, v, cu_q, cu_k, opts)
    for n in range(3):
        qs, ks = slice(cu_q[n], cu_q[n + 1]), slice(cu_k[n], cu_k[n + 1])
        o, _ = attention(q[None, qs].transpose(0, 2, 1, 3), k[None, ks].transpose(0, 2, 1, 3),
                         v[None, ks].transpose(0, 2, 1, 3), opts)
        np.testing.assert_allclose(out[qs], o[0].transpose(1, 0, 2))


@pytest.mark.parametrize("kwargs,fragment", [
    ({"causal": True}, "alignment must be one of"),
    ({"window_left": -1, "alignment": "top_left"}, "window_left must be >= 0"),
    ({"softcap": 0.0}, "softcap must be > 0"),
    ({"alignment": "diagonal"}, "'diagonal'"),
])
def test_bad_options_name_the_constraint(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        AttentionOptions(**kwargs)


def test_bad_shapes_name_the_values() -> None:
    q, k = np.zeros((1, 3, 2, 4)), np.zeros((1, 2, 2, 4))
    with pytest.raises(ValueError, match=r"query heads \(3\) must be a multiple of kv heads \(2\)"):
        attention(q, k, k, AttentionOptions())


# --- the cost model and the design brief's figures -------------------------------------------------

def test_score_matrix_figures() -> None:
    assert score_matrix_bytes(4096, 4096, 2) == 32 * MiB
    assert score_matrix_bytes(128 * 1024, 128 * 1024, 2) == 32 * GiB
    assert round(score_matrix_bytes(100_000, 100_000, 2) / GiB, 1) == 18.6
    assert round(score_matrix_bytes(200_000, 200_000, 2) / GiB, 1) == 74.5
    assert round(score_matrix_bytes(1_000_000, 1_000_000, 2) / TiB, 2) == 1.82


def test_pair_figures() -> None:
    assert visible_pairs(1000, 1000) == 10**6
    assert visible_pairs(200_000, 200_000) == 4 * 10**10
    assert [handshakes(n) for n in (5, 50)] == [10, 1225]
    assert abs(handshakes(200_000) - 2 * 10**10) / (2 * 10**10) < 1e-4


def test_flops_count_exactly_the_visible_pairs() -> None:
    assert forward_flops(2, 8, 512, 512, 64) == 4 * 2 * 8 * 512 * 512 * 64
    causal = AttentionOptions(causal=True, alignment="top_left")
    assert visible_pairs(512, 512, causal) == 512 * 513 // 2
    assert forward_flops(1, 1, 512, 512, 64, causal) == 4 * 64 * 512 * 513 // 2
    assert backward_flops(1, 1, 8, 8, 16) == 10 * 16 * 64
    window = AttentionOptions(window_left=2, window_right=0, alignment="top_left")
    assert visible_pairs(5, 5, window) == 1 + 2 + 3 + 3 + 3
    decode = AttentionOptions(causal=True, alignment="bottom_right")
    assert visible_pairs(1, 4096, decode) == 4096


def test_minimum_bytes_count_each_tensor_once() -> None:
    # B=1, Hq=32, Hkv=8, S=1024, D=128, fp16: Q and O 2·32·1024·128·2, K and V 2·8·1024·128·2, LSE 32·1024·4.
    assert forward_min_bytes(1, 32, 8, 1024, 1024, 128, 2) == 2 * 32 * 1024 * 128 * 2 + 2 * 8 * 1024 * 128 * 2 + \
        32 * 1024 * 4

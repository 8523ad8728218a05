"""The paged reference: small cases worked out by hand, and its input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reference.attention import AttentionOptions
from reference.paged_attention import paged_attention


def test_single_token_context_returns_its_value() -> None:
    # one cached token: softmax over one key is 1, so out = v and lse = the score q·k/√D
    q = np.array([[[[1.0, 2.0, 0.0, 0.0]]]])  # [B=1, Sq=1, Hq=1, D=4]
    k_pool = np.zeros((3, 2, 1, 4))
    v_pool = np.zeros((3, 2, 1, 4))
    k_pool[2, 0, 0] = [0.5, 0.25, 0.0, 1.0]
    v_pool[2, 0, 0] = [3.0, -1.0, 7.0, 0.5]
    out, lse = paged_attention(q, k_pool, v_pool, np.array([[2, -1]]), np.array([1]), AttentionOptions())
    assert out[0, 0, 0].tolist() == [3.0, -1.0, 7.0, 0.5]
    assert lse[0, 0, 0] == pytest.approx((0.5 + 0.5) / 2.0)  # (1·0.5 + 2·0.25) / √4


def test_two_tokens_in_two_blocks_by_hand() -> None:
    # block size 1, table [1, 0]: token 0 in block 1, token 1 in block 0; D = 1, scale 1
    q = np.array([[[[1.0]]]])
    k_pool = np.array([[[[math.log(3.0)]]], [[[0.0]]]])  # scores: token 0 → 0, token 1 → ln 3
    v_pool = np.array([[[[10.0]]], [[[2.0]]]])
    out, lse = paged_attention(q, k_pool, v_pool, np.array([[1, 0]]), np.array([2]), AttentionOptions(scale=1.0))
    # weights 1/4 and 3/4: out = 2/4 + 30/4 = 8; lse = ln(1 + 3)
    assert out[0, 0, 0, 0] == pytest.approx(8.0)
    assert lse[0, 0, 0] == pytest.approx(math.log(4.0))


def test_bottom_right_causal_decode_of_two_queries() -> None:
    # 3 cached tokens, Sq = 2: query 0 sits at position 1 and sees tokens 0..1, query 1 sees 0..2
    q = np.zeros((1, 2, 1, 1))  # zero scores: a plain mean of the visible values
    k_pool = np.zeros((2, 2, 1, 1))
    v_pool = np.array([[[[3.0]], [[6.0]]], [[[9.0]], [[0.0]]]])
    opts = AttentionOptions(causal=True, alignment="bottom_right")
    out, _ = paged_attention(q, k_pool, v_pool, np.array([[0, 1]]), np.array([3]), opts)
    assert out[0, :, 0, 0].tolist() == pytest.approx([4.5, 6.0])


def test_empty_sequence_is_zero_and_minus_inf() -> None:
    out, lse = paged_attention(np.ones((1, 1, 2, 4)), np.ones((1, 4, 1, 4)), np.ones((1, 4, 1, 4)),
                               np.array([[-1]]), np.array([0]), AttentionOptions())
    assert (out == 0).all() and (lse == -np.inf).all()


def test_errors_name_the_constraint() -> None:
    q, pool = np.zeros((2, 1, 4, 8)), np.zeros((8, 16, 2, 8))
    with pytest.raises(ValueError, match=r"block_table has 3 columns but seq 1 needs 5 blocks of 16 for 70 tokens"):
        paged_attention(q, pool, pool, np.zeros((2, 3), dtype=int), np.array([10, 70]), AttentionOptions())
    with pytest.raises(ValueError, match=r"query heads \(4\) must be a multiple of kv heads \(3\)"):
        paged_attention(q, np.zeros((8, 16, 3, 8)), np.zeros((8, 16, 3, 8)), np.zeros((2, 1), dtype=int),
                        np.array([1, 1]), AttentionOptions())
    with pytest.raises(ValueError, match=r"alignment must be 'bottom_right'"):
        paged_attention(q, pool, pool, np.zeros((2, 1), dtype=int), np.array([1, 1]),
                        AttentionOptions(causal=True, alignment="top_left"))
    with pytest.raises(ValueError, match=r"entries \[9\] must lie in \[0, 8\)"):
        paged_attention(q, pool, pool, np.array([[9], [0]]), np.array([1, 1]), AttentionOptions())


def test_a_sink_is_a_key_with_no_value() -> None:
    # as in test_two_tokens_in_two_blocks_by_hand: scores 0 and ln 3 on values 2 and 10; a sink of logit ln 4
    # adds e^{ln 4} = 4 to the denominator: weights 1/8 and 3/8, out = 2/8 + 30/8 = 4, lse = ln(1 + 3 + 4) = ln 8
    q = np.array([[[[1.0]]]])
    k_pool = np.array([[[[math.log(3.0)]]], [[[0.0]]]])
    v_pool = np.array([[[[10.0]]], [[[2.0]]]])
    out, lse = paged_attention(q, k_pool, v_pool, np.array([[1, 0]]), np.array([2]), AttentionOptions(scale=1.0),
                               sinks=(math.log(4.0),))
    assert out[0, 0, 0, 0] == pytest.approx(4.0)
    assert lse[0, 0, 0] == pytest.approx(math.log(8.0))
    empty, empty_lse = paged_attention(q, k_pool, v_pool, np.array([[-1]]), np.array([0]), AttentionOptions(),
                                       sinks=(1.5,))
    assert empty[0, 0, 0, 0] == 0 and empty_lse[0, 0, 0] == 1.5
    with pytest.raises(ValueError, match=r"sinks must be 1 finite logits, one per query head; got \[1.0, 2.0\]"):
        paged_attention(q, k_pool, v_pool, np.array([[1, 0]]), np.array([2]), AttentionOptions(), sinks=(1.0, 2.0))

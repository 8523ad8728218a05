"""The known traps as fixed cases, and bad input: every implementation, every dtype it supports."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from impls.attention.api import AttentionCase, AttentionImpl
from reference.attention import AttentionOptions, alibi_slopes
from suite.attention.check import check_attention
from suite.attention.test_attention_conformance import DEVICE, DTYPES, expect

BOTTOM_RIGHT = AttentionOptions(causal=True, alignment="bottom_right")
TOP_LEFT = AttentionOptions(causal=True, alignment="top_left")


def _require(impl: AttentionImpl, case: AttentionCase) -> None:
    reasons = impl.unsupported(case)
    if reasons:
        pytest.skip(f"{impl.name}: " + "; ".join(reasons))


def _case(sq: int, sk: int, dtype: str, opts: AttentionOptions, d: int = 64, hq: int = 2, hkv: int = 2,
          lse: bool = False) -> AttentionCase:
    return AttentionCase(batch=1, heads_q=hq, heads_kv=hkv, seqlen_q=sq, seqlen_k=sk, head_dim=d, dtype=dtype,
                         device=DEVICE, options=opts, needs_lse=lse)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opts", [TOP_LEFT, AttentionOptions(window_left=0, window_right=0, alignment="top_left")],
                         ids=["causal_top_left", "window_0_0"])
def test_nan_in_masked_out_key(attention_impl: AttentionImpl, dtype: str, opts: AttentionOptions) -> None:
    """Keys no query may see hold NaN; the output must not (keys 20.. are beyond every diagonal)."""
    case = _case(20, 33, dtype, opts)
    _require(attention_impl, case)
    expect(attention_impl, "test_nan_in_masked_out_key", case,
           lambda: check_attention(attention_impl, case, seed=11, nan_key=25))


EMPTY_ROWS = {  # name: (Sq, Sk, options); each leaves some query rows with no visible key
    "bottom_right_17_5": (17, 5, BOTTOM_RIGHT),  # rows 0..11 sit before key 0
    "bottom_right_2_1": (2, 1, BOTTOM_RIGHT),
    "top_left_window_0_0_9_4": (9, 4, AttentionOptions(causal=True, window_left=0, window_right=0,
                                                       alignment="top_left")),  # rows 4..8: their key is past Sk
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", list(EMPTY_ROWS))
def test_rows_with_no_visible_key(attention_impl: AttentionImpl, dtype: str, rows: str) -> None:
    """A row with no visible key outputs 0 with lse −inf."""
    sq, sk, opts = EMPTY_ROWS[rows]
    case = _case(sq, sk, dtype, opts, lse=True)
    _require(attention_impl, case)
    expect(attention_impl, "test_rows_with_no_visible_key", case,
           lambda: check_attention(attention_impl, case, seed=sq * 100 + sk))


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_logits_near_the_fp16_limit(attention_impl: AttentionImpl, dtype: str) -> None:
    """Scores around ±3·10⁴ (fp16 max is 65504): exp must be taken after subtracting the row max."""
    case = _case(33, 47, dtype, AttentionOptions(scale=1.0), d=40, lse=True)
    _require(attention_impl, case)
    expect(attention_impl, "test_logits_near_the_fp16_limit", case,
           lambda: check_attention(attention_impl, case, seed=5, logit_scale=30.0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_head_dims_not_a_power_of_two(attention_impl: AttentionImpl, dtype: str) -> None:
    checked = []
    for d in (40, 80, 96, 136, 256):
        case = _case(29, 31, dtype, BOTTOM_RIGHT, d=d)
        if attention_impl.unsupported(case):
            continue
        checked.append(d)
        expect(attention_impl, "test_head_dims_not_a_power_of_two", case,
               partial(check_attention, attention_impl, case, seed=d))
    if not checked:
        pytest.skip(f"{attention_impl.name} supports none of the head dims 40, 80, 96, 136, 256 in {dtype}")


def _bad_calls() -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[str, ...]]]:
    # name: (q shape, k shape, v shape, fragments the error must mention)
    return {
        "heads_not_divisible": ((1, 3, 4, 16), (1, 2, 4, 16), (1, 2, 4, 16), ("3", "2")),
        "head_dim_mismatch": ((1, 2, 4, 16), (1, 2, 4, 32), (1, 2, 4, 32), ("16", "32")),
        "batch_mismatch": ((2, 2, 4, 16), (1, 2, 4, 16), (1, 2, 4, 16), ("2", "1")),
        "k_v_mismatch": ((1, 2, 4, 16), (1, 2, 4, 16), (1, 2, 5, 16), ("4", "5")),
    }


@pytest.mark.parametrize("bad", list(_bad_calls()))
def test_bad_shapes_raise_with_the_values(attention_impl: AttentionImpl, bad: str) -> None:
    qs, ks, vs, fragments = _bad_calls()[bad]
    dtype = next((d for d in ("float16", "float32", "bfloat16")
                  if not attention_impl.unsupported(_case(4, 4, d, AttentionOptions(), d=16))), None)
    if dtype is None:
        pytest.skip(f"{attention_impl.name} supports no dtype at head dim 16 here")
    t = {"device": DEVICE, "dtype": getattr(torch, dtype)}
    q, k, v = torch.randn(qs, **t), torch.randn(ks, **t), torch.randn(vs, **t)
    with pytest.raises((ValueError, TypeError, RuntimeError)) as err:
        attention_impl.forward(q, k, v, AttentionOptions())
    message = str(err.value)
    assert all(f in message for f in fragments), f"error {message!r} should name the values {fragments}"


def test_mixed_dtypes_raise(attention_impl: AttentionImpl) -> None:
    if attention_impl.unsupported(_case(4, 4, "float32", AttentionOptions(), d=16)):
        pytest.skip(f"{attention_impl.name} does not support float32 at head dim 16 here")
    q = torch.randn(1, 2, 4, 16, device=DEVICE)
    k = torch.randn(1, 2, 4, 16, device=DEVICE, dtype=torch.float16)
    with pytest.raises((ValueError, TypeError, RuntimeError)) as err:
        attention_impl.forward(q, k, k, AttentionOptions())
    assert "float16" in str(err.value) and "float32" in str(err.value), str(err.value)


UNSUPPORTED_PROBES = {
    "causal_bottom_right": BOTTOM_RIGHT,
    "window": AttentionOptions(window_left=3, window_right=0, alignment="bottom_right"),
    "alibi": AttentionOptions(alibi_slopes=alibi_slopes(2), alignment="top_left"),
    "softcap": AttentionOptions(softcap=5.0),
}


@pytest.mark.parametrize("probe", list(UNSUPPORTED_PROBES))
def test_unsupported_option_raises(attention_impl: AttentionImpl, probe: str) -> None:
    """An option the implementation declares unsupported must raise, never compute something else."""
    opts = UNSUPPORTED_PROBES[probe]
    for dtype in DTYPES:
        case = _case(5, 7, dtype, opts, d=64)
        reasons = attention_impl.unsupported(case)
        if reasons and not attention_impl.unsupported(_case(5, 7, dtype, AttentionOptions(), d=64)):
            t = {"device": DEVICE, "dtype": getattr(torch, dtype)}
            q, k = torch.randn(1, 2, 5, 64, **t), torch.randn(1, 2, 7, 64, **t)
            with pytest.raises((ValueError, NotImplementedError, TypeError)):
                attention_impl.forward(q, k, k, opts)
            return
    pytest.skip(f"{attention_impl.name} declares {probe} supported (or supports no dtype here)")

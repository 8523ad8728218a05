"""Adapter tests for the CPU attention libraries: what each operator does with its own options, measured
against the float64 reference, and the adapters' translation of a case into a library call.

These pin the conventions the adapters rely on (ONNX's cache offset, GroupQueryAttention's window count,
the transformers config mapping), so that a library that changes one fails here with a clear message
rather than as a conformance failure elsewhere.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

from impls.attention.api import AttentionCase
from impls.base import Implementation
from reference.attention import AttentionOptions, attention
from suite.engine.area import Property
from suite.engine.runner import Tally, run_property

TOP_LEFT = AttentionOptions(causal=True, alignment="top_left")
BOTTOM_RIGHT = AttentionOptions(causal=True, alignment="bottom_right")


def needs(module: str) -> Any:
    return pytest.mark.skipif(importlib.util.find_spec(module) is None, reason=f"module {module!r} is not installed")


def draw(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed + sum(shape)).standard_normal(shape).astype(np.float32)


# ---- the engine's early skip ------------------------------------------------------------------------------------


class _Lacking(Implementation):
    area, name, lacks, dtypes = "attention", "lacks-grad", {"grad": "no backward here"}, ("float32",)


def test_a_declined_property_is_skipped_before_anything_is_drawn() -> None:
    def never(_: Any) -> Any:
        raise AssertionError("a declined property must not draw")

    prop = Property("backward", st.just(0).map(never), lambda impl, case, seed: None, variant="float16",
                    needs=("grad",), dtype="float16")
    tally = Tally()
    with pytest.raises(pytest.skip.Exception, match="no backward here"):
        run_property(_Lacking(), prop, "node", tally)
    assert tally.unsupported == {"lacks-grad computes in float32, not float16": 1, "no backward here": 1}
    assert Property("forward", st.just(0), prop.check, dtype="float32").declined_by(_Lacking()) == []


# ---- JAX ---------------------------------------------------------------------------------------------------------


@needs("jax")
@pytest.mark.xfail(strict=True, raises=ValueError, reason="jax.nn.dot_product_attention under jit does not compile "
                   "float16 on the CPU (impls/attention/jax_xla.py FLOAT16_UNDER_JIT)")
def test_jax_float16_under_jit() -> None:
    import jax

    q, k = draw(1, 4, 2, 16), draw(1, 6, 2, 16, seed=1)
    got = jax.jit(jax.nn.dot_product_attention)(q.astype(np.float16), k.astype(np.float16), k.astype(np.float16))
    want, _ = attention(q.transpose(0, 2, 1, 3), k.transpose(0, 2, 1, 3), k.transpose(0, 2, 1, 3), AttentionOptions())
    np.testing.assert_allclose(np.asarray(got, np.float64).transpose(0, 2, 1, 3), want, atol=5e-3)


@needs("jax")
def test_jax_causal_and_window_are_top_left() -> None:
    """The adapter sends only top-left alignments as is_causal / local_window_size (a bottom-right one as a mask)."""
    import jax

    q, k = draw(1, 3, 1, 16), draw(1, 5, 1, 16, seed=1)
    as_heads = [x.transpose(0, 2, 1, 3) for x in (q, k)]
    for kwargs, opts in (({"is_causal": True}, TOP_LEFT),
                         ({"local_window_size": (1, 0)}, AttentionOptions(window_left=1, window_right=0,
                                                                           alignment="top_left"))):
        got = np.asarray(jax.jit(lambda q, k, kw=kwargs: jax.nn.dot_product_attention(q, k, k, **kw))(q, k))
        want, _ = attention(as_heads[0], as_heads[1], as_heads[1], opts)
        np.testing.assert_allclose(got.transpose(0, 2, 1, 3), want, atol=1e-5, err_msg=str(kwargs))


# ---- ONNX: the standard Attention operator -------------------------------------------------------------------------


def _attention_node(inputs: tuple[str, ...], dtype: str = "float32", **attrs: Any) -> Any:
    from impls.attention import _onnx_graphs as onnx

    types = {"nonpad_kv_seqlen": "int64"}
    return onnx.Node("Attention", "", 25, tuple((n, types.get(n, dtype)) for n in inputs), (("Y", dtype),),
                     tuple(sorted(attrs.items())))


@needs("onnx")
@pytest.mark.parametrize("backend", ["ort", "reference"])
def test_onnx_attention_is_causal_alignment(backend: str) -> None:
    """is_causal is top-left without a cache, bottom-right after past_key (internal cache) or nonpad_kv_seqlen."""
    if backend == "ort" and importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("module 'onnxruntime' is not installed")
    from impls.attention import _onnx_graphs as onnx

    q, k, v = draw(1, 1, 3, 16), draw(1, 1, 5, 16, seed=1), draw(1, 1, 5, 16, seed=2)
    top_left, _ = attention(q, k, v, TOP_LEFT)
    bottom_right, _ = attention(q, k, v, BOTTOM_RIGHT)
    (no_cache,) = onnx.run(_attention_node(("Q", "K", "V"), is_causal=1), {"Q": q, "K": k, "V": v}, backend)
    past = {"Q": q, "K": k[:, :, 2:], "V": v[:, :, 2:], "past_key": k[:, :, :2], "past_value": v[:, :, :2]}
    (cached,) = onnx.run(_attention_node(("Q", "K", "V", "", "past_key", "past_value"), is_causal=1), past,
                         backend)
    external = {"Q": q, "K": k, "V": v, "nonpad_kv_seqlen": np.array([5], dtype=np.int64)}
    (padded,) = onnx.run(_attention_node(("Q", "K", "V", "", "", "", "nonpad_kv_seqlen"), is_causal=1), external,
                         backend)
    np.testing.assert_allclose(no_cache, top_left, atol=1e-5, err_msg="no cache: top-left")
    np.testing.assert_allclose(cached, bottom_right, atol=1e-5, err_msg="past_key: bottom-right")
    np.testing.assert_allclose(padded, bottom_right, atol=1e-5, err_msg="nonpad_kv_seqlen: bottom-right")


# ---- ONNX Runtime's contrib operators -----------------------------------------------------------------------------


@needs("onnxruntime")
def test_group_query_attention_window_counts_the_query_itself() -> None:
    """local_window_size = W keeps W keys ending at the query's own: window_left = W - 1."""
    from impls.attention import _onnx_graphs as onnx

    q, k, v = draw(1, 2, 4, 16), draw(1, 1, 9, 16, seed=1), draw(1, 1, 9, 16, seed=2)
    to3 = onnx.hidden
    tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))
    inputs = (("query", "float32"), ("key", "float32"), ("value", "float32"), ("past_key", "float32"),
              ("past_value", "float32"), ("seqlens_k", "int32"), ("total_sequence_length", "int32"))
    outputs = (("output", "float32"), ("present_key", "float32"), ("present_value", "float32"))
    node = onnx.Node("GroupQueryAttention", onnx.MICROSOFT, 1, inputs, outputs,
                     (("kv_num_heads", 1), ("local_window_size", 3), ("num_heads", 2)))
    feeds = {"query": to3(tq), "key": to3(tk[:, :, 5:]), "value": to3(tv[:, :, 5:]), "past_key": k[:, :, :5],
             "past_value": v[:, :, :5], "seqlens_k": np.array([8], np.int32),
             "total_sequence_length": np.array(9, np.int32)}
    y = onnx.run(node, feeds, "ort")[0]
    got = y.reshape(1, 4, 2, 16).transpose(0, 2, 1, 3)
    for window_left, matches in ((2, True), (3, False)):
        want, _ = attention(q, k, v, AttentionOptions(causal=True, window_left=window_left, alignment="bottom_right"))
        assert np.allclose(got, want, atol=1e-5) == matches, f"window_left {window_left}"


# ---- transformers -------------------------------------------------------------------------------------------------


def _hf(name: str) -> Any:
    from impls.registry import all_implementations

    return next(i for i in all_implementations("attention") if i.name == name)


@needs("transformers")
def test_transformers_config_carries_the_case() -> None:
    gemma, qwen, mistral = _hf("hf-gemma2-eager"), _hf("hf-qwen2-sdpa"), _hf("hf-mistral-sdpa")
    q, k = torch.zeros(1, 4, 3, 32), torch.zeros(1, 2, 9, 32)
    opts = AttentionOptions(scale=0.2, causal=True, window_left=4, softcap=30.0, alignment="bottom_right")
    config, layer = gemma.config(q, k, opts)
    assert (config.sliding_window, config.query_pre_attn_scalar, config.attn_logit_softcapping) == (5, 25, 30.0)
    assert config.layer_types[layer] == "sliding_attention" and config.num_key_value_heads == 2
    config, layer = gemma.config(q, k, BOTTOM_RIGHT)
    assert config.layer_types[layer] == "full_attention" and config.query_pre_attn_scalar == 32
    config, layer = qwen.config(q, k, AttentionOptions(causal=True, window_left=4, alignment="bottom_right"))
    assert config.use_sliding_window and config.layer_types[layer] == "sliding_attention"
    config, _ = mistral.config(q, k, BOTTOM_RIGHT)
    assert config.sliding_window is None
    assert gemma.unsupported(AttentionCase(1, 4, 2, 3, 9, 32, "float32", "cpu", AttentionOptions(scale=0.3)))


@needs("transformers")
def test_transformers_sliding_cache_evicts_before_the_attention_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """A decode step against a cache longer than the window: the function sees W - 1 cached keys plus the new one."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    seen: list[int] = []
    sdpa = ALL_ATTENTION_FUNCTIONS["sdpa"]

    def spy(module: Any, q: torch.Tensor, k: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        seen.append(k.shape[2])
        return sdpa(module, q, k, *args, **kwargs)

    monkeypatch.setitem(ALL_ATTENTION_FUNCTIONS._global_mapping, "sdpa", spy)
    q, k, v = torch.randn(1, 2, 1, 32), torch.randn(1, 1, 29, 32), torch.randn(1, 1, 29, 32)
    opts = AttentionOptions(causal=True, window_left=7, alignment="bottom_right")
    out, _ = _hf("hf-mistral-sdpa").forward(q, k, v, opts)
    want, _ = attention(q.double().numpy(), k.double().numpy(), v.double().numpy(), opts)
    assert seen == [8]
    np.testing.assert_allclose(out.double().numpy(), want, atol=1e-5)


@needs("transformers")
@pytest.mark.skipif(os.environ.get("TOKENSPEC_PROFILE", "quick") != "thorough" or torch.cuda.is_available(),
                    reason="compiles flex attention twice on the CPU (about a minute); the thorough profile runs it")
@pytest.mark.xfail(strict=True, raises=RuntimeError,
                   reason="inductor's CPU flex template fails to build the dynamic-shape kernel of the second call "
                          "(impls/attention/hf_transformers.py FLEX_ON_CPU)")
def test_transformers_flex_on_cpu_survives_a_second_shape() -> None:
    from impls.attention.hf_transformers import MODELS, HfAttention

    flex = HfAttention("flex", MODELS["gemma2"])
    for sq, sk, window in ((5, 5, None), (1, 29, 7)):
        q, k, v = torch.randn(1, 4, sq, 64), torch.randn(1, 2, sk, 64), torch.randn(1, 2, sk, 64)
        opts = AttentionOptions(causal=True, window_left=window, alignment="bottom_right")
        out, _ = flex.forward(q, k, v, opts)
        want, _ = attention(q.double().numpy(), k.double().numpy(), v.double().numpy(), opts)
        np.testing.assert_allclose(out.double().numpy(), want, atol=1e-4)

"""Adapter-specific facts the generic checks rest on, each tested where it is claimed.

- the Triton interpreter's bf16 arithmetic is wrong (why liger-rope's bf16 cases are declined here);
- transformers' DeepSeek-V3 ``apply_rotary_pos_emb_interleave`` rotates interleaved pairs but returns them
  de-interleaved (harmless for attention, which only uses q·kᵀ; why it is not one of the implementations);
- vLLM's LongRoPE follows the engine's max_model_len, not the sequence: with max_model_len at most the
  original context it rotates short sequences as the spec does (the cause of the declared finding);
- the region of transformers' dynamic-NTK declaration (its ``when``) is exactly the schedules on which
  transformers fails: a narrower one would hide failures from the property, a wider one would excuse passes.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
import torch

from reference import rope as ref

needs_interpreter = pytest.mark.skipif(os.environ.get("TRITON_INTERPRET", "") in ("", "0"),
                                       reason="only meaningful under the Triton interpreter (TRITON_INTERPRET=1)")
needs = {m: pytest.mark.skipif(importlib.util.find_spec(m) is None, reason=f"module {m!r} is not installed")
         for m in ("triton", "transformers", "vllm")}


@needs_interpreter
@needs["triton"]
def test_interpreter_bf16_arithmetic_is_still_broken() -> None:
    """When this fails, the interpreter computes bf16 correctly: drop liger-rope's INTERPRETER_BF16 reason."""
    import triton
    import triton.language as tl

    @triton.jit
    def times(x_ptr, y_ptr, out_ptr, n: tl.constexpr):  # type: ignore[no-untyped-def]
        i = tl.arange(0, n)
        tl.store(out_ptr + i, tl.load(x_ptr + i) * tl.load(y_ptr + i))

    gen = torch.Generator().manual_seed(0)
    x, y = (torch.randn(64, generator=gen).bfloat16() for _ in range(2))
    out = torch.empty_like(x)
    times[(1,)](x, y, out, n=64)
    exact = (x.float() * y.float()).bfloat16().float()
    assert (out.float() - exact).abs().max() > 1.0


@needs["transformers"]
def test_transformers_deepseek_interleave_returns_pairs_de_interleaved() -> None:
    from transformers.models.deepseek_v3.modeling_deepseek_v3 import apply_rotary_pos_emb_interleave

    config = ref.load_rope_config("deepseek-v3")
    gen = torch.Generator().manual_seed(3)
    q, k = (torch.randn(1, 2, 5, 64, generator=gen, dtype=torch.float64) for _ in range(2))  # [B, H, S, D]
    positions = np.array([0, 1, 7, 4096, 100000])
    phi = torch.from_numpy(ref.angles(positions, config))
    cos, sin = (torch.cat((f, f), -1)[None] for f in (phi.cos(), phi.sin()))  # what the rotary module returns
    q_out, k_out = apply_rotary_pos_emb_interleave(q, k, cos, sin)
    want_q = ref.apply(q[0].transpose(0, 1).numpy(), positions, config)  # [S, H, D], interleaved in and out
    de_interleave = np.concatenate([np.arange(0, 64, 2), np.arange(1, 64, 2)])
    got_q = q_out[0].transpose(0, 1).numpy()
    assert np.abs(got_q - want_q[..., de_interleave]).max() < 1e-12  # the spec's result, permuted
    assert np.abs(got_q - want_q).max() > 0.1  # so not the interleaved rotation itself
    want_k = ref.apply(k[0].transpose(0, 1).numpy(), positions, config)
    logits_got = np.einsum("shd,thd->hst", got_q, k_out[0].transpose(0, 1).numpy())
    logits_want = np.einsum("shd,thd->hst", want_q, want_k)
    assert np.abs(logits_got - logits_want).max() < 1e-10  # the permutation cancels in q·kᵀ


@needs["vllm"]
def test_vllm_longrope_follows_max_model_len_not_the_sequence() -> None:
    from vllm.model_executor.layers.rotary_embedding import Phi3LongRoPEScaledRotaryEmbedding

    from impls.rope.vllm_rope import vllm_context

    config = ref.load_rope_config("phi-3.5-mini-instruct")
    gen = torch.Generator().manual_seed(4)
    q, k = torch.randn(3, 96, generator=gen), torch.randn(3, 96, generator=gen)
    positions = torch.tensor([0, 100, 4095])
    want = ref.apply(q.double().numpy()[:, None], positions.numpy(), config)[:, 0]
    results = {}
    for max_model_len in (4096, 131072):
        with vllm_context(max_model_len):  # what get_rope builds, without its process-wide cache
            s = config.scaling
            assert s is not None
            rope = Phi3LongRoPEScaledRotaryEmbedding(96, 96, 131072, 4096, 10000.0, True, torch.float32,
                                                     list(s.short_factor), list(s.long_factor))
            results[max_model_len] = float(np.abs(rope(positions, q, k)[0].double().numpy() - want).max())
    assert results[4096] < 1e-3  # short factors: the spec for a sequence of 4096
    assert results[131072] > 0.1  # long factors for every sequence: the declared finding


@needs["transformers"]
def test_transformers_dynamic_declaration_covers_exactly_the_failing_schedules() -> None:
    from impls import registry
    from impls.rope.api import RopeCase, RopeImpl
    from impls.rope.hf_transformers import DYNAMIC_2X, _dynamic_keeps_longest
    from suite.rope.check import check_schedule

    impl = next(i for i in registry.all_implementations("rope") if i.name == "transformers-rope-phi3")
    assert isinstance(impl, RopeImpl)
    schedules = {  # max_position_embeddings 4096; True: some call runs on a longer call's frequencies
        (8192, 4096): True, (8192, 6144): True, (4097, 4096): True, (4096, 8192, 4096): True,
        (9000, 8192, 100): True, (8192, 4095): False, (8192, 100, 6144): False, (8192, 8192): False,
        (2048, 4096, 8192): False,
    }
    for schedule, stale in schedules.items():
        case = RopeCase(1, 1, 1, "float32", DYNAMIC_2X[ref.HALF_SPLIT], (), "cpu", schedule=schedule)
        assert _dynamic_keeps_longest(case) == stale, schedule
        assert check_schedule(impl, case, 0).ok != stale, (schedule, check_schedule(impl, case, 0).describe())

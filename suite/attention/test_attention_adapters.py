"""Adapter tests: the option and layout translation of the attention adapters.

The flash-attn adapter is driven against a stand-in module that implements flash-attn's documented
signatures with the reference; these are adapter tests, never flash-attn conformance.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from impls.attention._masks import additive_bias, needs_mask
from impls.attention.api import AttentionCase
from impls.attention.flash_attn import FLASH_ATTN_2, FLASH_ATTN_4, FlashAttn
from impls.base import declared_reasons
from reference.attention import AttentionOptions, alibi_slopes, visible
from suite.attention.check import check
from suite.attention.flash_standin import make_standin

STANDINS = {
    "fa2-api": (FLASH_ATTN_2, -1, "return_attn_probs"),
    "fa4-api": (FLASH_ATTN_4, None, "return_lse"),
}
OPTION_SETS = {
    "plain": AttentionOptions(),
    "causal": AttentionOptions(causal=True, alignment="bottom_right"),
    "window_left_only": AttentionOptions(window_left=3, alignment="bottom_right"),
    "window_right_only": AttentionOptions(window_right=2, alignment="bottom_right"),
    "causal_window": AttentionOptions(causal=True, window_left=4, alignment="bottom_right"),
    "softcap_scale": AttentionOptions(softcap=3.0, scale=0.2),
    "alibi": AttentionOptions(causal=True, alibi_slopes=alibi_slopes(4), alignment="bottom_right"),
}


def standin_adapter(flavour: str) -> FlashAttn:
    api, unbounded, flag = STANDINS[flavour]
    module = f"tokenspec_flash_standin_{flavour.replace('-', '_')}"
    make_standin(module, unbounded, flag)
    return FlashAttn(f"adapter-test-{flavour}", dataclasses.replace(api, module=module), "adapter under test")


@pytest.mark.parametrize("options", list(OPTION_SETS))
@pytest.mark.parametrize("flavour", list(STANDINS))
def test_flash_attn_adapter_translation_with_standin(flavour: str, options: str) -> None:
    adapter = standin_adapter(flavour)
    opts = OPTION_SETS[options]
    for sq, sk in ((7, 19), (19, 7), (16, 16)):
        case = AttentionCase(2, 4, 2, sq, sk, 64, "float16", "cpu", opts, needs_lse=True)
        if declared_reasons(adapter, case):
            assert options == "alibi" and flavour == "fa4-api", declared_reasons(adapter, case)
            continue
        result = check(adapter, case, seed=sq * sk)
        assert result.ok, result.describe()


@pytest.mark.parametrize("flavour", list(STANDINS))
def test_flash_attn_adapter_varlen_with_standin(flavour: str) -> None:
    adapter = standin_adapter(flavour)
    case = AttentionCase(3, 2, 1, 9, 12, 32, "bfloat16", "cpu", OPTION_SETS["causal"],
                         seqlens=((5, 12), (9, 3), (1, 4)), needs_lse=True)
    result = check(adapter, case, seed=4)
    assert result.ok, result.describe()


def test_flash_attn_refuses_top_left_when_lengths_differ() -> None:
    adapter = standin_adapter("fa2-api")
    top_left = AttentionOptions(causal=True, alignment="top_left")
    assert declared_reasons(adapter, AttentionCase(1, 2, 2, 7, 19, 64, "float16", "cpu", top_left))
    assert not declared_reasons(adapter, AttentionCase(1, 2, 2, 19, 19, 64, "float16", "cpu", top_left))
    q = torch.randn(1, 2, 7, 64, dtype=torch.float16)
    k = torch.randn(1, 2, 19, 64, dtype=torch.float16)
    with pytest.raises(NotImplementedError, match="bottom-right"):
        adapter.forward(q, k, k, top_left)


def test_flash_attn_window_convention() -> None:
    two, four = standin_adapter("fa2-api"), standin_adapter("fa4-api")
    opts = AttentionOptions(window_left=5, alignment="bottom_right")
    assert two._options(opts, 64)["window_size"] == (5, -1)
    assert four._options(opts, 64)["window_size"] == (5, None)


@pytest.mark.parametrize("sq,sk", [(3, 9), (9, 3), (5, 5)])
def test_sdpa_mask_is_the_reference_mask(sq: int, sk: int) -> None:
    opts = AttentionOptions(causal=True, window_left=2, alibi_slopes=alibi_slopes(2), alignment="bottom_right")
    bias = additive_bias(sq, sk, 2, opts, torch.float64, torch.device("cpu"))
    assert bias.shape == (1, 2, sq, sk)
    assert torch.equal(torch.isfinite(bias[0, 0]), torch.from_numpy(visible(sq, sk, opts)))


def test_sdpa_uses_is_causal_only_for_top_left() -> None:
    top_left = AttentionOptions(causal=True, alignment="top_left")
    bottom_right = AttentionOptions(causal=True, alignment="bottom_right")
    assert not needs_mask(top_left, 3, 9) and not needs_mask(bottom_right, 9, 9)
    assert needs_mask(bottom_right, 3, 9)

"""The engine-style capacity plan, worked out by hand on vendored configs and on patterns built for the purpose."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from reference.kv_plan import PlanInputs, Unplannable, hybrid_block_size, plan, pool_budget, window_blocks
from reference.model_config import FULL, MAMBA, SLIDING, load_config, preset, shape_from_config

GB = 10**9


def test_llama_3_8b_at_its_length() -> None:
    """A page: 16 tokens × 2 × 8 heads × 128 × 2 B = 65,536 B; a block: 32 layers = 2 MiB; 40 GB holds 19,073
    blocks, one held back; a request at 8,192 tokens needs 512: 37.25 requests."""
    p = plan(preset("llama-3-8b"), PlanInputs(8192, 40 * GB))
    assert (p.bytes_per_block, p.num_blocks, p.usable_blocks, p.blocks_per_request) == (2_097_152, 19_073, 19_072, 512)
    assert p.max_concurrency == Fraction(19_072, 512) == Fraction(149, 4) and p.max_requests == 37
    assert p.page_bytes == (65_536,) and len(p.groups) == 1


def test_gemma_2_groups_its_sliding_and_full_layers() -> None:
    """21 sliding + 21 full layers: two groups of 21; a page is 16 × 2 × 8 × 256 × 2 = 131,072 B. A sliding layer
    keeps 4,095 + 4,096 in-flight tokens, which inside 8,192 touch at most 512 blocks, as the full layers do."""
    p = plan(preset("gemma-2-9b"), PlanInputs(8192, 40 * GB))
    kinds = sorted(p.layers[g[0]].kind for g in p.groups)
    assert kinds == [FULL, SLIDING] and p.bytes_per_block == 21 * 131_072
    assert p.blocks_per_request == 512 + 512
    longer = plan(preset("gemma-2-9b"), PlanInputs(32768, 40 * GB))
    assert longer.blocks_per_request == 2048 + 513  # now the window slides: it can straddle one more block


def test_window_blocks() -> None:
    assert window_blocks(16, 100, 16) == 2  # 16 tokens starting inside a block touch two
    assert window_blocks(17, 100, 16) == 2  # 17 tokens touch at most two: ceil(16 / 16) + 1
    assert window_blocks(18, 100, 16) == 3
    assert window_blocks(99, 100, 16) == 7 and window_blocks(100, 100, 16) == 7 and window_blocks(500, 100, 16) == 7
    assert window_blocks(1, 1, 16) == 1


def test_jamba_aligns_its_attention_block_to_the_mamba_page() -> None:
    """Mamba page (bfloat16): 8192 × 3 + 8192 × 16 elements × 2 B = 311,296 B; an attention token is 4,096 B, so
    the block grows to 16 · ceil(311,296 / 65,536) = 80 tokens (327,680 B), and the Mamba page is padded to it.
    28 Mamba + 4 attention layers: 8 groups of 4; a request takes one state block per Mamba group and
    ceil(8192 / 80) = 103 attention blocks."""
    jamba = preset("jamba-v0.1")
    assert hybrid_block_size(jamba, "bfloat16") == 80
    p = plan(jamba, PlanInputs(8192, 40 * GB, block_size=80))
    assert p.page_bytes == (327_680,) and len(p.groups) == 8 and p.bytes_per_block == 4 * 327_680
    assert p.blocks_per_request == 7 + 103
    unaligned = plan(jamba, PlanInputs(8192, 40 * GB, block_size=16))
    assert {layer.page_bytes for layer in unaligned.layers} == {311_296}  # attention pages padded 4.75×
    assert next(layer for layer in unaligned.layers if layer.kind == FULL).block_size == 16


def _pattern(sliding: int, full: int, **more: Any) -> Any:
    config = {**load_config("llama-3-8b"), "num_hidden_layers": sliding + full, "sliding_window": 1024,
              "layer_types": ["sliding_attention"] * sliding + ["full_attention"] * full, **more}
    return shape_from_config(config, f"{sliding}s+{full}f")


def test_groups_pad_a_kind_whose_count_is_not_a_multiple() -> None:
    """20 sliding + 10 full: groups of 10 (2 sliding, 1 full). 12 sliding + 13 full: 13 < 1.5 × 12, so groups of
    13, and the 12 sliding layers pay for a 13th (padding)."""
    p = plan(_pattern(20, 10), PlanInputs(8192, 40 * GB))
    assert sorted(len(g) for g in p.groups) == [10, 10, 10] and p.bytes_per_block == 10 * 65_536
    q = plan(_pattern(12, 13), PlanInputs(8192, 40 * GB))
    assert sorted(len(g) for g in q.groups) == [12, 13] and q.bytes_per_block == 13 * 65_536


def test_without_hybrid_groups_a_mixed_model_sizes_sliding_layers_as_full() -> None:
    p = plan(_pattern(20, 10), PlanInputs(8192, 40 * GB, hybrid_groups=False))
    assert len(p.groups) == 1 and p.blocks_per_request == 512 and {layer.kind for layer in p.layers} == {FULL}
    mistral = plan(preset("mistral-7b-v0.1"), PlanInputs(32768, 40 * GB, hybrid_groups=False))
    assert {layer.kind for layer in mistral.layers} == {SLIDING}  # nothing to make uniform: windows stay


def test_prefix_sharing_credit() -> None:
    """Requests sharing a 1,000-token prefix share its 62 full blocks: the first needs 512, each later one 450."""
    p = plan(preset("llama-3-8b"), PlanInputs(8192, 40 * GB, prefix_tokens=1000))
    assert p.prefix_credit_blocks == 62 and p.max_requests == 1 + (19_072 - 512) // 450
    assert p.max_concurrency == Fraction(19_072, 512)  # the engine's figure has no credit
    window = plan(preset("mistral-7b-v0.1"), PlanInputs(32768, 40 * GB, prefix_tokens=1000))
    assert window.prefix_credit_blocks == 0  # a sliding layer's prefix blocks leave its window
    with pytest.raises(ValueError, match="prefix_tokens must be below max_model_len 8192"):
        PlanInputs(8192, 40 * GB, prefix_tokens=8192)


def test_a_draft_model_shares_the_pool() -> None:
    """Llama-3-70B with a Llama-3-8B draft: the same page (8 × 128 heads), 80 + 32 layers in one group."""
    p = plan(preset("llama-3-70b"), PlanInputs(8192, 40 * GB, draft=preset("llama-3-8b")))
    assert len(p.groups) == 1 and p.bytes_per_block == 112 * 65_536 and p.blocks_per_request == 512


def test_mla_next_to_other_pages() -> None:
    """DeepSeek-V3's MLA page (16 × 576 × 2 = 18,432 B) next to a full-attention draft: one type, one group whose
    block holds every layer's page. Next to a sliding draft (65,536 B, not a multiple) the MLA page would have to
    be padded, which MLA cannot be: the sliding layers are sized as full instead (one type, one group)."""
    deepseek = preset("deepseek-v3")
    p = plan(deepseek, PlanInputs(8192, 40 * GB, draft=preset("llama-3-8b")))
    assert len(p.groups) == 1 and p.bytes_per_block == 61 * 18_432 + 32 * 65_536
    q = plan(deepseek, PlanInputs(8192, 40 * GB, draft=preset("mistral-7b-v0.1")))
    assert len(q.groups) == 1 and SLIDING not in {layer.kind for layer in q.layers}
    mla_and_mamba = shape_from_config({**load_config("jamba-v0.1"), "num_hidden_layers": 2, "attn_layer_period": 2,
                                       "attn_layer_offset": 1, "layer_types": None}, "jamba-2")
    assert mla_and_mamba.kinds == (MAMBA, FULL)
    with pytest.raises(Unplannable, match="neither divides the largest page"):
        plan(deepseek, PlanInputs(8192, 40 * GB, draft=mla_and_mamba))


def test_nothing_fits() -> None:
    p = plan(preset("llama-3.1-405b"), PlanInputs(8192, 10**9))
    assert p.max_requests == 0 and p.usable_blocks < p.blocks_per_request


def test_pool_budget() -> None:
    assert pool_budget(80 * GB) == 72 * GB
    assert pool_budget(80 * GB, Fraction(1), weights=16 * GB, activation_reserve=2 * GB,
                       cuda_graph_reserve=GB) == 61 * GB
    with pytest.raises(ValueError, match="no memory left for the KV cache"):
        pool_budget(24 * GB, weights=140 * GB)
    with pytest.raises(ValueError, match=r"utilization must be in \(0, 1\]; got 2"):
        pool_budget(80 * GB, Fraction(2))


def test_a_model_that_caches_nothing_is_refused() -> None:
    assert MAMBA in preset("jamba-v0.1").layer_kinds
    with pytest.raises(ValueError, match="block_size must be an integer >= 1; got 0"):
        PlanInputs(8192, GB, block_size=0)

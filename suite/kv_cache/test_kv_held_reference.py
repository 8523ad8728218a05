"""The reference's memory-held figures, worked out by hand (the issue's Mistral case first)."""

from __future__ import annotations

import pytest

from reference import kv_cache as ref
from reference.model_config import FULL, MAMBA, SLIDING, ConfigError, load_config, preset, shape_from_config

# The issue's measurement: Mistral-7B's shape (8 kv heads × 128) cut to 2 layers, window 6, batch 2, bfloat16.
MISTRAL_6 = shape_from_config({**load_config("mistral-7b-v0.1"), "num_hidden_layers": 2, "sliding_window": 6})
PER_TOKEN = 2 * 2 * 2 * 8 * 128 * 2  # batch 2 × 2 layers × (K and V) × 8 heads × 128 × 2 bytes = 16,384


def test_the_issues_mistral_case() -> None:
    """13 prompt tokens: a cache must keep the 6 of the window (98,304 B); the next query needs 5 (81,920 B, what
    transformers' views show); a prefill-then-trim implementation holds all 13 at its peak (212,992 B)."""
    kept = ref.bytes_by_kind(MISTRAL_6, 2, {SLIDING: ref.kept_tokens(MISTRAL_6, SLIDING, 13)}, "bfloat16")
    need = ref.bytes_by_kind(MISTRAL_6, 2, {SLIDING: ref.next_step_tokens(MISTRAL_6, SLIDING, 13)}, "bfloat16")
    peak = ref.bytes_by_kind(MISTRAL_6, 2, {SLIDING: ref.prefill_peak_tokens(SLIDING, 13)}, "bfloat16")
    assert (kept, need, peak) == ({SLIDING: 98_304}, {SLIDING: 81_920}, {SLIDING: 212_992})
    assert 6 * PER_TOKEN == 98_304


def test_kept_tokens_grow_then_stop_at_the_window() -> None:
    assert [ref.kept_tokens(MISTRAL_6, SLIDING, t) for t in (1, 5, 6, 7, 100)] == [1, 5, 6, 6, 6]
    assert [ref.next_step_tokens(MISTRAL_6, SLIDING, t) for t in (1, 5, 6, 7, 100)] == [1, 5, 5, 5, 5]
    assert ref.kept_tokens(MISTRAL_6, FULL, 100) == ref.next_step_tokens(MISTRAL_6, FULL, 100) == 100


def test_a_static_cache_holds_its_length_capped_at_the_window() -> None:
    assert ref.static_tokens(MISTRAL_6, SLIDING, 16) == 6 and ref.static_tokens(MISTRAL_6, SLIDING, 4) == 4
    assert ref.static_tokens(MISTRAL_6, FULL, 16) == 16
    with pytest.raises(ValueError, match="max_cache_len must be an integer >= 1; got 0"):
        ref.static_tokens(MISTRAL_6, FULL, 0)


def test_paged_blocks_of_a_window() -> None:
    """Window 6 in blocks of 4: at 8 tokens the window is tokens 2..7, blocks 0 and 1; at 9 it is 3..8, three
    blocks; a full layer holds every block."""
    assert list(ref.held_blocks(MISTRAL_6, SLIDING, 8, 4)) == [0, 1]
    assert list(ref.held_blocks(MISTRAL_6, SLIDING, 9, 4)) == [0, 1, 2]
    assert list(ref.held_blocks(MISTRAL_6, SLIDING, 13, 4)) == [1, 2, 3]
    assert ref.paged_tokens(MISTRAL_6, SLIDING, 13, 4) == 12 and ref.paged_tokens(MISTRAL_6, FULL, 13, 4) == 16
    assert list(ref.held_blocks(MISTRAL_6, SLIDING, 0, 4)) == []


def test_prefix_sharing_counts_only_blocks_still_held() -> None:
    """Prefix of 8 tokens in blocks of 4 (2 full blocks); at 13 tokens a window-6 layer holds blocks 1..3, so it
    shares block 1 only; a full layer shares both."""
    per_block_layer = 4 * 2 * 8 * 128 * 2
    assert ref.prefix_sharing_savings(MISTRAL_6, 3, 8, 4, "bfloat16", tokens=13) == 2 * 2 * 1 * per_block_layer
    llama = shape_from_config({**load_config("llama-3-8b"), "num_hidden_layers": 2})
    assert ref.prefix_sharing_savings(llama, 3, 8, 4, "bfloat16", tokens=13) == 2 * 2 * 2 * per_block_layer
    with pytest.raises(ValueError, match="tokens 5 must be at least the shared prefix of 8"):
        ref.prefix_sharing_savings(llama, 3, 8, 4, tokens=5)


def test_fp8_keeps_one_scale_for_k_and_one_for_v_per_layer() -> None:
    llama = shape_from_config({**load_config("llama-3-8b"), "num_hidden_layers": 2})
    got = ref.bytes_by_kind(llama, 2, {FULL: 13}, "float8_e4m3fn")
    assert got == {FULL: 2 * (2 * 13 * 2 * 8 * 128 + 8)}


def test_jamba_mamba_state() -> None:
    """Jamba-v0.1: inner 2 × 4096 = 8192, conv kernel 4, state 16, 28 Mamba layers. Kept with the current input
    (kernel 4) in bfloat16 and the SSM state in float32: 8192·4·2 + 8192·16·4 = 589,824 B per layer and sequence."""
    jamba = preset("jamba-v0.1")
    assert jamba.count(MAMBA) == 28 and jamba.mamba is not None and jamba.mamba.inner == 8192
    assert ref.mamba_state_bytes(jamba, 1, "bfloat16", "float32", 4) == 28 * 589_824
    assert ref.mamba_state_bytes(jamba, 1, "bfloat16", "bfloat16", 3) == 28 * (8192 * 3 * 2 + 8192 * 16 * 2)
    with pytest.raises(ValueError, match="8192 cannot be split evenly over 3 ranks"):
        ref.mamba_state_bytes(jamba, 1, "bfloat16", "bfloat16", 3, tp=3)


@pytest.mark.parametrize(("change", "named"), [
    ({"num_key_value_heads": 0}, "num_key_value_heads must be >= 1; got 0"),
    ({"num_key_value_heads": 5}, "multiple of num_key_value_heads 5"),
    ({"sliding_window": -4}, "sliding_window must be >= 1; got -4"),
    ({"num_hidden_layers": "32"}, "num_hidden_layers must be an integer >= 1; got '32' (str)"),
    ({"num_hidden_layers": 10**6}, "between 1 and 10000; got 1000000"),
    ({"head_dim": 0}, "head_dim must be >= 1; got 0"),
    ({"hidden_size": 100, "head_dim": None}, "hidden_size 100 is not divisible by num_attention_heads 32"),
    ({"layer_types": ["full_attention"] * 31}, "layer_types has 31 entries but num_hidden_layers is 32"),
    ({"layer_types": ["mamba"] * 32}, "layer_types holds ['mamba']"),
    ({"layer_types": ["sliding_attention"] * 32}, "sliding layers but sliding_window is null"),
    ({"model_type": 7}, "model_type must be a string"),
])
def test_nonsense_configs_are_refused_naming_the_key(change: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError) as err:
        shape_from_config({**load_config("llama-3-8b"), **change}, "bad")
    assert named in str(err.value)


def test_absent_kv_heads_mean_multi_head_attention_but_zero_is_an_error() -> None:
    config = {k: v for k, v in load_config("llama-3-8b").items() if k != "num_key_value_heads"}
    assert shape_from_config(config).num_kv_heads == 32
    assert shape_from_config({**config, "num_key_value_heads": None}).num_kv_heads == 32


def test_which_layers_slide() -> None:
    """transformers' rules: Phi-3 style configs slide on every layer when sliding_window is set, Mixtral's null
    window means full attention, Qwen2 slides only with use_sliding_window from max_window_layers on."""
    phi3 = {"model_type": "phi3", "num_hidden_layers": 4, "num_attention_heads": 32, "hidden_size": 3072,
            "sliding_window": 262144}
    assert shape_from_config(phi3).layer_kinds == (SLIDING,) * 4
    assert set(preset("mixtral-8x7b-v0.1").layer_kinds) == {FULL}
    qwen = {**load_config("qwen2.5-7b"), "use_sliding_window": True, "max_window_layers": 20}
    assert shape_from_config(qwen).layer_kinds == (FULL,) * 20 + (SLIDING,) * 8
    assert set(preset("qwen2.5-7b").layer_kinds) == {FULL}
    explicit = {**load_config("llama-3-8b"), "num_hidden_layers": 3, "sliding_window": 512,
                "layer_types": ["sliding_attention", "sliding_attention", "full_attention"]}
    assert shape_from_config(explicit).layer_kinds == (SLIDING, SLIDING, FULL)

"""KV sizing: the brief's figures, the properties, the planted bugs, the presets and the CLI."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference import kv_cache as ref
from reference.kv_cli import main as kv_cli
from reference.model_config import ConfigError, load_config, preset, preset_names, shape_from_config
from suite.kv_cache.planted import PLANTED_SIZERS, gib_reported_as_gb
from suite.kv_cache.sizing_checks import figure_failures, reference_sizer

PRESETS = preset_names()


def test_the_reference_reproduces_every_figure() -> None:
    assert figure_failures(reference_sizer) == []


@pytest.mark.parametrize("sizer", PLANTED_SIZERS, ids=lambda f: f.__name__)
def test_planted_sizing_bug_is_caught(sizer) -> None:  # type: ignore[no-untyped-def]
    assert figure_failures(sizer), f"{sizer.__name__} passed every figure"


def test_gib_reported_as_gb_is_caught() -> None:
    assert figure_failures(reference_sizer, units=(gib_reported_as_gb, ref.in_gib))


def test_the_source_documents_mha_figure_is_the_wrong_one() -> None:
    """The source computes Llama-2-70B as 80 × 2 × 4096 × 64 × 128 × 2 B: 64 *query* heads. The model
    has 8 kv heads (GQA-8), so its cache is 8× smaller."""
    mha_equivalent = 80 * 2 * 4096 * 64 * 128 * 2
    assert round(ref.in_gb(mha_equivalent), 1) == 10.7 and ref.in_gib(mha_equivalent) == 10
    real = ref.sequence_bytes(preset("llama-2-70b"), 4096)
    assert real * 8 == mha_equivalent
    assert round(ref.in_gb(ref.sequence_bytes(preset("llama-2-70b"), 128 * 1024))) == 43  # not ≈ 330 GB


def test_gqa_and_mqa_ratios() -> None:
    mha = shape_from_config({**load_config("llama-3-8b"), "num_key_value_heads": 32})
    gqa, mqa = preset("llama-3-8b"), shape_from_config({**load_config("llama-3-8b"), "num_key_value_heads": 1})
    assert ref.bytes_per_token(mha) == 4 * ref.bytes_per_token(gqa) == 32 * ref.bytes_per_token(mqa)


WEIGHTS_GB = {7e9: (28, 14, 7, 3.5), 70e9: (280, 140, 70, 35), 671e9: (2684, 1342, 671, 336)}


@pytest.mark.parametrize("params", list(WEIGHTS_GB))
def test_weight_figures(params: float) -> None:
    got = [ref.in_gb(ref.weight_bytes(int(params), d)) for d in ("float32", "float16", "int8", "int4")]
    want = WEIGHTS_GB[params]
    assert [round(g, 1) if w == 3.5 else round(g) for g, w in zip(got, want, strict=True)] == list(want)


def test_parameter_split_of_a_4096_wide_32_layer_model() -> None:
    attention, ffn = 4 * 4096**2 * 32, 2 * 4096 * 16384 * 32
    assert round(attention / 1e9, 1) == 2.1 and round(ffn / 1e9, 1) == 4.3


def test_one_hundred_requests_on_an_80_gb_gpu() -> None:
    model = preset("llama-3-8b")
    budget = ref.Budget(80 * ref.GB, weights=ref.weight_bytes(8_030_000_000, "float16"))
    assert round(ref.in_gb(budget.weights)) == 16
    assert ref.max_concurrent_sequences(model, budget, 32 * 1024) < 100  # 400 GiB: impossible
    assert ref.max_concurrent_sequences(model, budget, 4 * 1024) >= 100  # 50 GiB beside the weights


@given(name=st.sampled_from(PRESETS), tokens=st.integers(1, 300_000), batch=st.integers(1, 64),
       kv=st.sampled_from(sorted(ref.KV_FORMATS)))
def test_linear_in_batch_and_in_tokens_before_any_window(name: str, tokens: int, batch: int, kv: str) -> None:
    model = preset(name)
    assert ref.cache_bytes(model, batch, tokens, kv) == batch * ref.sequence_bytes(model, tokens, kv)
    if model.sliding_window is None or tokens <= model.sliding_window:
        assert ref.sequence_bytes(model, tokens, kv) == tokens * ref.bytes_per_token(model, kv)


@given(name=st.sampled_from(PRESETS), tokens=st.integers(1, 100_000), block=st.sampled_from([1, 8, 16, 32, 256]))
def test_paged_is_at_least_exact_and_wastes_less_than_a_block(name: str, tokens: int, block: int) -> None:
    model = preset(name)
    exact, paged = ref.sequence_bytes(model, tokens), ref.paged_sequence_bytes(model, tokens, block)
    assert paged >= exact
    sliding_layers = model.count("sliding")
    slack_blocks = model.num_layers + sliding_layers  # at most one partial block per layer (two when sliding)
    assert paged - exact < slack_blocks * block * max(ref.layer_bytes_per_token(model, k, ref.kv_format("float16"))
                                                      for k in set(model.layer_kinds)) + 1
    assert 0 <= ref.paged_waste_slots(tokens, block) < block


@given(name=st.sampled_from(["llama-3-70b", "llama-3-8b", "mistral-7b-v0.1", "qwen2.5-7b"]),
       tp=st.sampled_from([1, 2, 4, 8, 16, 32]))
def test_tp_shards_sum_to_the_whole_or_replicate(name: str, tp: int) -> None:
    model = preset(name)
    whole = ref.cache_bytes(model, 1, 777)
    if tp <= model.num_kv_heads:
        assert ref.all_ranks_bytes(model, 1, 777, tp=tp) == whole
    else:
        assert ref.all_ranks_bytes(model, 1, 777, tp=tp) == whole * tp // model.num_kv_heads


@given(name=st.sampled_from(PRESETS), tokens=st.integers(1, 200_000),
       gpu_gb=st.integers(8, 200), util=st.sampled_from([Fraction(1), Fraction(9, 10)]))
def test_capacity_is_the_largest_count_that_fits(name: str, tokens: int, gpu_gb: int, util: Fraction) -> None:
    model = preset(name)
    budget = ref.Budget(gpu_gb * ref.GB, util, weights=2 * ref.GB)
    n = ref.max_concurrent_sequences(model, budget, tokens)
    per = ref.sequence_bytes(model, tokens)
    assert n * per <= budget.kv_bytes < (n + 1) * per


@given(name=st.sampled_from(["llama-3-8b", "gemma-2-9b", "jamba-v0.1"]), concurrency=st.integers(1, 300))
def test_max_context_is_the_largest_that_fits(name: str, concurrency: int) -> None:
    model, budget = preset(name), ref.Budget(80 * ref.GB, weights=16 * ref.GB)
    longest = ref.max_context(model, budget, concurrency)
    assert concurrency * ref.sequence_bytes(model, longest) <= budget.kv_bytes
    assert concurrency * ref.sequence_bytes(model, longest + 1) > budget.kv_bytes


def test_prefix_sharing_saves_the_shared_full_blocks() -> None:
    model = preset("llama-3-8b")
    # 10 sequences share a 1000-token prompt in blocks of 16: 62 full blocks shared, the 63rd copied.
    assert ref.prefix_sharing_savings(model, 10, 1000, 16) == 9 * 62 * 16 * 131_072


def test_a_config_missing_a_needed_field_names_it() -> None:
    config = load_config("llama-3-8b")
    del config["num_hidden_layers"]
    with pytest.raises(ConfigError, match="num_hidden_layers"):
        shape_from_config(config, "broken")
    with pytest.raises(ConfigError, match="kv_lora_rank"):
        shape_from_config({k: v for k, v in load_config("deepseek-v3").items() if k != "kv_lora_rank"})


def test_tp_that_does_not_divide_is_an_error() -> None:
    with pytest.raises(ValueError, match="8 kv heads cannot be split evenly over 3 ranks"):
        ref.cache_bytes(preset("llama-3-8b"), 1, 10, tp=3)


def test_cli_prints_the_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert kv_cli(["llama-3-8b", "--context", "131072", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["kv_bytes"] == 16 * 2**30 and rows[0]["kv_GiB"] == 16.0 and rows[0]["kv_GB"] == 17.18
    assert kv_cli(["llama-3-8b", "--context", "4096", "32768", "--batch", "100", "--gpu-gb", "80", "--params",
                   "8.03e9", "--weights-dtype", "float16", "--utilization", "1"]) == 0
    table = capsys.readouterr().out
    assert "True" in table and "False" in table and "GiB = 2^30 bytes" in table
    assert kv_cli(["no-such-model"]) == 2

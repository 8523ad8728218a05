"""The design brief's KV figures and the sizing properties, as checks any sizing function must pass.

A sizer maps (config dict, batch, tokens, kv dtype, tp) to the KV bytes one tensor-parallel rank
holds; ``units`` converts bytes to (GB, GiB). The reference passes every check; each planted bug in
``planted.py`` fails at least one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reference.kv_cache import GB, GiB, cache_bytes, in_gb, in_gib
from reference.model_config import load_config, shape_from_config

Sizer = Callable[[dict[str, Any], int, int, str, int], int]
Units = tuple[Callable[[int], float], Callable[[int], float]]
K = 1024


def reference_sizer(config: dict[str, Any], batch: int, tokens: int, kv_dtype: str, tp: int) -> int:
    return cache_bytes(shape_from_config(config), batch, tokens, kv_dtype, tp)


def figure_failures(sizer: Sizer, units: Units = (in_gb, in_gib)) -> list[str]:
    """Each figure of the design brief the sizer gets wrong, as a sentence."""
    gb, gib = units
    fails = []

    def expect(label: str, got: float, want: float, tolerance: float = 0.0) -> None:
        if abs(got - want) > tolerance:
            fails.append(f"{label}: got {got:,}, expected {want:,}")

    llama3 = load_config("llama-3-8b")
    expect("Llama-3-8B float16 bytes per token", sizer(llama3, 1, 1, "float16", 1), 131_072)
    for tokens, want in ((2 * K, 0.25), (32 * K, 4), (128 * K, 16)):
        expect(f"Llama-3-8B {tokens} tokens in GiB", gib(sizer(llama3, 1, tokens, "float16", 1)), want)
    llama2 = load_config("llama-2-70b")
    expect("Llama-2-70B 4096 tokens in GB (GQA-8)", round(gb(sizer(llama2, 1, 4096, "float16", 1)), 2), 1.34)
    expect("Llama-2-70B 4096 tokens in GiB (GQA-8)", gib(sizer(llama2, 1, 4096, "float16", 1)), 1.25)
    expect("Llama-2-70B 128K tokens in GB", round(gb(sizer(llama2, 1, 128 * K, "float16", 1)), 1), 42.9)
    expect("100 Llama-3-8B sequences at 32K in GiB", gib(sizer(llama3, 100, 32 * K, "float16", 1)), 400)
    expect("100 Llama-3-8B sequences at 4K in GiB", gib(sizer(llama3, 100, 4 * K, "float16", 1)), 50)
    expect("Mixtral-8x7B at 256K in GiB", gib(sizer(load_config("mixtral-8x7b-v0.1"), 1, 256 * K, "float16", 1)), 32)
    expect("Jamba (1:7) at 256K in GiB", gib(sizer(load_config("jamba-v0.1"), 1, 256 * K, "float16", 1)), 4)
    # DeepSeek-V3 MLA: 61 layers × (kv_lora_rank 512 + rope 64) × 2 bytes, no factor 2.
    expect("DeepSeek-V3 bfloat16 bytes per token", sizer(load_config("deepseek-v3"), 1, 1, "bfloat16", 1), 61 * 576 * 2)
    gemma = load_config("gemma-2-9b")  # head_dim 256 from the config; 21 sliding layers capped at 4096
    expect("Gemma-2-9B bytes per token", sizer(gemma, 1, 1, "float16", 1), 42 * 2 * 8 * 256 * 2)
    expect("Gemma-2-9B at 8192 tokens", sizer(gemma, 1, 8192, "float16", 1), (21 * 8192 + 21 * 4096) * 2 * 8 * 256 * 2)
    mistral = load_config("mistral-7b-v0.1")  # every layer slides with a 4096-token window
    expect("Mistral-7B at 32K tokens equals at 4096", sizer(mistral, 1, 32 * K, "float16", 1),
           sizer(mistral, 1, 4096, "float16", 1))
    # Tensor parallelism: 8 kv heads over 16 ranks → one (replicated) head per rank.
    llama70 = load_config("llama-3-70b")
    whole = sizer(llama70, 1, 1000, "float16", 1)
    expect("Llama-3-70B TP=4 per rank", sizer(llama70, 1, 1000, "float16", 4), whole // 4)
    expect("Llama-3-70B TP=16 per rank (replicated)", sizer(llama70, 1, 1000, "float16", 16), whole // 8)
    expect("GB is 10^9 bytes", gb(GB), 1.0)
    expect("GiB is 2^30 bytes", gib(GiB), 1.0)
    return fails

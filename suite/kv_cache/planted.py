"""Deliberately wrong sizing: the checks must reject every one, every run."""

from __future__ import annotations

from typing import Any

from reference import kv_cache as ref
from reference.model_config import MLA, SLIDING, shape_from_config


def _config_with(config: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**config, **changes}


def query_heads_for_kv(config: dict[str, Any], batch: int, tokens: int, kv: str, tp: int) -> int:
    """Counts query heads where kv heads belong: 4× too much on GQA-8 models with 32 heads."""
    return ref.cache_bytes(shape_from_config(_config_with(config, num_key_value_heads=config["num_attention_heads"])),
                           batch, tokens, kv, tp)


def head_dim_from_hidden(config: dict[str, Any], batch: int, tokens: int, kv: str, tp: int) -> int:
    """Ignores the config's head_dim (Gemma-2: 256) and uses hidden / heads (224)."""
    return ref.cache_bytes(shape_from_config(_config_with(config, head_dim=None)), batch, tokens, kv, tp)


def factor_two_on_mla(config: dict[str, Any], batch: int, tokens: int, kv: str, tp: int) -> int:
    shape = shape_from_config(config)
    extra = batch * tokens * shape.count(MLA) * ref.kv_format(kv).vector_bytes(shape.kv_lora_rank +
                                                                               shape.qk_rope_head_dim)
    return ref.cache_bytes(shape, batch, tokens, kv, tp) + extra


def sliding_window_ignored(config: dict[str, Any], batch: int, tokens: int, kv: str, tp: int) -> int:
    shape = shape_from_config(config)
    full = tuple("full" if kind == SLIDING else kind for kind in shape.layer_kinds)
    return ref.cache_bytes(shape.__class__(**{**shape.__dict__, "layer_kinds": full}), batch, tokens, kv, tp)


def tp_replication_ignored(config: dict[str, Any], batch: int, tokens: int, kv: str, tp: int) -> int:
    """Divides kv heads by the ranks even when there are more ranks than heads."""
    shape = shape_from_config(config)
    per_rank = max(1, shape.num_kv_heads // tp) if tp <= shape.num_kv_heads else shape.num_kv_heads / tp
    return int(ref.cache_bytes(shape, batch, tokens, kv, 1) * per_rank / shape.num_kv_heads)


def gib_reported_as_gb(n_bytes: int) -> float:
    return n_bytes / 2**30


PLANTED_SIZERS = [query_heads_for_kv, head_dim_from_hidden, factor_two_on_mla, sliding_window_ignored,
                  tp_replication_ignored]

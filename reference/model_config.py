"""A model's cache-relevant shape, read from a Hugging Face ``config.json`` dict.

Only what sizing needs is read: layer count and kinds, heads, kv heads, head_dim (the config's own
``head_dim`` when present — Gemma-2's is 256, not hidden/heads = 224), sliding windows, MLA's
latent sizes, and the parameter count when the caller knows it. A missing field that the formula
needs raises :class:`ConfigError` naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODELS_DIR = Path(__file__).resolve().parent / "data" / "models"
FULL, SLIDING, MLA, NO_KV = "full", "sliding", "mla", "no_kv"  # NO_KV: a Mamba layer (constant state, no KV)


class ConfigError(KeyError):
    """A config that lacks a field the sizing formula needs."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class ModelShape:
    name: str
    layer_kinds: tuple[str, ...]
    num_heads: int
    num_kv_heads: int
    head_dim: int
    sliding_window: int | None = None
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0

    @property
    def num_layers(self) -> int:
        return len(self.layer_kinds)

    def count(self, kind: str) -> int:
        return self.layer_kinds.count(kind)


def _need(config: dict[str, Any], field: str, name: str) -> Any:
    if config.get(field) is None:
        raise ConfigError(f"config {name!r} has no {field!r}, which the KV-cache formula needs")
    return config[field]


def shape_from_config(config: dict[str, Any], name: str = "model") -> ModelShape:
    layers = int(_need(config, "num_hidden_layers", name))
    heads = int(_need(config, "num_attention_heads", name))
    kv_heads = int(config.get("num_key_value_heads") or heads)
    if config.get("head_dim") is not None:
        head_dim = int(config["head_dim"])
    else:
        head_dim = int(_need(config, "hidden_size", name)) // heads
    window = config.get("sliding_window")
    model_type = config.get("model_type", "")

    if config.get("layer_types"):
        kinds = tuple(SLIDING if t == "sliding_attention" else FULL for t in config["layer_types"])
    elif model_type in ("deepseek_v2", "deepseek_v3"):
        kinds = (MLA,) * layers
        return ModelShape(name, kinds, heads, kv_heads, head_dim,
                          kv_lora_rank=int(_need(config, "kv_lora_rank", name)),
                          qk_rope_head_dim=int(_need(config, "qk_rope_head_dim", name)))
    elif model_type == "jamba":
        period, offset = int(_need(config, "attn_layer_period", name)), int(_need(config, "attn_layer_offset", name))
        kinds = tuple(FULL if i % period == offset else NO_KV for i in range(layers))
    elif model_type in ("gemma2", "gemma3_text"):
        _need(config, "sliding_window", name)
        kinds = tuple(SLIDING if i % 2 == 0 else FULL for i in range(layers))  # even layers slide
    elif model_type == "qwen2" and window and config.get("use_sliding_window"):
        first = int(config.get("max_window_layers", layers))
        kinds = tuple(SLIDING if i >= first else FULL for i in range(layers))
    elif window and model_type in ("mistral", "mixtral"):
        kinds = (SLIDING,) * layers
    else:
        kinds = (FULL,) * layers
    sliding = int(window) if SLIDING in kinds and window is not None else None
    return ModelShape(name, kinds, heads, kv_heads, head_dim, sliding_window=sliding)


def preset_names() -> list[str]:
    return sorted(p.stem for p in MODELS_DIR.glob("*.json") if p.stem != "SOURCES")


def load_config(name: str) -> dict[str, Any]:
    path = MODELS_DIR / f"{name}.json"
    if not path.exists():
        raise ConfigError(f"no model preset {name!r}; known: {', '.join(preset_names())}")
    return dict(json.loads(path.read_text()))


def preset(name: str) -> ModelShape:
    return shape_from_config(load_config(name), name)

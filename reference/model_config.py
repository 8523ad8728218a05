"""A model's cache-relevant shape, read from a Hugging Face ``config.json`` dict, and refused when it is nonsense.

Only what sizing needs is read: layer count and kinds, heads, kv heads, head_dim (the config's own ``head_dim``
when present — Gemma-2's is 256, not hidden/heads = 224), the sliding window, MLA's latent sizes, and a Mamba
layer's state sizes. Every field read is validated first: a field that is missing, of the wrong type, zero where
it must be positive, or inconsistent with another raises :class:`ConfigError` naming the key, the value and the
constraint (``num_key_value_heads: 0`` is an error, not "absent").

Layer kinds, in the order of the model's layers:

- ``full``: attention over the whole sequence; ``sliding``: attention over the last ``sliding_window`` tokens
  (the query's own token included, as transformers and vLLM count it);
- ``mla``: multi-head latent attention (DeepSeek-V2/V3), one latent vector per token;
- ``mamba``: a state-space layer (Jamba), a constant-size state and no KV.

Which layers slide follows transformers: an explicit ``layer_types`` list wins; Gemma-2/3 alternate (even layers
slide); Qwen2 slides only with ``use_sliding_window`` and from ``max_window_layers`` on; any other model slides
on every layer when ``sliding_window`` is set (Mistral v0.1, Phi-3), and on none when it is null (Mixtral).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODELS_DIR = Path(__file__).resolve().parent / "data" / "models"
FULL, SLIDING, MLA, MAMBA = "full", "sliding", "mla", "mamba"
KINDS = (FULL, SLIDING, MLA, MAMBA)
ATTENTION_KINDS = (FULL, SLIDING, MLA)  # the kinds that cache K and V (or MLA's latent)
LAYER_TYPES = {"full_attention": FULL, "sliding_attention": SLIDING}  # config.json ``layer_types`` values
MLA_MODEL_TYPES = ("deepseek_v2", "deepseek_v3")
ALTERNATING_MODEL_TYPES = ("gemma2", "gemma3_text")
MAX_LAYERS = 10_000  # no model has more; a larger count is a typo (and would not fit in memory as a list)


class ConfigError(ValueError):
    """A config (or a config key) that the sizing formulas cannot use; the message names key, value and constraint."""


@dataclass(frozen=True)
class MambaShape:
    """What a Mamba layer keeps per sequence: a causal conv over ``conv_kernel`` inputs of ``inner`` channels, and
    an SSM state of ``inner × state`` (Mamba-1, as Jamba uses it)."""

    inner: int  # mamba_expand · hidden_size
    conv_kernel: int  # mamba_d_conv
    state: int  # mamba_d_state


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
    mamba: MambaShape | None = None

    @property
    def num_layers(self) -> int:
        return len(self.layer_kinds)

    def count(self, kind: str) -> int:
        return self.layer_kinds.count(kind)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The distinct layer kinds, in the order they first appear."""
        return tuple(dict.fromkeys(self.layer_kinds))


# ---- validation --------------------------------------------------------------------------------------------------

def _where(name: str) -> str:
    return f"config {name!r}"


def _int(config: dict[str, Any], key: str, name: str, *, low: int = 1, high: int | None = None,
         required: bool = True) -> int | None:
    """``config[key]`` as an int in [low, high]; None when absent (or null) and not required."""
    value = config.get(key)
    if value is None:
        if required:
            raise ConfigError(f"{_where(name)} has no {key!r}, which the KV-cache formula needs")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{_where(name)}: {key} must be an integer >= {low}; got {value!r} "
                          f"({type(value).__name__})")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ConfigError(f"{_where(name)}: {key} must be {bound}; got {value}")
    return value


def _layer_types(config: dict[str, Any], layers: int, name: str) -> tuple[str, ...]:
    types = config["layer_types"]
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise ConfigError(f"{_where(name)}: layer_types must be a list of strings; got {types!r:.80}")
    if len(types) != layers:
        raise ConfigError(f"{_where(name)}: layer_types has {len(types)} entries but num_hidden_layers is {layers}")
    unknown = sorted(set(types) - set(LAYER_TYPES))
    if unknown:
        raise ConfigError(f"{_where(name)}: layer_types holds {unknown}, which this sizing does not know; known: "
                          f"{sorted(LAYER_TYPES)}")
    return tuple(LAYER_TYPES[t] for t in types)


def _kinds(config: dict[str, Any], layers: int, window: int | None, name: str) -> tuple[str, ...]:
    model_type = config.get("model_type", "")
    if config.get("layer_types") is not None:
        return _layer_types(config, layers, name)
    if model_type in MLA_MODEL_TYPES:
        return (MLA,) * layers
    if model_type == "jamba":
        period = _int(config, "attn_layer_period", name)
        assert period is not None
        offset = _int(config, "attn_layer_offset", name, low=0, high=period - 1)
        return tuple(FULL if i % period == offset else MAMBA for i in range(layers))
    if model_type in ALTERNATING_MODEL_TYPES:
        if window is None:
            raise ConfigError(f"{_where(name)} ({model_type}) has no 'sliding_window', which its alternating "
                              "sliding layers need")
        return tuple(SLIDING if i % 2 == 0 else FULL for i in range(layers))
    if model_type == "qwen2":
        use = config.get("use_sliding_window", False)
        if not isinstance(use, bool):
            raise ConfigError(f"{_where(name)}: use_sliding_window must be true or false; got {use!r}")
        if not use or window is None:
            return (FULL,) * layers
        first = _int(config, "max_window_layers", name, low=0, high=layers, required=False)
        first = layers if first is None else first
        return tuple(SLIDING if i >= first else FULL for i in range(layers))
    return (SLIDING if window is not None else FULL,) * layers


def shape_from_config(config: Any, name: str = "model") -> ModelShape:
    """The validated shape of a config.json dict; :class:`ConfigError` names the first bad key."""
    if not isinstance(config, dict):
        raise ConfigError(f"{_where(name)} must be a JSON object (a dict of config.json keys); got "
                          f"{type(config).__name__}")
    model_type = config.get("model_type", "")
    if not isinstance(model_type, str):
        raise ConfigError(f"{_where(name)}: model_type must be a string; got {model_type!r}")
    layers = _int(config, "num_hidden_layers", name, high=MAX_LAYERS)
    heads = _int(config, "num_attention_heads", name)
    assert layers is not None and heads is not None
    kv_heads = _int(config, "num_key_value_heads", name, required=False)
    kv_heads = heads if kv_heads is None else kv_heads  # absent (or null) means MHA; 0 is an error above
    if heads % kv_heads:
        raise ConfigError(f"{_where(name)}: num_attention_heads {heads} must be a multiple of num_key_value_heads "
                          f"{kv_heads} (each kv head serves a whole group of query heads)")
    head_dim = _int(config, "head_dim", name, required=False)
    if head_dim is None:
        hidden = _int(config, "hidden_size", name)
        assert hidden is not None
        if hidden % heads:
            raise ConfigError(f"{_where(name)}: hidden_size {hidden} is not divisible by num_attention_heads {heads}, "
                              "and there is no head_dim")
        head_dim = hidden // heads
    window = _int(config, "sliding_window", name, required=False)
    kinds = _kinds(config, layers, window, name)
    mla = (0, 0)
    if MLA in kinds:
        rank, rope = _int(config, "kv_lora_rank", name), _int(config, "qk_rope_head_dim", name, low=0)
        assert rank is not None and rope is not None
        mla = (rank, rope)
    mamba = _mamba(config, name) if MAMBA in kinds else None
    if SLIDING in kinds and window is None:
        raise ConfigError(f"{_where(name)}: layer_types has sliding layers but sliding_window is null")
    return ModelShape(name, kinds, heads, kv_heads, head_dim, sliding_window=window if SLIDING in kinds else None,
                      kv_lora_rank=mla[0], qk_rope_head_dim=mla[1], mamba=mamba)


def _mamba(config: dict[str, Any], name: str) -> MambaShape:
    hidden, expand = _int(config, "hidden_size", name), _int(config, "mamba_expand", name)
    conv, state = _int(config, "mamba_d_conv", name), _int(config, "mamba_d_state", name)
    assert hidden is not None and expand is not None and conv is not None and state is not None
    return MambaShape(expand * hidden, conv, state)


# ---- the vendored presets -----------------------------------------------------------------------------------------

def preset_names() -> list[str]:
    return sorted(p.stem for p in MODELS_DIR.glob("*.json") if p.stem != "SOURCES")


def load_config(name: str) -> dict[str, Any]:
    known = preset_names()
    if name not in known:
        shown = name if len(name) <= 60 else name[:57] + "..."
        raise ConfigError(f"no model preset {shown!r}; known: {', '.join(known)}")
    return dict(json.loads((MODELS_DIR / f"{name}.json").read_text()))


def read_config(path: Path) -> dict[str, Any]:
    """A config.json from disk: :class:`ConfigError` for a missing file, bad JSON or a non-object."""
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read config {str(path)!r}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config {str(path)!r} is not UTF-8 text") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"config {str(path)!r} is not valid JSON: {err.msg} at line {err.lineno} column "
                          f"{err.colno}") from None
    except RecursionError:
        raise ConfigError(f"config {str(path)!r} nests too deeply to be a config.json") from None
    if not isinstance(config, dict):
        raise ConfigError(f"config {str(path)!r} must be a JSON object; got a JSON {type(config).__name__}")
    return config


def preset(name: str) -> ModelShape:
    return shape_from_config(load_config(name), name)

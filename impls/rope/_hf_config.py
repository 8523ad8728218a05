"""A RopeConfig's Hugging Face config object, built from the config.json dict it was read from.

transformers parses ``rope_scaling`` itself (``type`` / ``rope_type``, Phi-3's top-level
``original_max_position_embeddings``) into ``rope_parameters``; vLLM reads that same dict.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from reference.rope import RopeConfig


@cache
def hf_config(config: RopeConfig) -> Any:
    from transformers import AutoConfig

    if not config.source:
        raise ValueError(f"{config} was not read from a config.json dict; transformers needs one")
    fields = {k: v for k, v in config.source.items() if k != "model_type"}
    return AutoConfig.for_model(config.source["model_type"], **fields)

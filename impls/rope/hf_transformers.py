"""Hugging Face transformers' rotary embeddings, called as its models call them.

The config is the model's own config class built from the config.json dict (``AutoConfig.for_model``),
so transformers parses ``rope_scaling`` itself (``type`` / ``rope_type``, Phi-3's top-level
``original_max_position_embeddings``). One rotary module per embedding, as a model keeps one: its
``forward(x, position_ids)`` (with ``dynamic_rope_update``, which changes the module's frequencies as the
length grows and resets them) gives cos and sin in the input dtype, and the model file's
``apply_rotary_pos_emb`` rotates q and k laid out [B, H, S, D] as views of [B, S, H, D] storage.

Two model files, one per layout: Phi-3 (half-split ``rotate_half``, partial rotary) and GLM (interleaved
pairs, partial rotary). ``frequencies`` calls the rope-initialisation function of the config's
``rope_type`` (``ROPE_INIT_FUNCTIONS``, or the module's ``compute_default_rope_parameters``).
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import torch

from impls.base import ExpectedFailure, Requirements
from impls.registry import register
from impls.rope._hf_config import hf_config
from impls.rope.api import RopeCase, RopeImpl, validate
from reference import rope as ref
from reference.rope import RopeConfig

ROPE_UTILS = "https://github.com/huggingface/transformers/blob/v5.23.0/src/transformers/modeling_rope_utils.py"


class HfRope(RopeImpl):
    requires = Requirements(modules=("torch", "transformers"))

    def __init__(self, name: str, model: str, prefix: str, layout: str, description: str,
                 expected: tuple[ExpectedFailure, ...] = ()) -> None:
        self.name, self.model, self.prefix, self.layout = name, model, prefix, layout
        self.description = description
        self.expected_failures = expected
        other = ref.INTERLEAVED if layout == ref.HALF_SPLIT else ref.HALF_SPLIT
        self.lacks = {
            other: f"transformers' {model} apply_rotary_pos_emb rotates {layout.replace('_', '-')} pairs",
            "in_place": "apply_rotary_pos_emb returns new tensors",
            "ntk": "transformers has no static NTK rope_type (ROPE_INIT_FUNCTIONS: linear, dynamic, yarn, "
                   "longrope, llama3, proportional)",
        }

    def _module(self) -> Any:
        return importlib.import_module(f"transformers.models.{self.model}.modeling_{self.model}")

    def rotary_class(self) -> Any:
        return getattr(self._module(), f"{self.prefix}RotaryEmbedding")

    def embedding(self, config: RopeConfig, dtype: str, device: str) -> HfEmbedding:
        missing = [self.lacks[f] for f in (config.layout, config.rope_type) if f in self.lacks]
        if missing:
            raise NotImplementedError(f"{self.name}: " + "; ".join(missing))
        return HfEmbedding(self, config, device)

    def frequencies(self, config: RopeConfig, seq_len: int) -> tuple[np.ndarray, float]:
        from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

        hf = hf_config(config)
        rope_type = hf.rope_parameters["rope_type"]
        init = ROPE_INIT_FUNCTIONS[rope_type] if rope_type != "default" else \
            self.rotary_class().compute_default_rope_parameters
        inv, factor = init(hf, "cpu", seq_len=seq_len)
        return inv.double().numpy(), float(factor)


class HfEmbedding:
    def __init__(self, impl: HfRope, config: RopeConfig, device: str) -> None:
        self.impl, self.config = impl, config
        self.rotary = impl.rotary_class()(hf_config(config)).to(device)
        self.apply_fn = impl._module().apply_rotary_pos_emb

    def apply(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, *,
              in_place: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        validate(q, k, positions, self.config)
        if in_place:
            raise NotImplementedError(f"{self.impl.name}: {self.impl.lacks['in_place']}")
        q4, k4 = q.unsqueeze(0).transpose(1, 2), k.unsqueeze(0).transpose(1, 2)  # [1, H, T, D] views
        with torch.no_grad():
            cos, sin = self.rotary(q4, positions.unsqueeze(0))
            q_out, k_out = self.apply_fn(q4, k4, cos, sin)
        return q_out.transpose(1, 2)[0], k_out.transpose(1, 2)[0]


def _dynamic_keeps_longest(case: RopeCase) -> bool:
    """Whether some call of a dynamic schedule runs on stale frequencies, following dynamic_rope_update."""
    c = case.config
    if c.rope_type != "dynamic" or not case.schedule:
        return False
    original = cached = c.max_position_embeddings
    for length in case.schedule:
        if length > cached:  # growth: recomputed for this length
            cached = length
        elif length < original:  # reset: the plain frequencies again
            cached = original
        elif length < cached:  # original <= length < cached: the longer call's base is kept
            return True
    return False


# the smallest schedule that shows it: Llama-2 with dynamic factor 2 (max_position_embeddings 4096), one token
# at the end of a sequence of 8192, then of 4096 (spec: the plain base again; transformers: still 8192's)
DYNAMIC_2X = {layout: ref.config_variant("llama-2-7b", f"llama-2-7b-dynamic-2-{layout}",
                                         {"rope_type": "dynamic", "factor": 2.0}, layout=layout)
              for layout in ref.LAYOUTS}
_KEEPS_LONGEST = ("dynamic NTK in transformers depends on the longest length seen, not on the current one: "
                  "dynamic_rope_update recomputes the frequencies only when a call is longer than any since the "
                  "last reset, and resets them only when a call is strictly shorter than max_position_embeddings, "
                  "so a call of length L with max_position_embeddings <= L < (the longest length since the last "
                  "reset) keeps that longer call's larger base; measured with transformers 5.23")


def dynamic_keeps_longest(layout: str) -> ExpectedFailure:
    example = RopeCase(1, 1, 1, "float32", DYNAMIC_2X[layout], (), "cpu", schedule=(8192, 4096))
    return ExpectedFailure("length_schedule", _KEEPS_LONGEST, f"{ROPE_UTILS}#L83-L119", when=_dynamic_keeps_longest,
                           example=example)


for _impl in (
    HfRope("transformers-rope-phi3", "phi3", "Phi3", ref.HALF_SPLIT,
           "transformers Phi3RotaryEmbedding + phi3 apply_rotary_pos_emb (rotate_half, partial rotary)",
           (dynamic_keeps_longest(ref.HALF_SPLIT),)),
    HfRope("transformers-rope-glm", "glm", "Glm", ref.INTERLEAVED,
           "transformers GlmRotaryEmbedding + glm apply_rotary_pos_emb (interleaved pairs, partial rotary)",
           (dynamic_keeps_longest(ref.INTERLEAVED),)),
):
    register(_impl)

"""vLLM's rotary embeddings (``get_rope``), on their PyTorch-native path, called as vLLM's models call them.

``get_rope(head_size, max_position=config.max_position_embeddings, is_neox_style, rope_parameters, dtype)``
with the ``rope_parameters`` transformers parsed from the config.json (vLLM reads the same dict; for
DeepSeek it renames YaRN to ``deepseek_yarn`` first, as ``vllm/model_executor/models/deepseek_v2.py``
does). The rotation is ``forward_native(positions, q, k)`` on q [T, Hq·D], k [T, Hkv·D]; vLLM's in-place
kernels (``forward_cuda``, ``forward_cpu``) need its compiled ops, which the ``--no-deps`` install lacks.
vLLM's modules read the current vLLM config (``get_current_vllm_config``); a default one is set with
``max_model_len`` = max_position_embeddings, vLLM's default for a model.

vLLM precomputes cos/sin for positions 0 … N − 1 (N = max_position, or original_max·factor for YaRN,
max_position·factor for linear) in the model dtype and indexes that cache: a position outside it is
declined here rather than sent to an index error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache
from types import SimpleNamespace
from typing import Any

import torch

from impls.base import ExpectedFailure, Requirements
from impls.registry import register
from impls.rope._hf_config import hf_config
from impls.rope.api import RopeCase, RopeImpl, case_of, validate
from impls.tensors import torch_dtype
from reference import rope as ref
from reference.rope import RopeConfig

VLLM_ROPE = "https://github.com/vllm-project/vllm/blob/v0.33.0/vllm/model_executor/layers/rotary_embedding"


@cache
def _default_vllm_config() -> Any:
    from vllm.config import DeviceConfig, VllmConfig

    return VllmConfig(device_config=DeviceConfig("cpu"))


@contextlib.contextmanager
def vllm_context(max_model_len: int) -> Iterator[None]:
    """A default vLLM config whose model config says only ``max_model_len`` (all the rotary code reads)."""
    from vllm.config import set_current_vllm_config

    current = _default_vllm_config()
    current.model_config = SimpleNamespace(max_model_len=max_model_len)
    with set_current_vllm_config(current):
        yield


def rope_parameters(config: RopeConfig) -> dict[str, Any]:
    params = dict(hf_config(config).rope_parameters)
    if config.model_type in ("deepseek_v2", "deepseek_v3") and params.get("rope_type") != "default":
        params["rope_type"] = "deepseek_llama_scaling" if params.get("attention_factor") == 1.0 else "deepseek_yarn"
    return params


def cached_positions(config: RopeConfig) -> int:
    """How many positions vLLM's cos/sin cache holds for this config."""
    s = config.scaling
    if s is not None and s.rope_type == "yarn":
        return int(config.original_max * s.factor)
    if s is not None and s.rope_type == "linear":
        return int(config.max_position_embeddings * s.factor)
    return config.max_position_embeddings


@cache
def vllm_embedding(config: RopeConfig, dtype: str) -> Any:
    from vllm.model_executor.layers.rotary_embedding import get_rope

    with vllm_context(config.max_position_embeddings):
        return get_rope(config.head_dim, max_position=config.max_position_embeddings,
                        is_neox_style=config.layout == ref.HALF_SPLIT, rope_parameters=rope_parameters(config),
                        dtype=torch_dtype(dtype))


class VllmRope(RopeImpl):
    name = "vllm-rope"
    description = "vLLM get_rope(...).forward_native: cos/sin cache in the model dtype, indexed by position"
    requires = Requirements(modules=("vllm", "torch", "transformers"))
    lacks = {
        "in_place": "forward_native returns new tensors; vLLM's in-place rotary ops are compiled kernels that the "
                    "--no-deps install does not have",
        "negative_positions": "vLLM indexes its cos/sin cache with the positions",
        "frequencies": "vLLM exposes a cos/sin cache, not its frequencies (they are checked through the rotation)",
    }

    def unsupported(self, case: RopeCase) -> list[str]:
        reasons = []
        top, cached = max(case.all_positions(), default=0), cached_positions(case.config)
        if top >= cached:
            reasons.append(f"vLLM's cos/sin cache for this config holds positions < {cached} (its max_position)")
        if case.config.rope_type == "longrope" and case.config.layout != ref.HALF_SPLIT:
            reasons.append("Phi3LongRoPEScaledRotaryEmbedding only supports neox_style (half-split)")
        return reasons

    def embedding(self, config: RopeConfig, dtype: str, device: str) -> VllmEmbedding:
        return VllmEmbedding(self, config, vllm_embedding(config, dtype).to(device))


class VllmEmbedding:
    def __init__(self, impl: VllmRope, config: RopeConfig, rope: Any) -> None:
        self.impl, self.config, self.rope = impl, config, rope

    def apply(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, *,
              in_place: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        validate(q, k, positions, self.config)
        self.impl.refuse(case_of(q, k, positions, self.config, in_place))
        shape_q, shape_k = q.shape, k.shape
        from vllm.model_executor.layers.rotary_embedding import DeepseekScalingRotaryEmbedding

        forward = getattr(self.rope, "forward_native", self.rope.forward)  # Phi-3's LongRoPE is a plain module
        if not isinstance(self.rope, DeepseekScalingRotaryEmbedding):  # DeepSeek's MLA passes q_pe [T, H, D]
            q, k = q.reshape(q.shape[0], -1), k.reshape(k.shape[0], -1)
        with torch.no_grad(), vllm_context(self.config.max_position_embeddings):
            q_out, k_out = forward(positions, q, k)
        return q_out.reshape(shape_q), k_out.reshape(shape_k)


def _short_longrope_call(case: RopeCase) -> bool:
    c = case.config
    if c.rope_type != "longrope":
        return False
    return any(length <= c.original_max for length in case.schedule) if case.schedule else \
        case.seq_len <= c.original_max


_ALWAYS_LONG = ("vLLM's LongRoPE (Phi3LongRoPEScaledRotaryEmbedding) chooses the long factors once per engine, when "
                "max_model_len > original_max_position_embeddings (vLLM's default for a 128K model), and then "
                "rotates every sequence with them, also those no longer than original_max_position_embeddings, for "
                "which the short factors apply (transformers and Phi-3's own code switch per sequence length); "
                "measured with vllm 0.33")
_ALWAYS_LONG_LINK = f"{VLLM_ROPE}/phi3_long_rope_scaled_rope.py#L48-L60"
_PHI = ref.load_rope_config("phi-3.5-mini-instruct")
LONGROPE_ALWAYS_LONG = tuple(
    ExpectedFailure(test, _ALWAYS_LONG, _ALWAYS_LONG_LINK, when=_short_longrope_call, example=example)
    for test, example in (("rotation*", RopeCase(1, 1, 1, "float32", _PHI, (1000,), "cpu")),
                          ("longrope_at_original_length", None),
                          ("length_schedule", RopeCase(1, 1, 1, "float32", _PHI, (), "cpu", schedule=(4096,)))))

NTK_IS_ANOTHER_FORMULA = ExpectedFailure(
    test="rotation*",
    reason="vLLM's rope_type 'ntk' (NTKScalingRotaryEmbedding, after kexue.fm/archives/9706) divides θ_i by "
           "α^((2i+2)/d) with base·α, which is not NTK-aware scaling base' = base·α^(d/(d−2)) (θ_i·α^(−2i/(d−2))): "
           "the two agree only on the lowest frequency; measured with vllm 0.33",
    link=f"{VLLM_ROPE}/ntk_scaling_rope.py#L38-L56",
    when=lambda case: case.config.rope_type == "ntk",
    example=RopeCase(1, 1, 1, "float32", ref.config_variant("llama-2-7b", "llama-2-7b-ntk-4",
                                                            {"rope_type": "ntk", "factor": 4.0}), (1000,), "cpu"))

_vllm = VllmRope()
_vllm.expected_failures = (*LONGROPE_ALWAYS_LONG, NTK_IS_ANOTHER_FORMULA)
register(_vllm)

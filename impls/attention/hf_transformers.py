"""Hugging Face transformers' attention as its decoder models call it: a cache, a mask built by
``transformers.masking_utils`` from the model's config, then the attention function.

One implementation per (attention function, model): ``eager`` (the model module's own
``eager_attention_forward``), ``sdpa`` and ``flex_attention`` from ``ALL_ATTENTION_FUNCTIONS``, for Llama (GQA),
Mistral (a sliding window on every layer), Gemma-2 (softcap, ``query_pre_attn_scalar``, sliding and full layers
alternating) and Qwen2 (sliding layers from ``max_window_layers`` on, when ``use_sliding_window``).

A call becomes what a model forward does: the vendored ``config.json`` of the model with the case's head
counts and head dim (and the window, softcap and scale where the model's config has a field for them); the first
Sk − Sq keys prefilled into a ``DynamicCache(config=config)`` on every layer (so a sliding layer keeps only its
last W − 1); the model's own mask function for the layer's type; then the layer's ``cache.update`` with the
new Sq tokens and the attention function with the module and the keyword arguments the model passes. Sq = Sk
is a prefill. The new tokens are always the last Sq positions (bottom-right). A case that is not causal runs
with ``config.is_causal = False``, the masking_utils fallback to a bidirectional mask.
"""

from __future__ import annotations

import importlib
import math
import os
from dataclasses import dataclass
from typing import Any

import torch

from impls.attention.api import AttentionCase, AttentionImpl, write_into
from impls.base import ExpectedFailure, Requirements
from impls.registry import register
from reference.attention import AttentionOptions
from reference.model_config import load_config

SOURCE = "https://github.com/huggingface/transformers/blob/v5.23.0/src/transformers"
FUNCTIONS = {"eager": "eager", "sdpa": "sdpa", "flex": "flex_attention"}


@dataclass(frozen=True)
class Model:
    """What a model's code does with its config, as far as attention goes."""

    key: str  # the transformers model package: llama, mistral, gemma2, qwen2
    preset: str  # the vendored config.json (reference/data/models)
    attention_class: str
    window: str  # "none" | "every_layer" (Mistral) | "layer_types" (Gemma-2, Qwen2)
    softcap: bool = False  # attn_logit_softcapping (Gemma-2)
    free_scale: bool = False  # query_pre_attn_scalar sets the scale (Gemma-2); else head_dim ** -0.5
    passes_window: bool = False  # the attention call gets sliding_window=
    uses_module_window: bool = False  # ... from the module (per layer) rather than from the config
    eager_is_llamas: bool = False  # its eager_attention_forward is a verbatim copy of Llama's

    @property
    def module(self) -> Any:
        return importlib.import_module(f"transformers.models.{self.key}.modeling_{self.key}")


MODELS = {
    "llama": Model("llama", "llama-3-8b", "LlamaAttention", "none"),
    "mistral": Model("mistral", "mistral-7b-v0.1", "MistralAttention", "every_layer", passes_window=True,
                     eager_is_llamas=True),
    "gemma2": Model("gemma2", "gemma-2-9b", "Gemma2Attention", "layer_types", softcap=True, free_scale=True,
                    passes_window=True, uses_module_window=True),
    "qwen2": Model("qwen2", "qwen2.5-7b", "Qwen2Attention", "layer_types", passes_window=True,
                   uses_module_window=True, eager_is_llamas=True),
}


_BOTTOM_RIGHT_WINDOW_0 = AttentionOptions(causal=True, window_left=0, alignment="bottom_right")
SLIDING_WINDOW_OF_ONE = ExpectedFailure(
    test="*",
    reason="sliding_window = 1 (each token sees only itself) against a cache: DynamicSlidingWindowLayer keeps "
           "keys[-sliding_window + 1:] = keys[0:], i.e. the whole past instead of none, while get_mask_sizes "
           "sizes the mask for sliding_window - 1 + Sq = Sq keys; the Sq x Sq mask then broadcasts over the longer "
           "key axis when Sq = 1 (the query sees the past token: max error 1.5 at Sq 1, Sk 2) and raises a size "
           "mismatch when Sq > 1 (measured, transformers 5.23)",
    link=f"{SOURCE}/cache_utils.py#L246",
    when=lambda case: case.options.window_left == 0 and case.seqlen_q < case.seqlen_k,
    example=AttentionCase(1, 1, 1, 1, 2, 16, "float32", "cpu", _BOTTOM_RIGHT_WINDOW_0))


FLEX_ON_CPU = (
    "not run on the CPU: transformers' flex_attention always goes through torch.compile (10-40 s per new shape "
    "here), and after its first recompile (dynamic shapes) inductor's CPU flex template emits C++ that does not "
    "build ('cur_kvSplitSize0' was not declared: CppCompileError; torch 2.13), so a result would depend on the "
    "order of the calls (suite/attention/test_attention_libraries.py reproduces it in the thorough profile)")


def _quick_profile() -> bool:
    return os.environ.get("TOKENSPEC_PROFILE", "quick") == "quick"


class HfAttention(AttentionImpl):
    requires = Requirements(modules=("transformers", "torch"))
    lacks = {"lse": "the attention functions return (output, weights or None): no log-sum-exp",
             "alibi": "none of these models uses ALiBi (their configs have no field for it)",
             "varlen": "packed sequences reach these functions only as self-attention through position_ids "
                       "(Sq = Sk per sequence, no cache); the adapter does not send that path"}

    def __init__(self, function: str, model: Model) -> None:
        self.function, self.model = function, model
        self.name = f"hf-{model.key}-{function}"
        self.description = (f"transformers {FUNCTIONS[function]} attention with the masks masking_utils builds for "
                            f"{model.preset} ({model.attention_class}), prefill and decode against a DynamicCache")
        # cheap calls, but twelve adapters whose support is sparse in the generic properties: one drawn case per
        # property in the quick profile (the thorough profile draws the full count)
        self.example_budget = 1
        self.lacks = {**HfAttention.lacks}
        if model.window == "none":
            self.lacks["window"] = f"{model.preset} has no sliding window in its config"
        if not model.free_scale:
            self.lacks["scale"] = f"{model.attention_class} scales by head_dim**-0.5; its config has no other scale"
        if not model.softcap:
            self.lacks["softcap"] = f"{model.preset} has no attn_logit_softcapping in its config"
        elif function == "sdpa":
            self.lacks["softcap"] = "transformers' sdpa_attention_forward refuses softcap (ValueError)"
        self.expected_failures = (SLIDING_WINDOW_OF_ONE,) if model.window != "none" else ()

    def unavailable(self) -> list[str]:
        reasons = super().unavailable()
        if self.function == "flex" and not torch.cuda.is_available():
            reasons.append(FLEX_ON_CPU)
        elif _quick_profile() and self.function == "flex":
            reasons.append("the quick profile leaves it out: transformers' flex_attention always goes through "
                           "torch.compile (seconds per new shape); TOKENSPEC_PROFILE=thorough runs it")
        elif _quick_profile() and self.function == "eager" and self.model.eager_is_llamas:
            reasons.append(f"the quick profile leaves it out: {self.model.key}'s eager_attention_forward is Llama's, "
                           "verbatim (hf-llama-eager runs it), and its masks run through "
                           f"hf-{self.model.key}-sdpa; TOKENSPEC_PROFILE=thorough runs it")
        return reasons

    def unsupported(self, case: AttentionCase) -> list[str]:
        o, m, reasons = case.options, self.model, list[str]()
        if case.varlen:
            return reasons  # declined through lacks["varlen"]
        if case.seqlen_q > case.seqlen_k:
            reasons.append(f"the keys include the new tokens (cache + Sq): Sq ({case.seqlen_q}) cannot exceed Sk "
                           f"({case.seqlen_k})")
        positional = o.causal or o.window_left is not None or o.window_right is not None
        if positional and o.alignment == "top_left" and case.seqlen_q != case.seqlen_k:
            reasons.append("the new tokens are the last Sq positions (bottom-right); top-left with Sq != Sk "
                           "cannot be expressed")
        if o.window_right is not None and not o.causal:
            reasons.append("a sliding window is causal in these models (no right window)")
        if o.window_left is not None and not o.causal:
            reasons.append("a sliding window is causal in these models (no bidirectional window)")
        # a model with a scale field (Gemma-2's query_pre_attn_scalar, an int n: the scale is n^-1/2)
        if o.scale is not None and m.free_scale and (round(o.scale ** -2) < 1 or not math.isclose(
                o.scale, round(o.scale ** -2) ** -0.5, rel_tol=1e-12)):
            reasons.append("query_pre_attn_scalar is an int (the scale is its -0.5 power); "
                           f"{o.scale:g} is no such power")
        return reasons

    def config(self, q: torch.Tensor, k: torch.Tensor, opts: AttentionOptions) -> tuple[Any, int]:
        """The model's config for this call, and the index of the layer that runs it."""
        from transformers import AutoConfig

        m, raw = self.model, dict(load_config(self.model.preset))
        model_type = raw.pop("model_type")
        heads, head_dim = q.shape[1], q.shape[3]
        raw |= {"num_attention_heads": heads, "num_key_value_heads": k.shape[1], "head_dim": head_dim,
                "hidden_size": heads * head_dim, "num_hidden_layers": 2, "is_causal": opts.causal}
        window = None if opts.window_left is None else opts.window_left + 1  # W keys: the query's own and W - 1
        layer = 0
        if m.window == "every_layer":
            raw["sliding_window"] = window
        elif m.key == "qwen2":  # layers >= max_window_layers slide, when use_sliding_window
            raw |= {"use_sliding_window": window is not None, "sliding_window": window, "max_window_layers": 1}
            layer = 1 if window is not None else 0
        elif m.key == "gemma2" and window is not None:  # layer_types alternate sliding (even) and full (odd)
            raw["sliding_window"] = window
        if m.softcap:
            raw["attn_logit_softcapping"] = opts.softcap
        if m.free_scale:
            raw["query_pre_attn_scalar"] = round(opts.resolved_scale(head_dim) ** -2)
        config = AutoConfig.for_model(model_type, **raw)
        config._attn_implementation = FUNCTIONS[self.function]
        if m.key == "gemma2":
            kind = "sliding_attention" if window is not None else "full_attention"
            layer = config.layer_types.index(kind)
        return config, layer

    def _mask(self, config: Any, layer: int, embeds: torch.Tensor, cache: Any, position_ids: torch.Tensor) -> Any:
        """The mask the model's forward builds for this layer's type."""
        from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask

        kwargs = {"config": config, "inputs_embeds": embeds, "attention_mask": None, "past_key_values": cache,
                  "position_ids": position_ids}
        if self.model.window == "every_layer":  # Mistral: one mask function for every layer
            build = create_causal_mask if config.sliding_window is None else create_sliding_window_causal_mask
        else:
            kind = getattr(config, "layer_types", ["full_attention"] * 2)[layer]
            build = create_sliding_window_causal_mask if kind == "sliding_attention" else create_causal_mask
        return build(**kwargs)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions,
                out: torch.Tensor | None = None, *, need_lse: bool = False,
                need_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        from transformers import DynamicCache
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        self.admit(q, k, v, opts, need_lse=need_lse, need_grad=need_grad)
        config, layer = self.config(q, k, opts)
        (b, heads, sq, _), past = q.shape, k.shape[2] - q.shape[2]
        with torch.device("meta"):  # the module's projections are never used: no weights allocated
            module = getattr(self.model.module, self.model.attention_class)(config, layer).eval()
        cache = DynamicCache(config=config)
        if past:  # what the previous forward left in every layer's cache
            for n in range(config.num_hidden_layers):
                cache.update(k[:, :, :past], v[:, :, :past], n)
        embeds = torch.empty(b, sq, heads * q.shape[3], dtype=q.dtype, device=q.device)
        position_ids = torch.arange(past, past + sq, device=q.device)[None]
        mask = self._mask(config, layer, embeds, cache, position_ids)
        keys, values = cache.update(k[:, :, past:], v[:, :, past:], layer)
        extra: dict[str, Any] = {}
        if self.model.passes_window:
            extra["sliding_window"] = module.sliding_window if self.model.uses_module_window else \
                getattr(config, "sliding_window", None)
        if self.model.softcap:
            extra["softcap"] = module.attn_logit_softcapping
        attend = self.model.module.eager_attention_forward if self.function == "eager" else \
            ALL_ATTENTION_FUNCTIONS[FUNCTIONS[self.function]]
        # the model forward's own keyword arguments reach the attention call too (is_causal from the config,
        # through merge_with_config_defaults; position_ids)
        result, _ = attend(module, q, keys, values, mask, dropout=0.0, scaling=module.scaling,
                           position_ids=position_ids, is_causal=config.is_causal, **extra)
        return write_into(out, result.transpose(1, 2)), None


for _model in MODELS.values():
    for _function in FUNCTIONS:
        register(HfAttention(_function, _model))

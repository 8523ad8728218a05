"""The standard ONNX ``Attention`` operator (opset 25), in ONNX Runtime's CPU execution provider and in onnx's
own ``ReferenceEvaluator`` (the specification's executable reference).

Inputs go in the 3-D layout [B, S, H·D] with ``q_num_heads`` / ``kv_num_heads`` (GQA through the head counts).
The operator places the causal diagonal and the window at ``offset`` = the count of keys before the query
block: ``past_key``'s length with an internal cache, ``nonpad_kv_seqlen − Sq`` with an external one, 0 without
a cache (so a cache-less call is top-left). The adapter therefore sends a bottom-right alignment with Sq < Sk
as decoding does, the first Sk − Sq keys as ``past_key`` / ``past_value`` and the last Sq as the new K / V, and
one with Sq > Sk as an external cache (``nonpad_kv_seqlen = Sk``, a negative offset). Windows are opset 25's
``left_window_size`` / ``right_window_size``, softcap its ``softcap``, ALiBi a float ``attn_mask``.
"""

from __future__ import annotations

import numpy as np
import torch

from impls.attention import _onnx_graphs as onnx
from impls.attention._cpu_only import elsewhere
from impls.attention.api import AttentionCase, AttentionImpl, varlen_by_sequence, write_into
from impls.base import ExpectedFailure, Requirements
from impls.registry import register
from impls.tensors import dtype_name
from reference.attention import AttentionOptions

SPEC = "https://github.com/onnx/onnx/blob/v1.23.2/onnx/reference/ops/op_attention.py"
OPSET = 25  # the first with left_window_size / right_window_size
_NAN_THROUGH_ADDITIVE_MASK = (
    "the operator masks by adding -inf to the scores (the specification's Where(allowed, 0, -inf) bias, for "
    "is_causal, the windows and attn_mask alike), and NaN + -inf = NaN: a NaN in a key that no query may see "
    "reaches every row's output")


def plan(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions
         ) -> tuple[onnx.Node, dict[str, np.ndarray]]:
    """The Attention node and its feeds for one dense call."""
    (b, hq, sq, _), (hkv, sk) = q.shape, k.shape[1:3]
    dt = dtype_name(q)
    attrs: dict[str, object] = {"q_num_heads": hq, "kv_num_heads": hkv, "scale": opts.resolved_scale(q.shape[-1])}
    if opts.causal:
        attrs["is_causal"] = 1
    if opts.softcap is not None:
        attrs["softcap"] = float(opts.softcap)
    windowed = opts.window_left is not None or opts.window_right is not None
    if windowed:
        attrs["left_window_size"] = -1 if opts.window_left is None else opts.window_left
        attrs["right_window_size"] = -1 if opts.window_right is None else opts.window_right
    offset = opts.diagonal_offset(sq, sk) if (opts.causal or windowed) else 0
    feeds: dict[str, np.ndarray] = {"Q": onnx.hidden(q)}
    mask, past_key, past_value, nonpad = "", "", "", ""
    if offset > 0:  # decoding against an internal cache of `offset` keys
        feeds["past_key"], k = onnx.split_cache(k, offset)
        feeds["past_value"], v = onnx.split_cache(v, offset)
        past_key, past_value = "past_key", "past_value"
    elif offset < 0:  # an external cache shorter than the query block
        feeds["nonpad_kv_seqlen"] = np.full(b, sk, dtype=np.int64)
        nonpad = "nonpad_kv_seqlen"
    feeds |= {"K": onnx.hidden(k), "V": onnx.hidden(v)}
    if opts.alibi_slopes is not None:
        feeds["attn_mask"] = onnx.alibi_bias(opts, sq, sk, q)
        mask = "attn_mask"
    inputs = [("Q", dt), ("K", dt), ("V", dt), (mask, dt), (past_key, dt), (past_value, dt), (nonpad, "int64")]
    while not inputs[-1][0]:
        inputs.pop()
    return onnx.Node("Attention", "", OPSET, tuple(inputs), (("Y", dt),), tuple(sorted(attrs.items()))), feeds


class OnnxAttention(AttentionImpl):
    lacks = {"lse": "the Attention operator returns no log-sum-exp (qk_matmul_output gives scores or probabilities)",
             "grad": "an inference graph: no backward"}
    example_budget = 1  # calls are cheap, checks are not: the pinned traps carry the quick profile

    def __init__(self, name: str, backend: str, description: str, requires: Requirements,
                 dtypes: tuple[str, ...], expected_failures: tuple[ExpectedFailure, ...]) -> None:
        self.name, self.backend, self.description = name, backend, description
        self.requires, self.dtypes, self.expected_failures = requires, dtypes, expected_failures

    def unavailable(self) -> list[str]:
        runtime = "ONNX Runtime's CPU execution provider" if self.backend == "ort" else "onnx's numpy evaluator"
        return super().unavailable() + elsewhere(runtime)

    def unsupported(self, case: AttentionCase) -> list[str]:
        return [] if case.device == "cpu" else [f"runs on the CPU; the case is on {case.device}"]

    def not_a_timing_target(self) -> str | None:
        if self.backend == "reference":
            return "onnx's ReferenceEvaluator is the specification in numpy, written to be read, not to be fast"
        return None

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions,
                out: torch.Tensor | None = None, *, need_lse: bool = False,
                need_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        self.admit(q, k, v, opts, need_lse=need_lse, need_grad=need_grad)
        node, feeds = plan(q, k, v, opts)
        (y,) = onnx.run(node, feeds, self.backend)[:1]
        return write_into(out, onnx.heads(y, q, q.shape[1])), None

    def forward_varlen(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens_q: torch.Tensor,
                       cu_seqlens_k: torch.Tensor, max_seqlen_q: int, max_seqlen_k: int, opts: AttentionOptions,
                       out: torch.Tensor | None = None, *, need_lse: bool = False
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return varlen_by_sequence(self, q, k, v, cu_seqlens_q, cu_seqlens_k, opts, out, need_lse)


_NAN_FAILURE = ExpectedFailure("nan_in_masked*", _NAN_THROUGH_ADDITIVE_MASK + " (measured)", SPEC)

register(OnnxAttention(
    "ort-attention", "ort",
    "ONNX Runtime's CPU execution provider running the standard Attention operator (opset 25)",
    Requirements(modules=("onnxruntime", "onnx")),
    # bfloat16: the CPU provider has no Attention kernel for it and its function body needs a bfloat16 Expand,
    # which the CPU provider lacks ("Could not find an implementation for Expand(13)"; measured, onnxruntime 1.32)
    ("float32", "float16"), (_NAN_FAILURE,)))
register(OnnxAttention(
    "onnx-reference", "reference",
    "onnx.reference.ReferenceEvaluator on the standard Attention operator (opset 25): the specification's "
    "executable reference, in numpy",
    Requirements(modules=("onnx", "ml_dtypes")), ("float32", "float16", "bfloat16"),
    (ExpectedFailure("nan_in_masked*", _NAN_THROUGH_ADDITIVE_MASK + "; this is the specification's own "
                     "definition, so every conforming runtime shares it (measured, onnx 1.23)", SPEC),)))

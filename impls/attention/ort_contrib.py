"""ONNX Runtime's ``com.microsoft`` attention operators on the CPU execution provider.

``GroupQueryAttention`` is the decoder operator (onnxruntime-genai's models use it): the new tokens are the
last Sq of ``total_sequence_length`` (bottom-right), the first Sk − Sq keys arrive as ``past_key`` /
``past_value`` [B, Hkv, P, D], ``seqlens_k`` is Sk − 1. Options: ``causal`` (0 for bidirectional),
``local_window_size`` (W keeps the W keys ending at the query's own: window_left = W − 1, measured), ``softcap``,
``scale``, ALiBi as ``attention_bias``. A batch of several multi-token steps against a cache goes with
``query_seqlens`` (without it the operator takes such a step only for batch 1).

``MultiHeadAttention`` takes one head count: causal is ``unidirectional=1`` (bottom-right through
``past_key`` / ``past_value`` when Sq < Sk, as decoding does; without a cache, as given); windows and ALiBi go
into ``attention_bias`` (−inf outside the window).
"""

from __future__ import annotations

import numpy as np
import torch

from impls.attention import _onnx_graphs as onnx
from impls.attention._cpu_only import elsewhere
from impls.attention._masks import visible
from impls.attention.api import (
    AttentionCase,
    AttentionImpl,
    has_empty_rows,
    varlen_by_sequence,
    write_into,
)
from impls.base import ExpectedFailure, Requirements
from impls.registry import register
from impls.tensors import dtype_name
from reference.attention import AttentionOptions

CONTRIB_DOCS = "https://github.com/microsoft/onnxruntime/blob/v1.32.0/docs/ContribOperators.md"
MHA_CPU = ("https://github.com/microsoft/onnxruntime/blob/v1.32.0/onnxruntime/contrib_ops/cpu/bert/"
           "multihead_attention.cc")
_TOP_LEFT = AttentionOptions(causal=True, alignment="top_left")
_BOTTOM_RIGHT = AttentionOptions(causal=True, alignment="bottom_right")


def _windowed(opts: AttentionOptions) -> bool:
    return opts.window_left is not None or opts.window_right is not None


class OrtContribAttention(AttentionImpl):
    requires = Requirements(modules=("onnxruntime", "onnx"))
    lacks = {"lse": "the operator returns no log-sum-exp", "grad": "an inference graph: no backward"}
    # bfloat16: "Could not find an implementation for GroupQueryAttention(1) / MultiHeadAttention(1)" on the CPU
    # provider, although the schemas list it (measured, onnxruntime 1.32)
    dtypes = ("float32", "float16")
    example_budget = 1

    def unavailable(self) -> list[str]:
        return super().unavailable() + elsewhere("ONNX Runtime's CPU execution provider")

    def unsupported(self, case: AttentionCase) -> list[str]:
        return [] if case.device == "cpu" else [f"runs on the CPU execution provider; the case is on {case.device}"]

    def plan(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions
             ) -> tuple[onnx.Node, dict[str, np.ndarray]]:
        raise NotImplementedError

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions,
                out: torch.Tensor | None = None, *, need_lse: bool = False,
                need_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        self.admit(q, k, v, opts, need_lse=need_lse, need_grad=need_grad)
        node, feeds = self.plan(q, k, v, opts)
        y = onnx.run(node, feeds, "ort")[0]
        return write_into(out, onnx.heads(y, q, q.shape[1])), None

    def forward_varlen(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens_q: torch.Tensor,
                       cu_seqlens_k: torch.Tensor, max_seqlen_q: int, max_seqlen_k: int, opts: AttentionOptions,
                       out: torch.Tensor | None = None, *, need_lse: bool = False
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return varlen_by_sequence(self, q, k, v, cu_seqlens_q, cu_seqlens_k, opts, out, need_lse)


class OrtGroupQueryAttention(OrtContribAttention):
    """``present_outputs``: whether the graph asks for present_key / present_value (optional outputs)."""

    def __init__(self, name: str, present_outputs: bool, description: str,
                 expected_failures: tuple[ExpectedFailure, ...] = ()) -> None:
        self.name, self.present_outputs, self.description = name, present_outputs, description
        self.expected_failures = expected_failures

    def not_a_timing_target(self) -> str | None:
        return None if self.present_outputs else "the same kernel as ort-gqa (the benchmarks time a prefill)"

    def unsupported(self, case: AttentionCase) -> list[str]:
        o, reasons = case.options, super().unsupported(case)
        if _windowed(o) and not o.causal:
            reasons.append("local_window_size is a causal window (it must be -1 when causal=0)")
        batch = 1 if case.varlen else case.batch  # a packed batch is sent one sequence at a time
        for sq, sk in case.lengths():
            if sq > sk:
                reasons.append(f"the new tokens are the last Sq of the total sequence: Sq ({sq}) cannot exceed "
                               f"Sk ({sk})")
            elif o.alignment == "top_left" and sq != sk and (o.causal or _windowed(o)):
                reasons.append("the diagonal is bottom-right (the new tokens end the sequence); top-left with "
                               "Sq != Sk cannot be expressed")
            elif not o.causal and batch > 1 and 1 < sq < sk:
                reasons.append("a multi-token step against a cache takes batch 1 only, unless query_seqlens is "
                               "given, which needs causal=1")
        return sorted(set(reasons))

    def plan(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions
             ) -> tuple[onnx.Node, dict[str, np.ndarray]]:
        (b, hq, sq, _), (hkv, sk) = q.shape, k.shape[1:3]
        dt, past = dtype_name(q), sk - sq
        attrs: dict[str, object] = {"num_heads": hq, "kv_num_heads": hkv, "scale": opts.resolved_scale(q.shape[-1]),
                                    "causal": int(opts.causal)}
        if opts.softcap is not None:
            attrs["softcap"] = float(opts.softcap)
        if opts.window_left is not None:  # W keeps the W keys ending at the query's own (window_left = W - 1)
            attrs["local_window_size"] = opts.window_left + 1
        past_key, new_k = onnx.split_cache(k, past)
        past_value, new_v = onnx.split_cache(v, past)
        feeds = {"query": onnx.hidden(q), "key": onnx.hidden(new_k), "value": onnx.hidden(new_v),
                 "past_key": past_key, "past_value": past_value,
                 "seqlens_k": np.full(b, sk - 1, dtype=np.int32), "total_sequence_length": np.array(sk, np.int32)}
        inputs = [("query", dt), ("key", dt), ("value", dt), ("past_key", dt), ("past_value", dt),
                  ("seqlens_k", "int32"), ("total_sequence_length", "int32")]
        # after the 7 above: cos_cache, sin_cache, position_ids, attention_bias, head_sink, k_scale, v_scale,
        # q_norm_weight, k_norm_weight, query_seqlens
        extra = [("", dt)] * 10
        if opts.alibi_slopes is not None:
            feeds["attention_bias"] = onnx.alibi_bias(opts, sq, sk, q)
            extra[3] = ("attention_bias", dt)
        if b > 1 and sq > 1 and past > 0:  # a batch of multi-token steps: the right-padded-chunk input, unpadded
            feeds["query_seqlens"] = np.full(b, sq, dtype=np.int32)
            extra[9] = ("query_seqlens", "int32")
        while extra and not extra[-1][0]:
            extra.pop()
        outputs = (("output", dt), ("present_key", dt), ("present_value", dt)) if self.present_outputs else \
            (("output", dt),)
        node = onnx.Node("GroupQueryAttention", onnx.MICROSOFT, 1, tuple(inputs + extra), outputs,
                         tuple(sorted(attrs.items())))
        return node, feeds


class OrtMultiHeadAttention(OrtContribAttention):
    name = "ort-mha"
    description = "ONNX Runtime's com.microsoft MultiHeadAttention on the CPU execution provider"
    lacks = {**OrtContribAttention.lacks, "gqa": "MultiHeadAttention has one num_heads for q, k and v",
             "softcap": "MultiHeadAttention has no softcap"}
    expected_failures = (
        ExpectedFailure(
            "nan_in_masked*", "unidirectional and attention_bias both mask by adding to the scores, and NaN + -inf "
            "= NaN: a NaN in a key that no query may see reaches the output (measured, onnxruntime 1.32)", MHA_CPU),
        ExpectedFailure(
            "*", "unidirectional=1 with more keys than queries and no past cache is neither alignment: query rows "
            "0..Sq-2 see keys 0..i (top-left) but the last row sees every key (Sq=2, Sk=3: row 1 sees 3 keys, "
            "top-left says 2); with past_key the diagonal is bottom-right and correct (measured, onnxruntime 1.32)",
            MHA_CPU, when=lambda case: case.options.causal and case.options.alignment == "top_left"
            and any(sq < sk for sq, sk in case.lengths()),
            example=AttentionCase(1, 1, 1, 2, 3, 16, "float32", "cpu", _TOP_LEFT)),
        ExpectedFailure(
            "*", "a query row whose attention_bias is -inf at every key outputs NaN (the softmax divides 0 by 0), "
            "not 0 (measured, onnxruntime 1.32)", MHA_CPU, when=has_empty_rows,
            example=AttentionCase(1, 1, 1, 2, 1, 16, "float32", "cpu", _BOTTOM_RIGHT)),
    )

    def plan(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, opts: AttentionOptions
             ) -> tuple[onnx.Node, dict[str, np.ndarray]]:
        (_, h, sq, _), sk = q.shape, k.shape[2]
        dt = dtype_name(q)
        attrs: dict[str, object] = {"num_heads": h, "scale": opts.resolved_scale(q.shape[-1])}
        past = 0
        if opts.causal:
            attrs["unidirectional"] = 1
            past = max(opts.diagonal_offset(sq, sk), 0)  # bottom-right with Sq < Sk: decoding against a cache
        bias = None
        if _windowed(opts) or (opts.causal and opts.diagonal_offset(sq, sk) < 0):
            # what unidirectional cannot say (a window, a diagonal left of the first key) as -inf
            bias = torch.zeros(sq, sk).masked_fill(~visible(sq, sk, opts, torch.device("cpu")), float("-inf"))
        if opts.alibi_slopes is not None:
            alibi = torch.from_numpy(onnx.alibi_bias(opts, sq, sk, q.float()))
            bias = alibi if bias is None else alibi + bias
        feeds = {"query": onnx.hidden(q)}
        inputs = [("query", dt), ("key", dt), ("value", dt), ("", "int32"), ("", "int32")]
        if bias is not None:
            feeds["attention_bias"] = onnx.to_numpy(bias.expand(1, h, sq, sk).to(q.dtype))
            inputs.append(("attention_bias", dt))
        if past:
            feeds["past_key"], k = onnx.split_cache(k, past)
            feeds["past_value"], v = onnx.split_cache(v, past)
            inputs += [("", dt)] * (6 - len(inputs)) + [("past_key", dt), ("past_value", dt)]
        feeds |= {"key": onnx.hidden(k), "value": onnx.hidden(v)}
        while not inputs[-1][0]:
            inputs.pop()
        outputs = (("output", dt), ("present_key", dt), ("present_value", dt)) if past else (("output", dt),)
        node = onnx.Node("MultiHeadAttention", onnx.MICROSOFT, 1, tuple(inputs), outputs,
                         tuple(sorted(attrs.items())))
        return node, feeds


register(OrtGroupQueryAttention(
    "ort-gqa", True, "ONNX Runtime's com.microsoft GroupQueryAttention on the CPU execution provider; past_key / "
    "past_value in, present_key / present_value out, as a decoder graph has them"))
register(OrtGroupQueryAttention(
    "ort-gqa-no-present", False, "the same GroupQueryAttention node without its optional present_key / "
    "present_value outputs (a graph that does not keep the cache, or whose unused outputs were pruned)",
    (ExpectedFailure(
        "*", "with past_key / past_value given and the optional present_key / present_value outputs left out, the "
        "CPU kernel returns a wrong output, silently: max error 0.80 at Sq 1, Sk 9 and 2.0 at Sq 4, Sk 9 (float32; "
        "1e-7 with the outputs); a prefill without a past is right (measured, onnxruntime 1.32)",
        f"{CONTRIB_DOCS}#com.microsoft.GroupQueryAttention",
        when=lambda case: any(sq < sk for sq, sk in case.lengths()),
        example=AttentionCase(1, 2, 1, 1, 9, 16, "float32", "cpu", _BOTTOM_RIGHT)),)))
register(OrtMultiHeadAttention())

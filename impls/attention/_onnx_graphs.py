"""One-node ONNX graphs for the attention adapters, built once per signature, and the tensors they exchange.

A graph's inputs have symbolic shapes, so one session serves every shape of a signature (the op, its
attributes, which optional inputs it has, the dtype); sessions and reference evaluators are cached by it.
Tensors cross as numpy arrays in torch's dtype (bfloat16 through ``ml_dtypes``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import torch

from impls.attention._masks import modified_score, positions
from reference.attention import AttentionOptions

MICROSOFT = "com.microsoft"
ONNX_TYPES = {"float32": 1, "float16": 10, "bfloat16": 16, "int32": 6, "int64": 7, "bool": 9}  # TensorProto


@dataclass(frozen=True)
class Node:
    """One operator call: what a graph is built from (and the cache key of its session)."""

    op: str
    domain: str  # "" for the standard operators
    opset: int
    inputs: tuple[tuple[str, str], ...]  # (name, dtype) in the operator's order; name "" for an absent input
    outputs: tuple[tuple[str, str], ...]
    attributes: tuple[tuple[str, Any], ...]


def model(node: Node) -> Any:
    from onnx import helper

    graph = helper.make_graph(
        [helper.make_node(node.op, [n for n, _ in node.inputs], [n for n, _ in node.outputs], domain=node.domain,
                          **dict(node.attributes))], node.op,
        [helper.make_tensor_value_info(n, ONNX_TYPES[t], None) for n, t in node.inputs if n],
        [helper.make_tensor_value_info(n, ONNX_TYPES[t], None) for n, t in node.outputs])
    opsets = [helper.make_opsetid("", node.opset if not node.domain else 21)]
    if node.domain:
        opsets.append(helper.make_opsetid(node.domain, node.opset))
    made = helper.make_model(graph, opset_imports=opsets)
    made.ir_version = 10  # onnxruntime 1.32 reads IR ≤ 11
    return made


@cache
def ort_session(node: Node) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    # idle intra-op threads sleep instead of spinning: the calls here are small and the machine is shared
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model(node).SerializeToString(), options, providers=["CPUExecutionProvider"])


@cache
def reference_evaluator(node: Node) -> Any:
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model(node))


@cache
def _quiet_run() -> Any:
    import onnxruntime as ort

    options = ort.RunOptions()
    options.log_severity_level = 4  # a refused call raises with the message; ORT's error log would repeat it
    return options


def run(node: Node, feeds: dict[str, np.ndarray], backend: str) -> list[np.ndarray]:
    """The outputs of ``node`` on ``feeds`` under ``backend`` ("ort" or "reference")."""
    if backend == "ort":
        return ort_session(node).run(None, feeds, _quiet_run())
    return reference_evaluator(node).run(None, feeds)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    x = t.detach().to("cpu").contiguous()
    if x.dtype == torch.bfloat16:
        import ml_dtypes

        return x.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return x.numpy()


def to_torch(x: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """An output in ``like``'s dtype back to a tensor on its device."""
    if like.dtype == torch.bfloat16:
        return torch.from_numpy(np.ascontiguousarray(x).view(np.int16).copy()).view(torch.bfloat16).to(like.device)
    return torch.from_numpy(np.array(x)).to(like.device, like.dtype)


def hidden(t: torch.Tensor) -> np.ndarray:
    """[B, H, S, D] → [B, S, H·D]: the 3-D layout of the operators that take head counts."""
    b, h, s, d = t.shape
    return to_numpy(t.transpose(1, 2).reshape(b, s, h * d))


def heads(y: np.ndarray, like: torch.Tensor, heads_q: int) -> torch.Tensor:
    """[B, S, H·D] → [B, H, S, D] torch in ``like``'s dtype."""
    b, s, width = y.shape
    return to_torch(y, like).reshape(b, s, heads_q, width // heads_q).transpose(1, 2)


def alibi_bias(opts: AttentionOptions, sq: int, sk: int, like: torch.Tensor) -> np.ndarray:
    """[1, Hq, Sq, Sk] in ``like``'s dtype: −slope·|d − j| (finite everywhere; masking stays the operator's)."""
    assert opts.alibi_slopes is not None
    diag, key = positions(sq, sk, opts, torch.device("cpu"))
    slopes = torch.tensor(opts.alibi_slopes, dtype=torch.float32)[:, None, None]
    bias = modified_score(AttentionOptions(), torch.zeros(sq, sk), slopes, (diag - key).abs().float())
    return to_numpy(bias[None].to(like.dtype))


def split_cache(t: torch.Tensor, past: int) -> tuple[np.ndarray, torch.Tensor]:
    """[B, H, Sk, D] → (the first ``past`` positions as a [B, H, P, D] cache, the rest as new tokens)."""
    return to_numpy(t[:, :, :past]), t[:, :, past:]

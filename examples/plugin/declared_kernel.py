"""Outside kernels that exercise the verdicts: a declined dtype and feature, and a declared non-conformance.

- ``chunked-fp32-example``: the chunked kernel of my_kernel.py declaring float32 only and no LSE. Its float16
  and bfloat16 items are skipped with that reason; in the float32 items every drawn case that needs no LSE
  is still checked.
- ``chunked-declared-example``: the broken kernel of broken_kernel.py (causal always aligned top-left), which
  declares that known non-conformance. The cases it covers are not checked by the properties; the
  declaration is run on its own, as a strict expected failure, and recorded as xfailed.

    python -m pytest suite/test_conformance.py --impl-module examples/plugin/declared_kernel.py \\
        --impl 'chunked-*-example'
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from impls.attention.api import AttentionCase
from impls.base import ExpectedFailure
from reference.attention import AttentionOptions


def _load(name: str, file: str) -> object:
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(file))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_chunked = _load("chunked_example_for_declared", "my_kernel.py")
_broken = _load("chunked_broken_for_declared", "broken_kernel.py")


class Fp32WithoutLse(_chunked.ChunkedAttention):  # type: ignore[name-defined,misc]
    name = "chunked-fp32-example"
    dtypes = ("float32",)
    lacks = {**_chunked.ChunkedAttention.lacks, "lse": "this kernel does not return the LSE"}  # type: ignore[attr-defined]

    def forward(self, q, k, v, opts, out=None, **asked):  # type: ignore[no-untyped-def]
        result, _ = super().forward(q, k, v, opts, out, **asked)
        return result, None


def _bottom_right_differs(case: AttentionCase) -> bool:
    o = case.options
    return o.causal and o.alignment == "bottom_right" and any(sq != sk for sq, sk in case.lengths())


class DeclaredTopLeft(_broken.BrokenChunkedAttention):  # type: ignore[name-defined,misc]
    name = "chunked-declared-example"
    expected_failures = (ExpectedFailure(
        test="*", reason="aligns every causal mask top-left, so bottom-right causal differs when Sq != Sk",
        link="https://example.invalid/chunked/issue/7", when=_bottom_right_differs,
        example=AttentionCase(1, 1, 1, 3, 17, 16, "float32", "cpu",
                              AttentionOptions(causal=True, alignment="bottom_right"))),)


def implementations() -> list[object]:
    return [Fp32WithoutLse(), DeclaredTopLeft()]

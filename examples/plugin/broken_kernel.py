"""The same outside kernel with one classic bug: the causal mask aligned top-left whatever is asked.

    python -m pytest --impl-module examples/plugin/broken_kernel.py --impl chunked-broken-example

fails, showing the case and the error.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("chunked_example", Path(__file__).with_name("my_kernel.py"))
assert _spec and _spec.loader
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)


class BrokenChunkedAttention(_base.ChunkedAttention):  # type: ignore[name-defined,misc]
    name = "chunked-broken-example"

    def forward(self, q, k, v, opts, out=None, **asked):  # type: ignore[no-untyped-def]
        if opts.causal:
            opts = dataclasses.replace(opts, alignment="top_left")
        return super().forward(q, k, v, opts, out, **asked)


def implementations() -> list[BrokenChunkedAttention]:
    return [BrokenChunkedAttention()]

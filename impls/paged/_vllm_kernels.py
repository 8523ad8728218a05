"""vLLM's own Triton attention kernels, importable where vLLM finds no GPU driver (the Triton interpreter).

Why this is needed: ``vllm.triton_utils`` decides at import whether Triton is usable by counting active GPU
drivers; with none (this CPU machine) it exports ``TritonPlaceholder`` objects instead of ``triton`` and
``triton.language``, whose ``jit`` returns the undecorated Python function. The kernel modules then import
(``from vllm.triton_utils import tl, triton``) but ``kernel[grid](...)`` cannot run.

What this does, and only this: it imports vLLM's unchanged kernel modules (``triton_attention_helpers``,
``triton_unified_attention``, ``triton_decode_attention``) once more while ``sys.modules["vllm.triton_utils"]``
is a copy of vLLM's module whose ``triton``, ``tl`` and ``HAS_TRITON`` are what vLLM's own code binds on a
machine with a driver (``import triton``, ``import triton.language as tl``, True: the ``if TYPE_CHECKING or
HAS_TRITON`` branch of vllm/triton_utils/__init__.py). Then it puts back every ``sys.modules`` entry and
package attribute it touched, so the fresh modules are reachable only through :func:`kernels` and the rest
of the process (vLLM itself, other adapters) keeps the modules vLLM gave it. No vLLM file is edited and no
vLLM function is replaced: the fresh modules execute vLLM's source text, and their ``@triton.jit`` kernels
are real Triton kernels, which ``TRITON_INTERPRET=1`` runs in Triton's interpreter exactly as it runs the
in-repo kernels.

Why it is sound: the placeholder is vLLM's guard against launching without a driver, not part of the
kernels' semantics; the interpreter needs no driver. The only behaviour that differs from a GPU run is the
interpreter's, which is the same for every kernel the suite runs there (its known defect, bf16 arithmetic,
is declared by each adapter). Where vLLM does find a driver (a GPU), the modules are imported normally.
"""

from __future__ import annotations

import importlib
import sys
import types
from functools import cache
from types import ModuleType

HELPERS = "vllm.v1.attention.ops.triton_attention_helpers"
UNIFIED = "vllm.v1.attention.ops.triton_unified_attention"
DECODE = "vllm.v1.attention.ops.triton_decode_attention"
TRITON_UTILS = "vllm.triton_utils"


@cache
def kernels() -> dict[str, ModuleType]:
    """The unified-attention and decode-attention modules, with real Triton kernels."""
    utils = importlib.import_module(TRITON_UTILS)
    if utils.HAS_TRITON:
        return {name: importlib.import_module(name) for name in (UNIFIED, DECODE)}
    import triton
    import triton.language as tl

    shim = types.ModuleType(TRITON_UTILS)
    shim.__dict__.update(utils.__dict__)
    shim.__dict__.update(triton=triton, tl=tl, HAS_TRITON=True)
    touched = (TRITON_UTILS, HELPERS, UNIFIED, DECODE)
    saved = {name: sys.modules.get(name) for name in touched}
    parents = {name: (importlib.import_module(name.rpartition(".")[0]), name.rpartition(".")[2]) for name in touched}
    attributes = {name: getattr(parent, leaf, _MISSING) for name, (parent, leaf) in parents.items()}
    try:
        sys.modules[TRITON_UTILS] = shim
        for name in touched[1:]:
            sys.modules.pop(name, None)
        return {name: importlib.import_module(name) for name in (UNIFIED, DECODE)}
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
            parent, leaf = parents[name]
            if attributes[name] is _MISSING:
                parent.__dict__.pop(leaf, None)
            else:
                setattr(parent, leaf, attributes[name])


_MISSING = object()

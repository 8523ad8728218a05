"""The vLLM kernel loader (``impls.paged._vllm_kernels``): real Triton kernels from vLLM's own source files, and
nothing else in the process changed."""

from __future__ import annotations

import importlib
import inspect
import sys

import pytest

from impls.paged._vllm_kernels import DECODE, HELPERS, TRITON_UTILS, UNIFIED, kernels
from impls.triton_runtime import interpreting

pytestmark = pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed")


def test_loaded_kernels_are_vllms_source_as_triton_kernels() -> None:
    import triton

    loaded = kernels()
    for name, kernel in ((UNIFIED, "kernel_unified_attention"), (UNIFIED, "reduce_segments"),
                         (DECODE, "_fwd_kernel_stage1"), (DECODE, "_fwd_grouped_kernel_stage1")):
        fn = getattr(loaded[name], kernel)
        assert isinstance(fn, triton.runtime.jit.KernelInterface), f"{name}.{kernel} is {type(fn)}, not a kernel"
        source = inspect.getsourcefile(fn.fn)
        assert source is not None and source.endswith(name.replace(".", "/") + ".py"), source


@pytest.mark.skipif(not interpreting(), reason="the placeholder exists only where vLLM finds no GPU driver")
def test_the_rest_of_the_process_keeps_what_vllm_gave_it() -> None:
    loaded = kernels()
    importlib.import_module(UNIFIED)  # what any other caller gets: vLLM's own module, with the placeholder
    utils = sys.modules[TRITON_UTILS]
    if utils.HAS_TRITON:  # vLLM enabled Triton itself (the speculative adapter sets CUDA_VISIBLE_DEVICES=""):
        assert all(loaded[name] is sys.modules[name] for name in (UNIFIED, DECODE))  # its modules, untouched
        return
    assert type(utils.triton).__name__ == "TritonPlaceholder"
    for name in (HELPERS, UNIFIED, DECODE):
        parent, _, leaf = name.rpartition(".")
        for seen in (sys.modules.get(name), getattr(sys.modules[parent], leaf, None)):
            assert seen is None or (seen is not loaded.get(name) and type(seen.triton).__name__ == "TritonPlaceholder")

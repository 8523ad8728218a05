"""The suite tests itself: every planted rotary bug is rejected by the rope checks, in every dtype.

The probes are fixed cases (positions up to 128K, an interleaved model, YaRN, Llama-3.1, a dynamic-NTK
schedule that grows and shrinks). A correct implementation passes all of them in float32, float16 and
bfloat16; each planted bug fails at least one in each dtype. A (bug, dtype) pair whose effect is below
what a correct implementation may do would go into UNDETECTABLE with the measured reason; there is none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from impls.rope.api import DTYPES, RopeCase
from impls.rope.torch_eager import TorchRope
from suite.engine.selftest import assert_caught, failing_probes
from suite.rope.area import AT_128K, DEEPSEEK, DYNAMIC, LLAMA31, QWEN_YARN, _case
from suite.rope.cases import CONFIGS
from suite.rope.check import check_rotation, check_schedule
from suite.rope.planted import PLANTED

PROBES: dict[str, tuple[Callable[..., Any], RopeCase]] = {
    "interleaved_deepseek": (check_rotation, _case(DEEPSEEK, (3, 4096, 100000))),
    "llama2_prefill_and_1000": (check_rotation, _case(CONFIGS["llama-2-7b"], (0, 1, 2, 3, 1000))),
    "qwen_yarn": (check_rotation, _case(QWEN_YARN, (0, 1, 32767, 100000))),
    "llama31_band": (check_rotation, _case(LLAMA31, (2047, 8191, 30000, 131071))),
    "llama31_128k": (check_rotation, _case(LLAMA31, AT_128K)),
    "dynamic_grow_then_shrink": (check_schedule, RopeCase(2, 2, 1, "float32", DYNAMIC, (), "cpu",
                                                          schedule=(2048, 8192, 6144, 2048))),
}
UNDETECTABLE: dict[tuple[str, str], str] = {}


def run_probes(impl: TorchRope, dtype: str) -> dict[str, str]:
    return failing_probes(impl, PROBES, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_probes_pass_for_a_correct_implementation(dtype: str) -> None:
    assert run_probes(TorchRope(), dtype) == {}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("planted", PLANTED, ids=lambda p: p.name)
def test_planted_bug_is_caught(planted: TorchRope, dtype: str) -> None:
    assert_caught(planted.name, run_probes(planted, dtype), f" in {dtype}", UNDETECTABLE.get((planted.name, dtype)))


def test_each_bug_is_caught_by_the_probe_meant_for_it() -> None:
    """Not just some probe: the one that exercises the mistake (so a probe change cannot hide a bug)."""
    meant = {"planted-half-split-on-interleaved": "interleaved_deepseek",
             "planted-exponent-i-over-d": "llama2_prefill_and_1000", "planted-yarn-temperature-left-out": "qwen_yarn",
             "planted-yarn-temperature-on-q-only": "qwen_yarn", "planted-llama3-band-inverted": "llama31_band",
             "planted-dynamic-never-resets": "dynamic_grow_then_shrink", "planted-bf16-angle-product": "llama31_128k"}
    assert set(meant) == {p.name for p in PLANTED}
    for planted in PLANTED:
        assert meant[planted.name] in run_probes(planted, "float32"), planted.name


def test_yarn_on_q_only_shows_the_logit_scale_it_applied() -> None:
    """The failure says which scale the logits carry: √(1/t) (= a) instead of 1/t (= a²)."""
    q_only = next(p for p in PLANTED if p.name == "planted-yarn-temperature-on-q-only")
    text = check_rotation(q_only, PROBES["qwen_yarn"][1], 7).describe()
    assert "fitted logit scale 1.1386" in text and "spec 1.2965" in text, text


def test_dynamic_never_resets_fails_only_at_the_shorter_call() -> None:
    never = next(p for p in PLANTED if p.name == "planted-dynamic-never-resets")
    result = check_schedule(never, PROBES["dynamic_grow_then_shrink"][1], 7)
    failed = {c.name.split("@")[1] for c in result.failures()}
    assert failed == {"L=6144", "L=2048"}, result.describe()

"""The suite tests itself: every planted bug is rejected by the conformance check, in every dtype it can be seen in.

The probes run in float32, float16 and bfloat16. A planted bug whose effect is below the rounding of a dtype
cannot be told from a correct kernel by any tolerance that passes correct kernels; those (bug, dtype) pairs
are declared in UNDETECTABLE with the measured reason, and the test checks that they are indeed not caught
(a declaration that stops being true fails, as a stale expected failure would).
"""

from __future__ import annotations

import pytest

from impls.attention.api import DTYPES, AttentionCase
from impls.attention.eager import EagerAttention
from reference.attention import AttentionOptions
from suite.attention.check import check
from suite.attention.planted import PLANTED
from suite.engine.selftest import assert_caught, failing_probes

# Fixed probes, each with its input scaling. Together they exercise every planted mistake; a correct
# implementation passes all of them, in every dtype.
PROBES = {
    "gqa_causal_bottom_right_lse": AttentionCase(1, 4, 2, 17, 37, 40, "float32", "cpu",
                                                 AttentionOptions(causal=True, alignment="bottom_right"),
                                                 needs_lse=True),
    "window": AttentionCase(1, 2, 2, 23, 23, 32, "float32", "cpu",
                            AttentionOptions(window_left=3, window_right=1, alignment="top_left")),
    "softcap_causal": AttentionCase(1, 2, 2, 19, 19, 32, "float32", "cpu",
                                    AttentionOptions(causal=True, softcap=2.0, alignment="top_left")),
    "large_logits": AttentionCase(1, 1, 1, 9, 13, 64, "float32", "cpu", AttentionOptions(scale=1.0),
                                  logit_scale=30.0),
}
UNDETECTABLE: dict[tuple[str, str], str] = {}


def run_probes(impl: EagerAttention, dtype: str) -> dict[str, str]:
    """Probe name → the failure description, for every probe the implementation fails in ``dtype``."""
    return failing_probes(impl, {name: (check, case) for name, case in PROBES.items()}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_probes_pass_for_a_correct_implementation(dtype: str) -> None:
    assert run_probes(EagerAttention(), dtype) == {}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("planted", PLANTED, ids=lambda p: p.name)
def test_planted_bug_is_caught(planted: EagerAttention, dtype: str) -> None:
    assert_caught(planted.name, run_probes(planted, dtype), f" in {dtype}", UNDETECTABLE.get((planted.name, dtype)))

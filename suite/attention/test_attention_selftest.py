"""The suite tests itself: every planted bug is rejected by the conformance check, every run."""

from __future__ import annotations

import pytest

from impls.attention.api import AttentionCase
from impls.attention.eager import EagerAttention
from reference.attention import AttentionOptions
from suite.attention.check import check_attention
from suite.attention.planted import PLANTED

# Fixed probes, each with the seed and input scaling it runs with. Together they exercise every
# planted mistake; a correct implementation passes all of them.
PROBES = {
    "gqa_causal_bottom_right_lse": (AttentionCase(1, 4, 2, 17, 37, 40, "float32", "cpu",
                                                  AttentionOptions(causal=True, alignment="bottom_right"),
                                                  needs_lse=True), 1.0),
    "window": (AttentionCase(1, 2, 2, 23, 23, 32, "float32", "cpu",
                             AttentionOptions(window_left=3, window_right=1, alignment="top_left")), 1.0),
    "softcap_causal": (AttentionCase(1, 2, 2, 19, 19, 32, "float32", "cpu",
                                     AttentionOptions(causal=True, softcap=2.0, alignment="top_left")), 1.0),
    "large_logits": (AttentionCase(1, 1, 1, 9, 13, 64, "float32", "cpu", AttentionOptions(scale=1.0)), 30.0),
}


def run_probes(impl: EagerAttention) -> dict[str, str]:
    """Probe name → the failure description, for every probe the implementation fails."""
    failures = {}
    for name, (case, logit_scale) in PROBES.items():
        result = check_attention(impl, case, seed=7, logit_scale=logit_scale)
        if not result.ok:
            failures[name] = result.describe()
    return failures


def test_probes_pass_for_a_correct_implementation() -> None:
    assert run_probes(EagerAttention()) == {}


@pytest.mark.parametrize("planted", PLANTED, ids=lambda p: p.name)
def test_planted_bug_is_caught(planted: EagerAttention) -> None:
    failures = run_probes(planted)
    assert failures, f"{planted.name} passed every probe: the conformance check missed a planted bug"

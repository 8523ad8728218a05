"""The tolerance rule's mean bound carries the score-rounding noise of the max bound (suite.tolerance).

Without it a correct kernel that sums in another order than eager failed the mean check in float32 with scaled
logits and one query row: the case below, measured with the in-repo Triton kernel under the interpreter, failed
the old rule on seeds 127, 139 and 185 of 0..199 (worst mean error 1.76× its bound, max error far under its own);
with the per-row score bound in the mean rule, none of the 200 seeds comes within 10 % of the bound.
"""

from __future__ import annotations

import pytest

from impls.attention.api import AttentionCase
from impls.attention.eager import EagerAttention
from reference.attention import AttentionOptions
from suite.attention import check as attention_check
from suite.tolerance import compare

REPORTED = AttentionCase(1, 1, 1, 1, 17, 80, "float32", "cpu", AttentionOptions(scale=0.5))
OLD_RULE_FAILED = (127, 139, 185)


def _triton() -> object:
    from impls.attention.triton_flash import TritonFlashAttention

    impl = TritonFlashAttention()
    if impl.unavailable():
        pytest.skip("triton-flash cannot run here: " + "; ".join(impl.unavailable()))
    return impl


@pytest.mark.parametrize("seed", OLD_RULE_FAILED)
def test_the_reported_false_alarm_passes_now(seed: int) -> None:
    result = attention_check.check(_triton(), REPORTED, seed)  # type: ignore[arg-type]
    assert result.ok, result.describe()


@pytest.mark.parametrize("seed", OLD_RULE_FAILED)
def test_the_old_mean_rule_would_have_failed_it(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same case under the rule without the score term in the mean: the failure the fix removed."""
    def without_score_term(*args: object, **kwargs: object) -> object:
        kwargs.pop("propagated_mean", None)
        return compare(*args[:8], **kwargs, propagated_mean=0.0)  # type: ignore[arg-type,misc]

    monkeypatch.setattr(attention_check, "compare", without_score_term)
    result = attention_check.check(_triton(), REPORTED, seed)  # type: ignore[arg-type]
    assert not result.ok and "mean error" in result.describe(), result.describe()


def test_the_mean_rule_still_rejects_a_systematic_small_error() -> None:
    """A kernel whose output is off by 1e-4 everywhere (max error small, mean error large): the mean rule's
    power is not spent on the fix."""

    class Shifted(EagerAttention):
        name = "planted-shift-1e-4"

        def forward(self, q, k, v, opts, out=None, **asked):  # type: ignore[no-untyped-def]
            result, lse = super().forward(q, k, v, opts, None, **asked)
            result = result + 1e-4
            if out is not None:
                out.copy_(result)
                result = out
            return result, lse

    case = AttentionCase(2, 2, 2, 33, 47, 64, "float32", "cpu", AttentionOptions())
    assert not attention_check.check(Shifted(), case, seed=3).ok


# The LSE's own rounding is that of the dtype it is returned in, but its scores are formed from the inputs: SDPA's CPU
# flash kernel returns a float32 LSE for float16 inputs whose scores carry float16 rounding. Held to float32 noise,
# this one-key row (its LSE is the score itself) failed on 73 of 300 seeds (seeds 0, 1, 2, 7, ... of 0..299), found by
# the randomized dev-profile runs; with the score term at the inputs' rounding, none fails.
ONE_KEY_LSE = AttentionCase(1, 1, 1, 1, 16, 32, "float16", "cpu", AttentionOptions(causal=True, alignment="top_left"),
                            needs_lse=True)


def _cpu_flash() -> object:
    from impls import registry

    impl = next((i for i in registry.all_implementations("attention") if i.name == "sdpa-cpu-flash"), None)
    if impl is None or impl.unavailable():
        pytest.skip("sdpa-cpu-flash is not available here")
    return impl


@pytest.mark.parametrize("seed", (0, 1, 2))
def test_a_float32_lse_of_half_inputs_is_held_to_the_inputs_score_rounding(seed: int) -> None:
    result = attention_check.check(_cpu_flash(), ONE_KEY_LSE, seed)  # type: ignore[arg-type]
    assert result.ok, result.describe()


@pytest.mark.parametrize("seed", (0, 1, 2))
def test_held_to_float32_score_rounding_it_would_fail(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    def at_output_rounding(*args: object, **kwargs: object) -> object:
        kwargs.pop("input_dtype", None)
        return compare(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(attention_check, "compare", at_output_rounding)
    result = attention_check.check(_cpu_flash(), ONE_KEY_LSE, seed)  # type: ignore[arg-type]
    assert not result.ok and "lse" in result.describe(), result.describe()

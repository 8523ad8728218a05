"""Every attention implementation against the float64 reference, feature by feature and dtype by dtype.

Each test draws shapes with hypothesis (lengths 1, 2, primes, Sq ≠ Sk both ways; head dims that are
not powers of two; GQA ratios) and options for one feature. A drawn case the implementation does not
support is counted, not checked; a test where no drawn case was supported is skipped with the
implementation's reasons, so nothing is dropped silently.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from impls.attention.api import AttentionCase, AttentionImpl
from reference.attention import AttentionOptions
from suite.attention.check import check_attention, check_attention_varlen
from suite.attention.strategies import FEATURES, LENGTHS, dims, options

DTYPES = ("float32", "float16", "bfloat16")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


class Tally:
    """What a property test checked, and why the rest was not."""

    def __init__(self) -> None:
        self.checked = 0
        self.unsupported: Counter[str] = Counter()

    def supports(self, impl: AttentionImpl, case: AttentionCase) -> bool:
        reasons = impl.unsupported(case)
        self.unsupported.update(reasons)
        self.checked += not reasons
        return not reasons

    def skip_if_nothing_checked(self, impl: AttentionImpl) -> None:
        if not self.checked:
            pytest.skip(f"{impl.name} supports none of the drawn cases: " + "; ".join(sorted(self.unsupported)))


def expect(impl: AttentionImpl, test_name: str, case: AttentionCase, run: Callable[[], object]) -> None:
    """Run a check; where the implementation declares this case an expected failure, demand the failure."""
    known = impl.expected_failure(test_name, case)
    result = run()
    ok = getattr(result, "ok", True)
    if known is not None and known.when is not None:
        if ok:
            pytest.fail(f"stale expected failure: {impl.name} now passes {test_name} on {case} ({known.link})")
        return
    assert ok, f"{impl.name} on {case}:\n{result.describe()}"  # type: ignore[attr-defined]


def examples_for(impl: AttentionImpl) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A slow implementation (an interpreter, per-shape compilation) may ask for fewer examples in the
    quick profile; the thorough profile gives it the full count."""
    budget = getattr(impl, "ci_examples", None)
    quick = os.environ.get("TOKENSPEC_PROFILE", "quick") == "quick"
    return settings(max_examples=budget) if budget and quick else (lambda f: f)


@pytest.mark.parametrize("feature", FEATURES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_forward(attention_impl: AttentionImpl, dtype: str, feature: str) -> None:
    tally = Tally()

    @examples_for(attention_impl)
    @given(d=dims(gqa=feature == "gqa"), data=st.data())
    # The known traps, pinned: causal alignment when Sq ≠ Sk (both ways), rows with no visible key,
    # head dims that are not powers of two.
    @example(d={"batch": 1, "heads_q": 2, "heads_kv": 2, "seqlen_q": 3, "seqlen_k": 17, "head_dim": 40, "seed": 1},
             data=None)
    @example(d={"batch": 2, "heads_q": 1, "heads_kv": 1, "seqlen_q": 17, "seqlen_k": 5, "head_dim": 80, "seed": 2},
             data=None)
    def run(d: dict[str, int], data: st.DataObject | None) -> None:
        if data is None:  # a pinned example: the feature's sharpest option set
            opts = _pinned_options(feature, d["heads_q"])
        else:
            opts = data.draw(options(feature, d["heads_q"]), label="options")
        case = _case(d, dtype, opts)
        if tally.supports(attention_impl, case):
            expect(attention_impl, "test_forward", case, lambda: check_attention(attention_impl, case, d["seed"]))

    run()
    tally.skip_if_nothing_checked(attention_impl)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lse(attention_impl: AttentionImpl, dtype: str) -> None:
    tally = Tally()

    @examples_for(attention_impl)
    @given(d=dims(), opts=st.sampled_from(["plain", "causal_bottom_right", "window", "softcap"]).flatmap(
        lambda f: options(f, 1)))
    def run(d: dict[str, int], opts: AttentionOptions) -> None:
        case = _case(d | {"heads_q": d["heads_kv"]}, dtype, opts, needs_lse=True)
        if tally.supports(attention_impl, case):
            expect(attention_impl, "test_lse", case, lambda: check_attention(attention_impl, case, d["seed"]))

    run()
    tally.skip_if_nothing_checked(attention_impl)


@pytest.mark.parametrize("feature", ["plain", "causal_bottom_right", "window", "softcap", "alibi", "gqa"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_backward(attention_impl: AttentionImpl, dtype: str, feature: str) -> None:
    tally = Tally()

    @examples_for(attention_impl)
    @given(d=dims(gqa=feature == "gqa"), data=st.data())
    def run(d: dict[str, int], data: st.DataObject) -> None:
        case = _case(d, dtype, data.draw(options(feature, d["heads_q"])), needs_grad=True)
        if tally.supports(attention_impl, case):
            expect(attention_impl, "test_backward", case, lambda: check_attention(attention_impl, case, d["seed"]))

    run()
    tally.skip_if_nothing_checked(attention_impl)


@pytest.mark.parametrize("dtype", DTYPES)
def test_varlen(attention_impl: AttentionImpl, dtype: str) -> None:
    tally = Tally()

    @examples_for(attention_impl)
    @given(lens=st.lists(st.tuples(LENGTHS, LENGTHS), min_size=1, max_size=4), d=dims(),
           opts=st.sampled_from(["plain", "causal_bottom_right", "causal_top_left", "window"]).flatmap(
               lambda f: options(f, 1)))
    @example(lens=[(1, 1), (17, 5), (3, 97)], d={"batch": 1, "heads_q": 1, "heads_kv": 1, "seqlen_q": 1,
                                                  "seqlen_k": 1, "head_dim": 64, "seed": 3},
             opts=AttentionOptions(causal=True, alignment="bottom_right"))
    def run(lens: list[tuple[int, int]], d: dict[str, int], opts: AttentionOptions) -> None:
        case = _case(d | {"batch": len(lens), "heads_q": d["heads_kv"], "seqlen_q": max(a for a, _ in lens),
                          "seqlen_k": max(b for _, b in lens)}, dtype, opts, varlen=True)
        if tally.supports(attention_impl, case):
            expect(attention_impl, "test_varlen", case, lambda: check_attention_varlen(
                attention_impl, case, [a for a, _ in lens], [b for _, b in lens], d["seed"]))

    run()
    tally.skip_if_nothing_checked(attention_impl)


def _case(d: dict[str, int], dtype: str, opts: AttentionOptions, **flags: bool) -> AttentionCase:
    return AttentionCase(d["batch"], d["heads_q"], d["heads_kv"], d["seqlen_q"], d["seqlen_k"], d["head_dim"],
                         dtype=dtype, device=DEVICE, options=opts, **flags)


def _pinned_options(feature: str, heads_q: int) -> AttentionOptions:
    from reference.attention import alibi_slopes

    pinned = {
        "plain": AttentionOptions(), "scale": AttentionOptions(scale=0.3),
        "causal_top_left": AttentionOptions(causal=True, alignment="top_left"),
        "causal_bottom_right": AttentionOptions(causal=True, alignment="bottom_right"),
        "window": AttentionOptions(window_left=2, window_right=1, alignment="bottom_right"),
        "alibi": AttentionOptions(causal=True, alibi_slopes=alibi_slopes(heads_q), alignment="bottom_right"),
        "softcap": AttentionOptions(softcap=1.0),
        "combined": AttentionOptions(causal=True, window_left=3, softcap=5.0, alibi_slopes=alibi_slopes(heads_q),
                                     alignment="bottom_right"),
        "gqa": AttentionOptions(causal=True, alignment="top_left"),
    }
    return pinned[feature]


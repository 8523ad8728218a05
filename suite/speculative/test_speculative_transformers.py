"""The transformers adapter: full power where CI requires it, the caller's randomness, and the zero-uniform trap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from impls.speculative.api import ZERO_UNIFORM_SEED, SpecCase
from impls.speculative.hf_transformers import TransformersSpeculativeSampling, caller_randomness
from reference import speculative as ref
from suite.speculative import area, stats
from suite.speculative import cases as cs

pytest.importorskip("transformers", reason="the transformers adapter needs transformers")


def test_full_power_on_the_primary_fixed_case_in_the_quick_profile() -> None:
    """CI holds transformers to the exact law at full power on one fixed case: its declared cost fits the budget."""
    case = area.FIXED["random"]
    (step,) = cs.law_steps(case)
    df = len(ref.outcome_distribution(step.p, step.q, step.draft)) - 1
    planned = stats.plan(df, TransformersSpeculativeSampling.call_cost_s, area.PRIMARY_BUDGET_S,
                         area.SMOKE_S["primary"])
    assert planned.at_full_power, planned.statement()


def test_its_draws_come_from_the_callers_generator() -> None:
    impl = TransformersSpeculativeSampling()
    case = SpecCase(4, 2, "random", draws=5)
    p, q, d, lengths = cs.chain_tensors(cs.law_steps(case), np.zeros(64, dtype=np.int64), case)
    before = torch.default_generator.get_state()
    runs = [impl.verify(p, q, d, lengths, generator=torch.Generator().manual_seed(9)) for _ in range(2)]
    assert torch.equal(runs[0].accepted, runs[1].accepted) and torch.equal(runs[0].emitted, runs[1].emitted)
    assert torch.equal(torch.default_generator.get_state(), before)  # the global stream is left as it was
    gen = torch.Generator().manual_seed(9)
    state = gen.get_state()
    impl.verify(p, q, d, lengths, generator=gen)
    assert not torch.equal(gen.get_state(), state)  # the caller's generator advanced by what was drawn


def test_the_zero_uniform_seed_is_real() -> None:
    """The trap's generator: its first float32 uniform is exactly 0.0 (found by searching torch's MT19937 seeds)."""
    assert float(torch.rand(1, generator=torch.Generator().manual_seed(ZERO_UNIFORM_SEED))) == 0.0
    with caller_randomness(torch.Generator().manual_seed(ZERO_UNIFORM_SEED)):
        assert float(torch.rand(())) == 0.0  # what _speculative_sampling's rand_like sees first

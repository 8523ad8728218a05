"""The chi-square test's guarantee: its critical values, N against scipy's noncentral law, its measured size and
power by simulation, and the power a budget-limited check states."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2, ncx2

from suite.speculative import stats


def test_critical_values_by_hand() -> None:
    # χ²(2)'s tail is exp(−x/2): x = 2·ln(1e6) = 27.631; χ²(1)'s is erfc(√(x/2)) = 1e-6 at x = 23.928 (tabulated)
    assert stats.critical(2) == pytest.approx(2 * math.log(1 / stats.FALSE_ALARM), rel=1e-9)
    assert stats.critical(1) == pytest.approx(23.928, abs=1e-3)


@pytest.mark.parametrize("df", [1, 2, 3, 5, 10, 30, 60])
def test_samples_needed_is_the_smallest_with_full_power(df: int) -> None:
    """N reaches power 0.999 against TV 0.01 (λ = 4Nε²) in scipy's ncx2, and N − 1000 does not."""
    n = stats.samples_needed(df)
    crit = chi2.isf(stats.FALSE_ALARM, df)
    assert ncx2.sf(crit, df, n * 4 * stats.TV_DETECT**2) >= stats.POWER
    assert ncx2.sf(crit, df, (n - 1000) * 4 * stats.TV_DETECT**2) < stats.POWER


def test_documented_sample_sizes() -> None:
    # docs/speculative.md quotes these: the search above, for the df the fixed cases use
    assert [stats.samples_needed(df) for df in (1, 2, 4, 10, 30)] == [160_000, 172_000, 188_000, 220_000, 285_000]


def test_detectable_tv_inverts_the_power() -> None:
    n, df = 40_000, 3
    tv = stats.detectable_tv(n, df)
    assert stats.power(n, df, tv) == pytest.approx(stats.POWER, abs=1e-6)
    assert stats.detectable_tv(stats.samples_needed(df), df) <= stats.TV_DETECT


def test_a_budget_limited_plan_states_its_power() -> None:
    cheap = stats.plan(df=2, cost_s=1e-6)
    assert cheap.at_full_power and cheap.n == 172_000 and cheap.statement().startswith("full power")
    slow = stats.plan(df=2, cost_s=1e-3, full_budget_s=20, smoke_budget_s=40)
    assert not slow.at_full_power and slow.n == 40_000
    text = slow.statement()
    assert text.startswith(f"power {stats.power(40_000, 2):.2g} to detect TV 0.01 at N = 40,000"), text
    assert "full power needs N = 172,000: 172 s" in text


def test_grouped_chi_square_sums_the_groups() -> None:
    exact = {0: {"a": 0.5, "b": 0.5}, 1: {"a": 0.25, "b": 0.75}}
    counts = {0: {"a": 500, "b": 500}, 1: {"a": 300, "b": 700}}
    test = stats.chi_square(counts, exact)
    assert test.df == 2 and test.n == 2000
    assert test.statistic == pytest.approx((50**2 / 250 + 50**2 / 750), rel=1e-12)  # group 0 contributes 0


def test_rare_outcomes_are_pooled_and_a_lonely_rare_bin_joins_the_smallest() -> None:
    bins = stats.binning({0: {"a": 0.5, "b": 0.4998, "c": 0.0002}}, {0: 10_000})  # c expects 2 < 5
    assert bins.regular[0] == ("a", "b") and bins.merged_into[0] == 1 and bins.df == 1


def test_measured_false_alarm_rate_and_power() -> None:
    """Simulated from the multinomial itself: 100,000 null runs reject at most a handful of times (1e-6 stated),
    and against the worst law at TV 0.01 (two outcomes of 1/2 each: λ equals its bound) the power is 0.999."""
    rng = np.random.default_rng(2026)
    exact = {"a": 0.5, "b": 0.5}
    n = stats.samples_needed(1)
    false_alarm = stats.rejection_rate(exact, exact, n, 100_000, rng)
    assert false_alarm <= 3e-5  # P(more than 3 of 1e5 | rate 1e-6) ≈ 4e-9
    off = {"a": 0.51, "b": 0.49}
    power = stats.rejection_rate(exact, off, n, 100_000, rng)
    # bound 0.9990 at this λ; 100,000 runs: standard error 1e-4, so 0.9985 is 5 standard errors below
    assert power >= 0.9985, power
    assert stats.power(n, 1) == pytest.approx(0.999, abs=1e-4)

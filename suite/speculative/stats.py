"""The statistical test for samplers: Pearson chi-square against the reference's exact outcome probabilities.

The guarantee, stated once and used by every law check (scipy.stats gives the two laws):

* false-alarm rate α = 1e-6: reject when X² > c, c = the upper 1e-6 point of χ²(df) (``chi2.isf``);
* a sampler whose binned outcome law p₁ is off the exact p₀ by TV(p₀, p₁) = ε makes X² noncentral
  χ²(df, λ) with λ = N·Σ (p₁ − p₀)²/p₀ ≥ N·(Σ|p₁ − p₀|)²/Σ p₀ = N·(2ε)² (Cauchy–Schwarz), so the power
  is at least P(χ²(df, 4Nε²) > c) (``ncx2.sf``);
* full power: N is the smallest multiple of 1000 making that ≥ 0.999 at ε = 0.01.

Several groups (requests of different draft lengths in one batch) are independent multinomials with fixed
sizes Nₘ: X² sums over them with df = Σ (binsₘ − 1), and λ = Σ Nₘ Σ (p₁ − p₀)²/p₀ ≥ 4 Σ Nₘ εₘ² ≥ 4N ε² for
the mixture's TV ε = Σ (Nₘ/N) εₘ (Jensen), so the same N carries the same guarantee.

Bins: an outcome whose expected count is below 5 goes into its group's rare bin (with every outcome of
exact probability 0 that is not a structural zero); a rare bin that still expects fewer than 5 joins the
group's smallest bin. Merging cannot raise TV, so the guarantee holds on the binned outcomes.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from scipy import optimize
from scipy.stats import chi2, ncx2

FALSE_ALARM = 1e-6
TV_DETECT = 0.01
POWER = 0.999
MIN_EXPECTED = 5.0


@cache
def critical(df: int, alpha: float = FALSE_ALARM) -> float:
    """The upper ``alpha`` point of χ²(df)."""
    return float(chi2.isf(alpha, df))


def power(n: int, df: int, tv: float = TV_DETECT, alpha: float = FALSE_ALARM) -> float:
    """Lower bound on the probability that N samples reject a law off by ``tv`` (the noncentral tail)."""
    return float(ncx2.sf(critical(df, alpha), df, n * 4.0 * tv * tv))


@cache
def samples_needed(df: int, tv: float = TV_DETECT, want: float = POWER, alpha: float = FALSE_ALARM) -> int:
    """The smallest multiple of 1000 with power ≥ ``want`` against ``tv``."""
    hi = 1
    while power(hi * 1000, df, tv, alpha) < want:
        hi *= 2
    lo = 1
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if power(mid * 1000, df, tv, alpha) < want else (lo, mid)
    return lo * 1000


def detectable_tv(n: int, df: int, want: float = POWER, alpha: float = FALSE_ALARM) -> float:
    """The smallest TV that N samples catch with probability ≥ ``want``."""
    c = critical(df, alpha)
    lam = optimize.brentq(lambda x: float(ncx2.sf(c, df, x)) - want, 1e-9, 1e7)
    return math.sqrt(lam / (4.0 * n))


@dataclass(frozen=True)
class Plan:
    """How many samples a law check draws, and the power that leaves."""

    n: int
    full: int  # the N of full power
    df: int  # the degrees of freedom N was sized for (an upper bound on the binned test's)
    cost_s: float  # declared seconds per request
    budget_s: float  # what the run was given
    full_budget_s: float  # what the check may spend to reach full power

    @property
    def at_full_power(self) -> bool:
        return self.n >= self.full

    def statement(self, df: int | None = None) -> str:
        """The power kept, in words (with the binned df once known)."""
        d = df or self.df
        if self.at_full_power:
            return (f"full power: TV {TV_DETECT} caught with probability {power(self.n, d):.4f} at N = {self.n:,} "
                    f"(false alarm {FALSE_ALARM:g})")
        return (f"power {power(self.n, d):.2g} to detect TV {TV_DETECT} at N = {self.n:,}; TV "
                f"{detectable_tv(self.n, d):.3f} is caught with probability {POWER} (full power needs N = "
                f"{self.full:,}: {self.full * self.cost_s:.0f} s at the declared {self.cost_s:.2g} s per request, "
                f"over the {self.full_budget_s:g} s this check may spend for it; a {self.budget_s:g} s run instead)")


FULL_BUDGET_S = 20.0  # what a law check spends, at most, to reach full power
SMOKE_BUDGET_S = 3.0  # what it spends when full power is out of reach


def plan(df: int, cost_s: float, full_budget_s: float = FULL_BUDGET_S, smoke_budget_s: float = SMOKE_BUDGET_S,
         floor: int = 200) -> Plan:
    """Full power when the declared cost allows it within ``full_budget_s``, else a smoke run of ``smoke_budget_s``.

    A run that cannot reach full power anyway buys little with more time, so a slow implementation gets a short
    run whose verdict states the power it keeps (the thorough profile raises both budgets).
    """
    full = samples_needed(df)
    if cost_s * full <= full_budget_s:
        return Plan(full, full, df, cost_s, full_budget_s, full_budget_s)
    n = max(floor, int(smoke_budget_s / cost_s) // 100 * 100)
    return Plan(min(n, full), full, df, cost_s, smoke_budget_s, full_budget_s)


# ---- the test -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChiSquare:
    statistic: float
    df: int
    p_value: float
    critical: float
    n: int

    @property
    def rejects(self) -> bool:
        return self.statistic > self.critical

    def describe(self) -> str:
        side = ">" if self.rejects else "≤"
        return (f"X² = {self.statistic:.1f} {side} {self.critical:.1f} (df {self.df}, N = {self.n:,}, "
                f"p = {self.p_value:.2g})")


@dataclass(frozen=True)
class Binning:
    """Each group's bins: the regular outcomes one by one, then (when kept) the rare bin of everything else."""

    groups: tuple[Hashable, ...]
    regular: tuple[tuple[Any, ...], ...]  # per group, the outcomes binned alone
    expected: tuple[np.ndarray, ...]  # per group, the expected count of each bin (the rare bin last, if any)
    merged_into: tuple[int | None, ...]  # per group: None (rare bin kept) or the bin the rare outcomes join
    sizes: tuple[int, ...]

    @property
    def df(self) -> int:
        return max(sum(len(e) - 1 for e in self.expected), 1)

    def observed(self, counts: Mapping[Any, Mapping[Any, int]]) -> list[np.ndarray]:
        out = []
        for g, regular, merged, n in zip(self.groups, self.regular, self.merged_into, self.sizes, strict=True):
            got = counts.get(g, {})
            obs = np.array([got.get(o, 0) for o in regular], dtype=np.float64)
            rare = n - obs.sum()
            if merged is None:
                obs = np.append(obs, rare)
            else:
                obs[merged] += rare
            out.append(obs)
        return out

    def statistic(self, observed: list[np.ndarray]) -> float:
        return float(sum(((o - e) ** 2 / e).sum() for o, e in zip(observed, self.expected, strict=True)))


def binning(exact: Mapping[Any, Mapping[Any, float]], sizes: Mapping[Any, int]) -> Binning:
    groups = tuple(exact)
    regular: list[tuple[Any, ...]] = []
    expected: list[np.ndarray] = []
    merged: list[int | None] = []
    for g in groups:
        n = sizes[g]
        keep = tuple(o for o, p in exact[g].items() if n * p >= MIN_EXPECTED)
        exp = [n * exact[g][o] for o in keep]
        rare = n - sum(exp)
        if rare >= MIN_EXPECTED or not keep:
            exp.append(max(rare, 1e-300))
            merged.append(None)
        else:
            i = min(range(len(exp)), key=exp.__getitem__)
            exp[i] += max(rare, 0.0)
            merged.append(i)
        regular.append(keep)
        expected.append(np.array(exp))
    return Binning(groups, tuple(regular), tuple(expected), tuple(merged), tuple(sizes[g] for g in groups))


def chi_square(counts: Mapping[Any, Mapping[Any, int]], exact: Mapping[Any, Mapping[Any, float]]
               ) -> ChiSquare:
    """Pearson's X² of grouped counts against the exact laws (each group's size is its count total)."""
    sizes = {g: int(sum(counts.get(g, {}).values())) for g in exact}
    bins = binning(exact, sizes)
    stat = bins.statistic(bins.observed(counts))
    return ChiSquare(stat, bins.df, float(chi2.sf(stat, bins.df)), critical(bins.df), sum(sizes.values()))


def rejection_rate(exact: Mapping[Any, float], truth: Mapping[Any, float], n: int, runs: int,
                   rng: np.random.Generator) -> float:
    """The fraction of ``runs`` simulated samples of size n, drawn from ``truth``, that the test against ``exact``
    rejects: the measured false-alarm rate (truth = exact) or power (truth off by some TV)."""
    bins = binning({0: exact}, {0: n})
    outcomes = list(truth)
    draws = rng.multinomial(n, np.array([truth[o] for o in outcomes]), size=runs)
    where = {o: i for i, o in enumerate(bins.regular[0])}
    merged = bins.merged_into[0]
    rare = len(bins.regular[0]) if merged is None else merged
    index = np.array([where.get(o, rare) for o in outcomes])
    observed = np.zeros((runs, len(bins.expected[0])))
    for column, target in enumerate(index):  # outcomes into their bins
        observed[:, target] += draws[:, column]
    stat = (((observed - bins.expected[0]) ** 2) / bins.expected[0]).sum(-1)
    return float((stat > critical(bins.df)).mean())

"""The statistical test for samplers: Pearson chi-square against the reference's exact outcome probabilities.

Power computation (stated once, used by every distribution test):
  * false-alarm rate α = 1e-6: reject when X² > c, c = the (1 − 1e-6) quantile of χ²(df);
  * a sampler whose outcome distribution p₁ is off the exact p₀ by TV(p₀, p₁) = ε = 0.01 gives X² a
    noncentral χ²(df, λ) law with λ = N · Σ (p₁ − p₀)² / p₀ ≥ N · (Σ|p₁ − p₀|)² / Σ p₀ = N · (2ε)²
    (Cauchy–Schwarz), so the power is at least P(χ²(df, N·4ε²) > c);
  * N is the smallest sample count (to a multiple of 1000) making that ≥ 0.999.
Bin rule: an outcome whose expected count N·p₀ is below 5 goes into one "rare" bin, with every observed
outcome that has exact probability 0; if the rare bin still expects fewer than 5 it joins the smallest
regular bin. Merging cannot raise TV, so the guarantee is stated on the binned outcome space.
No scipy: the regularised incomplete gamma function is computed here (series / continued fraction).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

FALSE_ALARM = 1e-6
TV_DETECT = 0.01
POWER = 0.999


def gamma_p(a: float, x: float) -> float:
    """Regularised lower incomplete gamma P(a, x)."""
    if x <= 0:
        return 0.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:  # series
        term = total = 1.0 / a
        n = a
        while abs(term) > abs(total) * 1e-16:
            n += 1
            term *= x / n
            total += term
        return min(1.0, total * math.exp(log_front))
    return max(0.0, 1.0 - math.exp(log_front) * _upper_fraction(a, x))


def chi2_sf(x: float, df: int) -> float:
    return 1.0 - gamma_p(df / 2, x / 2) if x < df + 2 else _chi2_upper(x, df)


def _chi2_upper(x: float, df: int) -> float:
    # Q computed directly so that tiny tail probabilities keep their relative precision
    a, hx = df / 2, x / 2
    log_front = a * math.log(hx) - hx - math.lgamma(a)
    return math.exp(log_front) * _upper_fraction(a, hx)


def _upper_fraction(a: float, x: float) -> float:
    """The continued fraction of the upper incomplete gamma Q(a, x), by the modified Lentz method."""
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        h *= d * c
        if abs(d * c - 1) < 1e-16:
            break
    return h


@cache
def chi2_critical(df: int, alpha: float = FALSE_ALARM) -> float:
    lo, hi = 0.0, 10.0 * df + 200
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if chi2_sf(mid, df) > alpha else (lo, mid)
    return hi


def noncentral_chi2_cdf(x: float, df: int, lam: float) -> float:
    """Poisson(λ/2) mixture of central χ²(df + 2j) laws."""
    half = lam / 2
    j0 = int(half)
    total = 0.0
    for j in range(max(0, j0 - 2000), j0 + 2000):
        w = math.exp(-half + j * math.log(half) - math.lgamma(j + 1)) if half > 0 else float(j == 0)
        if w > 0:
            total += w * gamma_p(df / 2 + j, x / 2)
    return total


@cache
def samples_needed(df: int, tv: float = TV_DETECT, power: float = POWER, alpha: float = FALSE_ALARM) -> int:
    crit = chi2_critical(df, alpha)
    lo, hi = 1, 10_000
    while 1 - noncentral_chi2_cdf(crit, df, hi * 1000 * 4 * tv * tv) < power:
        hi *= 2
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if 1 - noncentral_chi2_cdf(crit, df, mid * 1000 * 4 * tv * tv) < power else (lo, mid)
    return lo * 1000


@dataclass(frozen=True)
class ChiSquare:
    statistic: float
    df: int
    p_value: float
    critical: float

    @property
    def rejects(self) -> bool:
        return self.statistic > self.critical


def chi_square(counts: Mapping[Any, int], exact: Mapping[Any, float]) -> ChiSquare:
    n = sum(counts.values())
    regular = [o for o, p in exact.items() if n * p >= 5]
    rare_obs = n - sum(counts.get(o, 0) for o in regular)
    rare_exp = n * (1.0 - sum(exact[o] for o in regular))
    obs = [counts.get(o, 0) for o in regular]
    exp = [n * exact[o] for o in regular]
    if rare_exp >= 5 or not regular:
        obs.append(rare_obs)
        exp.append(max(rare_exp, 1e-300))
    else:
        i = min(range(len(exp)), key=exp.__getitem__)
        obs[i] += rare_obs
        exp[i] += max(rare_exp, 0.0)
    stat = sum((o - e) ** 2 / e for o, e in zip(obs, exp, strict=True))
    df = max(len(obs) - 1, 1)
    return ChiSquare(stat, df, chi2_sf(stat, df), chi2_critical(df))

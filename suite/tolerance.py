"""The tolerance policy of the numerical areas (design brief, "Tolerances").

An implementation in dtype T passes for an output x when
    max|x − ref|  ≤ k · max|baseline_T − ref| + noise_max
    mean|x − ref| ≤ 1.5 · mean|baseline_T − ref| + noise_mean
and x holds no NaN (nor an infinity the reference does not have). ``baseline_T`` is the plain
eager PyTorch computation in T; k = 2 for outputs and 3 for gradients.

The noise terms bound what rounding alone can cost an implementation that sums in another order than
eager. Perturb the scores of row i by δ_ij: to first order the output moves by
    δo_i = Σ_j P_ij (δ_ij − Σ_l P_il δ_il) v_j = Σ_j P_ij δ_ij (v_j − o_i),
so |δo_i| ≤ max_j |δ_ij| · max|V| (twice that at worst; the baseline term carries the rest). A score
s = scale·q·k rounded in T moves by about ε_T · a_ij with a_ij = scale·Σ_d|q_d k_d| (+ the ALiBi term):
the dot product of absolute values, not |s|, since cancellation in q·k does not cancel its rounding.
With r_i = max_j a_ij over the keys row i sees, the bound of row i is ε_T · r_i · max|V|. The max rule
takes the largest row, the mean rule the mean over rows of the same per-row bound:
    noise_max  = ε_out · max|ref|  + ε_T · max_i r_i · max|V|
    noise_mean = ε_out · mean|ref| + ε_T · (terms + mean_i r_i · max|V|)
(``terms`` = max|V|: the rounding of the terms an output near 0 by cancellation is summed from; ε_out is the
rounding of the dtype the output is returned in — a float32 LSE of float16 inputs — and ε_T that of the inputs,
in which the scores may have been formed). For the
gradients the propagated magnitudes come from dS = P ⊙ (dP − rowsum(dO ⊙ O)), see ``suite.attention.check``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = {"float32": 2.0**-23, "float16": 2.0**-10, "bfloat16": 2.0**-7, "float64": 2.0**-52}
K_OUTPUT = 2.0
K_GRADIENT = 3.0
MEAN_FACTOR = 1.5


@dataclass(frozen=True)
class Comparison:
    name: str
    err_max: float
    err_mean: float
    base_max: float
    base_mean: float
    bound_max: float
    bound_mean: float
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        head = (f"{self.name}: max err {self.err_max:.3g} (bound {self.bound_max:.3g}, baseline {self.base_max:.3g}), "
                f"mean err {self.err_mean:.3g} (bound {self.bound_mean:.3g}, baseline {self.base_mean:.3g})")
        return head + ("" if self.ok else " -- " + "; ".join(self.problems))


def compare(name: str, got: np.ndarray, ref: np.ndarray, baseline: np.ndarray, dtype: str, k: float,
            propagated: float, terms: float, propagated_mean: float | None = None,
            input_dtype: str | None = None) -> Comparison:
    """Apply the policy to one output; ``got`` and ``baseline`` are upcast to float64 by the caller.

    ``propagated`` is the largest magnitude that rounding the scores can move this output by, in units of
    ε_T (for the attention output: max_i r_i · max|V|), and ``propagated_mean`` the same bound averaged over
    the rows (default: ``propagated``); ``terms`` is the magnitude of the terms the output is made of (for
    the output: max|V|), whose rounding sets the floor of the mean check where the output is near 0.
    ``dtype`` is the dtype the output was returned in (its own rounding); ``input_dtype`` (default ``dtype``)
    the one its scores and terms were formed in: a float32 LSE of float16 inputs rounds as float32 itself, but
    the scores under it may have been rounded as float16.
    """
    got, ref, baseline = (np.asarray(x, dtype=np.float64) for x in (got, ref, baseline))
    if got.shape != ref.shape:
        return Comparison(name, np.inf, np.inf, 0, 0, 0, 0, (f"shape {got.shape}, expected {ref.shape}",))
    eps, eps_in = EPS[dtype], EPS[input_dtype or dtype]
    problems = []
    if np.isnan(got).any():
        problems.append(f"{int(np.isnan(got).sum())} NaN of {got.size} (first at {_first(np.isnan(got))})")
    ref_inf = np.isinf(ref)
    wrong_inf = (np.isinf(got) | ref_inf) & ~(got == ref)
    if wrong_inf.any():
        problems.append(f"{int(wrong_inf.sum())} infinities differ from the reference (first at {_first(wrong_inf)})")
    finite = ~ref_inf
    if not finite.any():
        return Comparison(name, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, tuple(problems))
    err = np.abs(np.where(finite, got, 0.0) - np.where(finite, ref, 0.0))[finite]
    base_err = np.abs(np.where(finite, baseline, 0.0) - np.where(finite, ref, 0.0))[finite]
    base_err = np.where(np.isfinite(base_err), base_err, 0.0)  # a baseline NaN only loosens nothing
    ref_abs = np.abs(ref[finite])
    noise_max = eps * ref_abs.max() + eps_in * propagated
    noise_mean = eps * ref_abs.mean() + eps_in * (terms + (propagated if propagated_mean is None else propagated_mean))
    err_max = float(err.max()) if err.size else 0.0
    err_mean = float(err.mean()) if err.size else 0.0
    bound_max = k * float(base_err.max()) + noise_max
    bound_mean = MEAN_FACTOR * float(base_err.mean()) + noise_mean
    if not np.isnan(got).any():
        if err_max > bound_max:
            problems.append(f"max error {err_max:.3g} exceeds {k:g}·baseline + noise = {bound_max:.3g} "
                            f"(worst at {_first(np.abs(got - ref) == err_max) if np.isfinite(err_max) else '?'})")
        if err_mean > bound_mean:
            problems.append(f"mean error {err_mean:.3g} exceeds {MEAN_FACTOR:g}·baseline + noise = {bound_mean:.3g}")
    return Comparison(name, err_max, err_mean, float(base_err.max()), float(base_err.mean()), bound_max,
                      bound_mean, tuple(problems))


def _first(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0]) if mask.any() else ()

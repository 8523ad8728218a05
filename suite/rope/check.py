"""The rope checks: one implementation on one case against the float64 reference → a Verdict.

Inputs are fresh random draws from the seed, rounded to the case's dtype (views into one fused qkv
buffer when the case says so); the reference rotates the rounded values in float64; the baseline is
``suite.rope.baseline`` in the same dtype. The tolerance rule (docs/rope.md, "Tolerance"): an
implementation in dtype T passes when its error is at most 2× the baseline's plus the rounding noise of
T plus what a careful fp32 angle product may cost:

    noise = ε_T·max|ref| + max over pairs of a · ‖(x_a, x_b)‖ · A_i(φ_i),
    A_i(φ) = u·(|φ|·(3 + (2i/d)·ln base') + 2),   u = 2^-24 (fp32's unit roundoff)

A_i bounds, in radians, how far a careful fp32 angle may be from the float64 one: the product m·θ_i
rounds by u·|φ|; θ_i computed in fp32 as base^(−2i/d) carries (2i/d)·ln(base)·u from the rounded
exponent plus about 2u from pow, the division and a scaling factor; fp32 cos and sin add about 2u. It
grows with the position: at 128K it is the dominant term in every dtype.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from impls.rope.api import RopeCase, RopeImpl
from impls.tensors import torch_dtype
from reference import rope as ref
from suite.engine.verdict import Line, Verdict, equal, holds, verdict
from suite.rope.baseline import eager_rotate
from suite.tolerance import EPS, K_OUTPUT, Comparison, compare

EPS32 = EPS["float32"]
UNIT = EPS32 / 2  # fp32 unit roundoff u = 2^-24


@dataclass
class Inputs:
    q: torch.Tensor  # [T, Hq, D] in the case's dtype and device (views of one buffer when fused)
    k: torch.Tensor
    positions: torch.Tensor  # int64 [T]
    q64: np.ndarray  # the rounded values in float64
    k64: np.ndarray


def as64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def rounded(x64: np.ndarray, case: RopeCase) -> torch.Tensor:
    """The drawn input again, in the case's dtype on the CPU (exact: x64 holds values of that dtype)."""
    return torch.from_numpy(x64).to(torch_dtype(case.dtype))


def make_inputs(case: RopeCase, seed: int, positions: Sequence[int] | None = None, tokens: int | None = None,
                repeat: int = 1) -> Inputs:
    """Random q, k; ``repeat`` copies the drawn tokens that many times (same vectors at other positions)."""
    gen = torch.Generator().manual_seed(seed)
    pos = list(case.positions if positions is None else positions)
    n = (len(pos) if tokens is None else tokens) // repeat
    heads = case.heads_q + 2 * case.heads_kv if case.fused_qkv else case.heads_q + case.heads_kv
    drawn = torch.randn((n, heads, case.head_dim), generator=gen, dtype=torch.float64)
    buffer = drawn.repeat(repeat, 1, 1).to(torch_dtype(case.dtype)).to(case.device)
    q, k = buffer[:, :case.heads_q], buffer[:, case.heads_q:case.heads_q + case.heads_kv]
    if not case.fused_qkv:
        q, k = q.contiguous(), k.contiguous()
    return Inputs(q, k, torch.tensor(pos, dtype=torch.int64, device=case.device), as64(q), as64(k))


# ---- tolerance ------------------------------------------------------------------------------------------------

def angle_bound(phi: np.ndarray, base: float) -> np.ndarray:
    """A_i(φ) [..., d/2]: radians a careful fp32 angle (and its cos, sin) may be off by, pair by pair."""
    exponent = 2.0 * np.arange(phi.shape[-1]) / (2 * phi.shape[-1])
    return UNIT * (np.abs(phi) * (3.0 + exponent * math.log(base)) + 2.0)


def rotation_noise(x64: np.ndarray, phi: np.ndarray, case: RopeCase, seq_len: int) -> np.ndarray:
    """Per element of the output [T, H, D]: a·‖pair‖·A(φ) on rotated dimensions, 0 on the others."""
    c = case.config
    a_idx, b_idx = ref.pair_indices(c.rotary_dim, c.layout)
    pair = np.hypot(x64[..., a_idx], x64[..., b_idx])
    per = ref.attention_factor(c) * pair * angle_bound(phi, ref.effective_base(c, seq_len))[:, None, :]
    out = np.zeros_like(x64)
    out[..., a_idx], out[..., b_idx] = per, per
    return out


def compare_rotated(name: str, got: torch.Tensor, want: np.ndarray, base: torch.Tensor, x64: np.ndarray,
                    phi: np.ndarray, case: RopeCase, seq_len: int) -> Comparison:
    eps = EPS[case.dtype]
    noise = rotation_noise(x64, phi, case, seq_len)
    terms = max(ref.attention_factor(case.config), 1.0) * float(np.abs(x64).max(initial=0.0))
    return compare(name, as64(got), want, as64(base), case.dtype, K_OUTPUT, float(noise.max(initial=0.0)) / eps,
                   terms, float(noise.mean()) / eps if noise.size else 0.0)


def logits(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """⟨q_i, k_j⟩ per query head h and its kv head h // (Hq / Hkv): [Hq, T, T]."""
    group = q.shape[1] // k.shape[1]
    return np.einsum("ihd,jhd->hij", q, np.repeat(k, group, axis=1))


def logit_noise(q64: np.ndarray, k64: np.ndarray, phi: np.ndarray, case: RopeCase, seq_len: int) -> np.ndarray:
    """Per logit [Hq, T, T], in units of ε_T: what careful fp32 angles and rounding to T may move ⟨q'_i, k'_j⟩ by.

    Pair p of the logit is ⟨R(φ_ip) q_ip, R(φ_jp) k_jp⟩, moved by at most (A_p(φ_ip) + A_p(φ_jp))·‖q_ip‖‖k_jp‖
    by the angles; rounding q' and k' to T adds ε_T·Σ_d |q_id|·|k_jd|; everything times a'² (a' = max(a, 1)).
    """
    c = case.config
    scale = max(ref.attention_factor(c), 1.0) ** 2
    group = q64.shape[1] // k64.shape[1]
    bound = angle_bound(phi, ref.effective_base(c, seq_len))  # [T, P]
    qn, kn = pair_norms(q64, c), np.repeat(pair_norms(k64, c), group, axis=1)  # [T, H, P]
    angles_term = np.einsum("ip,ihp,jhp->hij", bound, qn, kn) + np.einsum("ihp,jp,jhp->hij", qn, bound, kn)
    rounding = np.einsum("ihd,jhd->hij", np.abs(q64), np.repeat(np.abs(k64), group, axis=1))
    return scale * (angles_term / EPS[case.dtype] + rounding)


def missing(name: str, why: str) -> Comparison:
    return Comparison(name, np.inf, np.inf, 0, 0, 0, 0, (why,))


# ---- checks ---------------------------------------------------------------------------------------------------

def call(impl: RopeImpl, emb: object, inputs: Inputs, case: RopeCase) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return emb.apply(inputs.q, inputs.k, inputs.positions, in_place=case.in_place)  # type: ignore[attr-defined]


def rotation_lines(case: RopeCase, inputs: Inputs, got: tuple[torch.Tensor, torch.Tensor], seq_len: int,
                   tag: str = "") -> list[Line | Comparison]:
    """q and k against the reference, the logits q'·k'ᵀ, and the pass-through dimensions left exact."""
    c, pos = case.config, inputs.positions.cpu().numpy()
    phi = ref.angles(pos, c, seq_len)
    lines: list[Line | Comparison] = []
    outputs = []
    for name, x64, out in (("q", inputs.q64, got[0]), ("k", inputs.k64, got[1])):
        if tuple(out.shape) != x64.shape:
            lines.append(missing(name + tag, f"shape {tuple(out.shape)}, expected {x64.shape}"))
            return lines
        want = ref.apply(x64, pos, c, seq_len)
        base = eager_rotate(rounded(x64, case), inputs.positions, c, seq_len)
        lines.append(compare_rotated(name + tag, out, want, base, x64, phi, case, seq_len))
        outputs.append((as64(out), want, as64(base), x64))
        if c.partial:
            kept = np.array_equal(as64(out)[..., c.rotary_dim:], x64[..., c.rotary_dim:], equal_nan=True)
            lines.append(holds("pass_through" + tag, kept, f"dimensions {c.rotary_dim}..{c.head_dim - 1} "
                               + ("unchanged" if kept else "changed, but they are not rotated")))
    (gq, wq, bq, q64), (gk, wk, bk, k64) = outputs
    noise = logit_noise(q64, k64, phi, case, seq_len)
    want_logits = logits(wq, wk)
    line = compare("logits" + tag, logits(gq, gk), want_logits, logits(bq, bk), case.dtype, K_OUTPUT,
                   float(noise.max(initial=0.0)), 0.0, float(noise.mean()) if noise.size else 0.0)
    if not line.ok:  # say which scale the implementation's logits carry
        unscaled = logits(*(ref.apply(x, pos, replace_factor(c), seq_len) for x in (q64, k64)))
        fitted = float((logits(gq, gk) * unscaled).sum() / max(float((unscaled**2).sum()), 1e-300))
        line = replace(line, problems=(*line.problems, f"fitted logit scale {fitted:.5g}, spec "
                                                       f"{ref.attention_factor(c) ** 2:.5g}"))
    lines.append(line)
    return lines


def replace_factor(config: ref.RopeConfig) -> ref.RopeConfig:
    """The same frequencies without the attention factor (to measure the logit scale an implementation applied)."""
    if config.scaling is None or ref.attention_factor(config) == 1.0:
        return config
    return replace(config, scaling=replace(config.scaling, attention_factor=1.0))


def in_place_line(case: RopeCase, inputs: Inputs, got: tuple[torch.Tensor, torch.Tensor]) -> list[Line]:
    if not case.in_place:
        return []
    same = got[0].data_ptr() == inputs.q.data_ptr() and got[1].data_ptr() == inputs.k.data_ptr()
    return [holds("in_place", same, "results written into q and k" if same else
                  "in_place=True, but the results are not in q's and k's storage")]


def check_rotation(impl: RopeImpl, case: RopeCase, seed: int) -> Verdict:
    """One call: q and k rotated as the spec says, at the call's current length."""
    inputs = make_inputs(case, seed)
    emb = impl.embedding(case.config, case.dtype, case.device)
    got = call(impl, emb, inputs, case)
    return verdict(case, in_place_line(case, inputs, got), rotation_lines(case, inputs, got, case.seq_len))


def check_schedule(impl: RopeImpl, case: RopeCase, seed: int) -> Verdict:
    """Successive calls on one embedding, each the last ``tokens`` positions of a sequence of its length."""
    emb = impl.embedding(case.config, case.dtype, case.device)
    lines: list[Line | Comparison] = []
    for step, length in enumerate(case.schedule):
        positions = range(max(length - case.tokens, 0), length)
        inputs = make_inputs(case, seed + step, positions)
        got = call(impl, emb, inputs, case)
        lines += rotation_lines(case, inputs, got, length, tag=f"@L={length}")
    return verdict(case, lines)


def check_frequencies(impl: RopeImpl, case: RopeCase, seed: int) -> Verdict:
    """θ'_i and the attention factor at the case's current length, against the reference's."""
    c, length = case.config, case.seq_len
    got_inv, got_factor = impl.frequencies(c, length)
    want = ref.inv_freq(c, length)
    got = np.asarray(got_inv, dtype=np.float64).reshape(-1)
    if got.shape != want.shape:
        return verdict(case, equal("inv_freq.shape", got.shape, want.shape))
    bound = EPS32 * (8.0 + 2.0 * math.log(ref.effective_base(c, length)))
    rel = np.abs(got - want) / want
    worst = int(rel.argmax())
    factor = ref.attention_factor(c)
    return verdict(case, holds("inv_freq", bool(rel.max() <= bound),
                               f"max relative error {rel.max():.3g} at pair {worst} (got {got[worst]:.9g}, spec "
                               f"{want[worst]:.9g}; bound {bound:.3g}: fp32 rounding)"),
                   holds("attention_factor", abs(got_factor - factor) <= 1e-6 * factor,
                         f"{got_factor:.9g}, spec {factor:.9g}"))


def check_relative_position(impl: RopeImpl, case: RopeCase, seed: int) -> Verdict:
    """⟨R_m q, R_n k⟩ = ⟨R_{m+s} q, R_{n+s} k⟩: the second half of the positions is the first shifted by s."""
    half = case.tokens // 2
    inputs = make_inputs(case, seed, repeat=2)
    emb = impl.embedding(case.config, case.dtype, case.device)
    out_q, out_k = (as64(t) for t in call(impl, emb, inputs, case))
    base_q, base_k = (as64(eager_rotate(rounded(x, case), inputs.positions, case.config))
                      for x in (inputs.q64, inputs.k64))
    pos = inputs.positions.cpu().numpy()
    shift = int(pos[half] - pos[0])

    def difference(q: np.ndarray, k: np.ndarray) -> np.ndarray:
        return logits(q[half:], k[half:]) - logits(q[:half], k[:half])

    want_q, want_k = (ref.apply(x, pos, case.config) for x in (inputs.q64, inputs.k64))
    phi = ref.angles(pos, case.config)
    noise = logit_noise(inputs.q64[:half], inputs.k64[:half], phi[:half], case, case.seq_len) + \
        logit_noise(inputs.q64[half:], inputs.k64[half:], phi[half:], case, case.seq_len)  # both halves' errors
    line = compare(f"logit change under a shift of {shift}", difference(out_q, out_k), difference(want_q, want_k),
                   difference(base_q, base_k), case.dtype, K_OUTPUT, float(noise.max(initial=0.0)), 0.0,
                   float(noise.mean()) if noise.size else 0.0)
    return verdict(case, line)


def pair_norms(x: np.ndarray, config: ref.RopeConfig) -> np.ndarray:
    a_idx, b_idx = ref.pair_indices(config.rotary_dim, config.layout)
    return np.hypot(x[..., a_idx], x[..., b_idx])


def check_norms(impl: RopeImpl, case: RopeCase, seed: int) -> Verdict:
    """‖(x_a, x_b)‖ of every rotated pair is kept, times the attention factor."""
    inputs = make_inputs(case, seed)
    emb = impl.embedding(case.config, case.dtype, case.device)
    got = call(impl, emb, inputs, case)
    c, a, eps = case.config, ref.attention_factor(case.config), EPS[case.dtype]
    lines = []
    for name, x64, out in (("q", inputs.q64, got[0]), ("k", inputs.k64, got[1])):
        want = a * pair_norms(x64, c)
        base = pair_norms(as64(eager_rotate(rounded(x64, case), inputs.positions, c)), c)
        propagated = 2.0 * a * float(want.max(initial=0.0)) * (1.0 + EPS32 / eps)
        lines.append(compare(f"{name} pair norms", pair_norms(as64(out), c), want, base, case.dtype, K_OUTPUT,
                             propagated, 0.0))
    return verdict(case, lines)


def check_inverse(impl: RopeImpl, case: RopeCase, seed: int) -> Verdict:
    """R_{−m} R_m = a²·I: rotate at the positions, then the result at their negatives, on one embedding."""
    inputs = make_inputs(case, seed)
    emb = impl.embedding(case.config, case.dtype, case.device)
    c, a = case.config, ref.attention_factor(case.config)
    back_positions = -inputs.positions
    first = call(impl, emb, inputs, case)
    again = Inputs(first[0], first[1], back_positions, as64(first[0]), as64(first[1]))
    second = call(impl, emb, again, replace(case, positions=tuple(back_positions.tolist())))
    pos = inputs.positions.cpu().numpy()
    phi = ref.angles(pos, c)
    lines: list[Line | Comparison] = []
    for name, x64, out in (("q", inputs.q64, second[0]), ("k", inputs.k64, second[1])):
        want = x64.copy()
        want[..., :c.rotary_dim] *= a * a
        base = eager_rotate(eager_rotate(rounded(x64, case), inputs.positions, c), back_positions, c)
        noise = 2.0 * a * rotation_noise(x64, phi, case, case.seq_len)  # two rotations' angle errors
        eps = EPS[case.dtype]
        lines.append(compare(f"{name} after R(-m)·R(m)", as64(out), want, as64(base), case.dtype, K_OUTPUT,
                             float(noise.max(initial=0.0)) / eps, a * a * float(np.abs(x64).max(initial=0.0)),
                             float(noise.mean()) / eps))
    return verdict(case, lines)


def check_inputs_untouched(impl: RopeImpl, case: RopeCase, seed: int) -> Verdict:
    """An out-of-place call leaves q and k as they were."""
    inputs = make_inputs(case, seed)
    before = (inputs.q.clone(), inputs.k.clone())
    emb = impl.embedding(case.config, case.dtype, case.device)
    call(impl, emb, inputs, replace(case, in_place=False))
    lines = []
    for name, x, kept in (("q", inputs.q, before[0]), ("k", inputs.k, before[1])):
        same = torch.equal(x, kept)
        changed = int((x != kept).sum())
        lines.append(holds(f"{name} untouched", same, "unchanged" if same else
                           f"{changed} of {x.numel()} elements of the caller's {name} changed by an out-of-place call"))
    return verdict(case, lines)

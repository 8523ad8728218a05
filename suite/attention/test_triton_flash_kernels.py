"""Kernel-specific checks of the in-repo Triton flash attention (beyond the shared conformance suite).

- planted kernel bugs (accumulator not rescaled, last partial K block unmasked, causal bound that
  drops the diagonal block) must be rejected by the conformance check, every run;
- blocks outside the causal / window range are skipped, not computed-and-masked (NaN poison in V);
- head dims up to 256 and non powers of two, varlen gradients, GQA gradients;
- the bf16 interpreter workaround is needed (the interpreter bug is still there) and is declared.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from impls.attention.api import AttentionCase
from impls.base import _importable
from impls.tensors import default_device
from reference import attention as ref
from suite.attention.check import check

if not _importable("triton"):
    pytest.skip("module 'triton' is not installed", allow_module_level=True)

import triton
import triton.language as tl

from impls._triton_math import tanh
from impls.attention.triton_flash import (
    BF16_INTERPRETER_NOTE,
    INTERPRETER_BLOCKS,
    Bugs,
    Problem,
    TritonFlashAttention,
    flash_forward,
    interpreting,
)

DEVICE = default_device()
CORRECT = TritonFlashAttention()
if CORRECT.unavailable():
    pytest.skip("triton-flash cannot run here: " + "; ".join(CORRECT.unavailable()), allow_module_level=True)

BLOCK_M, BLOCK_N = INTERPRETER_BLOCKS
CAUSAL_TL = ref.AttentionOptions(causal=True, alignment="top_left")
CAUSAL_BR = ref.AttentionOptions(causal=True, alignment="bottom_right")


def _case(sq: int, sk: int, opts: ref.AttentionOptions, dtype: str = "float32", head_dim: int = 32,
          heads_q: int = 2, heads_kv: int = 2, grad: bool = False) -> AttentionCase:
    return AttentionCase(1, heads_q, heads_kv, sq, sk, head_dim, dtype, DEVICE, opts, needs_grad=grad, needs_lse=True)


class Planted(TritonFlashAttention):
    """The kernel with one planted bug, run with the fixed interpreter tiles so each bug is reachable."""

    def forward(self, q, k, v, opts, out=None, **asked):  # type: ignore[no-untyped-def]
        prob = Problem(q.shape[0], q.shape[1], k.shape[1], q.shape[2], k.shape[2], q.shape[3], False)
        return flash_forward(q, k, v, opts, prob, None, None, out=out, bugs=self.bugs, blocks=INTERPRETER_BLOCKS)


# (bug, case where it must show): each case spans several K blocks of BLOCK_N keys.
PLANTED = {
    # 4 key blocks, random logits: the running max changes between blocks in nearly every row
    "no_rescale": (Bugs(no_rescale=True), _case(64, 4 * BLOCK_N, ref.AttentionOptions())),
    # Sk = 97: the last block holds 1 real key and 31 zero-filled ones that would get exp(0 − m) weight
    "unmasked_tail": (Bugs(unmasked_tail=True), _case(40, 3 * BLOCK_N + 1, ref.AttentionOptions())),
    "drop_diagonal_top_left": (Bugs(drop_diagonal=True), _case(64, 64, CAUSAL_TL)),
    "drop_diagonal_bottom_right": (Bugs(drop_diagonal=True), _case(17, 97, CAUSAL_BR)),
}


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_triton_flash_planted_bug_is_rejected(bug: str) -> None:
    bugs, case = PLANTED[bug]
    for seed in (0, 1):
        good = check(Planted(), case, seed)
        assert good.ok, f"the correct kernel must pass the case that exposes {bug}:\n{good.describe()}"
        bad = check(Planted(bugs, name=f"planted-{bug}"), case, seed)
        assert not bad.ok, f"the conformance check accepted the planted kernel bug {bug} (seed {seed})"


def _poisoned_v_forward(sq: int, sk: int, opts: ref.AttentionOptions, poison: slice) -> torch.Tensor:
    gen = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(1, 1, s, 32, generator=gen).to(DEVICE) for s in (sq, sk, sk))
    v[:, :, poison] = float("nan")
    prob = Problem(1, 1, 1, sq, sk, 32, False)
    out, _ = flash_forward(q, k, v, opts, prob, None, None, blocks=(BLOCK_M, BLOCK_N))
    return out


def test_triton_flash_skips_blocks_above_the_causal_diagonal() -> None:
    # Causal top-left, 128×128, 32×32 tiles: row blocks 0 and 1 (rows 0..63) see keys ≤ 63 only. A kernel that
    # computed key blocks 2 and 3 and masked them would multiply NaN values by 0 and put NaN in those rows.
    out = _poisoned_v_forward(128, 128, CAUSAL_TL, slice(64, 128))
    assert torch.isfinite(out[:, :, :64]).all(), "key blocks above the diagonal were computed, not skipped"
    assert torch.isnan(out[:, :, 64:]).any(), "rows that do see the poisoned keys must show it (the test can fail)"


def test_triton_flash_skips_blocks_left_of_the_window() -> None:
    # window_left = 8: rows 96..127 see keys ≥ 88, so their first tile starts at key 64 (block-aligned).
    opts = ref.AttentionOptions(window_left=8, window_right=0, alignment="top_left")
    out = _poisoned_v_forward(128, 128, opts, slice(0, 64))
    assert torch.isfinite(out[:, :, 96:]).all(), "key blocks left of the window were computed, not skipped"
    assert torch.isnan(out[:, :, :64]).any(), "rows that do see the poisoned keys must show it (the test can fail)"


@pytest.mark.parametrize("head_dim", [16, 48, 200, 256])
@pytest.mark.parametrize("grad", [False, True], ids=["fwd", "bwd"])
def test_triton_flash_head_dims(head_dim: int, grad: bool) -> None:
    opts = ref.AttentionOptions(causal=True, alignment="bottom_right", softcap=20.0)
    case = _case(33, 47, opts, head_dim=head_dim, grad=grad)
    result = check(CORRECT, case, seed=head_dim)
    assert result.ok, result.describe()


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_triton_flash_gqa_backward_with_every_option(dtype: str) -> None:
    opts = ref.AttentionOptions(scale=0.3, causal=True, window_left=20, alibi_slopes=ref.alibi_slopes(4), softcap=5.0,
                                alignment="bottom_right")
    result = check(CORRECT, _case(45, 70, opts, dtype=dtype, heads_q=4, heads_kv=1, grad=True), seed=9)
    assert result.ok, result.describe()


def test_triton_flash_varlen_gradients_match_the_reference() -> None:
    # fp32 throughout; the float64 reference's gradients, per sequence. Bound: fp32 rounding (6e-8) times the
    # longest dot product (≤ 64 terms of magnitude ≤ ~10) leaves orders of magnitude under 1e-4.
    lens_q, lens_k = [5, 40, 1], [33, 7, 64]
    cu_q = torch.tensor(np.cumsum([0, *lens_q]), dtype=torch.int32)
    cu_k = torch.tensor(np.cumsum([0, *lens_k]), dtype=torch.int32)
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(sum(lens_q), 4, 24, generator=gen, dtype=torch.float64)
    k, v = (torch.randn(sum(lens_k), 2, 24, generator=gen, dtype=torch.float64) for _ in range(2))
    d_out = torch.randn_like(q)
    opts = CAUSAL_BR
    leaves = [t.float().to(DEVICE).requires_grad_(True) for t in (q, k, v)]
    out, lse = CORRECT.forward_varlen(leaves[0], leaves[1], leaves[2], cu_q.to(DEVICE), cu_k.to(DEVICE), 40, 64, opts)
    out.backward(d_out.float().to(DEVICE))
    want_out, want_lse = ref.attention_varlen(q.numpy(), k.numpy(), v.numpy(), cu_q.numpy(), cu_k.numpy(), opts)
    assert np.abs(out.detach().cpu().double().numpy() - want_out).max() < 1e-4
    assert lse is not None
    assert np.allclose(lse.detach().cpu().double().numpy(), want_lse, atol=1e-4, rtol=0)  # −inf rows compare equal
    for n in range(len(lens_q)):
        qs, ks = slice(int(cu_q[n]), int(cu_q[n + 1])), slice(int(cu_k[n]), int(cu_k[n + 1]))
        per_seq = [t[None, s].transpose(1, 2).numpy() for t, s in ((q, qs), (k, ks), (v, ks), (d_out, qs))]
        want = ref.attention_grads(per_seq[0], per_seq[1], per_seq[2], per_seq[3], opts)
        for name, leaf, s, w in zip(("dq", "dk", "dv"), leaves, (qs, ks, ks), want, strict=True):
            assert leaf.grad is not None
            got = leaf.grad[s].detach().cpu().double().numpy().transpose(1, 0, 2)[None]
            err = float(np.abs(got - w).max())
            assert err < 1e-4, f"{name} of sequence {n}: max error {err:.3g}"


# ---- bf16 under the interpreter ----------------------------------------------------------------------------------

@pytest.mark.skipif(not interpreting(), reason="the bf16 tl.dot workaround applies only under TRITON_INTERPRET=1")
def test_triton_flash_interpreter_bf16_dot_is_still_broken() -> None:
    """The workaround must not outlive the bug: when triton's interpreter gets bf16 tl.dot right, this fails."""
    import triton
    import triton.language as tl

    @triton.jit
    def dot_kernel(A, B, C, N: tl.constexpr):
        idx = tl.arange(0, N)
        a = tl.load(A + idx[:, None] * N + idx[None, :])
        b = tl.load(B + idx[:, None] * N + idx[None, :])
        tl.store(C + idx[:, None] * N + idx[None, :], tl.dot(a, b))

    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(32, 32, generator=gen).to(torch.bfloat16) for _ in range(2))
    want = a.double() @ b.double()
    errors = {}
    for dtype in (torch.float16, torch.bfloat16):
        c = torch.empty(32, 32, dtype=torch.float32)
        dot_kernel[(1,)](a.to(dtype), b.to(dtype), c, N=32)
        errors[dtype] = float((c.double() - (a.to(dtype).double() @ b.to(dtype).double())).abs().max())
    assert errors[torch.float16] < 1e-3, f"fp16 tl.dot under the interpreter should be right: {errors}"
    scale = float(want.abs().max())
    assert errors[torch.bfloat16] > 0.1 * scale, (
        f"triton {triton.__version__}'s interpreter now computes bf16 tl.dot correctly (max error "
        f"{errors[torch.bfloat16]:.3g}): remove the UPCAST workaround in impls/attention/_triton_flash_kernels.py")


def test_triton_flash_declares_how_bf16_is_covered() -> None:
    if interpreting():
        assert BF16_INTERPRETER_NOTE in CORRECT.description
        print(f"\n{CORRECT.name}: {BF16_INTERPRETER_NOTE}")  # shown with -s; the description carries it in reports
    else:
        assert "compiled" in CORRECT.description and os.environ.get("TRITON_INTERPRET", "0") in ("", "0")


# ---- compiled on a GPU: the shapes the kernels are tuned for --------------------------------------------------

GPU_OPTIONS = {
    "plain": ref.AttentionOptions(),
    "causal_br": CAUSAL_BR,
    "causal_tl_window": ref.AttentionOptions(causal=True, window_left=37, alignment="top_left"),
    "softcap_alibi": ref.AttentionOptions(softcap=20.0, alibi_slopes=ref.alibi_slopes(8), alignment="bottom_right"),
}
GPU_SHAPES = [(2, 8, 2, 300, 513, 128), (1, 8, 8, 1000, 1000, 64), (1, 8, 4, 77, 1200, 96), (1, 8, 1, 129, 65, 256)]


@pytest.mark.gpu
@pytest.mark.skipif(DEVICE != "cuda" or interpreting(), reason="compiled Triton kernels need a CUDA device")
@pytest.mark.parametrize("grad", [False, True], ids=["fwd", "bwd"])
@pytest.mark.parametrize("shape", GPU_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("options", list(GPU_OPTIONS))
@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_triton_flash_compiled_at_tuned_shapes(dtype: str, options: str, shape: tuple[int, ...], grad: bool) -> None:
    """Autotuned configurations (BLOCK_M/N up to 128, several stages), long sequences, every option."""
    b, hq, hkv, sq, sk, d = shape
    case = AttentionCase(b, hq, hkv, sq, sk, d, dtype, DEVICE, GPU_OPTIONS[options], needs_grad=grad,
                         needs_lse=not grad)
    result = check(CORRECT, case, seed=sq + sk + d)
    assert result.ok, result.describe()


@triton.jit
def _apply_tanh(x_ptr, y_ptr, n, BLOCK: tl.constexpr):  # type: ignore[no-untyped-def]
    offs = tl.arange(0, BLOCK)
    keep = offs < n
    tl.store(y_ptr + offs, tanh(tl.load(x_ptr + offs, mask=keep)), mask=keep)


def test_the_kernels_tanh_is_accurate_at_every_magnitude() -> None:
    """softcap·tanh(s / softcap) inherits tanh's error times softcap: an exp-only tanh (absolute error ε near 0) put
    triton-flash at 13× eager's error for softcap 50 (B2 Hq8 Hkv1 Sq97 Sk97 D40 fp32, scale 0.063, causal, found by
    a randomized dev-profile run). The shared tanh must stay within a few ulp relative, near 0 included."""
    mags = np.logspace(-6, 1.3, 500)
    x = torch.tensor(np.concatenate([mags, -mags, [0.0, 0.2999, 0.3, 0.3001]]), dtype=torch.float32, device=DEVICE)
    y = torch.empty_like(x)
    _apply_tanh[(1,)](x, y, x.numel(), BLOCK=1024)
    exact = np.tanh(x.cpu().double().numpy())
    rel = np.abs(y.cpu().double().numpy() - exact) / np.maximum(np.abs(exact), np.finfo(np.float64).tiny)
    rel[exact == 0] = np.abs(y.cpu().numpy()[exact == 0])
    assert rel.max() <= 8 * 2.0**-24, f"worst relative error {rel.max():.3g} at x = {x[int(rel.argmax())].item():.6g}"

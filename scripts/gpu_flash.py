"""One-shot GPU check of the in-repo Triton flash attention: correctness, then timings against the field.

    python scripts/gpu_flash.py --out results/gpu_flash [--budget-s 270] [--quick]

1. Correctness of the compiled kernels (forward, LSE, gradients) against the float64 reference under
   the suite's tolerance policy, on a few shapes, options and dtypes.
2. Forward and forward+backward timings, bf16, B·S = 16K, H·D = 2048, D ∈ {64, 128}, S ∈ {512 … 16K},
   causal and not: triton-flash, SDPA flash / cuDNN / efficient, FlexAttention compiled, flash-attn.
3. A compact table on stdout and JSON under --out. Every measurement is guarded: an error is
   recorded and the run goes on. Measurements stop when the time budget is spent (recorded too).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

TOKENS, WIDTH = 16384, 2048
SEQLENS = [16384, 8192, 4096, 2048, 1024, 512]  # longest first: the figures the targets are about
IMPLS = ["triton-flash", "sdpa-flash", "sdpa-cudnn", "sdpa-efficient", "flex", "flash-attn-2", "flash-attn-3"]


def correctness() -> list[dict[str, Any]]:
    from impls.attention.api import AttentionCase
    from impls.attention.triton_flash import TritonFlashAttention
    from reference.attention import AttentionOptions, alibi_slopes
    from suite.attention.check import check_attention

    impl = TritonFlashAttention()
    opts_list = {
        "plain": AttentionOptions(),
        "causal_br": AttentionOptions(causal=True, alignment="bottom_right"),
        "causal_tl_window": AttentionOptions(causal=True, window_left=37, alignment="top_left"),
        "softcap_alibi": AttentionOptions(softcap=20.0, alibi_slopes=alibi_slopes(8), alignment="bottom_right"),
    }
    shapes = [(2, 8, 2, 300, 513, 128), (1, 8, 8, 1000, 1000, 64), (1, 8, 4, 77, 1200, 96), (1, 8, 1, 129, 65, 256)]
    rows = []
    for dtype in ("bfloat16", "float16", "float32"):
        for oname, opts in opts_list.items():
            for b, hq, hkv, sq, sk, d in shapes:
                for grad in (False, True):
                    case = AttentionCase(b, hq, hkv, sq, sk, d, dtype, "cuda", opts, needs_grad=grad,
                                         needs_lse=not grad)
                    row: dict[str, Any] = {"dtype": dtype, "options": oname, "shape": [b, hq, hkv, sq, sk, d],
                                           "grad": grad}
                    try:
                        reasons = impl.unsupported(case)
                        if reasons:
                            row |= {"status": "unsupported", "detail": "; ".join(reasons)}
                        else:
                            result = check_attention(impl, case, seed=sq + sk + d)
                            row |= {"status": "pass" if result.ok else "FAIL", "detail": result.describe()}
                    except Exception as exc:
                        row |= {"status": "ERROR", "detail": f"{type(exc).__name__}: {exc}",
                                "traceback": traceback.format_exc(limit=4)}
                    rows.append(row)
                    print(f"[check] {row['status']:<11} {dtype:<8} {oname:<16} {row['shape']} grad={grad}",
                          flush=True)
    return rows


def _median_ms(fn: Any) -> float:
    import triton.testing

    return float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))


def _runner(name: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, grad: bool) -> Any:
    from impls.registry import all_implementations
    from reference.attention import AttentionOptions

    impl = next((i for i in all_implementations("attention") if i.name == name), None)
    if impl is None:
        raise LookupError(f"{name} is not registered")
    unavailable = impl.unavailable()
    if unavailable:
        raise RuntimeError("unavailable: " + "; ".join(unavailable))
    opts = AttentionOptions(causal=True, alignment="bottom_right") if causal else AttentionOptions()
    d_out = torch.randn_like(q)

    def run() -> None:
        out, _ = impl.forward(q, k, v, opts)  # type: ignore[attr-defined]
        if grad:
            out.backward(d_out)
    return run


def timings(budget_s: float, quick: bool) -> list[dict[str, Any]]:
    from reference.attention import AttentionOptions
    from reference.attention_cost import backward_flops, forward_flops

    start = time.monotonic()
    rows: list[dict[str, Any]] = []
    seqlens = [16384, 4096, 1024] if quick else SEQLENS
    for d in (128, 64):
        for seqlen in seqlens:
            for causal in (False, True):
                for grad in (False, True):
                    batch, heads = TOKENS // seqlen, WIDTH // d
                    opts = AttentionOptions(causal=True, alignment="bottom_right") if causal else AttentionOptions()
                    flops = forward_flops(batch, heads, seqlen, seqlen, d, opts)
                    if grad:
                        flops += backward_flops(batch, heads, seqlen, seqlen, d, opts)
                    for name in IMPLS:
                        row: dict[str, Any] = {"impl": name, "seqlen": seqlen, "batch": batch, "heads": heads,
                                               "head_dim": d, "causal": causal,
                                               "direction": "fwd_bwd" if grad else "fwd", "dtype": "bfloat16"}
                        if time.monotonic() - start > budget_s:
                            rows.append(row | {"error": "not measured: time budget spent"})
                            continue
                        try:
                            q, k, v = (torch.randn(batch, heads, seqlen, d, device="cuda", dtype=torch.bfloat16,
                                                   requires_grad=grad) for _ in range(3))
                            ms = _median_ms(_runner(name, q, k, v, causal, grad))
                            row |= {"ms": ms, "tflops": flops / (ms * 1e-3) / 1e12}
                        except Exception as exc:
                            row |= {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
                        finally:
                            torch.cuda.empty_cache()
                        rows.append(row)
                        shown = f"{row['tflops']:7.1f} TFLOP/s" if "tflops" in row else row["error"][:60]
                        print(f"[time] {name:<15} D={d:<3} S={seqlen:<5} {'causal' if causal else 'full  '} "
                              f"{row['direction']:<7} {shown}", flush=True)
    return rows


def bf16_peak_tflops() -> float | None:
    try:
        a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        ms = _median_ms(lambda: a @ a)
        return 2 * 8192**3 / (ms * 1e-3) / 1e12
    except Exception:
        return None


def table(rows: list[dict[str, Any]], peak: float | None) -> str:
    by_key: dict[tuple, dict[str, float]] = {}
    for r in rows:
        if "tflops" in r:
            by_key.setdefault((r["head_dim"], r["seqlen"], r["causal"], r["direction"]), {})[r["impl"]] = r["tflops"]
    names = [n for n in IMPLS if any(n in v for v in by_key.values())]
    lines = ["D    S      mask   dir      " + " ".join(f"{n[:13]:>13}" for n in names) + "  trit/sdpa-flash  %peak"]
    for (d, s, causal, direction), vals in sorted(by_key.items()):
        cells = " ".join(f"{vals[n]:13.1f}" if n in vals else f"{'-':>13}" for n in names)
        speedup = (f"{vals['triton-flash'] / vals['sdpa-flash']:15.2f}x" if "triton-flash" in vals
                   and "sdpa-flash" in vals else f"{'-':>16}")
        frac = f"{100 * vals['triton-flash'] / peak:6.1f}" if peak and "triton-flash" in vals else "     -"
        lines.append(f"{d:<4} {s:<6} {'causal' if causal else 'full':<6} {direction:<8} {cells} {speedup} {frac}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--budget-s", type=float, default=230.0, help="seconds for the timing part")
    parser.add_argument("--quick", action="store_true", help="S ∈ {1K, 4K, 16K} only")
    parser.add_argument("--skip-check", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if not torch.cuda.is_available():
        print("no CUDA device: this script is for a GPU machine", file=sys.stderr)
        return 2
    import triton

    env = {"device": torch.cuda.get_device_name(), "capability": torch.cuda.get_device_capability(),
           "torch": torch.__version__, "triton": triton.__version__, "cuda": torch.version.cuda,
           "python": platform.python_version()}
    print(json.dumps(env), flush=True)
    t0 = time.monotonic()
    checks = [] if args.skip_check else correctness()
    (args.out / "correctness.json").write_text(json.dumps({"env": env, "rows": checks}, indent=1))
    print(f"correctness: {sum(r['status'] == 'pass' for r in checks)} pass, "
          f"{sum(r['status'] in ('FAIL', 'ERROR') for r in checks)} fail/error, {time.monotonic() - t0:.0f}s",
          flush=True)
    peak = bf16_peak_tflops()
    rows = timings(args.budget_s, args.quick)
    (args.out / "timings.json").write_text(json.dumps({"env": env, "bf16_matmul_peak_tflops": peak, "rows": rows},
                                                      indent=1))
    print(f"bf16 matmul peak measured: {peak and round(peak, 1)} TFLOP/s")
    print(table(rows, peak))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Paged decode on a GPU in one call (≤ 4 minutes on an H100): compiled correctness, then the benchmark.

    python scripts/gpu_paged.py --out results/paged

1. Correctness of the compiled ``paged-triton`` (and any other paged implementation that runs here)
   against the float64 reference on a few cases, including one pool with more than 32,768 blocks
   whose element offsets pass 2³¹ (bytes pass 2³²).
2. Decode benchmark: bf16, D = 128, 32 query heads on 8 kv heads, batch {1, 16, 64, 256} × context
   {1K … 128K} within memory (B·context ≤ 4M tokens), block size 16 (256 where the implementation
   needs it). GB/s from the minimum bytes (every K/V byte once, plus Q and O) and the fraction of the
   copy bandwidth measured in this run (a 1 GiB device-to-device copy, bytes read + written).
Each measurement is guarded: an error is recorded, not fatal. Prints a table, writes JSON under --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from impls import registry
from impls.paged.api import PagedAttentionImpl, PagedCase
from reference.attention import AttentionOptions
from reference.paged_attention import decode_min_bytes, paged_attention

HQ, HKV, D = 32, 8, 128
BATCHES = (1, 16, 64, 256)
CONTEXTS = (1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)
MAX_TOKENS = 4 * 2**20
GATHER_MAX_TOKENS = 2**20  # the baseline materialises K/V per query head


def guarded(record: dict[str, Any], fn: Any) -> Any:
    try:
        return fn()
    except Exception as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"[:400]
        record["trace"] = traceback.format_exc(limit=3)[-800:]
        torch.cuda.empty_cache()
        return None


def time_ms(fn: Any, reps: int = 20) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def copy_bandwidth() -> float:
    src = torch.empty(2**30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = time_ms(lambda: dst.copy_(src))
    return 2 * 2**30 / (ms * 1e-3) / 1e9


def correctness(impls: list[PagedAttentionImpl]) -> list[dict[str, Any]]:
    from suite.paged.paged_check import PagedSpec, check_paged

    causal = AttentionOptions(causal=True, alignment="bottom_right")
    specs = [
        PagedSpec((1, 300, 77, 1000), 32, 8, 1, 128, 16, "bfloat16", AttentionOptions(), shared_prefix=20, seed=1),
        PagedSpec((5, 4096, 999), 32, 8, 5, 128, 16, "float16", causal, seed=2),
        PagedSpec((16, 1, 513), 8, 1, 16, 64, 1, "bfloat16", causal, seed=3),
        PagedSpec((3000, 700), 16, 2, 2, 128, 256, "float16",
                  AttentionOptions(causal=True, window_left=100, softcap=30.0, alignment="bottom_right"), seed=4),
        PagedSpec((2000, 1), 4, 4, 1, 80, 32, "float32", AttentionOptions(), seed=5),
    ]
    rows: list[dict[str, Any]] = []
    for impl in impls:
        for i, spec in enumerate(specs[:1] if impl.name == "paged-flex" else specs):  # flex: compiles per shape
            nb = sum(-(-n // spec.block_size) for n in spec.seqlens) + len(spec.seqlens) + spec.spare_blocks
            case = PagedCase(len(spec.seqlens), spec.heads_q, spec.heads_kv, spec.seqlen_q, max(spec.seqlens),
                             spec.head_dim, spec.block_size, nb, spec.dtype, spec.dtype, "cuda", spec.options)
            row: dict[str, Any] = {"impl": impl.name, "case": i, "spec": repr(spec)}
            reasons = impl.unsupported(case)
            if reasons:
                row["skipped"] = "; ".join(reasons)
            else:
                comps = guarded(row, lambda impl=impl, spec=spec: check_paged(impl, spec))
                if comps is not None:
                    row["ok"] = all(c.ok for c in comps)
                    row["detail"] = [c.describe() for c in comps]
            rows.append(row)
    return rows


def large_pool(impl: PagedAttentionImpl) -> dict[str, Any]:
    """A pool of 140,000 blocks (> 32,768; 4.6 GB per pool: element offsets pass 2³¹, bytes pass 2³²) read at its far end."""
    row: dict[str, Any] = {"impl": impl.name, "case": "large_pool"}

    def run() -> None:
        bs, nb, seqlens = 16, 140_000, [700, 333]
        k = torch.empty((nb, bs, HKV, D), dtype=torch.bfloat16, device="cuda")
        v = torch.empty_like(k)
        row["pool_bytes"] = k.numel() * k.element_size()
        gen = torch.Generator(device="cuda").manual_seed(0)
        used = [list(range(nb - 1, nb - 1 - 2 * 44, -2)), list(range(nb - 2, nb - 2 - 2 * 21, -2))]
        table = torch.full((2, 44), -1, dtype=torch.int32)
        for b, blocks in enumerate(used):
            table[b, : len(blocks)] = torch.tensor(blocks, dtype=torch.int32)
        flat = sorted({x for blocks in used for x in blocks})
        for x in flat:
            k[x] = torch.randn((bs, HKV, D), generator=gen, device="cuda").to(torch.bfloat16)
            v[x] = torch.randn((bs, HKV, D), generator=gen, device="cuda").to(torch.bfloat16)
        q = torch.randn((2, 1, HQ, D), generator=gen, device="cuda").to(torch.bfloat16)
        sl = torch.tensor(seqlens, dtype=torch.int32)
        out, lse = impl.forward(q, k, v, table.cuda(), sl.cuda(), AttentionOptions())
        # reference on a compact pool of the used blocks only
        remap = {x: i for i, x in enumerate(flat)}
        small_table = table.clone().apply_(lambda x: remap.get(x, -1)).numpy()
        idx = torch.tensor(flat, device="cuda")
        ref_o, ref_lse = paged_attention(q.double().cpu().numpy(), k[idx].double().cpu().numpy(),
                                         v[idx].double().cpu().numpy(), small_table, sl.numpy(), AttentionOptions())
        err = (out.double().cpu().numpy() - ref_o).__abs__().max()
        row["max_abs_err"] = float(err)
        row["max_block_index"] = int(table.max())
        # outputs are ~0.1 in size, bf16 rounding ~4e-4; a block read from a wrong (wrapped) offset moves
        # them by their own size
        row["ok"] = bool(err < 0.01)
        if lse is not None:
            row["lse_max_err"] = float((lse.double().cpu().numpy() - ref_lse).__abs__().max())
        del k, v

    guarded(row, run)
    torch.cuda.empty_cache()
    return row


def bench(impl: PagedAttentionImpl, batch: int, context: int, copy_gbps: float) -> dict[str, Any]:
    bs = 16 if 16 in impl.block_sizes else min(b for b in impl.block_sizes if b >= 16)
    per_seq = -(-context // bs)
    row: dict[str, Any] = {"impl": impl.name, "batch": batch, "context": context, "block_size": bs}
    case = PagedCase(batch, HQ, HKV, 1, context, D, bs, batch * per_seq, "bfloat16", "bfloat16", "cuda",
                     AttentionOptions())
    reasons = impl.unsupported(case)
    if reasons:
        row["skipped"] = "; ".join(reasons)
        return row

    def run() -> None:
        nb = batch * per_seq
        k = torch.randn((nb, bs, HKV, D), dtype=torch.bfloat16, device="cuda")
        v = torch.randn_like(k)
        table = torch.randperm(nb, device="cuda").to(torch.int32).view(batch, per_seq)
        sl = torch.full((batch,), context, dtype=torch.int32, device="cuda")
        q = torch.randn((batch, 1, HQ, D), dtype=torch.bfloat16, device="cuda")
        ms = time_ms(lambda: impl.forward(q, k, v, table, sl, AttentionOptions(), max_seqlen=context))
        nbytes = decode_min_bytes([context] * batch, HQ, HKV, 1, D, 2, 2)
        row.update(ms=ms, gbps=nbytes / (ms * 1e-3) / 1e9)
        row["fraction_of_copy_bw"] = row["gbps"] / copy_gbps
        if hasattr(impl, "choose_splits"):
            row["splits"] = impl.choose_splits(batch, HKV, context, q.device)

    guarded(row, run)
    torch.cuda.empty_cache()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/paged"))
    parser.add_argument("--budget-s", type=float, default=220.0, help="stop benchmarking after this many seconds")
    args = parser.parse_args()
    t0 = time.time()
    registry.discover(entry_points=False)
    impls = [i for i in registry.all_implementations("paged")
             if isinstance(i, PagedAttentionImpl) and not i.unavailable()]
    result: dict[str, Any] = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                              "impls": [i.name for i in impls]}
    try:
        import triton
        result["triton"] = triton.__version__
    except ImportError:
        pass
    result["copy_gbps"] = copy_bandwidth()
    print(f"{result['device']}: copy bandwidth {result['copy_gbps']:.0f} GB/s (read + written)")
    result["correctness"] = correctness(impls)
    triton_impl = [i for i in impls if i.name == "paged-triton"]
    result["large_pool"] = [large_pool(i) for i in triton_impl]
    for row in result["correctness"] + result["large_pool"]:
        status = (row.get("skipped") and "skip") or ("ok" if row.get("ok") else "FAIL")
        print(f"check {row['impl']:<24} {row['case']!s:<10} {status} {row.get('error', '')}")
        if status == "FAIL":
            print("   ", row.get("detail") or row.get("max_abs_err"))
    rows: list[dict[str, Any]] = []
    for context in CONTEXTS:
        for batch in BATCHES:
            if batch * context > MAX_TOKENS:
                continue
            for impl in impls:
                if impl.name == "paged-flex" or (impl.name == "paged-gather-sdpa" and batch * context > GATHER_MAX_TOKENS):
                    continue
                if time.time() - t0 > args.budget_s:
                    rows.append({"impl": impl.name, "batch": batch, "context": context, "skipped": "time budget"})
                    continue
                rows.append(bench(impl, batch, context, result["copy_gbps"]))
    result["bench"] = rows
    impls = [i for i in impls if i.name != "paged-flex"]  # checked above, not benchmarked (recompiles per shape)
    print(f"\n{'batch':>5} {'context':>7} " + " ".join(f"{i.name[:18]:>26}" for i in impls))
    by_key = {(r["batch"], r["context"], r["impl"]): r for r in rows}
    for context in CONTEXTS:
        for batch in BATCHES:
            if batch * context > MAX_TOKENS:
                continue
            cells = []
            for impl in impls:
                r = by_key.get((batch, context, impl.name), {})
                if "gbps" in r:
                    frac = 100 * float(r["fraction_of_copy_bw"])
                    cells.append(f"{r['ms']:7.3f}ms {r['gbps']:6.0f}GB/s {frac:3.0f}%")
                else:
                    cells.append(("err" if "error" in r else "-").rjust(26))
            print(f"{batch:>5} {context:>7} " + " ".join(f"{c:>26}" for c in cells))
    for r in rows:
        if "error" in r:
            print(f"error {r['impl']} b={r['batch']} ctx={r['context']}: {r['error']}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "gpu_paged.json"
    path.write_text(json.dumps(result, indent=1, default=str))
    print(f"wrote {path} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()

"""tokenspec-kv: KV-cache sizing and capacity from the reference, as a table.

    tokenspec-kv llama-3-8b --context 4096 32768 131072 --batch 1 100
    tokenspec-kv llama-3-70b --context 8192 --tp 4 --gpu-gb 80 --weights-dtype fp16 --params 70.6e9
    tokenspec-kv --config path/to/config.json --context 4096 --kv-dtype fp8
    tokenspec-kv --list
"""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path

from reference.kv_cache import (
    GB,
    KV_FORMATS,
    WEIGHT_BITS,
    Budget,
    bytes_per_token,
    cache_bytes,
    in_gb,
    in_gib,
    max_concurrent_sequences,
    max_context,
    weight_bytes,
)
from reference.model_config import ConfigError, load_config, preset_names, shape_from_config


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tokenspec-kv", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="a preset name (see --list)")
    p.add_argument("--config", type=Path, help="a Hugging Face config.json instead of a preset")
    p.add_argument("--list", action="store_true", help="list the model presets")
    p.add_argument("--context", type=int, nargs="+", default=[4096], help="tokens per sequence")
    p.add_argument("--batch", type=int, nargs="+", default=[1], help="concurrent sequences")
    p.add_argument("--kv-dtype", default="fp16", choices=sorted(KV_FORMATS))
    p.add_argument("--tp", type=int, default=1, help="tensor-parallel ranks (figures are per rank)")
    p.add_argument("--gpu-gb", type=float, help="GPU memory in GB (10^9 bytes) for capacity planning")
    p.add_argument("--gpu-gib", type=float, help="GPU memory in GiB (2^30 bytes) for capacity planning")
    p.add_argument("--utilization", type=Fraction, default=Fraction(9, 10), help="usable fraction (default 0.9)")
    p.add_argument("--params", type=float, help="parameter count, for the weights (e.g. 8.03e9)")
    p.add_argument("--weights-dtype", default="bf16", choices=sorted(WEIGHT_BITS))
    p.add_argument("--reserve-gb", type=float, default=0.0, help="activation reserve in GB")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.list:
        print("\n".join(preset_names()))
        return 0
    try:
        if args.config:
            config, name = json.loads(args.config.read_text()), args.config.stem
        elif args.model:
            config, name = load_config(args.model), args.model
        else:
            print("tokenspec-kv: name a model preset or --config (see --list)", file=sys.stderr)
            return 2
        model = shape_from_config(config, name)
    except (ConfigError, OSError, json.JSONDecodeError) as err:
        print(f"tokenspec-kv: {err}", file=sys.stderr)
        return 2
    per_token = bytes_per_token(model, args.kv_dtype, args.tp)
    gpu = int(args.gpu_gb * GB) if args.gpu_gb else int(args.gpu_gib * 2**30) if args.gpu_gib else None
    weights = weight_bytes(int(args.params), args.weights_dtype) // args.tp if args.params else 0
    budget = Budget(gpu, args.utilization, weights, int(args.reserve_gb * GB)) if gpu else None
    rows = []
    for context in args.context:
        for batch in args.batch:
            total = cache_bytes(model, batch, context, args.kv_dtype, args.tp)
            row = {"model": name, "kv_dtype": args.kv_dtype, "tp": args.tp, "context": context, "batch": batch,
                   "kv_bytes_per_token": per_token, "kv_bytes": total, "kv_GB": round(in_gb(total), 3),
                   "kv_GiB": round(in_gib(total), 3)}
            if budget:
                row |= {"weights_GB": round(in_gb(weights), 3), "fits": total <= budget.kv_bytes,
                        "max_sequences": max_concurrent_sequences(model, budget, context, args.kv_dtype, args.tp),
                        "max_context_at_batch": max_context(model, budget, batch, args.kv_dtype, args.tp)}
            rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        headers = list(rows[0])
        widths = [max(len(h), *(len(str(r[h])) for r in rows)) for h in headers]
        print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
        for r in rows:
            print("  ".join(str(r[h]).rjust(w) for h, w in zip(headers, widths, strict=True)))
        print(f"\nbytes per token per rank: {per_token:,}; GB = 10^9 bytes, GiB = 2^30 bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

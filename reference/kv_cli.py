"""tokenspec-kv: KV-cache sizing and capacity from the reference, as a table or JSON.

    tokenspec-kv llama-3-8b --context 4096 32768 131072 --batch 1 100
    tokenspec-kv llama-3-70b --context 8192 --tp 4 --gpu-gb 80 --weights-dtype bfloat16 --params 70.6e9
    tokenspec-kv mistral-7b-v0.1 --context 32768 --batch 8 --block-size 16 --prefix-tokens 1000
    tokenspec-kv --config path/to/config.json --context 4096 --kv-dtype float8_e4m3fn --json
    tokenspec-kv --list

Dtypes are torch's names (float32, float16, bfloat16, float8_e4m3fn, int8; weights also int4); fp32, fp16, bf16
and fp8 are accepted as aliases and printed as the torch name. Every figure is per tensor-parallel rank, in bytes
(GB = 10^9 bytes, GiB = 2^30 bytes). A bad value exits with status 2 and one line naming the flag or config
key, the value and the constraint.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from contextlib import suppress
from fractions import Fraction
from pathlib import Path
from typing import Any, NoReturn

from reference.kv_cache import (
    GB,
    KV_FORMATS,
    WEIGHT_BITS,
    Budget,
    GiB,
    bytes_per_token,
    cache_bytes,
    in_gb,
    in_gib,
    kv_heads_per_rank,
    max_concurrent_sequences,
    max_context,
    paged_sequence_bytes,
    prefix_sharing_savings,
    weight_bytes,
)
from reference.kv_plan import DEFAULT_IN_FLIGHT_TOKENS, PlanInputs, plan
from reference.model_config import (
    MAMBA,
    ConfigError,
    ModelShape,
    load_config,
    preset_names,
    read_config,
    shape_from_config,
)

PROG = "tokenspec-kv"
DTYPE_ALIASES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "fp8": "float8_e4m3fn"}
MAX_TOKENS = 2**40  # the largest context, batch or prefix the CLI sizes (a trillion tokens)
MAX_PARAMS = 10**16
MAX_CONTEXT_SEARCH = 1 << 40  # reference.kv_cache.max_context's search limit
MAX_GPU = Fraction(10**9)  # GB or GiB: an exabyte


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2, and any negative number (``-7e9``,
    ``-inf``, not only ``-7``) is read as a value to refuse rather than as an unknown option."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._negative_number_matcher = re.compile(r"^-(\d[\d_]*\.?\d*|\.\d+)([eE][-+]?\d+)?(/\d+)?$|^-(inf|nan)",
                                                   re.IGNORECASE)

    def error(self, message: str) -> NoReturn:
        raise CliError(message)


class CliError(Exception):
    """A bad value: the message names the flag (or config key), the value and the constraint."""


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


def _count(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer between {low} and {high:,}; got {_shown(text)}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer between {low} and {high:,}; got {value}")
        return value

    return parse


def _fraction(text: str) -> Fraction:
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"must be a finite number; got {_shown(text)}") from None


def _positive_amount(high: Fraction) -> Callable[[str], Fraction]:
    def parse(text: str) -> Fraction:
        value = _fraction(text)
        if not 0 < value <= high:
            raise argparse.ArgumentTypeError(f"must be a number above 0 and at most {high:,}; got {_shown(text)}")
        return value

    return parse


def _reserve(text: str) -> Fraction:
    value = _fraction(text)
    if not 0 <= value <= MAX_GPU:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and {MAX_GPU:,}; got {_shown(text)}")
    return value


def _utilization(text: str) -> Fraction:
    value = _fraction(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be a fraction above 0 and at most 1; got {_shown(text)}")
    return value


def _params(text: str) -> int:
    value = _fraction(text)
    if value.denominator != 1 or not 1 <= value <= MAX_PARAMS:
        raise argparse.ArgumentTypeError(f"must be a whole number of parameters between 1 and {MAX_PARAMS:.0e} "
                                         f"(e.g. 8.03e9); got {_shown(text)}")
    return int(value)


def _dtype(names: dict[str, Any]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        name = DTYPE_ALIASES.get(text, text)
        if name not in names:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(sorted(names))} (aliases: "
                                             f"{', '.join(f'{a}={n}' for a, n in DTYPE_ALIASES.items() if n in names)}"
                                             f"); got {_shown(text)}")
        return name

    return parse


def parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                      allow_abbrev=False)
    p.add_argument("model", nargs="?", help="a preset name (see --list)")
    p.add_argument("--config", type=Path, help="a Hugging Face config.json instead of a preset")
    p.add_argument("--list", action="store_true", help="list the model presets")
    tokens = _count(1, MAX_TOKENS)
    p.add_argument("--context", type=tokens, nargs="+", default=[4096], help="tokens per sequence (default 4096)")
    p.add_argument("--batch", type=tokens, nargs="+", default=[1], help="concurrent sequences (default 1)")
    p.add_argument("--kv-dtype", type=_dtype(KV_FORMATS), default="float16",
                   help="KV storage dtype (default float16)")
    p.add_argument("--tp", type=_count(1, 2**20), default=1, help="tensor-parallel ranks (default 1)")
    p.add_argument("--block-size", type=_count(1, 2**20), help="paged sizes: whole blocks of this many tokens per "
                   "layer; also the engine-style capacity plan with --gpu-gb")
    p.add_argument("--prefix-tokens", type=_count(0, MAX_TOKENS), default=0,
                   help="tokens of a prompt prefix the batch shares (prefix caching; needs --block-size; default 0)")
    p.add_argument("--in-flight-tokens", type=_count(1, MAX_TOKENS), default=DEFAULT_IN_FLIGHT_TOKENS,
                   help=f"engine plan: a sliding layer's admission reserve (default {DEFAULT_IN_FLIGHT_TOKENS})")
    p.add_argument("--gpu-gb", type=_positive_amount(MAX_GPU), help="GPU memory in GB (10^9 bytes)")
    p.add_argument("--gpu-gib", type=_positive_amount(MAX_GPU), help="GPU memory in GiB (2^30 bytes)")
    p.add_argument("--utilization", type=_utilization, default=Fraction(9, 10),
                   help="usable fraction of the GPU (default 0.9)")
    p.add_argument("--params", type=_params, help="parameter count, for the weights (e.g. 8.03e9)")
    p.add_argument("--weights-dtype", type=_dtype(WEIGHT_BITS), default="bfloat16",
                   help="weights dtype (default bfloat16)")
    p.add_argument("--reserve-gb", type=_reserve, default=Fraction(0),
                   help="activation reserve in GB (default 0: engines profile it)")
    p.add_argument("--graph-reserve-gb", type=_reserve, default=Fraction(0),
                   help="CUDA-graph reserve in GB (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def _model(args: argparse.Namespace) -> tuple[ModelShape, str]:
    if args.config is not None and args.model:
        raise CliError(f"give a preset name or --config, not both (got {args.model!r} and --config {args.config})")
    if args.config is not None:
        name = args.config.stem or "config"
        return shape_from_config(read_config(args.config), name), name
    if not args.model:
        raise CliError("name a model preset or --config (see --list)")
    return shape_from_config(load_config(args.model), args.model), args.model


def _check_workload(args: argparse.Namespace, model: ModelShape) -> None:
    if args.gpu_gb is not None and args.gpu_gib is not None:
        raise CliError(f"give --gpu-gb or --gpu-gib, not both (got {float(args.gpu_gb)} and {float(args.gpu_gib)})")
    try:
        kv_heads_per_rank(model, args.tp)
    except ValueError as err:
        raise CliError(f"--tp {args.tp}: {err}") from None
    if model.mamba is not None and MAMBA in model.layer_kinds and model.mamba.inner % args.tp:
        raise CliError(f"--tp {args.tp}: Mamba inner size {model.mamba.inner} cannot be split evenly over "
                       f"{args.tp} ranks")
    if args.prefix_tokens and args.block_size is None:
        raise CliError(f"--prefix-tokens {args.prefix_tokens} needs --block-size (sharing is by whole blocks)")
    too_long = [c for c in args.context if c <= args.prefix_tokens]
    if args.prefix_tokens and too_long:
        raise CliError(f"--prefix-tokens {args.prefix_tokens} must be below every --context (a sequence needs a "
                       f"token of its own); got --context {too_long[0]}")


def _budget(args: argparse.Namespace) -> Budget | None:
    gpu = args.gpu_gb * GB if args.gpu_gb is not None else args.gpu_gib * GiB if args.gpu_gib is not None else None
    if gpu is None:
        return None
    weights = weight_bytes(args.params, args.weights_dtype) // args.tp if args.params else 0
    reserve = int((args.reserve_gb + args.graph_reserve_gb) * GB)
    if int(gpu) < 1:
        raise CliError(f"GPU memory must be at least 1 byte; got {float(gpu)} bytes")
    return Budget(int(gpu), args.utilization, weights, reserve)


def rows(args: argparse.Namespace, model: ModelShape, name: str) -> list[dict[str, Any]]:
    kv, tp = args.kv_dtype, args.tp
    per_token = bytes_per_token(model, kv, tp)
    budget = _budget(args)
    out = []
    for context in args.context:
        for batch in args.batch:
            total = cache_bytes(model, batch, context, kv, tp)
            row: dict[str, Any] = {"model": name, "kv_dtype": kv, "tp": tp, "context": context, "batch": batch,
                                   "kv_bytes_per_token": per_token, "kv_bytes": total,
                                   "kv_GB": round(in_gb(total), 3), "kv_GiB": round(in_gib(total), 3)}
            if args.block_size is not None:
                paged = batch * paged_sequence_bytes(model, context, args.block_size, kv, tp)
                saved = prefix_sharing_savings(model, batch, args.prefix_tokens, args.block_size, kv, tp, context)
                row |= {"block_size": args.block_size, "prefix_tokens": args.prefix_tokens,
                        "paged_kv_bytes": paged, "prefix_shared_bytes": saved, "paged_kv_bytes_held": paged - saved}
            if budget is not None:
                row |= {"weights_bytes": budget.weights, "kv_budget_bytes": budget.kv_bytes,
                        "fits": (row.get("paged_kv_bytes_held", total)) <= budget.kv_bytes,
                        "max_sequences": max_concurrent_sequences(model, budget, context, kv, tp),
                        "max_context_at_batch": _unbounded_as_none(max_context(model, budget, batch, kv, tp))}
                if args.block_size is not None and tp == 1:
                    row |= _engine_columns(args, model, budget, context)
            out.append(row)
    return out


def _unbounded_as_none(tokens: int) -> int | None:
    """None when the cache stops growing (every caching layer slides): any context fits."""
    return None if tokens >= MAX_CONTEXT_SEARCH else tokens


def _engine_columns(args: argparse.Namespace, model: ModelShape, budget: Budget, context: int) -> dict[str, Any]:
    """The pool a paged engine builds from the budget, with ``context`` as its max_model_len."""
    p = plan(model, PlanInputs(max_model_len=context, kv_budget=budget.kv_bytes, kv_dtype=args.kv_dtype,
                               block_size=args.block_size, in_flight_tokens=args.in_flight_tokens,
                               prefix_tokens=args.prefix_tokens))
    return {"engine_blocks": p.num_blocks, "engine_blocks_per_request": p.blocks_per_request,
            "engine_max_sequences": p.max_requests}


def _print_table(table: list[dict[str, Any]]) -> None:
    headers = list(dict.fromkeys(h for r in table for h in r))
    widths = [max(len(h), *(len(str(r.get(h, ""))) for r in table)) for h in headers]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
    for r in table:
        print("  ".join(str(r.get(h, "")).rjust(w) for h, w in zip(headers, widths, strict=True)))
    print("\nbytes per token per rank; GB = 10^9 bytes, GiB = 2^30 bytes")


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.list:
        names = preset_names()
        print(json.dumps(names) if args.json else "\n".join(names))
        return 0
    model, name = _model(args)
    _check_workload(args, model)
    table = rows(args, model, name)
    if args.json:
        print(json.dumps(table, indent=1))
    else:
        _print_table(table)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Exit status 0 with the answer, or 2 with one line on stderr naming what is wrong."""
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except SystemExit as done:  # --help
        return int(done.code or 0) if not isinstance(done.code, str) else 2
    except BrokenPipeError:  # the reader left (`| head`): stop quietly, as other command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (CliError, ConfigError) as err:
        message = str(err)
    except ValueError as err:  # the reference refusing a value (it names the quantity and the constraint)
        message = str(err)
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    with suppress(Exception):
        sys.stderr.flush()
    return 2


if __name__ == "__main__":
    raise SystemExit(main())

"""KV-cache sizing and capacity planning, in exact integers (bytes).

Per token and layer, a full or sliding attention layer caches K and V for every kv head:
    2 · kv_heads · head_dim · element bytes
an MLA layer caches one latent vector, no factor 2:
    (kv_lora_rank + qk_rope_head_dim) · element bytes
a sliding layer holds at most ``sliding_window`` tokens, and a Mamba layer holds no KV at all.
Units are explicit: bytes everywhere; GB = 10⁹ bytes and GiB = 2³⁰ bytes only when printing.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from reference.model_config import FULL, MLA, SLIDING, ModelShape

GB, GiB = 10**9, 2**30


@dataclass(frozen=True)
class KvFormat:
    """How one cached vector of ``n`` elements is stored: element bits, plus scale bytes per group."""

    name: str
    bits: int
    scale_bytes: int = 0  # bytes of scale stored per group of elements
    group: int = 0  # elements per scale group (0: no per-group scale)

    def vector_bytes(self, n: int) -> int:
        scales = -(-n // self.group) * self.scale_bytes if self.group else 0
        return -(-n * self.bits // 8) + scales


KV_FORMATS = {f.name: f for f in (
    KvFormat("fp32", 32), KvFormat("fp16", 16), KvFormat("bf16", 16),
    KvFormat("fp8", 8),  # e4m3 with one per-tensor scale per layer: a constant, not per token
    KvFormat("int8", 8, scale_bytes=2, group=128),  # symmetric, one fp16 scale per 128 elements
)}
WEIGHT_BITS = {"fp32": 32, "fp16": 16, "bf16": 16, "fp8": 8, "int8": 8, "int4": 4}


def kv_format(name: str) -> KvFormat:
    if name not in KV_FORMATS:
        raise ValueError(f"KV dtype must be one of {sorted(KV_FORMATS)}; got {name!r}")
    return KV_FORMATS[name]


def kv_heads_per_rank(model: ModelShape, tp: int) -> int:
    """kv heads one tensor-parallel rank holds: split when tp ≤ kv heads, else one replicated head."""
    if tp < 1:
        raise ValueError(f"tensor parallel size must be >= 1; got {tp}")
    if tp <= model.num_kv_heads:
        if model.num_kv_heads % tp:
            raise ValueError(f"{model.name}: {model.num_kv_heads} kv heads cannot be split evenly over {tp} ranks")
        return model.num_kv_heads // tp
    if tp % model.num_kv_heads:
        raise ValueError(f"{model.name}: {tp} ranks cannot replicate {model.num_kv_heads} kv heads evenly")
    return 1


def layer_bytes_per_token(model: ModelShape, kind: str, fmt: KvFormat, tp: int = 1) -> int:
    if kind in (FULL, SLIDING):
        return 2 * kv_heads_per_rank(model, tp) * fmt.vector_bytes(model.head_dim)
    if kind == MLA:  # the latent is replicated on every rank
        return fmt.vector_bytes(model.kv_lora_rank + model.qk_rope_head_dim)
    return 0


def bytes_per_token(model: ModelShape, kv_dtype: str = "fp16", tp: int = 1) -> int:
    """Bytes one more token adds on one rank, before any sliding window is full."""
    fmt = kv_format(kv_dtype)
    return sum(layer_bytes_per_token(model, kind, fmt, tp) for kind in model.layer_kinds)


def sequence_bytes(model: ModelShape, tokens: int, kv_dtype: str = "fp16", tp: int = 1) -> int:
    """K and V of one sequence of ``tokens`` on one rank; sliding layers hold at most the window."""
    fmt = kv_format(kv_dtype)
    total = 0
    for kind in model.layer_kinds:
        held = min(tokens, model.sliding_window) if kind == SLIDING and model.sliding_window else tokens
        total += held * layer_bytes_per_token(model, kind, fmt, tp)
    return total


def cache_bytes(model: ModelShape, batch: int, tokens: int, kv_dtype: str = "fp16", tp: int = 1) -> int:
    return batch * sequence_bytes(model, tokens, kv_dtype, tp)


def all_ranks_bytes(model: ModelShape, batch: int, tokens: int, kv_dtype: str = "fp16", tp: int = 1) -> int:
    """The cache summed over the tp ranks (equal to tp = 1 unless heads are replicated)."""
    return tp * cache_bytes(model, batch, tokens, kv_dtype, tp)


# --- paged allocation ------------------------------------------------------------------------

def blocks_for(tokens: int, block_size: int) -> int:
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1; got {block_size}")
    return -(-tokens // block_size)


def paged_sequence_bytes(model: ModelShape, tokens: int, block_size: int, kv_dtype: str = "fp16",
                         tp: int = 1) -> int:
    """Whole blocks per layer; sliding layers keep only the blocks that cover the window (plus a
    partial one when the window does not start on a block boundary)."""
    fmt = kv_format(kv_dtype)
    total = 0
    for kind in model.layer_kinds:
        held = min(tokens, model.sliding_window) if kind == SLIDING and model.sliding_window else tokens
        blocks = blocks_for(held, block_size) + (1 if held < tokens and held % block_size else 0)
        total += blocks * block_size * layer_bytes_per_token(model, kind, fmt, tp)
    return total


def paged_waste_slots(tokens: int, block_size: int) -> int:
    """Token slots allocated but unused in the last block of a sequence."""
    return blocks_for(tokens, block_size) * block_size - tokens


def prefix_sharing_savings(model: ModelShape, sequences: int, prefix_tokens: int, block_size: int,
                           kv_dtype: str = "fp16", tp: int = 1) -> int:
    """Bytes saved when ``sequences`` share the full blocks of a common prefix (the partial last block
    of the prefix is copied on the first divergent write, so it is not shared)."""
    shared_blocks = prefix_tokens // block_size
    per_block = block_size * bytes_per_token(model, kv_dtype, tp)
    return max(0, sequences - 1) * shared_blocks * per_block


# --- weights and capacity --------------------------------------------------------------------

def weight_bytes(parameters: int, dtype: str = "fp16") -> int:
    if dtype not in WEIGHT_BITS:
        raise ValueError(f"weight dtype must be one of {sorted(WEIGHT_BITS)}; got {dtype!r}")
    return -(-parameters * WEIGHT_BITS[dtype] // 8)


@dataclass(frozen=True)
class Budget:
    """A GPU's memory, the fraction a server may use, and what is not KV."""

    gpu_bytes: int
    utilization: Fraction = Fraction(1)
    weights: int = 0
    activation_reserve: int = 0

    @property
    def kv_bytes(self) -> int:
        free = int(self.gpu_bytes * self.utilization) - self.weights - self.activation_reserve
        return max(0, free)


def max_concurrent_sequences(model: ModelShape, budget: Budget, tokens: int, kv_dtype: str = "fp16",
                             tp: int = 1) -> int:
    """The largest n with n · sequence_bytes ≤ the KV budget."""
    per_sequence = sequence_bytes(model, tokens, kv_dtype, tp)
    return budget.kv_bytes // per_sequence if per_sequence else 0


def max_context(model: ModelShape, budget: Budget, concurrency: int, kv_dtype: str = "fp16", tp: int = 1,
                limit: int = 1 << 40) -> int:
    """The largest context length that ``concurrency`` sequences can each hold (monotone search)."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1; got {concurrency}")

    def fits(tokens: int) -> bool:
        return concurrency * sequence_bytes(model, tokens, kv_dtype, tp) <= budget.kv_bytes

    if not fits(0):
        return 0
    lo, hi = 0, 1
    while hi < limit and fits(hi):
        lo, hi = hi, hi * 2
    if hi >= limit and fits(limit):
        return limit  # bounded only by the search limit (e.g. a model whose KV stops growing)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def in_gb(n_bytes: int) -> float:
    return n_bytes / GB


def in_gib(n_bytes: int) -> float:
    return n_bytes / GiB

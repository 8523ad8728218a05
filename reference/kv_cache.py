"""KV-cache sizing and the memory a cache holds, in exact integers (bytes).

Per token and layer, a full or sliding attention layer caches K and V for every kv head:
    2 · kv_heads · head_dim · element bytes
an MLA layer caches one latent vector, no factor 2:
    (kv_lora_rank + qk_rope_head_dim) · element bytes
a sliding layer holds at most ``sliding_window`` tokens, and a Mamba layer holds no KV (its constant state is
sized by :func:`mamba_state_bytes`). Dtypes are spelled as torch spells them (``float16``, ``bfloat16``,
``float8_e4m3fn``, ...). Units are explicit: bytes everywhere; GB = 10⁹ bytes and GiB = 2³⁰ bytes only when printing.

**What a cache holds, step by step.** A sliding layer of window W lets a query see W keys, its own included (the
convention of transformers and vLLM). After a step that ended at token t:

- a cache must keep ``min(t, W)`` tokens of the layer (:func:`kept_tokens`): the keys the step's last query read,
  its own token included, which is what a rolling buffer of W holds (Mistral's reference implementation,
  transformers' StaticSlidingWindowLayer) and the reference's sizing figure;
- the next query needs only ``min(t, W − 1)`` of them (:func:`next_step_tokens`), plus its own new token;
- a prefill-then-trim implementation computes all P prompt tokens of the layer and holds them at its peak
  (:func:`prefill_peak_tokens`); if trimming makes a view of that buffer, the whole prompt stays held;
- a preallocating (static) cache holds ``max_cache_len`` tokens per full layer and ``min(W, max_cache_len)`` per
  sliding layer from the first step on (:func:`static_tokens`);
- a paged cache holds whole blocks (:func:`paged_tokens`).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from reference.model_config import ATTENTION_KINDS, FULL, MAMBA, MLA, SLIDING, ModelShape

GB, GiB = 10**9, 2**30


@dataclass(frozen=True)
class KvFormat:
    """How one cached vector of ``n`` elements is stored: element bits, plus scale bytes per group, plus the
    bytes of scales kept once per layer (not per token)."""

    name: str
    bits: int
    scale_bytes: int = 0  # bytes of scale stored per group of elements
    group: int = 0  # elements per scale group (0: no per-group scale)
    layer_constant_bytes: int = 0  # bytes kept once per layer, whatever the length (per-tensor scales)

    def vector_bytes(self, n: int) -> int:
        scales = -(-n // self.group) * self.scale_bytes if self.group else 0
        return -(-n * self.bits // 8) + scales


KV_FORMATS = {f.name: f for f in (
    KvFormat("float32", 32), KvFormat("float16", 16), KvFormat("bfloat16", 16),
    # e4m3 with one float32 scale for K and one for V per layer (per-tensor), as transformers' fp8 QuantizedCache
    # and vLLM's fp8 KV cache keep them: a constant, not per token
    KvFormat("float8_e4m3fn", 8, layer_constant_bytes=8),
    KvFormat("int8", 8, scale_bytes=2, group=128),  # symmetric, one float16 scale per 128 elements
)}
WEIGHT_BITS = {"float32": 32, "float16": 16, "bfloat16": 16, "float8_e4m3fn": 8, "int8": 8, "int4": 4}
ELEMENT_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float8_e4m3fn": 1, "int8": 1}  # plain tensors


def kv_format(name: str) -> KvFormat:
    if name not in KV_FORMATS:
        raise ValueError(f"KV dtype must be one of {sorted(KV_FORMATS)}; got {name!r}")
    return KV_FORMATS[name]


def element_bytes(dtype: str) -> int:
    if dtype not in ELEMENT_BYTES:
        raise ValueError(f"dtype must be one of {sorted(ELEMENT_BYTES)}; got {dtype!r}")
    return ELEMENT_BYTES[dtype]


def validate_count(name: str, value: int, low: int = 0) -> int:
    """An integer count ≥ ``low`` (token counts, batch sizes, ranks); a ValueError names it otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
    return value


def kv_heads_per_rank(model: ModelShape, tp: int) -> int:
    """kv heads one tensor-parallel rank holds: split when tp ≤ kv heads, else one replicated head."""
    validate_count("tensor parallel size", tp, 1)
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


def bytes_per_token(model: ModelShape, kv_dtype: str = "float16", tp: int = 1) -> int:
    """Bytes one more token adds on one rank, before any sliding window is full."""
    fmt = kv_format(kv_dtype)
    return sum(layer_bytes_per_token(model, kind, fmt, tp) for kind in model.layer_kinds)


def _capped(model: ModelShape, kind: str, tokens: int) -> int:
    return min(tokens, model.sliding_window) if kind == SLIDING and model.sliding_window else tokens


def sequence_bytes(model: ModelShape, tokens: int, kv_dtype: str = "float16", tp: int = 1) -> int:
    """K and V of one sequence of ``tokens`` on one rank; sliding layers hold at most the window."""
    validate_count("tokens", tokens)
    fmt = kv_format(kv_dtype)
    return sum(_capped(model, kind, tokens) * layer_bytes_per_token(model, kind, fmt, tp)
               for kind in model.layer_kinds)


def cache_bytes(model: ModelShape, batch: int, tokens: int, kv_dtype: str = "float16", tp: int = 1) -> int:
    validate_count("batch", batch)
    return batch * sequence_bytes(model, tokens, kv_dtype, tp)


def all_ranks_bytes(model: ModelShape, batch: int, tokens: int, kv_dtype: str = "float16", tp: int = 1) -> int:
    """The cache summed over the tp ranks (equal to tp = 1 unless heads are replicated)."""
    return tp * cache_bytes(model, batch, tokens, kv_dtype, tp)


# --- what a cache holds, step by step (see the module docstring) -------------------------------------------------

def kept_tokens(model: ModelShape, kind: str, tokens: int) -> int:
    """Tokens a layer must keep once a step that ended at token ``tokens`` is done (its own token included)."""
    return _capped(model, kind, validate_count("tokens", tokens))


def next_step_tokens(model: ModelShape, kind: str, tokens: int) -> int:
    """The strict minimum carried into the next step: a sliding layer's next query brings its own token."""
    validate_count("tokens", tokens)
    if kind == SLIDING and model.sliding_window:
        return min(tokens, model.sliding_window - 1)
    return tokens


def prefill_peak_tokens(kind: str, prompt: int) -> int:
    """What a prefill-then-trim implementation holds at its peak: every prompt token, whatever the layer kind."""
    validate_count("prompt tokens", prompt)
    return prompt if kind in ATTENTION_KINDS else 0


def static_tokens(model: ModelShape, kind: str, max_cache_len: int) -> int:
    """Token slots a preallocating cache holds from the first step: the length, capped at the window."""
    return _capped(model, kind, validate_count("max_cache_len", max_cache_len, 1))


def held_blocks(model: ModelShape, kind: str, tokens: int, block_size: int) -> range:
    """Indices of the blocks (of ``block_size`` tokens, counted from the sequence start) a paged layer holds at
    ``tokens``: every block for a full layer; for a sliding layer the blocks that cover its last ``W`` tokens."""
    held = kept_tokens(model, kind, tokens)
    validate_count("block_size", block_size, 1)
    if held == 0:
        return range(0)
    return range((tokens - held) // block_size, (tokens - 1) // block_size + 1)


def paged_tokens(model: ModelShape, kind: str, tokens: int, block_size: int) -> int:
    """Token slots held in whole blocks (:func:`held_blocks`); a sliding window that does not start on a block
    boundary straddles one more block."""
    return len(held_blocks(model, kind, tokens, block_size)) * block_size


def bytes_by_kind(model: ModelShape, batch: int, tokens_of: dict[str, int], kv_dtype: str,
                  tp: int = 1) -> dict[str, int]:
    """Bytes held per attention layer kind, summed over that kind's layers and the batch, when each layer of kind
    k holds ``tokens_of[k]`` tokens; a per-layer constant (per-tensor scales) counts once per layer."""
    validate_count("batch", batch)
    fmt = kv_format(kv_dtype)
    out = {}
    for kind in model.kinds:
        if kind not in ATTENTION_KINDS:
            continue
        per_layer = batch * tokens_of[kind] * layer_bytes_per_token(model, kind, fmt, tp)
        out[kind] = model.count(kind) * (per_layer + fmt.layer_constant_bytes)
    return out


def mamba_state_bytes(model: ModelShape, batch: int, conv_dtype: str, ssm_dtype: str, conv_inputs: int,
                      tp: int = 1) -> int:
    """All Mamba layers' state for ``batch`` sequences: a conv window of ``conv_inputs`` inputs (the kernel width
    when the current input is kept with the past, kernel − 1 when it is not) and the SSM state, on one rank."""
    if model.mamba is None:
        return 0
    m = model.mamba
    validate_count("tensor parallel size", tp, 1)
    if m.inner % tp:
        raise ValueError(f"{model.name}: Mamba inner size {m.inner} cannot be split evenly over {tp} ranks")
    inner = m.inner // tp
    per_layer = inner * conv_inputs * element_bytes(conv_dtype) + inner * m.state * element_bytes(ssm_dtype)
    return model.count(MAMBA) * batch * per_layer


# --- paged allocation ----------------------------------------------------------------------------------------------

def blocks_for(tokens: int, block_size: int) -> int:
    validate_count("block_size", block_size, 1)
    return -(-validate_count("tokens", tokens) // block_size)


def paged_sequence_bytes(model: ModelShape, tokens: int, block_size: int, kv_dtype: str = "float16",
                         tp: int = 1) -> int:
    """Whole blocks per layer (:func:`paged_tokens`)."""
    fmt = kv_format(kv_dtype)
    return sum(paged_tokens(model, kind, tokens, block_size) * layer_bytes_per_token(model, kind, fmt, tp)
               for kind in model.layer_kinds)


def paged_waste_slots(tokens: int, block_size: int) -> int:
    """Token slots allocated but unused in the last block of a sequence."""
    return blocks_for(tokens, block_size) * block_size - tokens


def prefix_sharing_savings(model: ModelShape, sequences: int, prefix_tokens: int, block_size: int,
                           kv_dtype: str = "float16", tp: int = 1, tokens: int | None = None) -> int:
    """Bytes saved when ``sequences`` share the full blocks of a common prefix (the partial last block of the
    prefix is copied on the first divergent write, so it is not shared). At ``tokens`` (default: the prefix
    itself), a sliding layer shares only the prefix blocks it still holds."""
    validate_count("sequences", sequences)
    validate_count("prefix tokens", prefix_tokens)
    at = prefix_tokens if tokens is None else validate_count("tokens", tokens)
    if at < prefix_tokens:
        raise ValueError(f"tokens {at} must be at least the shared prefix of {prefix_tokens}")
    prefix_blocks = range(prefix_tokens // validate_count("block_size", block_size, 1))
    fmt = kv_format(kv_dtype)
    per_sequence = 0
    for kind in model.layer_kinds:
        held = held_blocks(model, kind, at, block_size)
        shared = len(range(max(held.start, prefix_blocks.start), min(held.stop, prefix_blocks.stop)))
        per_sequence += shared * block_size * layer_bytes_per_token(model, kind, fmt, tp)
    return max(0, sequences - 1) * per_sequence


# --- weights and capacity ------------------------------------------------------------------------------------------

def weight_bytes(parameters: int, dtype: str = "float16") -> int:
    if dtype not in WEIGHT_BITS:
        raise ValueError(f"weight dtype must be one of {sorted(WEIGHT_BITS)}; got {dtype!r}")
    return -(-validate_count("parameters", parameters) * WEIGHT_BITS[dtype] // 8)


@dataclass(frozen=True)
class Budget:
    """A GPU's memory, the fraction a server may use, and what is not KV (all bytes)."""

    gpu_bytes: int
    utilization: Fraction = Fraction(1)
    weights: int = 0
    activation_reserve: int = 0

    def __post_init__(self) -> None:
        validate_count("gpu bytes", self.gpu_bytes, 1)
        if not 0 < self.utilization <= 1:
            raise ValueError(f"utilization must be in (0, 1]; got {self.utilization}")
        validate_count("weight bytes", self.weights)
        validate_count("activation reserve bytes", self.activation_reserve)

    @property
    def usable_bytes(self) -> int:
        return int(self.gpu_bytes * self.utilization)

    @property
    def kv_bytes(self) -> int:
        """What is left for KV (0 when the weights and reserve do not fit: see :attr:`shortfall`)."""
        return max(0, self.usable_bytes - self.weights - self.activation_reserve)

    @property
    def shortfall(self) -> int:
        """Bytes by which the weights and reserve exceed the usable memory (0 when they fit)."""
        return max(0, self.weights + self.activation_reserve - self.usable_bytes)


def max_concurrent_sequences(model: ModelShape, budget: Budget, tokens: int, kv_dtype: str = "float16",
                             tp: int = 1) -> int:
    """The largest n with n · sequence_bytes ≤ the KV budget."""
    per_sequence = sequence_bytes(model, tokens, kv_dtype, tp)
    return budget.kv_bytes // per_sequence if per_sequence else 0


def max_context(model: ModelShape, budget: Budget, concurrency: int, kv_dtype: str = "float16", tp: int = 1,
                limit: int = 1 << 40) -> int:
    """The largest context length that ``concurrency`` sequences can each hold (monotone search)."""
    validate_count("concurrency", concurrency, 1)

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

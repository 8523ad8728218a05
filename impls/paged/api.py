"""The paged-attention area's API: the case an implementation is asked about, the call, ``validate``.

Layout (flash-attn's ``flash_attn_with_kvcache``): q [B, Sq, Hq, D] — the same Sq for every
sequence (1 for decoding, γ+1 when verifying a speculative draft); pools k_cache and v_cache
[num_blocks, block_size, Hkv, D]; block_table int32 [B, max_blocks]; seqlens int32 [B], the cached
tokens of each sequence *including* the K/V of the current queries (bottom-right alignment, see
``reference.paged_attention``). ``forward`` returns out [B, Sq, Hq, D] and lse [B, Sq, Hq] (float32,
natural log) or None. Entries of the block table past a sequence's last block are never read.
``max_seqlen``, when the caller knows it, spares the device-to-host read of ``seqlens`` (one
synchronisation per call): the table width is then checked against it instead of every length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from impls.attention.api import write_into  # noqa: F401 - re-exported for paged adapters
from impls.base import Implementation, declared_reasons
from impls.tensors import FLOAT_DTYPES, dtype_name
from reference.attention import AttentionOptions

if TYPE_CHECKING:
    import torch

DTYPES = FLOAT_DTYPES  # query / output dtypes
FP8_DTYPES = ("float8_e4m3fn", "float8_e5m2")  # cache dtypes read through per-tensor scales
BLOCK_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
FEATURES = ("lse", "causal", "window", "softcap", "alibi", "gqa", "fp8", "multi_query", "short_context", "sinks")
FEATURE_MEANING = {
    "lse": "the call asks for the log-sum-exp",
    "multi_query": "more than one query per sequence (Sq > 1: verifying a draft, chunked prefill)",
    "short_context": "a sequence holds fewer tokens than there are queries (an empty sequence, for one)",
    "fp8": "the cache is fp8, read through per-tensor scales (values = pool · scale)",
    "sinks": "attention sinks: one logit per query head added to every softmax denominator (no value)",
}


@dataclass(frozen=True)
class PagedCase:
    """Everything an implementation may need to decide whether it supports a call, and what the suite draws.

    ``seqlens``: the cached tokens of each sequence (the batch is their count). The suite writes them
    into a pool of ``num_blocks`` blocks through the block allocator: ``shared_prefix`` tokens of sequence 0
    are shared by every later sequence (``fork``, copy-on-write), ``spare_blocks`` stay unowned and hold
    large values. ``pool_blocks`` (0: just enough) makes a larger pool whose low blocks are taken first, so
    the sequences sit at its far end (offsets past 2³¹). ``k_scale``/``v_scale`` dequantize an fp8 cache.
    The seed of the random values is not part of the case.
    """

    seqlens: tuple[int, ...]
    heads_q: int
    heads_kv: int
    seqlen_q: int
    head_dim: int
    block_size: int
    dtype: str  # query/output dtype, one of DTYPES
    device: str
    options: AttentionOptions = AttentionOptions()
    kv_dtype: str = ""  # the pools' dtype; "" means the query dtype
    needs_lse: bool = False
    shared_prefix: int = 0
    spare_blocks: int = 3
    pool_blocks: int = 0
    k_scale: float = 1.0
    v_scale: float = 1.0
    sinks: tuple[float, ...] | None = None  # one logit per query head (reference.paged_attention)

    @property
    def batch(self) -> int:
        return len(self.seqlens)

    @property
    def max_seqlen_k(self) -> int:
        return max(self.seqlens, default=0)

    @property
    def cache_dtype(self) -> str:
        return self.kv_dtype or self.dtype

    @property
    def blocks_needed(self) -> int:
        """Blocks the sequences own, plus one copy-on-write block per sequence that forks a prefix."""
        forks = self.batch - 1 if self.shared_prefix and self.batch > 1 else 0
        return sum(-(-n // self.block_size) for n in self.seqlens) + forks

    @property
    def num_blocks(self) -> int:
        return max(self.pool_blocks, self.blocks_needed + self.spare_blocks)

    def features(self) -> set[str]:
        o = self.options
        named = {"lse": self.needs_lse, "causal": o.causal,
                 "window": o.window_left is not None or o.window_right is not None,
                 "softcap": o.softcap is not None, "alibi": o.alibi_slopes is not None,
                 "gqa": self.heads_q != self.heads_kv, "fp8": self.cache_dtype in FP8_DTYPES,
                 "multi_query": self.seqlen_q > 1, "short_context": min(self.seqlens, default=0) < self.seqlen_q,
                 "sinks": self.sinks is not None}
        return {f for f, on in named.items() if on}

    def __str__(self) -> str:
        o = self.options
        opts = ["causal" if o.causal else "",
                f"window=({o.window_left},{o.window_right})" if "window" in self.features() else "",
                "alibi" if o.alibi_slopes else "", f"softcap={o.softcap:g}" if o.softcap else "",
                f"scale={o.scale:g}" if o.scale is not None else "",
                f"sinks={[round(x, 3) for x in self.sinks]}" if self.sinks is not None else ""]
        cache = (f"cache {self.cache_dtype} ×({self.k_scale:g},{self.v_scale:g})"
                 if self.cache_dtype != self.dtype else "")
        lengths = list(self.seqlens) if len(self.seqlens) <= 8 else f"{self.batch}×{self.max_seqlen_k}"
        extra = [f"prefix {self.shared_prefix}" if self.shared_prefix else "",
                 f"pool {self.num_blocks}" if self.pool_blocks else "", "lse" if self.needs_lse else ""]
        shape = (f"seqlens {lengths} Sq{self.seqlen_q} Hq{self.heads_q} Hkv{self.heads_kv} D{self.head_dim} "
                 f"bs{self.block_size}")
        return " ".join(x for x in (shape, self.dtype, cache, self.device, *opts, *extra) if x)

    @staticmethod
    def of(q: torch.Tensor, k_cache: torch.Tensor, seqlens: torch.Tensor, opts: AttentionOptions, *,
           need_lse: bool = False, max_seqlen: int | None = None, k_scale: float = 1.0,
           v_scale: float = 1.0, sinks: tuple[float, ...] | None = None) -> PagedCase:
        """The case a call asks for (with ``max_seqlen`` given, every length is taken to be it: no device read)."""
        lengths = tuple(seqlens.tolist()) if max_seqlen is None else (max_seqlen,) * q.shape[0]
        return PagedCase(lengths, q.shape[2], k_cache.shape[2], q.shape[1], q.shape[3], k_cache.shape[1],
                         dtype_name(q), q.device.type, opts, kv_dtype=dtype_name(k_cache), needs_lse=need_lse,
                         spare_blocks=0, pool_blocks=k_cache.shape[0], k_scale=k_scale, v_scale=v_scale, sinks=sinks)


class PagedAttentionImpl(Implementation):
    """Attention of the queries over K/V gathered through a block table, as the reference defines it.

    The call says what is asked: ``need_lse`` (the LSE must be returned; an implementation that cannot
    declares ``lacks["lse"]``) and ``sinks`` (one logit per query head, or None; ``lacks["sinks"]`` where
    unsupported). When ``out`` is passed the result is written into it and that tensor
    returned (the suite fills it with NaN first). ``k_scale``/``v_scale`` dequantize an fp8 cache
    (values = pool · scale). Capabilities are data: ``dtypes`` (query dtypes), ``lacks`` (names from
    :data:`FEATURES`), ``block_sizes``; ``limits(case)`` adds shape and device limits as reasons.
    """

    area: ClassVar[str] = "paged"
    block_sizes: tuple[int, ...] = BLOCK_SIZES

    def forward(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, block_table: torch.Tensor,
                seqlens: torch.Tensor, opts: AttentionOptions, out: torch.Tensor | None = None,
                k_scale: float = 1.0, v_scale: float = 1.0, max_seqlen: int | None = None, *,
                need_lse: bool = False, sinks: tuple[float, ...] | None = None) -> tuple[torch.Tensor,
                                                                                           torch.Tensor | None]:
        raise NotImplementedError

    def unsupported(self, case: PagedCase) -> list[str]:
        reasons = []
        if case.block_size not in self.block_sizes:
            reasons.append(f"block size {case.block_size} is not one of {self.block_sizes}")
        return reasons + self.limits(case)

    def limits(self, case: PagedCase) -> list[str]:
        """Shape, dtype-combination and device limits beyond ``dtypes``, ``lacks`` and ``block_sizes``."""
        return []

    def refuse(self, case: PagedCase) -> None:
        """Raise NotImplementedError with the reasons, if this implementation declines ``case``."""
        reasons = declared_reasons(self, case)
        if reasons:
            raise NotImplementedError(f"{self.name}: " + "; ".join(reasons))

    def admit(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, block_table: torch.Tensor,
              seqlens: torch.Tensor, opts: AttentionOptions, max_seqlen: int | None, need_lse: bool,
              sinks: tuple[float, ...] | None) -> int:
        """``validate`` the call, then ``refuse`` it if declined; returns the longest length."""
        longest = validate(q, k_cache, v_cache, block_table, seqlens, opts, max_seqlen, sinks)
        self.refuse(PagedCase.of(q, k_cache, seqlens, opts, need_lse=need_lse, max_seqlen=max_seqlen, sinks=sinks))
        return longest


def validate(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, block_table: torch.Tensor,
             seqlens: torch.Tensor, opts: AttentionOptions, max_seqlen: int | None = None,
             sinks: tuple[float, ...] | None = None) -> int:
    """Reject bad calls with an error naming the constraint and the values given; returns the longest length.

    With ``max_seqlen`` given, the lengths stay on the device: it stands in for each of them.
    """
    import numpy as np
    import torch

    from reference.paged_attention import validate_shapes

    if k_cache.shape != v_cache.shape or k_cache.dtype != v_cache.dtype:
        raise ValueError(f"k_cache and v_cache must match; got {tuple(k_cache.shape)} {k_cache.dtype} and "
                         f"{tuple(v_cache.shape)} {v_cache.dtype}")
    if block_table.dtype != torch.int32 or seqlens.dtype != torch.int32:
        raise TypeError(f"block_table and seqlens must be int32; got {block_table.dtype} and {seqlens.dtype}")
    devices = {t.device for t in (q, k_cache, v_cache, block_table, seqlens)}
    if len(devices) != 1:
        raise ValueError(f"all inputs must be on one device; got {sorted(map(str, devices))}")
    if seqlens.shape != (q.shape[0],):
        raise ValueError(f"seqlens must have one entry per sequence ({q.shape[0]}); got shape {tuple(seqlens.shape)}")
    lengths = seqlens.cpu().numpy() if max_seqlen is None else np.full(q.shape[0], max_seqlen)
    validate_shapes(tuple(q.shape), tuple(k_cache.shape), tuple(block_table.shape), lengths, opts)
    if sinks is not None and (len(sinks) != q.shape[2] or not np.isfinite(sinks).all()):
        raise ValueError(f"sinks must be {q.shape[2]} finite logits, one per query head; got {list(sinks)}")
    return int(lengths.max(initial=0))

"""Capacity planning as serving engines do it: pages, block groups, the pool, and how many requests fit.

A paged engine does not divide the KV budget by a sequence's exact bytes. It allocates *pages* (one page holds
``block_size`` tokens of one layer), groups layers so that one block id covers one page of every layer in a
group, sizes a pool of identical blocks from the budget, and admits a request only when the blocks it may need
are there. Every step of that is an explicit input here, with its default stated (the defaults are vLLM's):

- ``block_size`` (16): tokens per page of an attention layer.
- ``max_model_len``: tokens a request may reach; the per-request reserve is sized for it.
- ``in_flight_tokens`` (4096 = 2 concurrent batches × 2048 batched tokens): the *admission reserve* of a sliding
  layer, which keeps its last W − 1 tokens plus every token scheduled but not yet settled: r tokens. A request
  reserves the most blocks such an interval can touch inside ``max_model_len`` (:func:`window_blocks`): one more
  than ``ceil(r / block)`` only when the interval can start inside a block, and never more than the whole length.
- ``hybrid_groups`` (True): one block table per layer kind (a sliding layer holds only its window). False sizes
  every sliding layer as full attention when the model mixes sliding and full layers (vLLM's
  ``--disable-hybrid-kv-cache-manager``: "the same size of KV cache for all attention layers"); a model whose
  attention layers all slide keeps its windows.
- page-size unification (always, for hybrid models): every group shares one page size, the largest; an attention
  layer with a smaller page takes proportionally more tokens per block when the largest page is a multiple of
  its own, and is padded otherwise; a Mamba layer's page (its whole state) is padded. :func:`hybrid_block_size`
  gives the attention block size an engine picks so that an attention page covers the Mamba page.
- ``null_blocks`` (1): blocks the pool holds back and never hands to a request.
- ``prefix_tokens`` (0): a prompt prefix every request shares with prefix caching; its full blocks in the
  full-attention groups are held once (a sliding layer's prefix blocks leave its window, so they earn no credit).
- ``draft`` (None): a draft model for speculative decoding; its layers share the pool with the target's.
- the budget (:func:`pool_budget`): ``gpu_bytes × utilization`` (0.9) − weights − activation reserve (0: engines
  measure it by profiling a forward pass, so give it) − CUDA-graph reserve (0 without graphs).

Groups (hybrid models): layers with the same page spec form a type; the group size is the smallest type's
layer count (or the largest's when it is under 1.5× the smallest, to avoid padding); each type splits into
``ceil(n / group size)`` groups. One block holds a page for every layer of the largest group, so a type whose
count is not a multiple of the group size pays for padding layers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from fractions import Fraction

from reference.kv_cache import element_bytes, kv_format, layer_bytes_per_token, validate_count
from reference.model_config import FULL, MAMBA, MLA, SLIDING, ModelShape

DEFAULT_BLOCK_SIZE = 16
DEFAULT_IN_FLIGHT_TOKENS = 2 * 2048  # vLLM: max_concurrent_batches (2) × max_num_batched_tokens (2048)
DEFAULT_UTILIZATION = Fraction(9, 10)  # vLLM's gpu_memory_utilization
KERNEL_BLOCK_ALIGNMENT = 16  # the attention block size an engine aligns a hybrid model's block to


@dataclass(frozen=True)
class PlanInputs:
    """Everything a plan depends on besides the model (see the module docstring for each default)."""

    max_model_len: int
    kv_budget: int
    kv_dtype: str = "bfloat16"
    block_size: int = DEFAULT_BLOCK_SIZE
    in_flight_tokens: int = DEFAULT_IN_FLIGHT_TOKENS
    hybrid_groups: bool = True
    null_blocks: int = 1
    prefix_tokens: int = 0
    state_dtypes: tuple[str, str] | None = None  # Mamba (conv, SSM) state dtypes; None: the KV dtype for both
    draft: ModelShape | None = None

    def __post_init__(self) -> None:
        validate_count("max_model_len", self.max_model_len, 1)
        validate_count("kv_budget", self.kv_budget)
        validate_count("block_size", self.block_size, 1)
        validate_count("in_flight_tokens", self.in_flight_tokens, 1)
        validate_count("null_blocks", self.null_blocks)
        validate_count("prefix_tokens", self.prefix_tokens)
        if self.prefix_tokens >= self.max_model_len:
            raise ValueError(f"prefix_tokens must be below max_model_len {self.max_model_len} (a request needs a "
                             f"token of its own); got {self.prefix_tokens}")
        kv_format(self.kv_dtype)


@dataclass(frozen=True)
class LayerPlan:
    """One layer's page and what a request may hold of it."""

    model: str
    index: int
    kind: str
    page_bytes: int  # bytes of one page (after unification: padded pages count whole)
    block_size: int  # tokens per page (after unification)
    reserve_tokens: int  # tokens a request may hold in this layer
    blocks_per_request: int
    window: int | None = None
    signature: tuple[int, ...] = ()  # what else makes two pages of one kind differ (heads, widths, state sizes)


@dataclass(frozen=True)
class Plan:
    layers: tuple[LayerPlan, ...]
    groups: tuple[tuple[int, ...], ...]  # positions in ``layers`` of each group's layers
    bytes_per_block: int
    num_blocks: int
    usable_blocks: int
    blocks_per_request: int  # Σ over groups of the blocks one request may hold
    prefix_credit_blocks: int  # blocks a request after the first need not allocate (shared prefix)
    max_concurrency: Fraction  # usable blocks / blocks per request (the figure engines print, without credit)
    max_requests: int  # requests that fit at once, prefix credit included
    page_bytes: tuple[int, ...] = field(default=())  # the distinct page sizes after unification


def pool_budget(gpu_bytes: int, utilization: Fraction = DEFAULT_UTILIZATION, weights: int = 0,
                activation_reserve: int = 0, cuda_graph_reserve: int = 0) -> int:
    """Bytes left for the KV pool; a ValueError says by how much the rest does not fit."""
    validate_count("gpu_bytes", gpu_bytes, 1)
    if not 0 < utilization <= 1:
        raise ValueError(f"utilization must be in (0, 1]; got {utilization}")
    for name, value in (("weights", weights), ("activation_reserve", activation_reserve),
                        ("cuda_graph_reserve", cuda_graph_reserve)):
        validate_count(name, value)
    usable = int(gpu_bytes * utilization)
    left = usable - weights - activation_reserve - cuda_graph_reserve
    if left <= 0:
        raise ValueError(f"no memory left for the KV cache: {usable:,} usable bytes ({utilization} of "
                         f"{gpu_bytes:,}) minus weights {weights:,}, activation reserve {activation_reserve:,} and "
                         f"CUDA-graph reserve {cuda_graph_reserve:,} is {left:,}")
    return left


def mamba_page_bytes(model: ModelShape, state_dtypes: tuple[str, str]) -> int:
    """One Mamba layer's state for one request, as an engine pages it: the conv keeps kernel − 1 past inputs."""
    assert model.mamba is not None
    m = model.mamba
    conv, ssm = state_dtypes
    return m.inner * (m.conv_kernel - 1) * element_bytes(conv) + m.inner * m.state * element_bytes(ssm)


def hybrid_block_size(model: ModelShape, kv_dtype: str, block_size: int = DEFAULT_BLOCK_SIZE,
                      state_dtypes: tuple[str, str] | None = None, alignment: int = KERNEL_BLOCK_ALIGNMENT) -> int:
    """The attention block size for a model with Mamba layers: the smallest multiple of ``alignment`` whose
    attention page covers the Mamba page (never below ``block_size``); other models keep ``block_size``."""
    if model.mamba is None or MAMBA not in model.layer_kinds:
        return block_size
    fmt = kv_format(kv_dtype)
    per_token = max(layer_bytes_per_token(model, k, fmt) for k in model.kinds if k != MAMBA)
    need = mamba_page_bytes(model, state_dtypes or (kv_dtype, kv_dtype))
    aligned = alignment * -(-need // (alignment * per_token))
    return max(block_size, aligned)


class Unplannable(ValueError):
    """Layers whose pages cannot share one pool."""


def layer_plans(model: ModelShape, inputs: PlanInputs, windows: bool = True) -> list[LayerPlan]:
    """Each layer's page and request reserve as the layer reports it, before page-size unification;
    ``windows`` False sizes sliding layers as full attention."""
    fmt = kv_format(inputs.kv_dtype)
    bs, out = inputs.block_size, []
    for i, kind in enumerate(model.layer_kinds):
        if kind == MAMBA:
            page = mamba_page_bytes(model, inputs.state_dtypes or (inputs.kv_dtype, inputs.kv_dtype))
            assert model.mamba is not None
            m = model.mamba
            out.append(LayerPlan(model.name, i, kind, page, bs, 0, 1, signature=(m.inner, m.conv_kernel, m.state)))
            continue
        page = bs * layer_bytes_per_token(model, kind, fmt)
        signature = (model.kv_lora_rank, model.qk_rope_head_dim) if kind == MLA else \
            (model.num_kv_heads, model.head_dim)
        if kind == SLIDING and windows:
            assert model.sliding_window is not None
            out.append(LayerPlan(model.name, i, kind, page, bs, 0, 0, window=model.sliding_window,
                                 signature=signature))
        else:  # full, MLA, and sliding layers sized as full
            out.append(LayerPlan(model.name, i, FULL if kind == SLIDING else kind, page, bs, 0, 0,
                                 signature=signature))
    return [_with_reserve(layer, inputs) for layer in out]


def _with_reserve(layer: LayerPlan, inputs: PlanInputs) -> LayerPlan:
    if layer.kind == MAMBA:
        return layer
    if layer.kind == SLIDING:
        assert layer.window is not None
        tokens = min(layer.window - 1 + inputs.in_flight_tokens, inputs.max_model_len)
        blocks = window_blocks(tokens, inputs.max_model_len, layer.block_size)
    else:
        tokens = inputs.max_model_len
        blocks = -(-tokens // layer.block_size)
    return replace(layer, reserve_tokens=tokens, blocks_per_request=blocks)


def window_blocks(tokens: int, length: int, block_size: int) -> int:
    """The most blocks of ``block_size`` that ``tokens`` consecutive positions inside ``[0, length)`` can touch."""
    validate_count("block_size", block_size, 1)
    if tokens >= length:
        return -(-length // block_size)
    starts = range(min(length - tokens, block_size - 1) + 1)  # block offsets repeat with the block size
    return max((s + tokens - 1) // block_size - s // block_size + 1 for s in starts)


def _type_of(layer: LayerPlan) -> tuple[str, int | None]:
    """Layers of one type always need the same number of token slots (full and MLA alike)."""
    return ("state", None) if layer.kind == MAMBA else ("window", layer.window) if layer.kind == SLIDING else \
        ("full", None)


def _unify(layers: list[LayerPlan], inputs: PlanInputs) -> list[LayerPlan]:
    largest = max(layer.page_bytes for layer in layers)
    out = []
    for layer in layers:
        if layer.page_bytes == largest:
            out.append(layer)
        elif layer.kind != MAMBA and largest % layer.page_bytes == 0:
            scaled = replace(layer, block_size=layer.block_size * (largest // layer.page_bytes), page_bytes=largest)
            out.append(_with_reserve(scaled, inputs))
        elif layer.kind in (MAMBA, FULL, SLIDING):
            out.append(replace(layer, page_bytes=largest))  # padded page
        else:
            raise Unplannable(f"layer {layer.index} of {layer.model} ({layer.kind}) has a {layer.page_bytes}-byte page "
                              f"that neither divides the largest page {largest} nor can be padded (MLA)")
    return out


def _groups(layers: list[LayerPlan]) -> list[list[int]]:
    buckets: dict[tuple[object, ...], list[int]] = {}
    for i, layer in enumerate(layers):
        key = (_type_of(layer), layer.kind, layer.page_bytes, layer.block_size, layer.signature)
        buckets.setdefault(key, []).append(i)
    counts = [len(b) for b in buckets.values()]
    size = max(counts) if max(counts) < 1.5 * min(counts) else min(counts)
    groups = []
    for members in buckets.values():
        n = -(-len(members) // size)
        groups += [members[i::n] for i in range(n)]
    return groups


def plan(model: ModelShape, inputs: PlanInputs) -> Plan:
    """The pool and the number of requests that fit (see the module docstring for the policy).

    Sliding layers keep their windows unless ``hybrid_groups`` is off and full (or MLA) layers are present; when
    MLA pages cannot be unified with sliding pages, sliding layers are sized as full (vLLM's full-allocation
    fallback); other layers that cannot share one pool raise :class:`Unplannable`."""
    models = [model] + ([inputs.draft] if inputs.draft else [])
    kinds = {k for m in models for k in m.layer_kinds}
    windows = inputs.hybrid_groups or not (kinds & {FULL, MLA})
    try:
        return _plan(models, inputs, windows)
    except Unplannable:
        if windows and SLIDING in kinds and MLA in kinds:
            return _plan(models, inputs, windows=False)
        raise


def _plan(models: list[ModelShape], inputs: PlanInputs, windows: bool) -> Plan:
    layers = [layer for m in models for layer in layer_plans(m, inputs, windows)]
    if all(layer.page_bytes == 0 for layer in layers):
        raise Unplannable(f"{models[0].name} caches nothing: no layer holds KV or state")
    types = {_type_of(layer) for layer in layers}
    if len(types) == 1:  # one type (pages may differ, e.g. a draft model): one group of every layer
        groups = [list(range(len(layers)))]
        bytes_per_block = sum(layer.page_bytes for layer in layers)
        group_blocks = [max(layer.blocks_per_request for layer in layers)]
    else:
        layers = _unify(layers, inputs)
        groups = _groups(layers)
        bytes_per_block = max(sum(layers[i].page_bytes for i in g) for g in groups)
        group_blocks = [layers[g[0]].blocks_per_request for g in groups]
    num_blocks = inputs.kv_budget // bytes_per_block
    usable = max(0, num_blocks - inputs.null_blocks)
    per_request = sum(group_blocks)
    credit = sum(inputs.prefix_tokens // layers[g[0]].block_size for g in groups
                 if layers[g[0]].kind in (FULL, MLA))
    # the first request allocates every block; each later one shares the prefix's full blocks
    requests = 0 if usable < per_request else 1 + (usable - per_request) // (per_request - credit)
    return Plan(tuple(layers), tuple(tuple(g) for g in groups), bytes_per_block, num_blocks, usable, per_request,
                credit, Fraction(usable, per_request), requests,
                tuple(sorted(Counter(layer.page_bytes for layer in layers))))

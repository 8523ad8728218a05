"""The KV-cache area's API: the memory a cache holds step by step, and the capacity a planner derives.

Two questions, two case types:

- :class:`KvCase` — ``batch`` sequences prefill a ``prompt`` of tokens, then take ``decode_steps`` steps of one
  token each; :meth:`KvCacheImpl.measure` returns one :class:`Snapshot` after the prefill and one after each step:
  per layer kind, the bytes *held* (distinct storages, each counted once however many views share it) next to the
  *logical* bytes (the elements of the tensors the cache exposes).
- :class:`PlanCase` — a memory budget, a block size and a max model length; :meth:`KvCacheImpl.plan` returns the
  :class:`PlanResult` a paged engine derives: every layer's page, the block pool and how many requests fit.

An implementation declares which it answers through ``lacks`` (features ``held`` and ``planner``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import Any, ClassVar

from impls.base import Implementation, declared_reasons
from reference.kv_cache import KV_FORMATS, validate_count
from reference.model_config import MAMBA, MLA, SLIDING, ModelShape, shape_from_config

DTYPES = tuple(KV_FORMATS)  # float32, float16, bfloat16, float8_e4m3fn, int8
QUANTIZED = ("float8_e4m3fn", "int8")
FEATURES = ("held", "planner", "sliding", "mla", "hybrid", "quantized", "decode", "prefix", "draft",
            "no_hybrid_groups")


def _kind_features(shape: ModelShape, dtype: str) -> set[str]:
    kinds = set(shape.layer_kinds)
    return ({"sliding"} if SLIDING in kinds else set()) | ({"mla"} if MLA in kinds else set()) | \
        ({"hybrid"} if MAMBA in kinds else set()) | ({"quantized"} if dtype in QUANTIZED else set())


@dataclass(frozen=True)
class KvCase:
    """``batch`` sequences of ``prompt`` tokens, then ``decode_steps`` single-token steps, for the model ``config``
    (a config.json dict, shrunk where the cache does not depend on it), with K and V stored as ``dtype``."""

    model: str
    batch: int
    prompt: int
    decode_steps: int
    dtype: str
    config: dict[str, Any] = field(hash=False, compare=False, repr=False)

    @cached_property
    def shape(self) -> ModelShape:
        return shape_from_config(self.config, self.model)

    @property
    def max_cache_len(self) -> int:
        """What a preallocating cache is sized for: the prompt and every decode step."""
        return self.prompt + self.decode_steps

    def features(self) -> set[str]:
        return {"held"} | _kind_features(self.shape, self.dtype) | ({"decode"} if self.decode_steps else set())

    def __str__(self) -> str:
        s = self.shape
        window = f" window {s.sliding_window}" if s.sliding_window else ""
        layers = "+".join(f"{s.count(k)} {k}" for k in s.kinds)
        return (f"{self.model} ({layers}; kv heads {s.num_kv_heads}, head_dim {s.head_dim}{window}) B{self.batch} "
                f"prompt {self.prompt} +{self.decode_steps} steps {self.dtype}")


@dataclass(frozen=True)
class Held:
    """What one layer kind holds at one moment, summed over its layers and the batch."""

    held: int  # bytes of the distinct storages behind the cache's tensors
    logical: int  # bytes of the elements of the tensors themselves (views)


@dataclass(frozen=True)
class Snapshot:
    tokens: int  # tokens of each sequence processed so far
    by_kind: Mapping[str, Held]
    note: str = ""  # e.g. where the bytes live (device, host)


@dataclass(frozen=True)
class PlanCase:
    """A paged engine's capacity question: the KV pool from ``kv_budget`` bytes, at ``max_model_len``.

    ``model_dtype`` is the compute dtype (a Mamba layer's state is kept in it); ``dtype`` the KV storage dtype.
    ``draft``/``draft_config``: a draft model whose layers share the pool. Every other input is the reference's
    :class:`reference.kv_plan.PlanInputs` field of the same name.
    """

    model: str
    dtype: str
    block_size: int
    max_model_len: int
    kv_budget: int
    config: dict[str, Any] = field(hash=False, compare=False, repr=False)
    model_dtype: str = "bfloat16"
    in_flight_tokens: int = 4096
    hybrid_groups: bool = True
    prefix_tokens: int = 0
    draft: str = ""
    draft_config: dict[str, Any] | None = field(default=None, hash=False, compare=False, repr=False)

    @cached_property
    def shape(self) -> ModelShape:
        return shape_from_config(self.config, self.model)

    @cached_property
    def draft_shape(self) -> ModelShape | None:
        return shape_from_config(self.draft_config, self.draft) if self.draft_config is not None else None

    def features(self) -> set[str]:
        named = {"prefix": self.prefix_tokens > 0, "draft": bool(self.draft),
                 "no_hybrid_groups": not self.hybrid_groups}
        return {"planner"} | _kind_features(self.shape, self.dtype) | {k for k, v in named.items() if v}

    def __str__(self) -> str:
        extra = "".join((f" prefix {self.prefix_tokens}" if self.prefix_tokens else "",
                         f" draft {self.draft}" if self.draft else "",
                         "" if self.hybrid_groups else " no-hybrid-groups",
                         f" in-flight {self.in_flight_tokens}" if self.in_flight_tokens != 4096 else ""))
        return (f"{self.model} {self.dtype} block {self.block_size} max_model_len {self.max_model_len} budget "
                f"{self.kv_budget:,} B{extra}")


@dataclass(frozen=True)
class PlanResult:
    """What a planner derived: one page size per layer (the draft's after the target's), the pool and concurrency."""

    layer_pages: tuple[int, ...]  # bytes of one page of each layer, before page-size unification
    unified_pages: tuple[int, ...]  # the same after unification (what a block of the pool holds per layer)
    num_groups: int
    bytes_per_block: int
    num_blocks: int
    blocks_per_request: int
    max_concurrency: float | Fraction  # requests at max_model_len the planner says fit


class NoRoom(ValueError):
    """A planner refusing the budget: not one request at max_model_len fits."""


class CannotPlan(ValueError):
    """A planner refusing the model: its layers' pages cannot share one pool."""


def validate(case: KvCase | PlanCase) -> None:
    """Refuse a case that means nothing, naming the field, the value and the constraint."""
    if case.dtype not in DTYPES:
        raise ValueError(f"dtype must be a torch dtype name, one of {', '.join(DTYPES)}; got {case.dtype!r}")
    _ = case.shape  # ConfigError (a ValueError) names the bad config key
    if isinstance(case, KvCase):
        validate_count("batch", case.batch, 1)
        validate_count("prompt", case.prompt, 1)
        validate_count("decode_steps", case.decode_steps, 0)
        return
    validate_count("block_size", case.block_size, 1)
    validate_count("max_model_len", case.max_model_len, 1)
    validate_count("kv_budget", case.kv_budget, 0)
    validate_count("in_flight_tokens", case.in_flight_tokens, 1)
    validate_count("prefix_tokens", case.prefix_tokens, 0)
    if case.model_dtype not in DTYPES or case.model_dtype in QUANTIZED:
        raise ValueError(f"model_dtype must be float32, float16 or bfloat16; got {case.model_dtype!r}")
    _ = case.draft_shape


class KvCacheImpl(Implementation):
    """Base of KV-cache implementations. Capabilities, besides :class:`impls.base.Implementation`'s:

    - ``block_size`` [None]: a paged implementation holds whole blocks of this many token slots per layer; None
      means it holds exactly the tokens it keeps.
    - ``preallocates`` [False]: it holds ``max_cache_len`` token slots per layer (capped at a sliding window) from
      the first step on, as a static cache does.
    - ``window_minimum`` [False]: a sliding layer carries only the W − 1 tokens the next query needs
      (:func:`reference.kv_cache.next_step_tokens`), not the W of the step just done.
    - ``mamba_ssm_dtype`` [None]: the dtype it keeps a Mamba layer's SSM state in; None means the case's dtype.
    - ``lacks``: ``held`` for an implementation that holds no memory (a planner), ``planner`` for one that plans
      nothing (a cache), plus the case features (``sliding``, ``mla``, ``hybrid``, ``quantized``, ...).
    """

    area: ClassVar[str] = "kv_cache"
    block_size: int | None = None
    preallocates: bool = False
    window_minimum: bool = False
    mamba_ssm_dtype: str | None = None

    def measure(self, case: KvCase) -> list[Snapshot]:
        """Prefill, then decode; one snapshot after the prefill and one after each decode step."""
        raise NotImplementedError(f"{self.name} holds no memory: {self.lacks.get('held', 'no measure()')}")

    def decode_append(self, case: KvCase) -> tuple[Callable[[], Sequence[Any]], Callable[..., Any]]:
        """For the benchmark: ``make_inputs()`` builds a cache holding ``case.prompt`` tokens of every sequence and
        returns the arguments of ``run(...)``, which appends one decode token to every sequence and layer."""
        raise NotImplementedError(f"{self.name} has no decode append: {self.lacks.get('held', 'no cache')}")

    def plan(self, case: PlanCase) -> PlanResult:
        raise NotImplementedError(f"{self.name} plans nothing: {self.lacks.get('planner', 'no plan()')}")

    def refuse(self, case: KvCase | PlanCase) -> None:
        """Validate the case, then raise naming every declared reason this implementation declines it."""
        validate(case)
        reasons = declared_reasons(self, case)
        if reasons:
            raise NotImplementedError(f"{self.name} does not support {case}: {'; '.join(reasons)}")

"""The rope area's API: what a rotary-embedding implementation provides, and the case it is asked about.

q is [T, Hq, D] and k is [T, Hkv, D] (token-major, vLLM's flattened layout; an adapter to a library with
another layout translates); positions are integers [T], one per token, in any order (an offset when
decoding, restarts in a packed batch). The current length of a call, which the length-dependent scalings
(dynamic NTK, LongRoPE) read, is max(positions) + 1.

A model builds its rotary embedding once and calls it on every forward pass, so the API has the same two
steps: ``impl.embedding(config, dtype, device)`` builds one (whatever state it keeps lives there) and its
``apply(q, k, positions, in_place=...)`` rotates. ``impl.apply(...)`` is a fresh embedding's one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

from impls.base import Implementation, declared_reasons
from impls.tensors import FLOAT_DTYPES, dtype_name
from reference.rope import LAYOUTS, SCALINGS, RopeConfig, current_length

if TYPE_CHECKING:
    import numpy as np
    import torch

DTYPES = FLOAT_DTYPES
FEATURES = (*LAYOUTS, "unscaled", *SCALINGS, "partial", "in_place", "strided", "negative_positions", "frequencies")


@dataclass(frozen=True, repr=False)
class RopeCase:
    """One call (or, with ``schedule``, a series of calls on one embedding).

    ``fused_qkv``: q and k are views into one [T, (Hq + 2·Hkv)·D] projection output, so their token stride
    is not H·D. ``schedule``: the current lengths of successive calls on one embedding; call j rotates the
    last ``tokens`` positions of a sequence of length schedule[j] (``positions`` is then unused).
    ``needs_frequencies``: the case asks for the inverse frequencies and attention factor themselves.
    ``round_trip``: the results are rotated back at the negated positions (R_{−m} R_m).
    """

    tokens: int
    heads_q: int
    heads_kv: int
    dtype: str
    config: RopeConfig
    positions: tuple[int, ...]
    device: str
    in_place: bool = False
    fused_qkv: bool = False
    schedule: tuple[int, ...] = ()
    needs_frequencies: bool = False
    round_trip: bool = False

    @property
    def head_dim(self) -> int:
        return self.config.head_dim

    @property
    def seq_len(self) -> int:
        return current_length(self.positions)

    def all_positions(self) -> tuple[int, ...]:
        """Every position any call of this case uses."""
        if self.schedule:
            return tuple(p for length in self.schedule for p in range(max(length - self.tokens, 0), length))
        return self.positions + (tuple(-p for p in self.positions) if self.round_trip else ())

    def __repr__(self) -> str:  # a prefill's positions as the range they are (a 64K-token benchmark case stays short)
        pos = self.positions
        contiguous = len(pos) > 8 and pos == tuple(range(pos[0], pos[0] + len(pos)))
        fields = {f: getattr(self, f) for f in self.__dataclass_fields__}
        shown = ", ".join(f"{f}=tuple(range({pos[0]}, {pos[0] + len(pos)}))" if f == "positions" and contiguous
                          else f"{f}={v!r}" for f, v in fields.items())
        return f"RopeCase({shown})"

    def features(self) -> set[str]:
        named = {self.config.layout, self.config.rope_type if self.config.scaling else "unscaled"}
        named |= {f for f, on in (("partial", self.config.partial), ("in_place", self.in_place),
                                  ("strided", self.fused_qkv), ("frequencies", self.needs_frequencies),
                                  ("negative_positions", min(self.all_positions(), default=0) < 0)) if on}
        return named

    def __str__(self) -> str:
        pos = self.positions
        if self.schedule:
            where = f"lengths {list(self.schedule)} (last {self.tokens} positions each)"
        elif len(pos) <= 6:
            where = f"positions {list(pos)}"
        else:
            where = f"positions {list(pos[:3])}…{list(pos[-2:])} (min {min(pos)}, max {max(pos)})"
        extra = [x for x, on in (("in place", self.in_place), ("q/k views of a fused qkv", self.fused_qkv),
                                 ("frequencies", self.needs_frequencies), ("and back at -positions", self.round_trip))
                 if on]
        return " ".join([f"T{self.tokens} Hq{self.heads_q} Hkv{self.heads_kv}", self.dtype, self.device,
                         str(self.config), where, *extra])


class RotaryEmbedding(Protocol):
    """One model's rotary embedding, built once and called on every forward pass."""

    def apply(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, *,
              in_place: bool = False) -> tuple[torch.Tensor, torch.Tensor]: ...


class RopeImpl(Implementation):
    """Rotates q and k as ``reference.rope.apply`` defines it.

    ``embedding(config, dtype, device)`` returns a :class:`RotaryEmbedding`; its ``apply`` returns
    (q', k') shaped like q and k. With ``in_place=True`` the results must be written into q and k (and
    those tensors returned); otherwise q and k must be left as they were. ``frequencies(config, seq_len)``
    returns (θ'_i as float64 [rotary_dim/2], attention factor) for implementations that expose them;
    others list ``frequencies`` in ``lacks``. Capabilities are data: ``lacks`` names from :data:`FEATURES`,
    ``dtypes`` from :data:`DTYPES`, ``unsupported`` for limits such as the positions a cache covers.
    """

    area: ClassVar[str] = "rope"

    def embedding(self, config: RopeConfig, dtype: str, device: str) -> RotaryEmbedding:
        raise NotImplementedError

    def apply(self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, config: RopeConfig, *,
              in_place: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embedding(config, dtype_name(q), q.device.type).apply(q, k, positions, in_place=in_place)

    def frequencies(self, config: RopeConfig, seq_len: int) -> tuple[np.ndarray, float]:
        raise NotImplementedError(f"{self.name} does not expose its frequencies")

    def refuse(self, case: RopeCase) -> None:
        """Raise NotImplementedError with the reasons, if this implementation declines ``case``."""
        reasons = declared_reasons(self, case)
        if reasons:
            raise NotImplementedError(f"{self.name}: " + "; ".join(reasons))


def case_of(q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, config: RopeConfig,
            in_place: bool = False) -> RopeCase:
    """The case a call asks for (``strided`` when q's or k's token stride is not H·D)."""
    strided = q.stride(0) != q.shape[1] * q.shape[2] or k.stride(0) != k.shape[1] * k.shape[2]
    return RopeCase(q.shape[0], q.shape[1], k.shape[1], dtype_name(q), config, tuple(positions.tolist()),
                    q.device.type, in_place=in_place, fused_qkv=strided)


def validate(q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, config: RopeConfig) -> None:
    """Reject a bad call with an error naming the constraint and the values given."""
    if q.dtype != k.dtype:
        raise TypeError(f"q and k must share a dtype; got q {dtype_name(q)}, k {dtype_name(k)}")
    if q.device != k.device or positions.device != q.device:
        raise ValueError(f"q, k and positions must be on one device; got {q.device}, {k.device}, {positions.device}")
    if q.ndim != 3 or k.ndim != 3:
        raise ValueError(f"q and k must be [tokens, heads, head_dim]; got shapes {tuple(q.shape)} and {tuple(k.shape)}")
    if q.shape[2] != config.head_dim or k.shape[2] != config.head_dim:
        raise ValueError(f"the config's head_dim is {config.head_dim}, but q has {q.shape[2]} and k {k.shape[2]}")
    if q.shape[0] != k.shape[0]:
        raise ValueError(f"q has {q.shape[0]} tokens but k has {k.shape[0]}")
    if positions.ndim != 1 or positions.shape[0] != q.shape[0]:
        raise ValueError(f"positions must be one integer per token: {q.shape[0]} tokens, positions of shape "
                         f"{tuple(positions.shape)}")
    if positions.dtype.is_floating_point or positions.dtype.is_complex or positions.dtype == _bool():
        raise TypeError(f"positions must be an integer tensor; got {dtype_name(positions)}")


def _bool() -> torch.dtype:
    import torch

    return torch.bool

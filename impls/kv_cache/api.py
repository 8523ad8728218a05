"""The KV-cache area's API: how many bytes of K and V an implementation holds for a workload."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from impls.base import Implementation


@dataclass(frozen=True)
class KvCase:
    """``batch`` sequences of ``tokens`` tokens each, for the model described by ``config``
    (a Hugging Face config.json dict), with K and V stored as ``kv_dtype``."""

    model: str
    batch: int
    tokens: int
    kv_dtype: str
    config: dict[str, Any] = field(hash=False, compare=False, repr=False)


class KvCacheImpl(Implementation):
    area: ClassVar[str] = "kv_cache"

    def cache_bytes(self, case: KvCase) -> int:
        """Bytes of K and V (or of the MLA latent) held once the batch is prefilled."""
        raise NotImplementedError

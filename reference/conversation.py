"""Costs beyond one request: an N-turn conversation on a stateless API, and a RAG workload.

Conversation: a system prompt of ``system`` tokens; each turn adds ``user`` tokens and the model answers
``output`` tokens. A stateless API resends the whole history, so turn k (1-based) sends
``system + k*user + (k-1)*output`` input tokens and the total input grows quadratically in N.

With prompt caching (5-minute writes, a breakpoint at the end of each prompt), turn k reads the previous
turn's prompt from the cache and writes only what is new: turn 1 writes its whole prompt.

With compaction at ``threshold``: before a turn whose prompt would exceed the threshold, one extra request
summarises the history (its prompt as input, ``summary`` tokens out), and the history is replaced by the
summary. The changed prefix misses the cache, so the next turn writes its whole prompt again.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from reference.billing import STANDARD, BillingOptions, PriceCard, cost
from reference.usage import Usage


@dataclass(frozen=True)
class Conversation:
    turns: int
    system: int
    user: int
    output: int
    caching: bool = False
    compact_at: int | None = None  # prompt size above which the history is compacted
    summary: int = 0  # tokens of a compaction summary

    def __post_init__(self) -> None:
        for name in ("turns", "system", "user", "output", "summary"):
            if getattr(self, name) < 0:
                raise ValueError(f"conversation {name} must be >= 0; got {getattr(self, name)}")
        if self.compact_at is not None and self.compact_at < self.system + self.summary + self.user:
            raise ValueError(f"compact_at = {self.compact_at} is below system + summary + user = "
                             f"{self.system + self.summary + self.user}: every turn would compact")


def _request(prompt: int, cached_prefix: int, output: int, caching: bool) -> Usage:
    if not caching:
        return Usage(input_uncached=prompt, output=output)
    return Usage(cache_read=cached_prefix, cache_write_5m=prompt - cached_prefix, output=output)


def conversation_requests(conv: Conversation) -> list[Usage]:
    """Every request the conversation makes, in order (compaction requests included)."""
    requests: list[Usage] = []
    history = 0  # tokens of user / assistant history (or summary) before this turn
    cached = 0  # prefix of the next prompt already in the cache
    for _ in range(conv.turns):
        prompt = conv.system + history + conv.user
        if conv.compact_at is not None and prompt > conv.compact_at:
            requests.append(_request(conv.system + history, cached, conv.summary, conv.caching))
            history, cached = conv.summary, 0
            prompt = conv.system + history + conv.user
        requests.append(_request(prompt, cached, conv.output, conv.caching))
        history += conv.user + conv.output
        cached = prompt
    return requests


def uncached_input_closed_form(turns: int, system: int, user: int, output: int) -> int:
    """Sum over k = 1..N of system + k*user + (k-1)*output: quadratic in N."""
    return turns * system + user * turns * (turns + 1) // 2 + output * turns * (turns - 1) // 2


@dataclass(frozen=True)
class RagWorkload:
    """``requests`` independent questions, each sending system + k retrieved chunks + the question."""

    requests: int
    system: int
    chunks: int
    chunk_tokens: int
    question: int
    output: int
    caching: bool = False  # the system prompt is cached after the first request


def rag_requests(rag: RagWorkload) -> list[Usage]:
    fresh = rag.chunks * rag.chunk_tokens + rag.question
    out: list[Usage] = []
    for i in range(rag.requests):
        if not rag.caching:
            out.append(Usage(input_uncached=rag.system + fresh, output=rag.output))
        elif i == 0:
            out.append(Usage(input_uncached=fresh, cache_write_5m=rag.system, output=rag.output))
        else:
            out.append(Usage(input_uncached=fresh, cache_read=rag.system, output=rag.output))
    return out


def total_cost(requests: list[Usage], card: PriceCard, options: BillingOptions = STANDARD) -> Decimal:
    return sum((cost(u, card, options).total for u in requests), Decimal(0))

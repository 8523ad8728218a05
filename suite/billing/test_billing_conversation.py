"""Beyond one request: N-turn conversations (stateless, cached, compacted) and a RAG workload."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from impls import registry
from reference import billing as ref
from reference.conversation import (
    Conversation,
    RagWorkload,
    conversation_requests,
    rag_requests,
    total_cost,
    uncached_input_closed_form,
)

SONNET = ref.card_for("claude-sonnet-4-5")


def test_billing_conversation_hand_computed() -> None:
    # 3 turns, system 100, user 10, output 20: prompts 110, 140, 170 -> 420 input, 60 output
    # cost: 420 * 3 + 60 * 15 = 1260 + 900 = 2160 micro$
    conv = Conversation(turns=3, system=100, user=10, output=20)
    assert [u.prompt for u in conversation_requests(conv)] == [110, 140, 170]
    assert total_cost(conversation_requests(conv), SONNET) == Decimal("0.00216")
    # cached: turn 1 writes 110; turn 2 reads 110, writes 30; turn 3 reads 140, writes 30
    # writes 170 * 3.75 = 637.5, reads 250 * 0.3 = 75, output 60 * 15 = 900 -> 1612.5 micro$
    cached = conversation_requests(Conversation(3, 100, 10, 20, caching=True))
    assert total_cost(cached, SONNET) == Decimal("0.0016125")


@given(turns=st.integers(0, 60), system=st.integers(0, 5000), user=st.integers(0, 500), output=st.integers(0, 500))
def test_billing_conversation_quadratic_input(turns: int, system: int, user: int, output: int) -> None:
    requests = conversation_requests(Conversation(turns, system, user, output))
    assert sum(u.input_uncached for u in requests) == uncached_input_closed_form(turns, system, user, output)


@given(turns=st.integers(1, 40), system=st.integers(0, 5000), user=st.integers(1, 500), output=st.integers(1, 500))
def test_billing_caching_sends_the_same_tokens(turns: int, system: int, user: int, output: int) -> None:
    plain = conversation_requests(Conversation(turns, system, user, output))
    cached = conversation_requests(Conversation(turns, system, user, output, caching=True))
    assert [u.prompt for u in plain] == [u.prompt for u in cached]


def test_billing_caching_pays_off_on_long_conversations() -> None:
    cached = Conversation(turns=30, system=2000, user=200, output=300, caching=True)
    plain = Conversation(turns=30, system=2000, user=200, output=300)
    assert total_cost(conversation_requests(cached), SONNET) < total_cost(conversation_requests(plain), SONNET) / 3


@given(turns=st.integers(1, 80), threshold=st.integers(3000, 50_000))
def test_billing_compaction_bounds_the_prompt(turns: int, threshold: int) -> None:
    conv = Conversation(turns, system=1000, user=300, output=400, compact_at=threshold, summary=500)
    requests = conversation_requests(conv)
    normal_turns = [u for u in requests if u.output == 400]
    compactions = [u for u in requests if u.output == 500]
    assert len(normal_turns) == turns and len(normal_turns) + len(compactions) == len(requests)
    assert all(u.prompt <= threshold for u in normal_turns)
    # a compaction request sends the last turn's prompt plus its answer
    assert all(u.prompt <= threshold + 400 for u in compactions)


def test_billing_rag_versus_conversation() -> None:
    # 20 questions: RAG sends 1000 + 5 * 400 + 50 = 3050 each = 61000 input; a 20-turn chat over the same
    # system prompt and question sizes with 300-token answers resends its history: far more input
    rag = rag_requests(RagWorkload(20, system=1000, chunks=5, chunk_tokens=400, question=50, output=300))
    assert sum(u.prompt for u in rag) == 61_000
    chat = conversation_requests(Conversation(20, system=1000, user=50, output=300))
    assert sum(u.prompt for u in chat) == uncached_input_closed_form(20, 1000, 50, 300) == 20 * 1000 + 50 * 210 + 300 * 190
    cached_rag = rag_requests(RagWorkload(20, 1000, 5, 400, 50, 300, caching=True))
    assert total_cost(cached_rag, SONNET) < total_cost(rag, SONNET)


def test_billing_conversation_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="turns"):
        Conversation(turns=-1, system=0, user=0, output=0)
    with pytest.raises(ValueError, match="compact_at"):
        Conversation(turns=3, system=1000, user=100, output=10, compact_at=500, summary=0)


def test_billing_modules_import() -> None:
    broken = [b for b in registry.broken_modules() if "usage" in b.origin or "billing" in b.origin]
    assert not broken, "\n".join(f"{b.origin}: {b.error}" for b in broken)

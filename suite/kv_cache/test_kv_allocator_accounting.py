"""The block allocator's waste and prefix-sharing accounting against the reference."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from impls.paged.allocator import BlockAllocator
from reference import kv_cache as ref
from reference.model_config import preset

LLAMA = preset("llama-3-8b")
PER_TOKEN = ref.bytes_per_token(LLAMA, "float16")


@given(lengths=st.lists(st.integers(1, 500), min_size=1, max_size=8), block=st.sampled_from([1, 7, 16, 256]))
def test_waste_and_bytes_match_the_reference(lengths: list[int], block: int) -> None:
    allocator = BlockAllocator(sum(ref.blocks_for(n, block) for n in lengths), block, PER_TOKEN)
    for i, n in enumerate(lengths):
        allocator.allocate(i, n)
    assert allocator.wasted_slots() == sum(ref.paged_waste_slots(n, block) for n in lengths)
    assert allocator.bytes_used == sum(ref.paged_sequence_bytes(LLAMA, n, block) for n in lengths)
    assert all(ref.paged_waste_slots(n, block) < block for n in lengths)


@given(sequences=st.integers(2, 6), prefix=st.integers(1, 300), block=st.sampled_from([4, 16, 32]),
       tail=st.integers(1, 40))
def test_prefix_sharing_saves_what_the_reference_says(sequences: int, prefix: int, block: int, tail: int) -> None:
    """n sequences fork one prompt and each append their own tail; copy-on-write copies the partial block."""
    shared = BlockAllocator(10_000, block, PER_TOKEN)
    shared.allocate("prompt", prefix)
    for s in range(1, sequences):
        shared.fork("prompt", s)
    for s in ["prompt", *range(1, sequences)]:
        shared.append(s, tail)
    alone = BlockAllocator(10_000, block, PER_TOKEN)
    for s in range(sequences):
        alone.allocate(s, prefix + tail)
    saved = alone.bytes_used - shared.bytes_used
    assert saved == ref.prefix_sharing_savings(LLAMA, sequences, prefix, block)

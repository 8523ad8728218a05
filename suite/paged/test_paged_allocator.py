"""The block allocator: accounting worked out by hand, copy-on-write, prefix sharing and its errors."""

from __future__ import annotations

import pytest
import torch

from impls.paged.allocator import AllocatorError, BlockAllocator, BlockTableTooShort, OutOfBlocks
from impls.paged.api import PagedCase
from suite.paged.inputs import HarnessError, build_inputs, compact_pool


def test_allocate_accounting_by_hand() -> None:
    a = BlockAllocator(num_blocks=10, block_size=4, bytes_per_token=256)
    assert a.allocate("x", 5) == [0, 1]  # 5 tokens → ⌈5/4⌉ = 2 blocks, lowest first
    assert a.allocate("y", 4) == [2]
    assert (a.blocks_used, a.blocks_free) == (3, 7)
    assert a.bytes_used == 3 * 4 * 256  # whole blocks: 3072
    assert a.wasted_slots() == 3  # block 1 holds 1 of 4 slots; block 2 is full
    assert a.append("x", 3) == []  # fills block 1 exactly
    assert a.wasted_slots() == 0 and a.blocks_used == 3
    a.append("x", 1)
    assert a.blocks("x") == [0, 1, 3] and a.wasted_slots() == 3
    assert a.slots("x", 6, 9) == [1 * 4 + 2, 1 * 4 + 3, 3 * 4 + 0]
    a.free("x")
    assert (a.blocks_used, a.blocks_free, a.bytes_used) == (1, 9, 1024)


def test_block_sizes_1_and_large() -> None:
    a = BlockAllocator(num_blocks=4, block_size=1)
    a.allocate(0, 3)
    assert a.wasted_slots() == 0 and a.blocks_used == 3
    big = BlockAllocator(num_blocks=2, block_size=256)
    big.allocate(0, 257)
    assert big.wasted_slots() == 255


def test_fork_shares_then_copies_on_write() -> None:
    a = BlockAllocator(num_blocks=8, block_size=4)
    a.allocate("p", 6)  # blocks 0 (full), 1 (2 of 4)
    assert a.fork("p", "c") == [0, 1]
    assert a.refcount(0) == a.refcount(1) == 2 and a.blocks_used == 2
    copies = a.append("c", 1)  # would write slot 2 of block 1, which "p" shares
    assert copies == [(1, 2)]
    assert a.blocks("c") == [0, 2] and a.blocks("p") == [0, 1]
    assert a.refcount(1) == 1 and a.refcount(2) == 1 and a.refcount(0) == 2
    assert a.append("p", 1) == []  # the parent now owns block 1 alone: no copy
    a.free("p")
    assert a.refcount(0) == 1 and a.blocks_free == 8 - 2  # block 0 (shared) and 2 remain


def test_fork_of_a_full_block_prefix_needs_no_copy() -> None:
    a = BlockAllocator(num_blocks=8, block_size=4)
    a.allocate("p", 10)
    a.fork("p", "c", num_tokens=8)  # two full blocks
    assert a.append("c", 3) == [] and a.blocks("c")[:2] == a.blocks("p")[:2]
    a.fork("p", "d", num_tokens=5)  # ends inside block 1, which "p" has filled beyond slot 1
    assert a.append("d", 1) == [(a.blocks("p")[1], a.blocks("d")[1])]


def test_failed_calls_change_nothing() -> None:
    a = BlockAllocator(num_blocks=3, block_size=2)
    a.allocate("x", 3)
    with pytest.raises(OutOfBlocks, match=r"needs 2 new blocks of 2 tokens but only 1 of 3 are free"):
        a.append("x", 5)  # 8 tokens need ⌈8/2⌉ = 4 blocks; it has 2
    assert a.num_tokens("x") == 3 and a.blocks_used == 2


def test_errors_name_the_problem() -> None:
    a = BlockAllocator(num_blocks=4, block_size=16)
    with pytest.raises(OutOfBlocks, match=r"allocate 100 tokens .* needs 7 new blocks of 16 tokens but only 4 of 4"):
        a.allocate("s", 100)
    a.allocate("s", 20)
    a.free("s")
    with pytest.raises(AllocatorError, match=r"cannot append 1 tokens to sequence 's': it was freed"):
        a.append("s", 1)
    with pytest.raises(AllocatorError, match=r"sequence 'nope'.*never allocated"):
        a.free("nope")
    a.allocate(1, 40)
    a.allocate(2, 3)
    with pytest.raises(BlockTableTooShort, match=r"block table has 2 columns but sequence 1 needs 3 blocks of 16"):
        a.block_table([1, 2], width=2)
    with pytest.raises(AllocatorError, match="already allocated"):
        a.allocate(1, 1)


def test_block_table_tensor_and_padding() -> None:
    a = BlockAllocator(num_blocks=6, block_size=4)
    a.allocate("a", 9)
    a.allocate("b", 1)
    table = a.block_table(["a", "b"], width=4)
    assert table.dtype == torch.int32
    assert table.tolist() == [[0, 1, 2, -1], [3, -1, -1, -1]]
    assert a.block_table(["b"], pad=0).tolist() == [[3]]


def test_shuffled_pool_gives_noncontiguous_tables() -> None:
    a = BlockAllocator(num_blocks=64, block_size=2, seed=7)
    a.allocate(0, 20)
    blocks = a.blocks(0)
    assert blocks != list(range(blocks[0], blocks[0] + 10))  # not one contiguous run


class NoCopyOnWrite(BlockAllocator):
    """Planted bug: appends write into shared blocks in place, so a forked parent reads stale data."""

    def append(self, seq_id, num_tokens):  # type: ignore[no-untyped-def]
        seq = self._seq(seq_id)
        refs = {b: self._refs[b] for b in seq.blocks}
        for b in seq.blocks:
            self._refs[b] = 1  # pretend nothing is shared
        super().append(seq_id, num_tokens)
        for b, r in refs.items():
            self._refs[b] = r
        return []


class CopyNotReported(BlockAllocator):
    """Planted bug: the private block is taken but the (src, dst) copy is not reported, so it holds stale data."""

    def append(self, seq_id, num_tokens):  # type: ignore[no-untyped-def]
        super().append(seq_id, num_tokens)
        return []


@pytest.mark.parametrize("broken", [NoCopyOnWrite, CopyNotReported])
def test_planted_stale_block_after_copy_on_write_is_caught(broken: type[BlockAllocator]) -> None:
    case = PagedCase((9, 12, 7), 4, 2, 1, 16, 4, "float32", "cpu", shared_prefix=6)
    compact_pool(build_inputs(case, seed=11))  # the real allocator: the gather matches what was written
    with pytest.raises(HarnessError, match="differ from what was written"):
        compact_pool(build_inputs(case, seed=11, allocator_cls=broken))

"""A block allocator for a paged KV cache, with prefix sharing and copy-on-write.

The pool holds ``num_blocks`` blocks of ``block_size`` token slots. A sequence owns an ordered list
of blocks; token t of the sequence lives in block ``blocks[t // block_size]`` at slot
``t % block_size``. ``fork`` shares blocks (reference counts); the first append that would write
into a shared block gives the writer a private copy and returns the (src, dst) block copies the
caller must perform on the K/V pools before writing. Every call that fails leaves the state as it was.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PAD_BLOCK = -1  # default fill of block-table entries past a sequence's last block


class AllocatorError(ValueError):
    """Bad use of the allocator (unknown or freed sequence, duplicate id, bad count)."""


class OutOfBlocks(AllocatorError):
    """The pool cannot serve a request; says how many blocks were needed and how many are free."""


class BlockTableTooShort(AllocatorError):
    """A requested block-table width cannot hold every block of a sequence."""


@dataclass
class _Seq:
    blocks: list[int] = field(default_factory=list)
    num_tokens: int = 0


class BlockAllocator:
    """Hands out blocks of a pool to sequences; exact accounting of blocks, bytes and waste.

    ``bytes_per_token`` is the K+V bytes of one token slot over all layers and kv heads (0 if the
    caller does not care about bytes). ``seed`` shuffles the order free blocks are handed out
    (tests use it to get non-contiguous tables); None hands them out lowest index first.
    """

    def __init__(self, num_blocks: int, block_size: int, bytes_per_token: int = 0, *, seed: int | None = None):
        if num_blocks < 1 or block_size < 1 or bytes_per_token < 0:
            raise AllocatorError(f"need num_blocks >= 1, block_size >= 1, bytes_per_token >= 0; got "
                                 f"{num_blocks}, {block_size}, {bytes_per_token}")
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.bytes_per_token = bytes_per_token
        order = list(range(num_blocks))
        if seed is not None:
            random.Random(seed).shuffle(order)
        self._free = order[::-1]  # a stack: pop() hands out order[0] first
        self._refs = [0] * num_blocks
        self._seqs: dict[Hashable, _Seq] = {}
        self._freed: set[Hashable] = set()

    # ---- accounting -------------------------------------------------------------------------
    @property
    def blocks_free(self) -> int:
        return len(self._free)

    @property
    def blocks_used(self) -> int:
        return self.num_blocks - len(self._free)

    @property
    def bytes_used(self) -> int:
        """Bytes of the blocks in use (whole blocks: a partly filled block costs all its slots)."""
        return self.blocks_used * self.block_size * self.bytes_per_token

    def wasted_slots(self) -> int:
        """Token slots in used blocks that no sequence has written (internal fragmentation)."""
        filled: dict[int, int] = {}
        for seq in self._seqs.values():
            for i, block in enumerate(seq.blocks):
                fill = min(self.block_size, seq.num_tokens - i * self.block_size)
                filled[block] = max(filled.get(block, 0), fill)
        return sum(self.block_size - f for f in filled.values())

    def refcount(self, block: int) -> int:
        return self._refs[block]

    def blocks_needed(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    # ---- sequences --------------------------------------------------------------------------
    def num_tokens(self, seq_id: Hashable) -> int:
        return self._seq(seq_id).num_tokens

    def blocks(self, seq_id: Hashable) -> list[int]:
        return list(self._seq(seq_id).blocks)

    def slots(self, seq_id: Hashable, start: int = 0, stop: int | None = None) -> list[int]:
        """Flat slot indices (block · block_size + offset) of tokens start..stop-1 of a sequence."""
        seq = self._seq(seq_id)
        stop = seq.num_tokens if stop is None else stop
        if not 0 <= start <= stop <= seq.num_tokens:
            raise AllocatorError(f"token range {start}..{stop} is outside sequence {seq_id!r} of {seq.num_tokens} "
                                 "tokens")
        bs = self.block_size
        return [seq.blocks[t // bs] * bs + t % bs for t in range(start, stop)]

    def allocate(self, seq_id: Hashable, num_tokens: int) -> list[int]:
        """Start a sequence with room for ``num_tokens`` tokens; returns its blocks."""
        if seq_id in self._seqs:
            raise AllocatorError(f"sequence {seq_id!r} is already allocated ({self._seqs[seq_id].num_tokens} tokens)")
        if num_tokens < 0:
            raise AllocatorError(f"num_tokens must be >= 0; got {num_tokens} for sequence {seq_id!r}")
        blocks = self._take(self.blocks_needed(num_tokens), f"allocate {num_tokens} tokens for sequence {seq_id!r}")
        self._seqs[seq_id] = _Seq(blocks, num_tokens)
        self._freed.discard(seq_id)
        return list(blocks)

    def append(self, seq_id: Hashable, num_tokens: int) -> list[tuple[int, int]]:
        """Grow a sequence by ``num_tokens``; returns the (src, dst) block copies to perform first.

        Writing into a block that other sequences share would change their data, so the writer
        gets a private copy of that block (copy-on-write). Only the last block can be partly
        filled, so at most one copy is returned.
        """
        seq = self._seq(seq_id, action=f"append {num_tokens} tokens to")
        if num_tokens < 0:
            raise AllocatorError(f"num_tokens must be >= 0; got {num_tokens} for sequence {seq_id!r}")
        if num_tokens == 0:
            return []
        bs = self.block_size
        new_total = seq.num_tokens + num_tokens
        fresh = self.blocks_needed(new_total) - len(seq.blocks)
        last = seq.blocks[-1] if seq.blocks else None
        cow = last is not None and seq.num_tokens % bs != 0 and self._refs[last] > 1
        got = self._take(fresh + int(cow), f"append {num_tokens} tokens to sequence {seq_id!r} "
                         f"({seq.num_tokens} tokens, {len(seq.blocks)} blocks)")
        copies: list[tuple[int, int]] = []
        if cow:
            assert last is not None
            dst = got.pop()
            self._refs[last] -= 1
            seq.blocks[-1] = dst
            copies.append((last, dst))
        seq.blocks.extend(got)
        seq.num_tokens = new_total
        return copies

    def fork(self, parent_id: Hashable, child_id: Hashable, num_tokens: int | None = None) -> list[int]:
        """Start ``child_id`` sharing the blocks of the parent's first ``num_tokens`` tokens (all by default).

        This is prefix caching: no data is copied now; the child's first append into a shared,
        partly filled block triggers copy-on-write.
        """
        parent = self._seq(parent_id, action="fork")
        if child_id in self._seqs:
            raise AllocatorError(f"cannot fork into sequence {child_id!r}: it is already allocated")
        n = parent.num_tokens if num_tokens is None else num_tokens
        if not 0 <= n <= parent.num_tokens:
            raise AllocatorError(f"fork prefix must be 0..{parent.num_tokens} tokens of sequence {parent_id!r}; "
                                 f"got {n}")
        shared = parent.blocks[: self.blocks_needed(n)]
        for block in shared:
            self._refs[block] += 1
        self._seqs[child_id] = _Seq(list(shared), n)
        self._freed.discard(child_id)
        return list(shared)

    def free(self, seq_id: Hashable) -> None:
        """Release a sequence; blocks no other sequence shares go back to the pool."""
        seq = self._seq(seq_id, action="free")
        for block in seq.blocks:
            self._refs[block] -= 1
            if self._refs[block] == 0:
                self._free.append(block)
        del self._seqs[seq_id]
        self._freed.add(seq_id)

    def block_table(self, seq_ids: Sequence[Hashable], width: int | None = None, pad: int = PAD_BLOCK,
                    device: str | torch.device = "cpu") -> torch.Tensor:
        """int32 [len(seq_ids), width]: row i lists the blocks of seq_ids[i], then ``pad``.

        ``width`` defaults to the longest row; a width too small for some sequence is an error.
        """
        import torch

        rows = [self._seq(s).blocks for s in seq_ids]
        longest = max((len(r) for r in rows), default=0)
        width = longest if width is None else width
        for s, r in zip(seq_ids, rows, strict=True):
            if len(r) > width:
                seq = self._seqs[s]
                raise BlockTableTooShort(f"block table has {width} columns but sequence {s!r} needs {len(r)} blocks "
                                         f"of {self.block_size} for {seq.num_tokens} tokens")
        table = torch.full((len(rows), width), pad, dtype=torch.int32)
        for i, r in enumerate(rows):
            table[i, : len(r)] = torch.tensor(r, dtype=torch.int32)
        return table.to(device)

    # ---- internals --------------------------------------------------------------------------
    def _seq(self, seq_id: Hashable, action: str = "use") -> _Seq:
        seq = self._seqs.get(seq_id)
        if seq is None:
            state = "was freed" if seq_id in self._freed else "was never allocated"
            raise AllocatorError(f"cannot {action} sequence {seq_id!r}: it {state}")
        return seq

    def _take(self, count: int, what: str) -> list[int]:
        if count > len(self._free):
            raise OutOfBlocks(f"out of blocks: {what} needs {count} new blocks of {self.block_size} tokens but only "
                              f"{len(self._free)} of {self.num_blocks} are free")
        got = [self._free.pop() for _ in range(count)]
        for block in got:
            self._refs[block] = 1
        return got

"""Paged KV-cache block manager with prefix caching, shaped like vLLM v1's `BlockPool` / `KVCacheManager`.

Pure logic (no clocks, no network). Prompt and output tokens live in blocks of `block_size`; every *full* block has
a chained hash (parent hash + the block's token ids + extra keys such as the model or LoRA name and cache salt), so
two requests sharing a prefix share its blocks. Blocks are reference-counted; a block whose count drops to zero
goes to the back of the free queue but keeps its hash, so it can still be hit until it is evicted from the front
(LRU). A request's blocks are freed tail first, so its last blocks are evicted before its first ones, as in vLLM.

Every change to the set of cached hashes is recorded as a KV event (BlockStored / BlockRemoved /
AllBlocksCleared) for the publisher to drain with `take_events()`.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import xxhash

from inferplane.sim.kvevents import AllBlocksCleared, BlockRemoved, BlockStored, KVEvent

ROOT_HASH = 0
"""The parent of a sequence's first block when the caller gives none."""


def _extra_bytes(extra: str | bytes | None) -> bytes:
    if extra is None:
        return b""
    return extra.encode() if isinstance(extra, str) else extra


def block_hashes(
    tokens: Sequence[int], block_size: int, parent: int | None = None, extra: str | bytes | None = None
) -> list[int]:
    """Chained 64-bit hashes of the full blocks of `tokens` (the partial tail block has none).

    hash_i = xxh64(parent_{i-1} as 8 bytes little-endian ‖ len(extra) ‖ extra ‖ block tokens as uint32 LE
    (uint64 if any id does not fit)), with parent_{-1} = `parent` or ROOT_HASH. `extra` carries the keys that
    separate caches: the simulator passes the LoRA name, else the served model name, plus the request's
    cache_salt (see `cache_extra`). The endpoint picker can call this with the same arguments to predict the
    simulator's block hashes.
    """
    n_full = len(tokens) // block_size
    if n_full == 0:
        return []
    try:
        data = array("I", tokens[: n_full * block_size]).tobytes()
        width = 4
    except OverflowError:
        data = array("Q", tokens[: n_full * block_size]).tobytes()
        width = 8
    prefix = _extra_bytes(extra)
    prefix = len(prefix).to_bytes(4, "little") + prefix
    step = block_size * width
    h = ROOT_HASH if parent is None else parent
    out = []
    digest = xxhash.xxh64_intdigest
    for start in range(0, n_full * step, step):
        h = digest(h.to_bytes(8, "little") + prefix + data[start : start + step])
        out.append(h)
    return out


def cache_extra(model: str, cache_salt: str | None = None) -> str:
    """The `extra` key the simulator hashes with: served model (or LoRA) name, and the cache salt if any."""
    return model if not cache_salt else f"{model}\x00{cache_salt}"


@dataclass(slots=True)
class BlockTable:
    """The blocks one request holds, in token order; `num_hashed` of them are registered in the cache."""

    block_ids: list[int] = field(default_factory=list)
    num_hashed: int = 0


class BlockManager:
    """Block state lives in flat arrays, not one object per block: `--replicas 16` of a 2B model on an H200 is
    7 million blocks, and an object plus a queue entry per block would cost gigabytes. Blocks never used yet are
    a counter (`_next_fresh`), handed out before any freed block, exactly as vLLM's initial free queue is."""

    def __init__(
        self, num_blocks: int, block_size: int, enable_caching: bool = True, record_events: bool = True
    ) -> None:
        if num_blocks < 1 or block_size < 1:
            raise ValueError("num_blocks and block_size must be positive")
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.enable_caching = enable_caching
        self.record_events = record_events
        self._refs = array("i", bytes(4 * num_blocks))
        self._hash_of: dict[int, int] = {}  # block id → its registered hash
        self._next_fresh = 0
        self._lru: OrderedDict[int, None] = OrderedDict()  # freed blocks, least recently freed first
        self._cached: dict[int, int] = {}  # block hash → block id
        self._events: list[KVEvent] = []
        self._removed: list[int] = []

    # --- queries -------------------------------------------------------------------------------------------
    @property
    def num_free(self) -> int:
        return self.num_blocks - self._next_fresh + len(self._lru)

    @property
    def usage(self) -> float:
        """Fraction of blocks held by requests (cached-but-free blocks count as free, as in vLLM)."""
        return 1.0 - self.num_free / self.num_blocks

    def ref_count(self, block_id: int) -> int:
        return self._refs[block_id]

    def block_hash(self, block_id: int) -> int | None:
        return self._hash_of.get(block_id)

    def is_cached(self, block_hash: int) -> bool:
        return block_hash in self._cached

    def cached_hashes(self) -> set[int]:
        return set(self._cached)

    def blocks_needed(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    def longest_prefix(self, hashes: Sequence[int]) -> int:
        """How many leading blocks of `hashes` are cached."""
        if not self.enable_caching:
            return 0
        n = 0
        for h in hashes:
            if h not in self._cached:
                break
            n += 1
        return n

    def free_excluding(self, hashes: Sequence[int]) -> int:
        """Free blocks left once the cached blocks for `hashes` are taken out of the free queue."""
        in_free = sum(1 for h in hashes if self._refs[self._cached[h]] == 0)
        return self.num_free - in_free

    # --- mutations -----------------------------------------------------------------------------------------
    def acquire_cached(self, table: BlockTable, hashes: Sequence[int]) -> None:
        """Add the cached blocks for `hashes` (a hit found by longest_prefix) to an empty table."""
        refs = self._refs
        for h in hashes:
            block_id = self._cached[h]
            if refs[block_id] == 0:
                del self._lru[block_id]
            refs[block_id] += 1
            table.block_ids.append(block_id)
        table.num_hashed = len(table.block_ids)

    def allocate(self, table: BlockTable, num_tokens: int) -> bool:
        """Grow the table to hold `num_tokens` tokens; False (and no change) when not enough blocks are free."""
        need = self.blocks_needed(num_tokens) - len(table.block_ids)
        if need <= 0:
            return True
        if need > self.num_free:
            return False
        refs = self._refs
        for _ in range(need):
            if self._next_fresh < self.num_blocks:
                block_id = self._next_fresh
                self._next_fresh += 1
            else:
                block_id, _ = self._lru.popitem(last=False)
                if block_id in self._hash_of:
                    self._evict(block_id)
            refs[block_id] = 1
            table.block_ids.append(block_id)
        return True

    def commit(
        self,
        table: BlockTable,
        hashes: Sequence[int],
        num_full: int,
        tokens: Sequence[int],
        lora_name: str | None = None,
    ) -> None:
        """Register the table's first `num_full` blocks that are not yet registered (`hashes`: the chained hashes
        of the sequence's full blocks; only the first `num_full` are computed)."""
        upto = min(num_full, len(hashes), len(table.block_ids))
        if upto <= table.num_hashed:
            return
        if not self.enable_caching:
            table.num_hashed = upto
            return
        stored: list[int] = []
        stored_tokens: list[int] = []
        bs = self.block_size
        for i in range(table.num_hashed, upto):
            h = hashes[i]
            if h in self._cached:  # an identical block is already cached: keep this one anonymous
                if stored:
                    self._flush_stored(stored, stored_tokens, hashes, i - len(stored), lora_name)
                    stored, stored_tokens = [], []
                continue
            block_id = table.block_ids[i]
            self._hash_of[block_id] = h
            self._cached[h] = block_id
            stored.append(h)
            stored_tokens.extend(tokens[i * bs : (i + 1) * bs])
        if stored:
            self._flush_stored(stored, stored_tokens, hashes, upto - len(stored), lora_name)
        table.num_hashed = upto

    def _flush_stored(
        self, stored: list[int], tokens: list[int], hashes: Sequence[int], first: int, lora_name: str | None
    ) -> None:
        if not self.record_events:
            return
        self._flush_removed()
        parent = hashes[first - 1] if first > 0 else None
        self._events.append(BlockStored(stored, parent, tokens, self.block_size, lora_name=lora_name))

    def free(self, table: BlockTable) -> None:
        """Release a request's blocks, tail first, so the LRU evicts its last blocks before its first."""
        refs = self._refs
        for block_id in reversed(table.block_ids):
            refs[block_id] -= 1
            if refs[block_id] == 0:
                self._lru[block_id] = None
        table.block_ids.clear()
        table.num_hashed = 0

    def reset_prefix_cache(self) -> bool:
        """Forget every cached hash (vLLM's reset_prefix_cache / sleep); refused while blocks are in use."""
        if self.num_free != self.num_blocks:
            return False
        self._hash_of.clear()
        self._cached.clear()
        self._removed.clear()
        if self.record_events:
            self._events.append(AllBlocksCleared())
        return True

    def _evict(self, block_id: int) -> None:
        h = self._hash_of.pop(block_id)
        if self._cached.get(h) == block_id:
            del self._cached[h]
            if self.record_events:
                self._removed.append(h)

    def _flush_removed(self) -> None:
        if self._removed:
            self._events.append(BlockRemoved(self._removed))
            self._removed = []

    def take_events(self) -> list[KVEvent]:
        """Drain the events recorded since the last call, in the order the cache changed."""
        self._flush_removed()
        events, self._events = self._events, []
        return events


def num_gpu_blocks(
    *,
    memory_bytes: float,
    gpu_memory_utilization: float,
    weight_bytes: float,
    layers: int,
    kv_heads: int,
    head_dim: int,
    kv_dtype_bytes: int,
    block_size: int,
    tensor_parallel_size: int = 1,
    activation_reserve_bytes: float = 0.0,
) -> int:
    """Blocks per rank: (memory × utilization − weights/TP − activations) / bytes per block on one rank.

    With tensor parallelism each rank holds 1/TP of the weights and of the KV heads (at least one head: vLLM
    replicates KV heads when there are fewer than ranks), so every rank has the same number of blocks.
    """
    tp = max(1, tensor_parallel_size)
    heads_per_rank = max(1, kv_heads // tp)
    bytes_per_block = 2 * layers * heads_per_rank * head_dim * kv_dtype_bytes * block_size
    available = memory_bytes * gpu_memory_utilization - weight_bytes / tp - activation_reserve_bytes
    return max(0, int(available // bytes_per_block))

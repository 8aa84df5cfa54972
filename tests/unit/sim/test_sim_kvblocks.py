"""The KV block manager: chained hashes, prefix reuse, refcounts, LRU eviction, and the events it records."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.sim.kvblocks import BlockManager, BlockTable, block_hashes, cache_extra, num_gpu_blocks
from inferplane.sim.kvevents import AllBlocksCleared, BlockRemoved, BlockStored


def test_hashes_are_chained_and_only_for_full_blocks() -> None:
    a = block_hashes(list(range(40)), 16)
    assert len(a) == 2
    b = block_hashes(list(range(32)) + [999] * 8, 16)
    assert a == b  # the partial tail block has no hash
    c = block_hashes([7, *list(range(1, 40))], 16)
    assert c[0] != a[0]
    assert c[1] != a[1]
    assert block_hashes(list(range(32)), 16, extra="lora-a") != a
    assert block_hashes(list(range(16, 32)), 16, parent=a[0]) == a[1:]
    assert cache_extra("m", "salt") != cache_extra("m")


@given(st.lists(st.integers(0, 2**32 - 1), max_size=200), st.lists(st.integers(0, 2**32 - 1), max_size=60))
def test_shared_prefix_shares_hashes(prefix: list[int], tail: list[int]) -> None:
    bs = 8
    full = len(prefix) // bs
    assert block_hashes(prefix + tail, bs)[:full] == block_hashes(prefix, bs)


def test_big_token_ids_hash() -> None:
    assert len(block_hashes([2**40] * 16, 16)) == 1


def _fill(mgr: BlockManager, tokens: list[int]) -> tuple[BlockTable, list[int]]:
    hashes = block_hashes(tokens, mgr.block_size)
    table = BlockTable()
    hits = mgr.longest_prefix(hashes)
    mgr.acquire_cached(table, hashes[:hits])
    assert mgr.allocate(table, len(tokens))
    mgr.commit(table, hashes, len(tokens) // mgr.block_size, tokens)
    return table, hashes


def test_prefix_reuse_refcounts_and_lru_eviction() -> None:
    mgr = BlockManager(num_blocks=6, block_size=4)
    a = list(range(12))  # 3 full blocks
    ta, ha = _fill(mgr, a)
    ev = mgr.take_events()
    assert ev == [BlockStored(ha, None, a, 4)]
    tb, hb = _fill(mgr, [*a[:8], 100, 101, 102, 103])
    assert tb.block_ids[:2] == ta.block_ids[:2]  # shared prefix blocks
    assert mgr.ref_count(ta.block_ids[0]) == 2
    assert mgr.usage == pytest.approx(4 / 6)
    mgr.free(ta)
    mgr.free(tb)
    assert mgr.usage == 0.0
    assert all(mgr.is_cached(h) for h in ha)  # freed blocks stay cached
    mgr.take_events()
    # a 6-block newcomer evicts everything, LRU first; the events name each evicted hash once
    _fill(mgr, list(range(1000, 1024)))
    events = mgr.take_events()
    removed = [h for e in events if isinstance(e, BlockRemoved) for h in e.block_hashes]
    assert sorted(removed) == sorted(set(ha) | set(hb))  # every cached hash, each named once
    assert not any(mgr.is_cached(h) for h in ha)
    assert isinstance(events[-1], BlockStored)


def test_allocation_fails_without_change_when_full() -> None:
    mgr = BlockManager(num_blocks=2, block_size=4)
    t = BlockTable()
    assert not mgr.allocate(t, 9)
    assert t.block_ids == []
    assert mgr.num_free == 2


def test_reset_prefix_cache() -> None:
    mgr = BlockManager(num_blocks=4, block_size=4)
    t, h = _fill(mgr, list(range(8)))
    assert not mgr.reset_prefix_cache()  # blocks in use
    mgr.free(t)
    mgr.take_events()
    assert mgr.reset_prefix_cache()
    assert mgr.take_events() == [AllBlocksCleared()]
    assert mgr.longest_prefix(h) == 0


def test_capacity_formula_matches_hand_arithmetic() -> None:
    # 80 GiB x 0.9 - 16 GB weights, 2 x 32 layers x 8 heads x 128 x 2 bytes x 16 tokens = 2 MiB per block
    blocks = num_gpu_blocks(
        memory_bytes=80 * 2**30,
        gpu_memory_utilization=0.9,
        weight_bytes=16e9,
        layers=32,
        kv_heads=8,
        head_dim=128,
        kv_dtype_bytes=2,
        block_size=16,
    )
    assert blocks == int((80 * 2**30 * 0.9 - 16e9) // (2 * 2**20))
    tp2 = num_gpu_blocks(
        memory_bytes=80 * 2**30,
        gpu_memory_utilization=0.9,
        weight_bytes=16e9,
        layers=32,
        kv_heads=8,
        head_dim=128,
        kv_dtype_bytes=2,
        block_size=16,
        tensor_parallel_size=2,
    )
    assert tp2 == int((80 * 2**30 * 0.9 - 8e9) // (2**20))


ops = st.lists(
    st.tuples(st.sampled_from(["add", "free"]), st.integers(0, 5), st.integers(1, 40)), min_size=1, max_size=60
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_invariants_under_random_operations(script: list[tuple[str, int, int]]) -> None:
    """Refcounts equal table membership; free blocks have refcount 0; the cache index points at blocks holding
    that hash; the event stream replays to exactly the cached set."""
    mgr = BlockManager(num_blocks=12, block_size=4)
    live: dict[int, BlockTable] = {}
    replay: set[int] = set()
    for op, key, length in script:
        if op == "add" and key not in live:
            tokens = [(key * 7 + i) % 5 for i in range(length)]  # few distinct values: lots of sharing
            hashes = block_hashes(tokens, 4)
            table = BlockTable()
            hits = mgr.longest_prefix(hashes)
            needed = mgr.blocks_needed(length) - hits
            if needed > mgr.free_excluding(hashes[:hits]):
                continue
            mgr.acquire_cached(table, hashes[:hits])
            assert mgr.allocate(table, length)
            mgr.commit(table, hashes, length // 4, tokens)
            live[key] = table
        elif op == "free" and key in live:
            mgr.free(live.pop(key))
        for e in mgr.take_events():
            if isinstance(e, BlockStored):
                replay |= set(e.block_hashes)
            elif isinstance(e, BlockRemoved):
                assert set(e.block_hashes) <= replay
                replay -= set(e.block_hashes)
        refs = [0] * mgr.num_blocks
        for t in live.values():
            for b in t.block_ids:
                refs[b] += 1
        assert refs == [mgr.ref_count(b) for b in range(mgr.num_blocks)]
        assert mgr.num_free == sum(1 for r in refs if r == 0)
        assert replay == mgr.cached_hashes()
        for h in mgr.cached_hashes():
            assert any(mgr.block_hash(b) == h for b in range(mgr.num_blocks))

"""The precise prefix cache: a KV-event index fed by the simulator's own block manager, longest consecutive prefix,
min–max normalisation."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.epp.scheduling.plugins.precise import KVBlockIndex
from inferplane.sim.kvblocks import BlockManager, BlockTable, block_hashes, cache_extra
from inferplane.sim.kvevents import AllBlocksCleared, BlockRemoved, BlockStored
from inferplane.tokenizer import get_tokenizer

from .helpers import endpoint, one_scorer, raw_scores, request, scheduler

BS = 4


def serve(bm: BlockManager, tokens: list[int], model: str = "m") -> BlockTable:
    """Run one request through the simulator's block manager (prefix hit, allocate, commit, free)."""
    hashes = block_hashes(tokens, bm.block_size, extra=cache_extra(model))
    table = BlockTable()
    hit = bm.longest_prefix(hashes)
    bm.acquire_cached(table, hashes[:hit])
    assert bm.allocate(table, len(tokens))
    bm.commit(table, hashes, len(tokens) // bm.block_size, tokens)
    bm.free(table)
    return table


def test_index_follows_the_simulator_block_manager() -> None:
    bm = BlockManager(num_blocks=6, block_size=BS)
    idx = KVBlockIndex(block_size=BS)
    a = list(range(100, 116))  # 4 blocks
    serve(bm, a)
    for ev in bm.take_events():
        idx.apply("10.0.0.1:8000", ev, "m")
    keys = idx.request_keys(a, "m")
    assert idx.longest_prefix_scores(keys) == {"10.0.0.1:8000": 4.0}
    # Against the simulator, request keys equal its engine keys.
    assert set(keys) == bm.cached_hashes()
    # A second, distinct 4-block prompt evicts two of the first prompt's blocks (6 blocks in all).
    serve(bm, list(range(500, 516)))
    for ev in bm.take_events():
        idx.apply("10.0.0.1:8000", ev, "m")
    assert set(idx.entries) == bm.cached_hashes()
    assert idx.stats["unknown_removed"] == 0
    assert bm.reset_prefix_cache()
    for ev in bm.take_events():
        idx.apply("10.0.0.1:8000", ev, "m")
    assert idx.entries == {}


def test_engine_keys_need_not_match_request_keys() -> None:
    """Events from a publisher with its own hash (vLLM with another algorithm or seed) still index by tokens."""
    idx = KVBlockIndex(block_size=BS)
    toks = list(range(12))
    idx.apply("p", BlockStored([11, 22], None, toks[:8], BS), "m")
    idx.apply("p", BlockStored([33], 22, toks[8:12], BS), "m")
    keys = idx.request_keys(toks, "m")
    assert idx.longest_prefix_scores(keys) == {"p": 3.0}
    idx.apply("p", BlockRemoved([22]), "m")
    assert idx.longest_prefix_scores(keys) == {"p": 1.0}  # a break in the chain ends the run
    idx.apply("p", BlockStored([44], 999, toks[:4], BS), "m")  # unknown parent: not indexed, counted
    assert idx.stats["unknown_parent"] == 1
    idx.apply("p", BlockStored([55], None, toks[:8], 8), "m")  # another block size: counted
    assert idx.stats["block_size_mismatch"] == 1
    idx.apply("p", AllBlocksCleared(), "m")
    assert idx.longest_prefix_scores(keys) == {}


def test_tiers_and_intersection() -> None:
    idx = KVBlockIndex(block_size=BS)
    toks = list(range(12))
    idx.apply("gpu-pod", BlockStored([1, 2, 3], None, toks, BS), "m")
    idx.apply("cpu-pod", BlockStored([7, 8], None, toks[:8], BS, medium="CPU"), "m")
    idx.apply("late-pod", BlockStored([9, 10], None, toks[4:12], BS), "m")  # not from the start: no run
    keys = idx.request_keys(toks, "m")
    assert idx.longest_prefix_scores(keys) == {"gpu-pod": 3.0, "cpu-pod": 1.6}
    # Model separation: a LoRA's blocks do not match the base model.
    idx.apply("lora-pod", BlockStored([5], None, toks[:4], BS, lora_name="adapter"), "m")
    assert "lora-pod" not in idx.longest_prefix_scores(keys)
    assert idx.longest_prefix_scores(idx.request_keys(toks, "adapter")) == {"lora-pod": 1.0}


@settings(max_examples=40, deadline=None)
@given(
    prompts=st.lists(st.lists(st.integers(0, 6), min_size=0, max_size=24), min_size=1, max_size=6),
    query=st.lists(st.integers(0, 6), min_size=0, max_size=24),
)
def test_match_on_block_i_implies_earlier_blocks(prompts: list[list[int]], query: list[int]) -> None:
    bm = BlockManager(num_blocks=64, block_size=BS)
    idx = KVBlockIndex(block_size=BS)
    for p in prompts:
        if p:
            serve(bm, p)
    for ev in bm.take_events():
        idx.apply("p", ev, "m")
    keys = idx.request_keys(query, "m")
    k = int(idx.longest_prefix_scores(keys).get("p", 0))
    assert k == bm.longest_prefix(keys)
    assert all(bm.is_cached(h) for h in keys[:k])


@dataclass
class _Batch:
    model: str
    events: list


def test_scorer_tokenises_and_normalises() -> None:
    cfg = one_scorer("precise-prefix-cache-scorer", {"tokenProcessorConfig": {"blockSize": BS}})
    s = scheduler(cfg)
    scorer = s.plugins["precise-prefix-cache-scorer"]
    eps = [endpoint(1), endpoint(2), endpoint(3)]
    prompt = "the same long system prompt shared by many requests " * 4
    tokens = get_tokenizer().encode(prompt)
    assert raw_scores(s, request(prompt), eps) == [0.0, 0.0, 0.0]
    bm = BlockManager(num_blocks=1000, block_size=BS)
    serve(bm, tokens)
    scorer.on_kv_events(eps[1].hostport, _Batch("m", bm.take_events()))
    half = tokens[: len(tokens) // 2]
    bm3 = BlockManager(num_blocks=1000, block_size=BS)
    serve(bm3, half)
    scorer.on_kv_events(eps[2].hostport, _Batch("m", bm3.take_events()))
    got = raw_scores(s, request(prompt), eps)
    assert got[0] == 0.0
    assert got[1] == 1.0
    assert 0.4 < got[2] < 0.6
    assert s.schedule(request(prompt), eps).primary.target_endpoints[0] is eps[1]


def test_v04_and_later_parameter_locations() -> None:
    v04 = one_scorer("precise-prefix-cache-scorer", {"indexerConfig": {"tokenProcessorConfig": {"blockSize": 64}}})
    later = one_scorer("precise-prefix-cache-scorer", {"tokenProcessorConfig": {"blockSize": 32, "hashSeed": "42"}})
    assert scheduler(v04).plugins["precise-prefix-cache-scorer"].index.block_size == 64
    s = scheduler(later)
    assert s.plugins["precise-prefix-cache-scorer"].index.block_size == 32
    assert s.plugins["precise-prefix-cache-scorer"].kv_events_config.zmq_endpoint == "tcp://*:5557"


def test_chat_text_matches_the_simulator_template() -> None:
    from inferplane.epp.scheduling.plugins.precise import model_input_text
    from inferplane.sim.protocol import chat_prompt

    r = request("what is in the cache?", chat=True)
    assert r.body is not None
    assert model_input_text(r) == chat_prompt(r.body.raw)[0]


def test_bare_ip_topics_match_the_endpoint() -> None:
    s = scheduler(one_scorer("precise-prefix-cache-scorer", {"tokenProcessorConfig": {"blockSize": BS}}))
    scorer = s.plugins["precise-prefix-cache-scorer"]
    eps = [endpoint(1), endpoint(2)]
    prompt = "older simulators publish kv@<ip>@<model> topics " * 3
    bm = BlockManager(num_blocks=1000, block_size=BS)
    serve(bm, get_tokenizer().encode(prompt))
    scorer.on_kv_events("10.0.0.2", _Batch("m", bm.take_events()))
    assert raw_scores(s, request(prompt), eps) == [0.0, 1.0]

"""The approximate prefix cache: upstream's character-block xxhash64 chain, the LRU index, the scorer."""

from __future__ import annotations

import struct
from collections import OrderedDict

import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.epp.scheduling.plugins.prefix import ApproxPrefixCacheProducer, prefix_hashes, user_input_bytes
from inferplane.epp.scheduling.plugins.prefix_index import ApproxPrefixIndex

from .helpers import endpoint, one_scorer, raw_scores, request, scheduler


def reference_chain(data: bytes, seed: bytes, block: int, max_blocks: int) -> list[int]:
    """reference/epp.md §3.2 written out step by step, independently of the implementation's loop."""
    if len(data) < block:
        return []
    data = data[: max_blocks * block]
    prev = xxhash.xxh64(seed).intdigest()
    out = []
    blocks = [data[i : i + block] for i in range(0, len(data), block)]
    for b in blocks:
        prev = xxhash.xxh64(b + struct.pack("<Q", prev)).intdigest()
        out.append(prev)
    return out


def test_chain_matches_the_documented_steps() -> None:
    data = b"abcdefgh" * 20  # 160 bytes: two full 64-byte blocks and a 32-byte tail
    got = prefix_hashes(data, b"model", 64, 256)
    assert len(got) == 3  # the trailing partial block is hashed too
    assert got == reference_chain(data, b"model", 64, 256)


def test_short_input_has_no_hashes_and_long_input_is_truncated() -> None:
    assert prefix_hashes(b"x" * 63, b"m", 64, 256) == []
    assert len(prefix_hashes(b"x" * 64 * 300, b"m", 64, 256)) == 256


def test_model_and_salt_seed_separate_chains() -> None:
    data = b"same prompt text " * 10
    assert prefix_hashes(data, b"model-a", 64, 256)[0] != prefix_hashes(data, b"model-b", 64, 256)[0]
    r1 = request("p" * 200)
    r2 = request("p" * 200)
    assert r2.body is not None
    r2.body.raw["cache_salt"] = "tenant-2"
    s = scheduler(one_scorer("prefix-cache-scorer"))
    eps = [endpoint(1), endpoint(2)]
    res = s.schedule(r1, eps)
    s.pre_request(r1, res)
    assert max(raw_scores(s, request("p" * 200), eps)) == 1.0
    assert max(raw_scores(s, r2, eps)) == 0.0


@settings(max_examples=60, deadline=None)
@given(
    a=st.binary(min_size=0, max_size=600),
    b=st.binary(min_size=1, max_size=300),
    block=st.integers(1, 80),
)
def test_chain_is_prefix_stable(a: bytes, b: bytes, block: int) -> None:
    """The hashes of a text's full blocks are a prefix of the hashes of any continuation."""
    full = len(a) // block
    ha = prefix_hashes(a, b"m", block, 10_000)[:full]
    hab = prefix_hashes(a + b, b"m", block, 10_000)
    assert hab[:full] == ha
    assert hab == reference_chain(a + b, b"m", block, 10_000)


@settings(max_examples=40, deadline=None)
@given(
    seqs=st.lists(st.lists(st.integers(0, 30), min_size=1, max_size=12), min_size=1, max_size=25),
    cap=st.integers(1, 20),
)
def test_index_lru_capacity_and_consistency(seqs: list[list[int]], cap: int) -> None:
    idx = ApproxPrefixIndex(default_capacity=cap)
    pods = ["a", "b", "c"]
    for i, seq in enumerate(seqs):
        idx.add(pods[i % 3], seq)
    for pod in pods:
        assert idx.pod_size(pod) <= cap
    # hash → pods is exactly the inverse of the per-pod LRUs.
    inverse_sets: dict[int, set[str]] = {}
    for pod in idx.pods():
        for h in idx.pod_hashes(pod):
            inverse_sets.setdefault(h, set()).add(pod)
    inverse = {h: frozenset(v) for h, v in inverse_sets.items()}
    assert inverse == idx.hash_to_pods
    # Endpoint sets are shared: one object per distinct content.
    for pods_of_hash in idx.hash_to_pods.values():
        assert pods_of_hash is idx._sets[pods_of_hash]
    if len(seqs) > 1:
        idx.remove_pod(pods[0])
        assert all(pods[0] not in v for v in idx.hash_to_pods.values())
    # Same contents, in the same order, as a one-hash-at-a-time LRU.
    model: dict[str, OrderedDict[int, None]] = {p: OrderedDict() for p in pods}
    for i, seq in enumerate(seqs):
        lru = model[pods[i % 3]]
        for h in seq:
            lru.pop(h, None)
            lru[h] = None
            while len(lru) > cap:
                lru.popitem(last=False)
    for pod in idx.pods():
        assert idx.pod_hashes(pod) == list(model[pod])


@settings(max_examples=40, deadline=None)
@given(
    prompts=st.lists(st.text(alphabet="abc ", min_size=0, max_size=400), min_size=1, max_size=8),
    query=st.text(alphabet="abc ", min_size=0, max_size=400),
)
def test_match_on_block_i_implies_blocks_before_match(prompts: list[str], query: str) -> None:
    """A pod credited with k blocks holds the query's blocks 0..k−1 (a single pod, so counts are consecutive)."""
    idx = ApproxPrefixIndex(default_capacity=10_000)
    for p in prompts:
        idx.add("pod", prefix_hashes(p.encode(), b"m", 16, 256))
    q = prefix_hashes(query.encode(), b"m", 16, 256)
    k = idx.match(q).get("pod", 0)
    assert all(idx.holds("pod", h) for h in q[:k])
    if k < len(q):
        assert not idx.holds("pod", q[k])


def test_match_stops_at_first_unheld_hash() -> None:
    idx = ApproxPrefixIndex(100)
    idx.add("a", [1, 2, 3])
    idx.add("b", [1, 2])
    idx.add("c", [5])
    assert idx.match([1, 2, 3, 4]) == {"a": 3, "b": 2}
    assert idx.match([9, 1, 2]) == {}


def test_eviction_removes_pod_from_hash_set() -> None:
    idx = ApproxPrefixIndex(2)
    idx.add("a", [1, 2])
    idx.add("a", [3])
    assert idx.hash_to_pods.get(1) is None
    assert idx.hash_to_pods[3] == {"a"}
    idx.remove_pod("a")
    assert idx.size() == 0


def test_scorer_ratio_and_learning_for_the_chosen_endpoint() -> None:
    s = scheduler(one_scorer("prefix-cache-scorer"))
    eps = [endpoint(1), endpoint(2), endpoint(3)]
    prompt = "The quick brown fox jumps over the lazy dog. " * 20  # 900 chars → 15 blocks of 64
    r = request(prompt)
    assert raw_scores(s, r, eps) == [0.0, 0.0, 0.0]
    res = s.schedule(r, eps)
    s.pre_request(r, res)
    chosen = res.primary.target_endpoints[0]
    # Same prompt: full match on the chosen endpoint only.
    got = raw_scores(s, request(prompt), eps)
    assert got[eps.index(chosen)] == 1.0
    assert sorted(got)[:2] == [0.0, 0.0]
    # The same prefix continued: 14 of 15+ blocks match (the tail block differs).
    longer = prompt + "and then something else entirely " * 5
    got = raw_scores(s, request(longer), eps)
    n_blocks = -(-len(longer) // 64)
    assert got[eps.index(chosen)] == 14 / n_blocks
    # Requests sharing the prefix stick to the same endpoint.
    for i in range(5):
        rr = request(prompt + f" question {i}")
        assert s.schedule(rr, eps).primary.target_endpoints[0] is chosen


def test_autotune_takes_block_size_and_capacity_from_metrics() -> None:
    s = scheduler(one_scorer("prefix-cache-scorer"))
    producer = s.handle.first(ApproxPrefixCacheProducer)
    eps = [endpoint(1, cache_block_size=4, cache_num_gpu_blocks=3), endpoint(2, cache_block_size=4)]
    assert producer.block_chars(eps) == 16
    r = request("y" * 160)  # 10 blocks of 16 characters
    res = s.schedule(r, [eps[0]])
    s.pre_request(r, res)
    assert producer.index.pod_size(eps[0].hostport) == 0  # the update waits for flush (or the next PrepareData)
    s.flush_deferred()
    assert producer.index.pod_size(eps[0].hostport) == 3  # capacity num_gpu_blocks
    off = scheduler(one_scorer("prefix-cache-scorer", {"autoTune": False, "blockSizeTokens": 8}))
    assert off.handle.first(ApproxPrefixCacheProducer).block_chars(eps) == 32


def test_hash_block_size_is_characters_and_blocksize_alone_is_rejected() -> None:
    import pytest

    from inferplane.errors import ConfigError

    s = scheduler(one_scorer("prefix-cache-scorer", {"hashBlockSize": 5, "maxPrefixBlocksToMatch": 256}))
    assert s.handle.first(ApproxPrefixCacheProducer).block_chars([endpoint(1)]) == 5
    with pytest.raises(ConfigError, match="blockSizeTokens"):
        scheduler(one_scorer("prefix-cache-scorer", {"blockSize": 64}))


def test_user_input_bytes_per_api() -> None:
    assert user_input_bytes(request("plain prompt").body) == b"plain prompt"
    chat = request("hi", chat=True).body
    assert user_input_bytes(chat) == b'[{"role":"user","content":"hi"}]'


def test_intern_table_is_rebuilt_from_live_sets() -> None:
    from inferplane.epp.scheduling.plugins import prefix_index

    idx = ApproxPrefixIndex(1)
    # Every pod holds one hash at a time: sets come and go, the table must not grow without bound.
    for i in range(3 * prefix_index._INTERN_MIN_LIMIT):
        idx.add(f"pod-{i}", [i % 7])
        idx.remove_pod(f"pod-{i - 3}")
    assert len(idx._sets) <= 2 * prefix_index._INTERN_MIN_LIMIT
    for pods_of_hash in idx.hash_to_pods.values():
        assert pods_of_hash is idx._sets[pods_of_hash]

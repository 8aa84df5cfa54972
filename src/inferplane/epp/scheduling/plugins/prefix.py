"""Approximate prefix-cache affinity: `approx-prefix-cache-producer` + `prefix-cache-scorer` (reference/epp.md §3.2).

The producer hashes the request's text in character blocks (xxhash64, chained so that a match on block i implies
blocks 0..i match, seeded with model + cache_salt), matches the chain against an index of what it has routed where,
and after the decision records the chain for the chosen endpoint. No model-server feedback: it learns from its own
routing, optimistically.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import xxhash
from pydantic import Field, model_validator

from inferplane.epp.framework.interfaces import CycleState, RequestHooks, RequestState, Scorer
from inferplane.epp.framework.registry import PluginParams, register
from inferplane.epp.framework.types import Endpoint, LLMRequest, LLMRequestBody, SchedulingResult
from inferplane.epp.scheduling.plugins.prefix_index import ApproxPrefixIndex

AVERAGE_CHARACTERS_PER_TOKEN = 4
PRUNE_INTERVAL_S = 120.0  # inactive endpoints leave the index every 2 minutes, like upstream
STATE_KEY = "prefix-cache-match-info"

_xxh64 = xxhash.xxh64_intdigest


def prefix_hashes(data: bytes, seed: bytes, block_chars: int, max_blocks: int) -> list[int]:
    """The upstream chain: `h0 = xxh64(model + cache_salt)`, `h_i = xxh64(block_i ‖ LE64(h_{i−1}))`.

    Input shorter than one block gives no hashes; input is truncated to `max_blocks` blocks; a trailing partial block
    is hashed like a full one. Blocks are bytes, as in the Go code (the "characters" of the docs are bytes).
    """
    if len(data) < block_chars or block_chars <= 0 or max_blocks <= 0:
        return []
    if len(data) > max_blocks * block_chars:
        data = data[: max_blocks * block_chars]
    h = _xxh64(seed)
    out: list[int] = []
    append = out.append
    # Slicing past the end yields the trailing partial block, so the loop needs no bounds check (measured: the
    # bounds-free loop is ~1.5× faster than one with min()).
    for start in range(0, len(data), block_chars):
        h = _xxh64(data[start : start + block_chars] + h.to_bytes(8, "little"))
        append(h)
    return out


def user_input_bytes(body: LLMRequestBody | None) -> bytes:
    """What upstream hashes (`getUserInputBytes`): the completions prompt, or compact JSON of the chat messages,
    of `[{instructions},{tools},{input}]` for responses, of `input` for embeddings."""
    if body is None:
        return b""
    if body.kind == "completions" and body.prompt is not None:
        return body.prompt.encode()
    raw = body.raw
    if body.kind == "chat":
        value: object = raw.get("messages")
        if value is None and body.messages is not None:
            value = [{"role": m.role, "content": m.content} for m in body.messages]
    elif body.kind == "responses":
        value = [{"instructions": raw.get("instructions")}, {"tools": raw.get("tools")}, {"input": raw.get("input")}]
    elif body.kind == "conversations":
        value = raw.get("items")
    else:
        value = raw.get("input", raw.get("prompt"))
    if value is None:
        return body.prompt_text().encode()
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class PrefixCacheParams(PluginParams):
    auto_tune: bool = Field(default=True, alias="autoTune")
    block_size_tokens: int = Field(default=16, gt=0, alias="blockSizeTokens")
    max_prefix_blocks_to_match: int = Field(default=256, gt=0, alias="maxPrefixBlocksToMatch")
    max_prefix_tokens_to_match: int | None = Field(default=None, alias="maxPrefixTokensToMatch")
    lru_capacity_per_server: int = Field(default=31250, gt=0, alias="lruCapacityPerServer")
    # Deprecated: block size in characters. Upstream rejects it unless blockSizeTokens is also set.
    block_size: int | None = Field(default=None, gt=0, alias="blockSize")
    # llm-d / GIE v1.0 era name of the block size in characters (kvc benchmarking configs use 64; guides 5).
    hash_block_size: int | None = Field(default=None, gt=0, alias="hashBlockSize")

    @model_validator(mode="before")
    @classmethod
    def _deprecated_block_size(cls, data: object) -> object:
        if isinstance(data, dict) and "blockSize" in data and "blockSizeTokens" not in data:
            raise ValueError(
                "blockSize (characters) is deprecated and needs blockSizeTokens; set blockSizeTokens "
                "(tokens, default 16) instead"
            )
        return data

    def fixed_block_chars(self) -> int | None:
        """`hashBlockSize` (characters) applies as given unless `blockSizeTokens` is set too."""
        if self.hash_block_size and "block_size_tokens" not in self.model_fields_set:
            return self.hash_block_size
        return None

    def max_blocks(self, block_tokens: int) -> int:
        if self.max_prefix_tokens_to_match and self.max_prefix_tokens_to_match > 0:
            return max(self.max_prefix_tokens_to_match // block_tokens, 1)
        return self.max_prefix_blocks_to_match


@dataclass(slots=True)
class PrefixMatchInfo:
    """Per request: the chain, how many blocks each endpoint matched, and the block size used (characters)."""

    hashes: list[int]
    matches: Counter[str]
    total_blocks: int
    block_chars: int
    input_len: int


@register("approx-prefix-cache-producer", "producer", PrefixCacheParams)
class ApproxPrefixCacheProducer(RequestHooks):
    params: PrefixCacheParams

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.index = ApproxPrefixIndex(self.params.lru_capacity_per_server)
        self._pending: list[tuple[str, list[int], int | None]] = []
        self._block_chars = (float("-inf"), 0)  # (valid until, value): autotune re-reads metrics once a second
        self._seen: set[str] = set()
        self._next_prune = self.handle.clock() + PRUNE_INTERVAL_S
        # Counters the EPP exports (`prefix_indexer_hit_ratio`, `prefix_indexer_hit_bytes`).
        self.queried_blocks = 0
        self.hit_blocks = 0
        self.hit_bytes = 0

    def block_chars(self, endpoints: list[Endpoint]) -> int:
        p = self.params
        fixed = p.fixed_block_chars()
        if fixed:
            return fixed
        if not p.auto_tune:
            return p.block_size_tokens * AVERAGE_CHARACTERS_PER_TOKEN
        now = self.handle.clock()
        until, value = self._block_chars
        if now < until:
            return value
        tokens = next((e.metrics.cache_block_size for e in endpoints if e.metrics.cache_block_size > 0), 0)
        value = (tokens or p.block_size_tokens) * AVERAGE_CHARACTERS_PER_TOKEN
        self._block_chars = (now + 1.0, value)
        return value

    def prepare_request_data(self, request: LLMRequest, endpoints: list[Endpoint], state: RequestState) -> None:
        if self._pending:
            self.flush()
        data = user_input_bytes(request.body)
        block_chars = self.block_chars(endpoints)
        p = self.params
        block_tokens = max(block_chars // AVERAGE_CHARACTERS_PER_TOKEN, 1)
        salt = request.body.raw.get("cache_salt", "") if request.body is not None else ""
        seed = (request.target_model + (salt if isinstance(salt, str) else "")).encode()
        hashes = prefix_hashes(data, seed, block_chars, p.max_blocks(block_tokens))
        matches = self.index.match(hashes)
        state.data[STATE_KEY] = PrefixMatchInfo(hashes, matches, len(hashes), block_chars, len(data))
        self._prune(endpoints)
        if hashes:
            self.queried_blocks += len(hashes)
            best = max(matches.values(), default=0)
            self.hit_blocks += best
            self.hit_bytes += min(best * block_chars, len(data))

    def pre_request(
        self, request: LLMRequest, result: SchedulingResult, state: RequestState
    ) -> dict[str, str | None] | None:
        info: PrefixMatchInfo | None = state.data.get(STATE_KEY)
        if info is None or not info.hashes:
            return None
        targets = [result.primary.target_endpoints[0]] if result.primary.target_endpoints else []
        prefill = result.profile_results.get("prefill")
        if prefill is not None and prefill.target_endpoints and result.primary_profile_name != "prefill":
            targets.append(prefill.target_endpoints[0])
        auto = self.params.auto_tune
        for e in targets:
            hp = e.hostport
            self._seen.add(hp)
            # Upstream updates the index asynchronously after the decision. Here the update waits in `_pending`
            # until `flush()` (the EPP calls it once the response to Envoy is on its way) or, at the latest, the
            # next PrepareData, so every match still sees every earlier decision.
            self._pending.append((hp, info.hashes, e.metrics.cache_num_gpu_blocks if auto else None))
        return None

    def index_size(self) -> int:
        return self.index.size()

    def flush(self) -> None:
        """Apply the index updates of the decisions made so far."""
        pending = self._pending
        if pending:
            self._pending = []
            add = self.index.add
            for hp, hashes, capacity in pending:
                add(hp, hashes, capacity)

    def _prune(self, endpoints: list[Endpoint]) -> None:
        """Every 2 minutes, forget endpoints that were neither candidates now nor chosen since the last prune."""
        now = self.handle.clock()
        if now < self._next_prune:
            return
        keep = self._seen | {e.hostport for e in endpoints}
        for pod in [p for p in self.index.pods() if p not in keep]:
            self.index.remove_pod(pod)
        self._seen = set()
        self._next_prune = now + PRUNE_INTERVAL_S


@register("prefix-cache-scorer", "scorer", PrefixCacheParams)
class PrefixCacheScorer(Scorer):
    """`matchBlocks / totalBlocks` from the prefix producer's match info; 0 when the request has no blocks.

    Takes the producer's parameters too: when no `approx-prefix-cache-producer` is configured, the builder creates
    one with these parameters (upstream's default-producer rule)."""

    category = "Affinity"
    producer_type = "approx-prefix-cache-producer"

    def score(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[float]:
        info: PrefixMatchInfo | None = cycle["request_state"].data.get(STATE_KEY)
        if info is None or info.total_blocks == 0:
            return [0.0] * len(endpoints)
        m = info.matches
        if not m:
            return [0.0] * len(endpoints)
        total = info.total_blocks
        get = m.get
        return [get(hp, 0) / total for hp in cycle.hostports(endpoints)]

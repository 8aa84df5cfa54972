"""`precise-prefix-cache-scorer`: prefix affinity from the model servers' own KV events (reference/kv-events.md §4–5).

`KVBlockIndex` follows the llm-d kv-cache indexer since Dec 2025: request keys are decoupled from the engine's keys.
On BlockStored the index computes request keys from the event's token ids (chained from the parent block's request
key) and remembers engine key → request key per endpoint, so BlockRemoved resolves through that map. This makes the
index independent of the engine's hash algorithm and `PYTHONHASHSEED`; the request keys are the simulator's
`inferplane.sim.kvblocks.block_hashes` (xxhash64 chain over uint32 token ids with the model or LoRA name as extra
key), so against the simulator they also equal the engine keys.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from inferplane.epp.framework.interfaces import CycleState, RequestHooks, RequestState, Scorer
from inferplane.epp.framework.registry import PluginParams, register
from inferplane.epp.framework.types import Endpoint, LLMRequest
from inferplane.epp.scheduling.plugins.scorers import min_max
from inferplane.sim.kvblocks import block_hashes, cache_extra

TIER_WEIGHTS = {"gpu": 1.0, "cpu": 0.8}
TOKENS_KEY = "prompt-token-ids"


class KVBlockIndex:
    """request key → {endpoint: device tier}, fed by KV events per endpoint. Pure: no clock, no I/O."""

    def __init__(self, block_size: int = 16) -> None:
        self.block_size = block_size
        self.entries: dict[int, dict[str, str]] = {}
        self._engine_to_request: dict[str, dict[Hashable, int]] = {}  # per endpoint
        # Visible counters instead of silent zeros (kv-events.md §6).
        self.stats = {
            "events": 0,
            "block_size_mismatch": 0,
            "unknown_parent": 0,
            "unknown_removed": 0,
            "token_count_mismatch": 0,
            "unknown_event": 0,
        }

    def apply(self, pod: str, event: Any, model: str = "") -> None:
        """Apply one event published by endpoint `pod` (its `ip:port`) for `model` (from the topic).

        Events are matched by type name (BlockStored, BlockRemoved, AllBlocksCleared) so that both the simulator's
        and the subscriber's event classes work; engine block hashes may be u64 or bytes."""
        self.stats["events"] += 1
        kind = type(event).__name__
        if kind == "BlockStored":
            self._stored(pod, event, model)
        elif kind == "BlockRemoved":
            self._removed(pod, event.block_hashes)
        elif kind == "AllBlocksCleared":
            self.clear_pod(pod)
        else:
            self.stats["unknown_event"] += 1

    def _stored(self, pod: str, ev: Any, model: str) -> None:
        if ev.block_size != self.block_size:
            # Keys over different block sizes never match; counted so the mismatch is visible.
            self.stats["block_size_mismatch"] += 1
            return
        e2r = self._engine_to_request.setdefault(pod, {})
        parent: int | None = None
        if ev.parent_block_hash:
            parent = e2r.get(ev.parent_block_hash)
            if parent is None:
                self.stats["unknown_parent"] += 1
                return
        keys = block_hashes(list(ev.token_ids), self.block_size, parent=parent, extra=ev.lora_name or model)
        if len(keys) != len(ev.block_hashes):
            self.stats["token_count_mismatch"] += 1
            return
        tier = (ev.medium or "GPU").lower()
        for engine_key, key in zip(ev.block_hashes, keys, strict=True):
            e2r[engine_key] = key
            entry = self.entries.get(key)
            if entry is None:
                self.entries[key] = {pod: tier}
            else:
                entry[pod] = tier

    def _removed(self, pod: str, engine_keys: Iterable[Hashable]) -> None:
        e2r = self._engine_to_request.get(pod, {})
        for ek in engine_keys:
            key = e2r.pop(ek, None)
            if key is None:
                self.stats["unknown_removed"] += 1
                continue
            entry = self.entries.get(key)
            if entry is not None:
                entry.pop(pod, None)
                if not entry:
                    del self.entries[key]

    def clear_pod(self, pod: str) -> None:
        e2r = self._engine_to_request.pop(pod, {})
        for key in e2r.values():
            entry = self.entries.get(key)
            if entry is not None:
                entry.pop(pod, None)
                if not entry:
                    del self.entries[key]

    def request_keys(self, tokens: list[int], model: str, cache_salt: str | None = None) -> list[int]:
        return block_hashes(tokens, self.block_size, extra=cache_extra(model, cache_salt))

    def longest_prefix_scores(self, keys: list[int]) -> dict[str, float]:
        """Walk the keys in order, keeping the endpoints that hold every key so far; each scores the sum of its tier
        weights over its consecutive run (gpu 1.0, cpu 0.8)."""
        scores: dict[str, float] = {}
        active: set[str] | None = None
        for key in keys:
            entry = self.entries.get(key)
            if not entry:
                break
            pods = set(entry) if active is None else active.intersection(entry)
            if not pods:
                break
            for pod in pods:
                scores[pod] = scores.get(pod, 0.0) + TIER_WEIGHTS.get(entry[pod], 1.0)
            active = pods
        return scores

    def holders(self, key: int) -> set[str]:
        return set(self.entries.get(key, {}))


class _TokenProcessorConfig(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    block_size: int = Field(default=16, gt=0, alias="blockSize")
    # Accepted for compatibility; request keys do not depend on it (see module docstring).
    hash_seed: str = Field(default="", alias="hashSeed")


class _KVEventsConfig(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    zmq_endpoint: str = Field(default="tcp://*:5557", alias="zmqEndpoint")
    topic_filter: str = Field(default="kv@", alias="topicFilter")
    concurrency: int = Field(default=4, gt=0)
    discover_pods: bool = Field(default=False, alias="discoverPods")
    pod_discovery_config: dict[str, Any] = Field(default_factory=dict, alias="podDiscoveryConfig")


class PrecisePrefixParams(PluginParams):
    indexer_config: dict[str, Any] = Field(default_factory=dict, alias="indexerConfig")
    token_processor_config: _TokenProcessorConfig | None = Field(default=None, alias="tokenProcessorConfig")
    kv_events_config: _KVEventsConfig = Field(default_factory=_KVEventsConfig, alias="kvEventsConfig")

    def token_processor(self) -> _TokenProcessorConfig:
        """v0.4 keeps it under indexerConfig, later configs directly under parameters."""
        if self.token_processor_config is not None:
            return self.token_processor_config
        return _TokenProcessorConfig.model_validate(self.indexer_config.get("tokenProcessorConfig") or {})


def model_input_text(request: LLMRequest) -> str:
    """The text the model server tokenises: the prompt, or the chat messages through the simulator's ChatML-like
    template (`<|role|>\ncontent\n` per message, then `<|assistant|>\n`), so request keys match its blocks."""
    body = request.body
    if body is None:
        return ""
    if body.kind == "chat" and body.messages:
        return "".join(f"<|{m.role}|>\n{m.content}\n" for m in body.messages) + "<|assistant|>\n"
    return body.prompt_text()


def request_tokens(request: LLMRequest, state: RequestState, tokenizer: Callable[[str], list[int]]) -> list[int]:
    """The prompt's token ids, tokenised once per request (shared with `token-producer`)."""
    tokens: list[int] | None = state.data.get(TOKENS_KEY)
    if tokens is None:
        text = model_input_text(request)
        tokens = tokenizer(text) if text else []
        state.data[TOKENS_KEY] = tokens
    return tokens


def _default_encode(handle_factory: Callable[[], Any] | None) -> Callable[[str], list[int]]:
    if handle_factory is not None:
        encode: Callable[[str], list[int]] = handle_factory().encode
        return encode
    from inferplane.tokenizer import get_tokenizer

    return get_tokenizer().encode


@register("precise-prefix-cache-scorer", "scorer", PrecisePrefixParams)
class PrecisePrefixCacheScorer(Scorer):
    """Longest consecutive cached prefix per endpoint from the KV-event index, min–max normalised across the
    candidates. The EPP's KV-event subscriber feeds `self.index` (`index.apply(pod, event, model)`)."""

    category = "Affinity"
    params: PrecisePrefixParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.index = KVBlockIndex(self.params.token_processor().block_size)
        self._encode = _default_encode(self.handle.tokenizer_factory)

    @property
    def kv_events_config(self) -> _KVEventsConfig:
        return self.params.kv_events_config

    def kv_index_stats(self) -> dict[str, int]:
        """The KV-event index's counters (mismatches made visible in the EPP's metrics)."""
        return self.index.stats

    def on_kv_events(self, hostport: str, batch: Any) -> None:
        """Ingestion hook for the EPP's KV-event subscriber: a decoded batch (`.events`, `.model`) from `hostport`."""
        for ev in batch.events:
            self.index.apply(hostport, ev, batch.model)

    def score(self, cycle: CycleState, request: LLMRequest, endpoints: list[Endpoint]) -> list[float]:
        state: RequestState = cycle["request_state"]
        tokens = request_tokens(request, state, self._encode)
        salt = request.body.raw.get("cache_salt") if request.body is not None else None
        keys = self.index.request_keys(tokens, request.target_model, salt if isinstance(salt, str) else None)
        raw = self.index.longest_prefix_scores(keys)
        # Pods are keyed `ip:port`; older publishers name a bare IP (fine while the pool has one target port).
        hps = cycle.hostports(endpoints)
        return min_max([raw.get(hp, raw.get(e.key.address, 0.0)) for hp, e in zip(hps, endpoints, strict=True)])


class TokenProducerParams(PluginParams):
    model_name: str | None = Field(default=None, alias="modelName")
    vllm: dict[str, Any] | None = None
    uds_tokenizer_config: dict[str, Any] | None = Field(default=None, alias="udsTokenizerConfig")


@register("token-producer", "producer", TokenProducerParams)
class TokenProducer(RequestHooks):
    """Tokenises the prompt once per request with inferplane's tokenizer (llm-d's `token-producer`/`tokenizer`
    plugins call a UDS sidecar or vLLM's render endpoint; here the tokenizer is in process and shared with the
    simulator). Its parameters (`modelName`, `vllm`, `udsTokenizerConfig`) are accepted and not needed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._encode = _default_encode(self.handle.tokenizer_factory)

    def prepare_request_data(self, request: LLMRequest, endpoints: list[Endpoint], state: RequestState) -> None:
        request_tokens(request, state, self._encode)


@register("tokenizer", "producer", TokenProducerParams)
class TokenizerPlugin(TokenProducer):
    """llm-d guides' name for the tokenizing producer."""

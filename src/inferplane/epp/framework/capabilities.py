"""Optional plugin capabilities, one `Protocol` each (GIE keeps them as Go interfaces a plugin may implement).

The hosts find a capability with `isinstance(plugin, Capability)` or `PluginHandle.first/all(Capability)`, never by
probing attribute names: a plugin that renames a member stops satisfying the Protocol, and the in-tree catalogue test
(tests/unit/epp/test_framework.py) names which registered types must satisfy which capability.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Flushable(Protocol):
    """Work a PreRequest plugin defers until the decision has been sent (the prefix index update)."""

    def flush(self) -> None: ...


@runtime_checkable
class ProducerConsumer(Protocol):
    """A plugin that reads the data of a producer type (GIE `RegisterAsDefaultProducer`): the builder creates one
    when the configuration lists none."""

    @property
    def producer_type(self) -> str: ...


@runtime_checkable
class DecodeProfileOwner(Protocol):
    """A profile handler whose primary profile is named in its parameters (P/D); the builder checks it exists."""

    @property
    def decode_profile(self) -> str: ...


@runtime_checkable
class DecisionCounter(Protocol):
    """A P/D handler counting its decisions ("decode-only", "prefill-decode") for the EPP's metrics."""

    @property
    def decisions(self) -> Mapping[str, int]: ...


@runtime_checkable
class PrefixIndexStats(Protocol):
    """The approximate prefix index's counters, read at scrape time."""

    @property
    def queried_blocks(self) -> int: ...
    @property
    def hit_blocks(self) -> int: ...
    @property
    def hit_bytes(self) -> int: ...
    def index_size(self) -> int: ...


@runtime_checkable
class InflightCounts(Protocol):
    """EPP-side in-flight requests and tokens per `address:port` (the `inflight-load-producer`)."""

    @property
    def requests(self) -> Mapping[str, int]: ...
    @property
    def tokens(self) -> Mapping[str, int]: ...


class KVEventsSettings(Protocol):
    """Where a KV-event consumer wants its events from (kv-events.md §3); not runtime-checked, only typed."""

    @property
    def zmq_endpoint(self) -> str: ...
    @property
    def topic_filter(self) -> str: ...
    @property
    def discover_pods(self) -> bool: ...
    @property
    def pod_discovery_config(self) -> Mapping[str, Any]: ...


@runtime_checkable
class KVEventsConsumer(Protocol):
    """A plugin fed by the EPP's KV-event subscriber (the precise prefix-cache scorer)."""

    @property
    def kv_events_config(self) -> KVEventsSettings: ...
    def on_kv_events(self, hostport: str, batch: Any) -> None: ...
    def kv_index_stats(self) -> Mapping[str, int]: ...

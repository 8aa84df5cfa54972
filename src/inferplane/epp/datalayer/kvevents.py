"""KV-cache events from model servers over ZMQ (kv-events.md §2–§3): decoding and the SUB socket.

Wire: three frames — topic `kv@<ip>:<port>@<model>` (older `kv@<ip>@<model>`), an 8-byte big-endian sequence
number, and a msgpack `EventBatch` `[ts, events, dp_rank?]`. Events are vLLM's tagged positional arrays, whose
length has grown over releases (every length is accepted, unknown trailing fields ignored), or the map form with a
`type` key. Block hashes may be u64 or bytes.

Central mode binds one SUB socket that every model server's PUB connects to; per-pod mode connects to each pod.
Batches are handed to a sink keyed by the endpoint's `ip:port`, the key the scheduler uses.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
import zmq
import zmq.asyncio

from inferplane.epp.datalayer.datastore import Datastore

log = logging.getLogger(__name__)

BlockHash = int | bytes


@dataclass(frozen=True, slots=True)
class BlockStored:
    block_hashes: tuple[BlockHash, ...]
    parent_block_hash: BlockHash | None
    token_ids: tuple[int, ...]
    block_size: int
    lora_id: int | None = None
    medium: str | None = None
    lora_name: str | None = None


@dataclass(frozen=True, slots=True)
class BlockRemoved:
    block_hashes: tuple[BlockHash, ...]
    medium: str | None = None


@dataclass(frozen=True, slots=True)
class AllBlocksCleared:
    pass


KVEvent = BlockStored | BlockRemoved | AllBlocksCleared


@dataclass(slots=True)
class KVEventBatch:
    topic: str
    pod_id: str  # as the topic names it: `ip:port` or a bare IP
    model: str
    seq: int
    ts: float
    events: list[KVEvent] = field(default_factory=list)
    dp_rank: int | None = None


class KVEventDecodeError(ValueError):
    pass


def parse_topic(topic: str) -> tuple[str, str]:
    """`kv@<pod>@<model>` → (pod, model); the model may itself contain `@`."""
    parts = topic.split("@", 2)
    if len(parts) != 3 or not parts[1]:
        raise KVEventDecodeError(f"topic {topic!r} is not kv@<ip[:port]>@<model>")
    return parts[1], parts[2]


def _opt(items: Sequence[Any], i: int) -> Any:
    return items[i] if len(items) > i else None


def _hashes(value: Any) -> tuple[BlockHash, ...]:
    if not isinstance(value, list | tuple):
        raise KVEventDecodeError(f"block_hashes must be a list, found {type(value).__name__}")
    return tuple(value)


def decode_event(raw: Any) -> KVEvent | None:
    """One event; None for an event type this version does not know (skipped, not fatal)."""
    if isinstance(raw, dict):  # map form (vLLM PR #42892 / simulator `use-vllm-map-event-format`)
        kind = raw.get("type")
        if kind == "BlockStored":
            return BlockStored(
                _hashes(raw.get("block_hashes", [])),
                raw.get("parent_block_hash"),
                tuple(raw.get("token_ids") or ()),
                int(raw.get("block_size", 0) or 0),
                raw.get("lora_id"),
                raw.get("medium"),
                raw.get("lora_name"),
            )
        if kind == "BlockRemoved":
            return BlockRemoved(_hashes(raw.get("block_hashes", [])), raw.get("medium"))
        if kind == "AllBlocksCleared":
            return AllBlocksCleared()
        return None
    if not isinstance(raw, list | tuple) or not raw:
        raise KVEventDecodeError(f"event must be a tagged array or a map, found {raw!r:.80}")
    tag = raw[0]
    if isinstance(tag, bytes):
        tag = tag.decode()
    if tag == "BlockStored":
        if len(raw) < 5:
            raise KVEventDecodeError(f"BlockStored needs at least 5 fields, found {len(raw)}")
        parent = raw[2]
        return BlockStored(
            _hashes(raw[1]),
            None if parent in (None, 0) else parent,
            tuple(raw[3] or ()),
            int(raw[4]),
            _opt(raw, 5),
            _opt(raw, 6),
            _opt(raw, 7),
        )
    if tag == "BlockRemoved":
        if len(raw) < 2:
            raise KVEventDecodeError("BlockRemoved needs block_hashes")
        return BlockRemoved(_hashes(raw[1]), _opt(raw, 2))
    if tag == "AllBlocksCleared":
        return AllBlocksCleared()
    return None


def decode_message(frames: Sequence[bytes]) -> KVEventBatch:
    if len(frames) != 3:
        raise KVEventDecodeError(f"expected 3 frames (topic, seq, payload), found {len(frames)}")
    topic = frames[0].decode("utf-8", "replace")
    pod, model = parse_topic(topic)
    if len(frames[1]) != 8:
        raise KVEventDecodeError(f"sequence frame must be 8 bytes, found {len(frames[1])}")
    (seq,) = struct.unpack(">Q", frames[1])
    try:
        batch = msgpack.unpackb(frames[2], raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise KVEventDecodeError(f"payload is not msgpack: {exc}") from None
    if not isinstance(batch, list | tuple) or len(batch) < 2 or not isinstance(batch[1], list | tuple):
        raise KVEventDecodeError("payload must be [ts, events, dp_rank?]")
    events = [e for e in (decode_event(r) for r in batch[1]) if e is not None]
    return KVEventBatch(topic, pod, model, seq, float(batch[0] or 0.0), events, _opt(batch, 2))


def encode_message(batch: KVEventBatch) -> list[bytes]:
    """The wire form of a batch in the current vLLM positional layout (tests and benchmarks publish with it)."""
    events: list[list[Any]] = []
    for e in batch.events:
        if isinstance(e, BlockStored):
            events.append(
                [
                    "BlockStored",
                    list(e.block_hashes),
                    e.parent_block_hash,
                    list(e.token_ids),
                    e.block_size,
                    e.lora_id,
                    e.medium,
                    e.lora_name,
                ]
            )
        elif isinstance(e, BlockRemoved):
            events.append(["BlockRemoved", list(e.block_hashes), e.medium])
        else:
            events.append(["AllBlocksCleared"])
    payload: list[Any] = [batch.ts, events]
    if batch.dp_rank is not None:
        payload.append(batch.dp_rank)
    return [batch.topic.encode(), struct.pack(">Q", batch.seq), msgpack.packb(payload)]


KVEventSink = Callable[[str, KVEventBatch], None]  # (endpoint hostport, batch)


class KVEventSubscriber:
    """One SUB socket: `bind` (central mode, e.g. tcp://*:5557) and/or `connect` to per-pod publishers."""

    def __init__(
        self,
        datastore: Datastore,
        sink: KVEventSink,
        bind: str | None = None,
        connect: Sequence[str] = (),
        topic_filter: str = "kv@",
        on_event: Callable[[str], None] | None = None,
        on_unmatched: Callable[[], None] | None = None,
    ) -> None:
        self.datastore = datastore
        self.sink = sink
        self.bind = bind
        self.connect = list(connect)
        self.topic_filter = topic_filter
        self.on_event = on_event
        self.on_unmatched = on_unmatched
        self._ctx = zmq.asyncio.Context.instance()
        self._sock: zmq.asyncio.Socket | None = None
        self._warned: set[str] = set()
        self.last_seq: dict[str, int] = {}
        self.bound_endpoint: str | None = None

    def open(self) -> None:
        sock = self._ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 100_000)
        sock.setsockopt_string(zmq.SUBSCRIBE, self.topic_filter)
        if self.bind:
            sock.bind(self.bind)
            self.bound_endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        for ep in self.connect:
            sock.connect(ep)
        self._sock = sock

    def connect_endpoint(self, address: str) -> None:
        """Per-pod mode: subscribe to one more publisher (a pod that appeared)."""
        if address not in self.connect:
            self.connect.append(address)
            if self._sock is not None:
                self._sock.connect(address)

    def disconnect_endpoint(self, address: str) -> None:
        if address in self.connect:
            self.connect.remove(address)
            if self._sock is not None:
                try:
                    self._sock.disconnect(address)
                except zmq.ZMQError:
                    pass

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None

    def handle(self, frames: Sequence[bytes]) -> KVEventBatch | None:
        try:
            batch = decode_message(frames)
        except KVEventDecodeError as exc:
            log.warning("KV events: dropped a malformed message: %s", exc)
            return None
        ep = self.datastore.endpoint_for_topic_id(batch.pod_id)
        if ep is None:
            if self.on_unmatched:
                self.on_unmatched()
            if batch.pod_id not in self._warned:
                self._warned.add(batch.pod_id)
                log.warning(
                    "KV events: topic %r names %r, which is no endpoint of pool %s (endpoints: %s); "
                    "use kv@<ip>:<port>@<model> with the endpoint's address",
                    batch.topic,
                    batch.pod_id,
                    self.datastore.pool_name,
                    ", ".join(sorted(self.datastore.endpoints)) or "none",
                )
            return None
        prev = self.last_seq.get(ep.hostport)
        if prev is not None and batch.seq != prev + 1:
            log.info("KV events from %s: sequence jumped %d → %d (events lost)", ep.hostport, prev, batch.seq)
        self.last_seq[ep.hostport] = batch.seq
        if self.on_event:
            for e in batch.events:
                self.on_event(type(e).__name__)
        self.sink(ep.hostport, batch)
        return batch

    async def run(self) -> None:
        if self._sock is None:
            self.open()
        assert self._sock is not None
        try:
            while True:
                frames = await self._sock.recv_multipart()
                self.handle(frames)
        except asyncio.CancelledError:
            raise
        finally:
            self.close()

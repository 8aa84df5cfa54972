"""ZMQ PUB for KV events, configured like vLLM's `--kv-events-config` (reference/kv-events.md).

Like vLLM's ZmqEventPublisher, the socket binds when the endpoint is a wildcard (`tcp://*:5557`) or ipc/inproc,
and connects otherwise (llm-d's central mode: the endpoint picker binds, every model server connects). A bound
endpoint is offset by the engine's index in this process (the data-parallel rank, as vLLM's
`offset_endpoint_port`, or the replica number); a connected one is shared.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import zmq

from inferplane.errors import UsageError
from inferplane.sim.kvevents import KVEvent, encode_batch, encode_seq

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KVEventsConfig:
    enable_kv_cache_events: bool = False
    publisher: str = "null"
    endpoint: str = "tcp://*:5557"
    topic: str = ""
    hwm: int = 100_000

    @property
    def enabled(self) -> bool:
        return self.enable_kv_cache_events and self.publisher == "zmq"


_FIELDS = {"enable_kv_cache_events", "publisher", "endpoint", "topic", "hwm", "replay_endpoint", "buffer_steps"}
_FIELDS |= {"max_queue_size"}


def parse_kv_events_config(raw: str | None) -> KVEventsConfig:
    if not raw:
        return KVEventsConfig()
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"--kv-events-config is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError("--kv-events-config must be a JSON object")
    unknown = set(data) - _FIELDS
    if unknown:
        raise UsageError(f"--kv-events-config: unknown field(s) {sorted(unknown)}", hint=f"known: {sorted(_FIELDS)}")
    publisher = str(data.get("publisher", "zmq" if data.get("enable_kv_cache_events") else "null"))
    if publisher not in ("zmq", "null"):
        raise UsageError(f"--kv-events-config: publisher {publisher!r} is not supported (zmq | null)")
    return KVEventsConfig(
        enable_kv_cache_events=bool(data.get("enable_kv_cache_events", False)),
        publisher=publisher,
        endpoint=str(data.get("endpoint", "tcp://*:5557")),
        topic=str(data.get("topic", "")),
        hwm=int(data.get("hwm", 100_000)),
    )


def _binds(endpoint: str) -> bool:
    return "*" in endpoint or "::" in endpoint or endpoint.startswith(("ipc://", "inproc://"))


def offset_endpoint(endpoint: str, rank: int) -> str:
    if rank == 0 or not endpoint.startswith("tcp://"):
        return endpoint
    m = re.match(r"^(tcp://.*):(\d+)$", endpoint)
    if not m:
        return endpoint
    return f"{m.group(1)}:{int(m.group(2)) + rank}"


class ZmqEventPublisher:
    def __init__(
        self, cfg: KVEventsConfig, topic: str, data_parallel_rank: int | None = None, endpoint_offset: int = 0
    ) -> None:
        self._sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.PUB)
        self._sock.setsockopt(zmq.SNDHWM, cfg.hwm)
        self._sock.setsockopt(zmq.LINGER, 0)
        if _binds(cfg.endpoint):
            self.endpoint = offset_endpoint(cfg.endpoint, endpoint_offset)
            try:
                self._sock.bind(self.endpoint)
            except zmq.ZMQError as exc:
                self._sock.close()
                raise UsageError(f"cannot bind KV-event endpoint {self.endpoint}: {exc}") from None
        else:
            self.endpoint = cfg.endpoint
            self._sock.connect(self.endpoint)
        self.topic = topic.encode()
        self._rank = data_parallel_rank
        self._seq = 0
        log.info("publishing KV events on %s topic %s", self.endpoint, topic)

    def publish(self, events: Sequence[KVEvent]) -> None:
        if not events:
            return
        payload = encode_batch(time.time(), events, self._rank)
        try:
            self._sock.send_multipart([self.topic, encode_seq(self._seq), payload], flags=zmq.NOBLOCK)
        except zmq.Again:  # no peer yet / high-water mark: PUB drops, as vLLM's would
            pass
        self._seq += 1

    def close(self) -> None:
        self._sock.close(linger=0)

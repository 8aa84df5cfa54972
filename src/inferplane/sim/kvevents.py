"""KV-cache events as vLLM publishes them (`vllm/distributed/kv_events.py`), as plain data plus the wire encoding.

vLLM encodes each event as a msgspec struct with ``array_like=True, tag=True, omit_defaults=True``: a msgpack array
whose first element is the type name, then the fields in order, trailing fields equal to their default omitted.
A batch is ``[ts, events]`` or ``[ts, events, data_parallel_rank]``. On ZMQ a message is three frames: topic,
8-byte big-endian sequence number, msgpack batch (see reference/kv-events.md §2). This module has no network code;
`inferplane.sim.kvpublisher` sends the frames.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack


@dataclass(frozen=True, slots=True)
class BlockStored:
    block_hashes: list[int]
    parent_block_hash: int | None
    token_ids: list[int]
    block_size: int
    lora_id: int | None = None
    medium: str | None = "GPU"
    lora_name: str | None = None

    def to_wire(self) -> list[Any]:
        fields: list[Any] = [
            "BlockStored",
            self.block_hashes,
            self.parent_block_hash,
            self.token_ids,
            self.block_size,
            self.lora_id,
            self.medium,
            self.lora_name,
        ]
        return _omit_trailing_defaults(fields, keep=5)


@dataclass(frozen=True, slots=True)
class BlockRemoved:
    block_hashes: list[int]
    medium: str | None = "GPU"

    def to_wire(self) -> list[Any]:
        return _omit_trailing_defaults(["BlockRemoved", self.block_hashes, self.medium], keep=2)


@dataclass(frozen=True, slots=True)
class AllBlocksCleared:
    medium: str | None = field(default=None)

    def to_wire(self) -> list[Any]:
        return ["AllBlocksCleared"]


KVEvent = BlockStored | BlockRemoved | AllBlocksCleared


def _omit_trailing_defaults(fields: list[Any], keep: int) -> list[Any]:
    # msgspec's omit_defaults drops trailing fields equal to their defaults (None); "GPU" is not a default in
    # vLLM's struct (medium defaults to None there but the engine always sets it), so it stays.
    while len(fields) > keep and fields[-1] is None:
        fields.pop()
    return fields


def encode_batch(ts: float, events: Sequence[KVEvent], data_parallel_rank: int | None = None) -> bytes:
    batch: list[Any] = [ts, [e.to_wire() for e in events]]
    if data_parallel_rank is not None:
        batch.append(data_parallel_rank)
    return bytes(msgpack.packb(batch, use_bin_type=True))


def encode_seq(seq: int) -> bytes:
    return struct.pack(">Q", seq)


def decode_batch(payload: bytes) -> tuple[float, list[KVEvent], int | None]:
    """The inverse of encode_batch (used by tests and by tools that tap the stream)."""
    raw = msgpack.unpackb(payload, raw=False)
    ts, items = raw[0], raw[1]
    rank = raw[2] if len(raw) > 2 else None
    events: list[KVEvent] = []
    for item in items:
        kind, args = item[0], item[1:]
        if kind == "BlockStored":
            events.append(BlockStored(*args[:7]))
        elif kind == "BlockRemoved":
            events.append(BlockRemoved(*args[:2]))
        elif kind == "AllBlocksCleared":
            events.append(AllBlocksCleared())
    return float(ts), events, rank

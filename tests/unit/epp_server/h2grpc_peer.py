"""A raw HTTP/2 client and test handlers for the `inferplane.epp.h2grpc` frame-level tests (test_h2grpc_frames.py,
test_h2grpc_split.py): frames built with `wire.frame`, header blocks from the `hpack` library."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import hpack

from inferplane.epp.h2grpc import wire as w
from inferplane.epp.h2grpc.server import Call, Method

LIMIT = 10.0  # seconds any single wait may take before it counts as a hang


@dataclass(frozen=True)
class Frame:
    kind: int
    flags: int
    sid: int
    payload: bytes


def parse_frames(data: bytes) -> list[Frame]:
    frames, pos = [], 0
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 3], "big")
        sid = int.from_bytes(data[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
        frames.append(Frame(data[pos + 3], data[pos + 4], sid, data[pos + 9 : pos + 9 + length]))
        pos += 9 + length
    assert pos == len(data), "a partial frame"
    return frames


def grpc_message(payload: bytes) -> bytes:
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def grpc_messages(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        assert data[pos] == 0
        n = int.from_bytes(data[pos + 1 : pos + 5], "big")
        out.append(data[pos + 5 : pos + 5 + n])
        pos += 5 + n
    assert pos == len(data), "a partial gRPC message"
    return out


def request_headers(encoder: hpack.Encoder, path: str, **extra: str) -> bytes:
    fields = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "127.0.0.1")]
    fields += [("content-type", "application/grpc"), ("te", "trailers"), *extra.items()]
    return bytes(encoder.encode(fields))


@dataclass
class Probe:
    received: list[bytes] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: bool = False
    reply_size: int = 0


def make_methods(probe: Probe) -> dict[str, Method]:
    async def echo(call: Call) -> None:
        while (msg := await call.read()) is not None:
            probe.received.append(msg)
            await call.write(msg)
        probe.finished.set()

    async def sized(call: Call) -> None:
        """Answers one message of `reply_size` bytes, counting 0, 1, 2, ... (mod 251) so order is checkable."""
        try:
            await call.read()
            await call.write(bytes(i % 251 for i in range(probe.reply_size)))
        finally:
            probe.finished.set()

    async def block(call: Call) -> None:
        try:
            probe.started.set()
            await asyncio.get_running_loop().create_future()  # until cancelled
        except asyncio.CancelledError:
            probe.cancelled = True
            raise
        finally:
            probe.finished.set()

    return {f"/t.T/{k}": Method(v, bytes, bytes) for k, v in {"Echo": echo, "Sized": sized, "Block": block}.items()}


class Peer:
    """A raw HTTP/2 client: frames out, frames in, with the server's header blocks decoded."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.encoder, self.decoder = hpack.Encoder(), hpack.Decoder()

    async def send(self, *data: bytes) -> None:
        self.writer.write(b"".join(data))
        await self.writer.drain()

    async def handshake(self, values: dict[int, int] | None = None) -> None:
        await self.send(w.PREFACE, w.settings(values or {}))

    async def frame(self) -> Frame | None:
        """The next frame, or None at end of connection."""
        head = await asyncio.wait_for(self.reader.read(9), LIMIT)
        if not head:
            return None
        if len(head) < 9:
            head += await asyncio.wait_for(self.reader.readexactly(9 - len(head)), LIMIT)
        length = int.from_bytes(head[:3], "big")
        payload = await asyncio.wait_for(self.reader.readexactly(length), LIMIT) if length else b""
        return Frame(head[3], head[4], int.from_bytes(head[5:9], "big") & 0x7FFFFFFF, payload)

    async def until(self, kind: int, flags: int = 0, sid: int | None = None) -> list[Frame]:
        """Frames up to and including the first of `kind` with all of `flags` (on `sid`, if given)."""
        got: list[Frame] = []
        while True:
            f = await self.frame()
            assert f is not None, f"connection closed before frame type {kind}; got {got}"
            got.append(f)
            if f.kind == kind and f.flags & flags == flags and (sid is None or f.sid == sid):
                return got

    async def sync(self, token: bytes = b"syncsync") -> list[Frame]:
        """Everything the server wrote before it answered a PING sent now."""
        await self.send(w.frame(w.PING, 0, 0, token))
        got = await self.until(w.PING, w.ACK)
        assert got[-1].payload == token
        return got[:-1]

    async def rest(self) -> list[Frame]:
        """Every frame until the server closes the connection."""
        got: list[Frame] = []
        while (f := await self.frame()) is not None:
            got.append(f)
        return got

    def headers(self, f: Frame) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.decoder.decode(f.payload)}  # str pairs (raw=False)


def data_bytes(frames: list[Frame], sid: int) -> bytes:
    return b"".join(f.payload for f in frames if f.kind == w.DATA and f.sid == sid)

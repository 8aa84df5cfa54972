"""Back-pressure in `inferplane.epp.h2grpc`, both ways, with a raw HTTP/2 client on a loopback socket: a handler
that does not read holds back its stream's flow-control credit (so a peer cannot make the server buffer without
bound, and one that sends past the window is reset), and a handler whose peer does not take what it is sent waits
in `write()`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from inferplane.epp.h2grpc import wire as w
from inferplane.epp.h2grpc.call import HOLD, STREAM_WINDOW
from inferplane.epp.h2grpc.server import Call, H2GrpcServer, Method
from tests.unit.epp_server.h2grpc_peer import LIMIT, Frame, Peer, data_bytes, grpc_message, request_headers

CHUNK = 60_000  # one gRPC message the client sends, spread over four DATA frames


@dataclass
class Lazy:
    """Handlers that read only when told to (`go`), and one that writes `chunks` messages, counting the writes."""

    go: asyncio.Event = field(default_factory=asyncio.Event)
    read: list[int] = field(default_factory=list)
    written: int = 0
    chunks: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def methods(self) -> dict[str, Method]:
        async def sink(call: Call) -> None:
            await self.go.wait()
            while (msg := await call.read()) is not None:
                self.read.append(len(msg))
            self.done.set()

        async def pump(call: Call) -> None:
            await call.read()
            for _ in range(self.chunks):
                await call.write(b"x" * CHUNK)
                self.written += 1
            self.done.set()

        return {"/t.T/Sink": Method(sink, bytes, bytes), "/t.T/Pump": Method(pump, bytes, bytes)}


@pytest.fixture
async def lazy() -> AsyncIterator[tuple[Lazy, int, list[Peer]]]:
    probe = Lazy()
    server = H2GrpcServer(probe.methods())
    port = await server.start("127.0.0.1", 0)
    peers: list[Peer] = []
    try:
        yield probe, port, peers
    finally:
        for p in peers:
            p.writer.close()
        await server.stop(0)


async def connect(port: int, peers: list[Peer], settings: dict[int, int] | None = None) -> Peer:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    peer = Peer(reader, writer)
    peers.append(peer)
    await peer.handshake(settings)
    await peer.until(w.SETTINGS, w.ACK)  # our SETTINGS (the 1 MiB stream window) are in force from here
    return peer


def messages(n: int) -> bytes:
    """`n` messages of CHUNK bytes as DATA frames of at most 16,384 bytes on stream 1."""
    wire = b"".join(grpc_message(b"m" * CHUNK) for _ in range(n))
    return b"".join(w.frame(w.DATA, 0, 1, wire[i : i + 16_384]) for i in range(0, len(wire), 16_384))


def credit(frames: list[Frame], sid: int) -> int:
    return sum(int.from_bytes(f.payload, "big") for f in frames if f.kind == w.WINDOW_UPDATE and f.sid == sid)


async def test_unread_messages_hold_back_the_stream_credit(lazy: tuple[Lazy, int, list[Peer]]) -> None:
    probe, port, peers = lazy
    peer = await connect(port, peers)
    n = 25  # 1.5 MB: what a peer may send when the first HOLD bytes are credited at once and a window follows
    await peer.send(w.frame(w.HEADERS, w.END_HEADERS, 1, request_headers(peer.encoder, "/t.T/Sink")), messages(n))
    before = credit(await peer.sync(), 1)
    sent = n * (CHUNK + 5)
    # credit stopped once HOLD bytes were waiting for the handler (crediting all would have acknowledged 2 x HOLD)
    assert HOLD <= before < 2 * HOLD
    probe.go.set()
    await peer.send(w.frame(w.DATA, w.END_STREAM, 1))
    await asyncio.wait_for(probe.done.wait(), LIMIT)
    assert probe.read == [CHUNK] * n  # nothing was lost while it was held
    after = await peer.sync()
    # reading released the rest: at most half a window stays owed (it is sent once half a window is due)
    assert sent - (before + credit(after, 1)) < STREAM_WINDOW // 2


async def test_a_peer_sending_past_the_window_is_reset(lazy: tuple[Lazy, int, list[Peer]]) -> None:
    probe, port, peers = lazy
    peer = await connect(port, peers)
    # HOLD bytes are credited at once; then a whole window more fits; the 30th message of 60 KB does not
    await peer.send(w.frame(w.HEADERS, w.END_HEADERS, 1, request_headers(peer.encoder, "/t.T/Sink")), messages(30))
    frames = await peer.until(w.RST_STREAM, sid=1)
    assert int.from_bytes(frames[-1].payload, "big") == w.FLOW_CONTROL_ERROR
    # the connection goes on: a PING is still answered, and the connection credit of the dropped bytes came back
    rest = await peer.sync()
    assert credit(frames + rest, 0) >= 30 * (CHUNK + 5) - (16 << 20) // 2
    assert probe.read == []


async def test_write_waits_while_the_peer_takes_nothing(lazy: tuple[Lazy, int, list[Peer]]) -> None:
    probe, port, peers = lazy
    probe.chunks = 40  # 2.4 MB to send, through a stream window of 100 bytes
    peer = await connect(port, peers, {w.SETTINGS_INITIAL_WINDOW_SIZE: 100})
    await peer.send(
        w.frame(w.HEADERS, w.END_HEADERS, 1, request_headers(peer.encoder, "/t.T/Pump")),
        w.frame(w.DATA, w.END_STREAM, 1, grpc_message(b"go")),
    )
    await peer.sync()
    await peer.sync()  # two loop turns of the server: the handler has run as far as it can
    assert 1 <= probe.written <= HOLD // CHUNK + 2  # blocked in write() once HOLD bytes were queued
    assert not probe.done.is_set()
    await peer.send(w.window_update(1, 1 << 30), w.window_update(0, 1 << 30))
    frames = await peer.until(w.HEADERS, w.END_STREAM, sid=1)
    await asyncio.wait_for(probe.done.wait(), LIMIT)
    assert probe.written == 40
    assert len(data_bytes(frames, 1)) + 100 == 40 * (CHUNK + 5)  # 100 bytes had left before the update

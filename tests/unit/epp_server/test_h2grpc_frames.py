"""`inferplane.epp.h2grpc` at the HTTP/2 frame level (RFC 9113): a raw client on a loopback socket writes frames
built with `wire.frame` and header blocks from the `hpack` library, and checks every frame the server sends back —
preface errors, PING, SETTINGS, flow control in both windows, CONTINUATION, padding, RST_STREAM, frame-size limits,
connection and stream errors, GOAWAY. Any split of the byte stream: test_h2grpc_split.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import hpack
import pytest

from inferplane.epp.h2grpc import wire as w
from inferplane.epp.h2grpc.server import H2GrpcServer
from tests.unit.epp_server.h2grpc_peer import (
    LIMIT,
    Frame,
    Peer,
    Probe,
    data_bytes,
    grpc_message,
    grpc_messages,
    make_methods,
    request_headers,
)


@dataclass
class Env:
    server: H2GrpcServer
    port: int
    probe: Probe
    peers: list[Peer] = field(default_factory=list)

    async def connect(self) -> Peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        peer = Peer(reader, writer)
        self.peers.append(peer)
        # the server speaks first: SETTINGS (no ACK) and a connection WINDOW_UPDATE
        first = await peer.frame()
        assert first is not None
        assert first.kind == w.SETTINGS
        assert not first.flags & w.ACK
        second = await peer.frame()
        assert second is not None
        assert second.kind == w.WINDOW_UPDATE
        assert second.sid == 0
        return peer


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    probe = Probe()
    server = H2GrpcServer(make_methods(probe))
    port = await server.start("127.0.0.1", 0)
    e = Env(server, port, probe)
    try:
        yield e
    finally:
        for p in e.peers:
            p.writer.close()
        await server.stop(0)


def goaway_code(f: Frame) -> int:
    assert f.kind == w.GOAWAY
    return int.from_bytes(f.payload[4:8], "big")


@pytest.mark.parametrize("opening", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"PRI * HTTP/1.1\r\n"])
async def test_bad_preface_gets_goaway_protocol_error_and_close(env: Env, opening: bytes) -> None:
    peer = await env.connect()
    await peer.send(opening)
    rest = await peer.rest()
    assert [goaway_code(f) for f in rest] == [w.PROTOCOL_ERROR]


async def test_ping_is_acked_with_its_payload(env: Env) -> None:
    peer = await env.connect()
    await peer.handshake()
    await peer.send(w.frame(w.PING, 0, 0, b"\x01\x02\x03\x04\x05\x06\x07\x08"))
    got = await peer.until(w.PING)
    assert got[-1] == Frame(w.PING, w.ACK, 0, b"\x01\x02\x03\x04\x05\x06\x07\x08")
    await peer.send(w.frame(w.PING, w.ACK, 0, b"ackedack"))  # an ACK is not answered
    assert await peer.sync() == []


async def test_settings_are_acked(env: Env) -> None:
    peer = await env.connect()
    await peer.send(w.PREFACE, w.settings({w.SETTINGS_MAX_FRAME_SIZE: 1 << 20, w.SETTINGS_HEADER_TABLE_SIZE: 0}))
    assert (await peer.until(w.SETTINGS))[-1] == Frame(w.SETTINGS, w.ACK, 0, b"")
    await peer.send(w.frame(w.SETTINGS, w.ACK, 0))  # our ACK of the server's SETTINGS needs no answer
    assert await peer.sync() == []


async def open_sized(env: Env, peer: Peer, size: int, sid: int = 1) -> None:
    env.probe.reply_size = size
    block = request_headers(peer.encoder, "/t.T/Sized")
    await peer.send(
        w.frame(w.HEADERS, w.END_HEADERS, sid, block), w.frame(w.DATA, w.END_STREAM, sid, grpc_message(b"go"))
    )
    await asyncio.wait_for(env.probe.finished.wait(), LIMIT)  # the handler wrote everything it will write


async def test_small_stream_window_holds_data_back_until_window_update(env: Env) -> None:
    peer = await env.connect()
    await peer.handshake({w.SETTINGS_INITIAL_WINDOW_SIZE: 100})
    await open_sized(env, peer, 1_000)
    held = await peer.sync()
    assert [f.kind for f in held if f.sid == 1] == [w.HEADERS, w.DATA]  # response headers, then 100 bytes
    assert len(data_bytes(held, 1)) == 100
    await peer.send(w.window_update(1, 400))
    more = await peer.sync()
    assert [f.kind for f in more if f.sid == 1] == [w.DATA]
    assert len(data_bytes(more, 1)) == 400
    await peer.send(w.window_update(1, 10_000))
    rest = await peer.until(w.HEADERS, w.END_STREAM, sid=1)
    assert [f.kind for f in rest if f.sid == 1] == [w.DATA, w.HEADERS]
    assert grpc_messages(data_bytes(held + more + rest, 1)) == [bytes(i % 251 for i in range(1_000))]
    assert peer.headers(next(f for f in held if f.sid == 1)) == {":status": "200", "content-type": "application/grpc"}
    assert peer.headers(rest[-1]) == {"grpc-status": "0"}  # trailers only after all DATA


async def test_connection_window_and_peer_max_frame_size(env: Env) -> None:
    peer = await env.connect()
    await peer.handshake({w.SETTINGS_INITIAL_WINDOW_SIZE: 1 << 20, w.SETTINGS_MAX_FRAME_SIZE: 20_000})
    await open_sized(env, peer, 200_000)
    held = await peer.sync()
    assert len(data_bytes(held, 1)) == w.DEFAULT_WINDOW  # the connection window was never raised
    assert max(len(f.payload) for f in held if f.kind == w.DATA) == 20_000
    await peer.send(w.window_update(0, 1 << 20))
    rest = await peer.until(w.HEADERS, w.END_STREAM, sid=1)
    assert grpc_messages(data_bytes(held + rest, 1)) == [bytes(i % 251 for i in range(200_000))]
    assert all(len(f.payload) <= 20_000 for f in rest)


async def test_header_block_split_over_continuation_frames(env: Env) -> None:
    peer = await env.connect()
    await peer.handshake()
    block = request_headers(peer.encoder, "/t.T/Echo", **{"x-long": "v" * 300})
    a, b = len(block) // 3, 2 * len(block) // 3
    await peer.send(
        w.frame(w.HEADERS, 0, 1, block[:a]),
        w.frame(w.CONTINUATION, 0, 1, block[a:b]),
        w.frame(w.CONTINUATION, w.END_HEADERS, 1, block[b:]),
        w.frame(w.DATA, w.END_STREAM, 1, grpc_message(b"after continuation")),
    )
    got = await peer.until(w.HEADERS, w.END_STREAM, sid=1)
    assert grpc_messages(data_bytes(got, 1)) == [b"after continuation"]
    assert peer.headers(got[-1]) == {"grpc-status": "0"}


async def test_interrupted_header_block_is_a_protocol_error(env: Env) -> None:
    peer = await env.connect()
    await peer.handshake()
    block = request_headers(peer.encoder, "/t.T/Echo")
    await peer.send(w.frame(w.HEADERS, 0, 1, block[:5]), w.frame(w.PING, 0, 0, b"12345678"))
    assert [goaway_code(f) for f in await peer.rest() if f.kind == w.GOAWAY] == [w.PROTOCOL_ERROR]


async def test_padded_headers_and_data(env: Env) -> None:
    peer = await env.connect()
    await peer.handshake()
    block = request_headers(peer.encoder, "/t.T/Echo")
    priority = b"\x00\x00\x00\x00\x10"  # depends on stream 0, weight 17
    await peer.send(
        w.frame(w.HEADERS, w.END_HEADERS | w.PADDED | w.PRIORITY_FLAG, 1, b"\x07" + priority + block + b"\0" * 7),
        w.frame(w.DATA, w.PADDED, 1, b"\x03" + grpc_message(b"padded") + b"\0" * 3),
        w.frame(w.DATA, w.PADDED, 1, b"\x00" + grpc_message(b"zero padding")),
        w.frame(w.DATA, w.PADDED | w.END_STREAM, 1, b"\x09" + b"\0" * 9),  # only padding, ending the stream
    )
    got = await peer.until(w.HEADERS, w.END_STREAM, sid=1)
    assert grpc_messages(data_bytes(got, 1)) == [b"padded", b"zero padding"]
    assert env.probe.received == [b"padded", b"zero padding"]


async def test_padding_longer_than_the_frame_is_a_protocol_error(env: Env) -> None:
    peer = await env.connect()
    await peer.handshake()
    block = request_headers(peer.encoder, "/t.T/Echo")
    await peer.send(w.frame(w.HEADERS, w.END_HEADERS, 1, block), w.frame(w.DATA, w.PADDED, 1, b"\x05abc"))
    assert [goaway_code(f) for f in await peer.rest() if f.kind == w.GOAWAY] == [w.PROTOCOL_ERROR]


async def test_rst_stream_cancels_the_handler(env: Env) -> None:
    peer = await env.connect()
    await peer.handshake()
    await peer.send(w.frame(w.HEADERS, w.END_HEADERS, 1, request_headers(peer.encoder, "/t.T/Block")))
    await asyncio.wait_for(env.probe.started.wait(), LIMIT)
    await peer.send(w.rst_stream(1, w.CANCEL))
    await asyncio.wait_for(env.probe.finished.wait(), LIMIT)
    assert env.probe.cancelled
    assert [f for f in await peer.sync() if f.sid == 1] == []  # nothing answers a reset stream
    await peer.send(  # the connection goes on
        w.frame(w.HEADERS, w.END_HEADERS, 3, request_headers(peer.encoder, "/t.T/Echo")),
        w.frame(w.DATA, w.END_STREAM, 3, grpc_message(b"next")),
    )
    assert grpc_messages(data_bytes(await peer.until(w.HEADERS, w.END_STREAM, sid=3), 3)) == [b"next"]


async def test_frame_over_16384_bytes_is_a_frame_size_error(env: Env) -> None:
    peer = await env.connect()
    await peer.handshake()
    block = request_headers(peer.encoder, "/t.T/Echo")
    await peer.send(w.frame(w.HEADERS, w.END_HEADERS, 1, block), w.frame(w.DATA, 0, 1, b"\0" * 16_385))
    assert [goaway_code(f) for f in await peer.rest() if f.kind == w.GOAWAY] == [w.FRAME_SIZE_ERROR]


async def test_unknown_method_is_a_trailers_only_answer(env: Env) -> None:
    peer = await env.connect()
    await peer.handshake()
    await peer.send(w.frame(w.HEADERS, w.END_HEADERS | w.END_STREAM, 1, request_headers(peer.encoder, "/t.T/Nope")))
    got = await peer.until(w.HEADERS, sid=1)
    assert got[-1].flags & w.END_STREAM
    assert peer.headers(got[-1]) == {
        ":status": "200",
        "content-type": "application/grpc",
        "grpc-status": "12",
        "grpc-message": "unknown method /t.T/Nope",
    }


async def test_goaway_on_stop_refuses_new_streams(env: Env) -> None:
    peer = await env.connect()
    await peer.handshake()
    await peer.send(w.frame(w.HEADERS, w.END_HEADERS, 1, request_headers(peer.encoder, "/t.T/Echo")))
    await peer.sync()  # stream 1 is open
    stop = asyncio.create_task(env.server.stop(grace=LIMIT))
    try:
        got = await peer.until(w.GOAWAY)
        assert int.from_bytes(got[-1].payload[:4], "big") == 1
        assert goaway_code(got[-1]) == w.NO_ERROR
        await peer.send(w.frame(w.HEADERS, w.END_HEADERS, 3, request_headers(peer.encoder, "/t.T/Echo")))
        assert (await peer.until(w.RST_STREAM, sid=3))[-1].payload == w.REFUSED_STREAM.to_bytes(4, "big")
        await peer.send(w.frame(w.DATA, w.END_STREAM, 1, grpc_message(b"last words")))
        rest = await peer.rest()  # stream 1 completes, then the server closes the connection
        assert grpc_messages(data_bytes(rest, 1)) == [b"last words"]
        assert peer.headers(rest[-1]) == {"grpc-status": "0"}
        await asyncio.wait_for(stop, LIMIT)
    finally:
        await stop


async def test_long_unknown_path_still_fits_one_frame(env: Env) -> None:
    peer = await env.connect()
    await peer.handshake()
    path = "/t.T/" + "%" * 8_000  # every % is sent as %25 in grpc-message
    await peer.send(w.frame(w.HEADERS, w.END_HEADERS | w.END_STREAM, 1, request_headers(peer.encoder, path)))
    got = await peer.until(w.HEADERS, sid=1)
    assert len(got[-1].payload) <= w.DEFAULT_MAX_FRAME
    answer = peer.headers(got[-1])
    assert answer["grpc-status"] == "12"
    assert answer["grpc-message"].startswith("unknown method /t.T/%25%25")


async def test_client_trailers_after_the_server_answered_are_ignored(env: Env) -> None:
    peer = await env.connect()
    await peer.handshake()
    env.probe.reply_size = 10
    await peer.send(
        w.frame(w.HEADERS, w.END_HEADERS, 1, request_headers(peer.encoder, "/t.T/Sized")),
        w.frame(w.DATA, 0, 1, grpc_message(b"go")),
    )
    got = await peer.until(w.RST_STREAM, sid=1)  # answered while the client was still sending: stream closed
    assert got[-1].payload == w.NO_ERROR.to_bytes(4, "big")
    # the client's side, in flight: more DATA and its trailers; both are dropped, the connection goes on
    trailers = bytes(peer.encoder.encode([("x-client-trailer", "1")]))
    await peer.send(
        w.frame(w.DATA, 0, 1, grpc_message(b"late")), w.frame(w.HEADERS, w.END_HEADERS | w.END_STREAM, 1, trailers)
    )
    assert [f for f in await peer.sync() if f.kind == w.GOAWAY] == []
    await peer.send(
        w.frame(w.HEADERS, w.END_HEADERS, 3, request_headers(peer.encoder, "/t.T/Echo")),
        w.frame(w.DATA, w.END_STREAM, 3, grpc_message(b"next")),
    )
    assert grpc_messages(data_bytes(await peer.until(w.HEADERS, w.END_STREAM, sid=3), 3)) == [b"next"]


CONNECTION_ERRORS: dict[str, tuple[Callable[[hpack.Encoder], bytes], int]] = {
    "ping-on-a-stream": (lambda e: w.frame(w.PING, 0, 1, b"12345678"), w.PROTOCOL_ERROR),
    "ping-of-7-bytes": (lambda e: w.frame(w.PING, 0, 0, b"1234567"), w.FRAME_SIZE_ERROR),
    "settings-on-a-stream": (lambda e: w.frame(w.SETTINGS, 0, 1), w.PROTOCOL_ERROR),
    "settings-of-5-bytes": (lambda e: w.frame(w.SETTINGS, 0, 0, b"\0" * 5), w.FRAME_SIZE_ERROR),
    "settings-ack-with-payload": (lambda e: w.frame(w.SETTINGS, w.ACK, 0, b"\0" * 6), w.FRAME_SIZE_ERROR),
    "max-frame-size-below-16384": (lambda e: w.settings({w.SETTINGS_MAX_FRAME_SIZE: 1_000}), w.PROTOCOL_ERROR),
    "initial-window-above-2^31-1": (
        lambda e: w.settings({w.SETTINGS_INITIAL_WINDOW_SIZE: 2**31}),
        w.FLOW_CONTROL_ERROR,
    ),
    "connection-window-overflow": (lambda e: w.window_update(0, w.MAX_WINDOW), w.FLOW_CONTROL_ERROR),
    "connection-window-update-of-0": (lambda e: w.window_update(0, 0), w.PROTOCOL_ERROR),
    "push-promise": (lambda e: w.frame(w.PUSH_PROMISE, w.END_HEADERS, 1, b"\0\0\0\2"), w.PROTOCOL_ERROR),
    "headers-on-stream-0": (
        lambda e: w.frame(w.HEADERS, w.END_HEADERS, 0, request_headers(e, "/t.T/Echo")),
        w.PROTOCOL_ERROR,
    ),
    "headers-on-an-even-stream": (
        lambda e: w.frame(w.HEADERS, w.END_HEADERS, 2, request_headers(e, "/t.T/Echo")),
        w.PROTOCOL_ERROR,
    ),
    "data-on-an-idle-stream": (lambda e: w.frame(w.DATA, 0, 5, grpc_message(b"x")), w.PROTOCOL_ERROR),
    "continuation-without-headers": (lambda e: w.frame(w.CONTINUATION, w.END_HEADERS, 1), w.PROTOCOL_ERROR),
    "rst-stream-on-stream-0": (lambda e: w.rst_stream(0, w.CANCEL), w.PROTOCOL_ERROR),
    "undecodable-header-block": (
        lambda e: w.frame(w.HEADERS, w.END_HEADERS, 1, b"\xff\xff\xff\xff"),
        w.COMPRESSION_ERROR,
    ),
}


@pytest.mark.parametrize("case", CONNECTION_ERRORS.keys())
async def test_connection_errors_end_with_goaway(env: Env, case: str) -> None:
    build, code = CONNECTION_ERRORS[case]
    peer = await env.connect()
    await peer.handshake()
    await peer.send(build(peer.encoder))
    assert [goaway_code(f) for f in await peer.rest() if f.kind == w.GOAWAY] == [code]


async def test_stream_errors_reset_one_stream_and_the_connection_goes_on(env: Env) -> None:
    peer = await env.connect()
    await peer.handshake()
    await peer.send(w.frame(w.HEADERS, w.END_HEADERS, 1, request_headers(peer.encoder, "/t.T/Block")))
    await asyncio.wait_for(env.probe.started.wait(), LIMIT)
    await peer.send(w.window_update(1, 0))
    assert (await peer.until(w.RST_STREAM, sid=1))[-1].payload == w.PROTOCOL_ERROR.to_bytes(4, "big")
    await asyncio.wait_for(env.probe.finished.wait(), LIMIT)
    assert env.probe.cancelled
    block = request_headers(peer.encoder, "/t.T/Block")  # DATA after the client ended its side
    await peer.send(w.frame(w.HEADERS, w.END_HEADERS | w.END_STREAM, 3, block), w.frame(w.DATA, 0, 3, b"late"))
    assert (await peer.until(w.RST_STREAM, sid=3))[-1].payload == w.STREAM_CLOSED.to_bytes(4, "big")
    compressed = b"\x01" + (3).to_bytes(4, "big") + b"abc"
    await peer.send(
        w.frame(w.HEADERS, w.END_HEADERS, 5, request_headers(peer.encoder, "/t.T/Echo")),
        w.frame(w.DATA, w.END_STREAM, 5, compressed),
    )
    answer = peer.headers((await peer.until(w.HEADERS, w.END_STREAM, sid=5))[-1])
    assert answer["grpc-status"] == "12"
    assert "compressed" in answer["grpc-message"]
    await peer.send(
        w.frame(w.HEADERS, w.END_HEADERS, 7, request_headers(peer.encoder, "/t.T/Echo")),
        w.frame(0xFA, 0xFF, 7, b"an unknown frame type is ignored"),
        w.frame(w.DATA, w.END_STREAM, 7, grpc_message(b"still here")),
    )
    assert grpc_messages(data_bytes(await peer.until(w.HEADERS, w.END_STREAM, sid=7), 7)) == [b"still here"]


async def test_settings_raising_the_initial_window_releases_held_data(env: Env) -> None:
    peer = await env.connect()
    await peer.handshake({w.SETTINGS_INITIAL_WINDOW_SIZE: 100})
    await open_sized(env, peer, 1_000)
    held = await peer.sync()
    assert len(data_bytes(held, 1)) == 100
    await peer.send(w.settings({w.SETTINGS_INITIAL_WINDOW_SIZE: 2_000}))
    rest = await peer.until(w.HEADERS, w.END_STREAM, sid=1)
    assert grpc_messages(data_bytes(held + rest, 1)) == [bytes(i % 251 for i in range(1_000))]


async def test_a_reset_call_gives_its_held_data_window_to_others(env: Env) -> None:
    peer = await env.connect()
    await peer.handshake({w.SETTINGS_INITIAL_WINDOW_SIZE: 1 << 20})
    await open_sized(env, peer, 100_000)  # stream 1 takes the whole 65535-byte connection window
    assert len(data_bytes(await peer.sync(), 1)) == w.DEFAULT_WINDOW
    await peer.send(w.rst_stream(1, w.CANCEL), w.window_update(0, 50_000))
    assert [f for f in await peer.sync() if f.sid == 1] == []  # nothing more of the reset stream
    env.probe.finished.clear()
    await open_sized(env, peer, 40_000, sid=3)
    got = await peer.until(w.HEADERS, w.END_STREAM, sid=3)
    assert grpc_messages(data_bytes(got, 3)) == [bytes(i % 251 for i in range(40_000))]


async def test_client_goaway_closes_an_idle_connection(env: Env) -> None:
    peer = await env.connect()
    await peer.handshake()
    await peer.send(w.goaway(0, w.NO_ERROR))
    assert [f.kind for f in await peer.rest()] == [w.SETTINGS]  # the ACK of our SETTINGS, then the close


async def test_graceful_stop_delivers_a_call_held_by_flow_control(env: Env) -> None:
    peer = await env.connect()
    await peer.handshake({w.SETTINGS_INITIAL_WINDOW_SIZE: 100})
    await open_sized(env, peer, 1_000)
    held = await peer.sync()
    stop = asyncio.create_task(env.server.stop(grace=LIMIT))
    try:
        held += await peer.until(w.GOAWAY)
        await peer.send(w.window_update(1, 10_000))  # the last DATA and the trailers go out in the turn that closes
        rest = await peer.rest()
        assert grpc_messages(data_bytes(held + rest, 1)) == [bytes(i % 251 for i in range(1_000))]
        assert peer.headers(rest[-1]) == {"grpc-status": "0"}
        await asyncio.wait_for(stop, LIMIT)
    finally:
        await stop

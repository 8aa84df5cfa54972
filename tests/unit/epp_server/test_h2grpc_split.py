"""A property of `inferplane.epp.h2grpc`'s parser: a client's byte stream delivered in any split — across the
preface, frame headers, padding, gRPC message prefixes — gives the handler the same messages and the client the same
answer as delivered whole."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import hpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferplane.epp.h2grpc import wire as w
from inferplane.epp.h2grpc.connection import Connection
from inferplane.epp.h2grpc.server import Call, H2GrpcServer, Method
from tests.unit.epp_server.h2grpc_peer import (
    LIMIT,
    Frame,
    data_bytes,
    grpc_message,
    grpc_messages,
    parse_frames,
    request_headers,
)


class RecordingTransport:
    """What `Connection` needs of an asyncio transport, keeping what the server writes."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


STREAMS = (1, 3)


def client_bytes(messages: dict[int, list[bytes]], frame_sizes: list[int], padded: bool, split_at: int) -> bytes:
    """Preface, SETTINGS, a HEADERS block per stream (split into HEADERS + CONTINUATION at `split_at`, if inside it;
    one encoder, so the second block refers to the first's dynamic-table entries), then both streams' messages cut
    into DATA frames of `frame_sizes` (cycled) and interleaved, each stream ending with END_STREAM."""
    out = [w.PREFACE, w.settings({w.SETTINGS_INITIAL_WINDOW_SIZE: 1 << 20})]
    encoder = hpack.Encoder()
    for sid in STREAMS:
        block = request_headers(encoder, "/t.T/Echo", **{"x-stream": str(sid)})
        if 0 < split_at < len(block):
            out += [
                w.frame(w.HEADERS, 0, sid, block[:split_at]),
                w.frame(w.CONTINUATION, w.END_HEADERS, sid, block[split_at:]),
            ]
        else:
            out.append(w.frame(w.HEADERS, w.END_HEADERS, sid, block))
    streams = {sid: b"".join(grpc_message(m) for m in messages[sid]) for sid in STREAMS}
    pos, i = dict.fromkeys(STREAMS, 0), 0
    while any(pos[sid] < len(streams[sid]) for sid in STREAMS):
        for sid in STREAMS:
            n = frame_sizes[i % len(frame_sizes)]
            chunk = streams[sid][pos[sid] : pos[sid] + n]
            if chunk:
                body = b"\x02" + chunk + b"\0\0" if padded else chunk
                out.append(w.frame(w.DATA, w.PADDED if padded else 0, sid, body))
            pos[sid] += n
            i += 1
    out += [w.frame(w.DATA, w.END_STREAM, sid) for sid in STREAMS]
    return b"".join(out)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({0, len(data), *(p % (len(data) + 1) for p in points)})
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def echo_methods(received: dict[int, list[bytes]], done: asyncio.Event) -> dict[str, Method]:
    async def echo(call: Call) -> None:
        assert call.metadata("x-stream") == str(call.stream_id)
        while (msg := await call.read()) is not None:
            received[call.stream_id].append(msg)
            await call.write(msg)
        finished.add(call.stream_id)
        if finished == set(STREAMS):
            done.set()

    finished: set[int] = set()
    return {"/t.T/Echo": Method(echo, bytes, bytes)}


async def feed(chunks: list[bytes], yields: bool) -> tuple[dict[int, list[bytes]], list[Frame]]:
    """Each chunk to `data_received`; with `yields`, the handlers run between chunks (reading as bytes arrive)."""
    received: dict[int, list[bytes]] = {sid: [] for sid in STREAMS}
    done = asyncio.Event()
    conn = Connection(H2GrpcServer(echo_methods(received, done)))
    transport: Any = RecordingTransport()
    conn.connection_made(transport)
    for chunk in chunks:
        conn.data_received(chunk)
        if yields:
            await asyncio.sleep(0)
    await asyncio.wait_for(done.wait(), LIMIT)
    assert not transport.closed
    return received, parse_frames(bytes(transport.written))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages=st.fixed_dictionaries({sid: st.lists(st.binary(max_size=3_000), max_size=4) for sid in STREAMS}),
    frame_sizes=st.lists(st.integers(1, 4_000), min_size=1, max_size=4),
    padded=st.booleans(),
    split_at=st.integers(0, 60),
    points=st.lists(st.integers(0, 1 << 20), max_size=30),
    yields=st.booleans(),
)
async def test_any_split_of_the_byte_stream_gives_the_same_calls(
    messages: dict[int, list[bytes]],
    frame_sizes: list[int],
    padded: bool,
    split_at: int,
    points: list[int],
    yields: bool,
) -> None:
    # Fed to `Connection.data_received` directly (no socket): TCP on loopback would merge the small writes, so only
    # this way does each example really reach the parser in the chunks hypothesis chose.
    data = client_bytes(messages, frame_sizes, padded, split_at)
    received, frames = await feed(cut(data, points), yields)
    assert received == messages
    for sid in STREAMS:
        assert grpc_messages(data_bytes(frames, sid)) == messages[sid]
        answer = [f for f in frames if f.sid == sid]
        assert answer[0].kind == w.HEADERS
        assert answer[-1].kind == w.HEADERS
        assert answer[-1].flags & w.END_STREAM
        trailers = hpack.Decoder().decode(answer[-1].payload)
        if messages[sid]:
            assert trailers == [("grpc-status", "0")]
        else:  # nothing was written: a trailers-only answer
            assert trailers == [(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "0")]
    whole, whole_frames = await feed([data], yields=False)  # and as one read of everything
    assert whole == received
    if not yields:  # all input arrives before any handler runs: the very same frames, in the same order
        assert whole_frames == frames

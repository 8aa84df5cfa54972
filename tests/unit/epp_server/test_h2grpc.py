"""inferplane's own gRPC-over-HTTP/2 server (`inferplane.epp.h2grpc`) against a real grpcio client on loopback: unary
and bidirectional calls, concurrency on one connection, large messages through flow control both ways, status codes,
cancellation, half-close, metadata, graceful stop and TLS. Frame-level behaviour: test_h2grpc_frames.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
import uvloop
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inferplane.epp.h2grpc import call as call_module
from inferplane.epp.h2grpc.server import Call, CallError, H2GrpcServer, Method
from inferplane.epp.tls import self_signed, ssl_context

LIMIT = 10.0  # seconds any single wait in these tests may take before it counts as a hang
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]


@dataclass
class Probe:
    """What the test handlers saw, and the events a test waits on instead of sleeping."""

    started: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # the blocking handler's `finally` ran
    release: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: bool = False
    received: list[bytes] = field(default_factory=list)
    expected: int = 0  # how many Gather calls must be in flight at once before any is answered
    arrived: int = 0
    all_in: asyncio.Event = field(default_factory=asyncio.Event)


def identity(data: bytes) -> bytes:
    return data


def make_methods(probe: Probe) -> dict[str, Method]:
    async def echo(call: Call) -> None:
        while (msg := await call.read()) is not None:
            probe.received.append(msg)
            await call.write(msg)

    async def count(call: Call) -> None:
        n = 0
        while await call.read() is not None:
            n += 1
        await call.write(b"%d" % n)  # only reachable once read() returned None

    async def fail(call: Call) -> None:
        msg = await call.read()
        status, _, text = msg.partition(b":")
        raise CallError(int(status), text.decode())

    async def crash(call: Call) -> None:
        await call.read()
        raise RuntimeError("secret internals")

    async def block(call: Call) -> None:
        try:
            probe.received.append(await call.read())
            probe.started.set()
            await probe.release.wait()
            await call.write(b"released")
        except asyncio.CancelledError:
            probe.cancelled = True
            raise
        finally:
            probe.finished.set()

    async def meta(call: Call) -> None:
        names = (await call.read()).decode().split(",")
        await call.write(",".join(f"{n}={call.metadata(n)}" for n in names).encode())

    async def gather(call: Call) -> None:
        msg = await call.read()
        probe.arrived += 1
        if probe.arrived == probe.expected:
            probe.all_in.set()
        await probe.all_in.wait()
        await call.write(msg[::-1])

    async def health(call: Call) -> None:
        req = await call.read()
        if req.service != "svc":
            raise CallError(grpc.StatusCode.NOT_FOUND.value[0], f"unknown service {req.service!r}")
        await call.write(health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING))

    raw = {"Echo": echo, "Count": count, "Fail": fail, "Crash": crash, "Block": block, "Meta": meta, "Gather": gather}
    methods = {f"/t.T/{name}": Method(h, identity, identity) for name, h in raw.items()}
    methods["/grpc.health.v1.Health/Check"] = Method(
        health, health_pb2.HealthCheckRequest.FromString, health_pb2.HealthCheckResponse.SerializeToString
    )
    return methods


@dataclass
class Served:
    server: H2GrpcServer
    port: int
    channel: grpc.aio.Channel
    probe: Probe

    def bidi(self, name: str) -> grpc.aio.StreamStreamMultiCallable:
        return self.channel.stream_stream(f"/t.T/{name}")

    def unary(self, name: str) -> grpc.aio.UnaryUnaryMultiCallable:
        return self.channel.unary_unary(f"/t.T/{name}")


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[Served]:
    probe = Probe()
    server = H2GrpcServer(make_methods(probe))
    port = await server.start("127.0.0.1", 0)
    try:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS)
        try:
            yield Served(server, port, channel, probe)
        finally:
            await channel.close()
    finally:
        await server.stop(0)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serving() as s:
        yield s


async def test_unary_call_with_protobuf_messages(served: Served) -> None:
    stub = health_pb2_grpc.HealthStub(served.channel)
    resp = await stub.Check(health_pb2.HealthCheckRequest(service="svc"), timeout=LIMIT)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Check(health_pb2.HealthCheckRequest(service="other"), timeout=LIMIT)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details() == "unknown service 'other'"


async def test_bidi_echo_keeps_order_of_many_messages(served: Served) -> None:
    call = served.bidi("Echo")(timeout=LIMIT)
    sent = [os.urandom(i % 300) + b"#%d" % i for i in range(300)]
    for msg in sent[:10]:  # ping-pong first, then a burst written before anything is read
        await call.write(msg)
        assert await call.read() == msg
    for msg in sent[10:]:
        await call.write(msg)
    await call.done_writing()
    got = [await call.read() for _ in sent[10:]]
    assert got == sent[10:]
    assert await call.read() is grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK
    assert served.probe.received == sent


async def test_fifty_concurrent_calls_share_one_connection(served: Served) -> None:
    # every handler waits until all calls have arrived: this completes only if the server runs them concurrently
    served.probe.expected = 64
    unary = served.unary("Gather")
    msgs = [b"call-%03d" % i for i in range(64)]
    got = await asyncio.wait_for(asyncio.gather(*(unary(m, timeout=LIMIT) for m in msgs)), LIMIT)
    assert got == [m[::-1] for m in msgs]
    assert len(served.server.connections) == 1


async def test_large_messages_both_ways_through_flow_control(served: Served) -> None:
    # 4 x 5 MiB each way on one stream: more than the server's 1 MiB stream window and 16 MiB connection window
    # (so it must send WINDOW_UPDATEs) and more than grpcio's receive windows (so the server must hold DATA back
    # and split it at the client's max frame size)
    msgs = [os.urandom(64) * (5 * (1 << 20) // 64) for _ in range(4)]
    call = served.bidi("Echo")(timeout=LIMIT)

    async def writer() -> None:
        for m in msgs:
            await call.write(m)
        await call.done_writing()

    task = asyncio.create_task(writer())
    try:
        for m in msgs:
            got = await call.read()
            assert len(got) == len(m)
            assert got == m
        assert await call.code() == grpc.StatusCode.OK
    finally:
        await task


async def test_unknown_method_is_unimplemented(served: Served) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await served.unary("Nope")(b"x", timeout=LIMIT)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "/t.T/Nope" in (err.value.details() or "")
    call = served.bidi("AlsoNope")(timeout=LIMIT)
    assert await call.code() == grpc.StatusCode.UNIMPLEMENTED
    assert await served.unary("Echo")(b"still fine", timeout=LIMIT) == b"still fine"  # the connection survives


@pytest.mark.parametrize(
    ("status", "details"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, "bad request"),
        (grpc.StatusCode.PERMISSION_DENIED, "100% denied: naïve ✓\nnext line"),  # percent-encoded on the wire
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full"),
    ],
)
async def test_call_error_ends_the_call_with_its_status(served: Served, status: grpc.StatusCode, details: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await served.unary("Fail")(b"%d:%s" % (status.value[0], details.encode()), timeout=LIMIT)
    assert err.value.code() == status
    assert err.value.details() == details


async def test_handler_exception_is_unknown_without_internals(served: Served) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await served.unary("Crash")(b"x", timeout=LIMIT)
    assert err.value.code() == grpc.StatusCode.UNKNOWN
    assert "secret" not in (err.value.details() or "")


@pytest.mark.parametrize("size", [2_000, 100_000], ids=["one-frame", "many-frames"])
async def test_message_over_max_message_is_resource_exhausted(
    served: Served, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    monkeypatch.setattr(call_module, "MAX_MESSAGE", 1_000)
    assert await served.unary("Echo")(b"a" * 1_000, timeout=LIMIT) == b"a" * 1_000  # the limit itself is allowed
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await served.unary("Echo")(b"b" * size, timeout=LIMIT)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert served.probe.received == [b"a" * 1_000]  # the handler never saw the oversized message
    assert await served.unary("Echo")(b"ok", timeout=LIMIT) == b"ok"  # a stream error, not a connection error


async def test_client_cancel_cancels_the_handler(served: Served) -> None:
    call = served.bidi("Block")(timeout=LIMIT)
    await call.write(b"hello")
    await asyncio.wait_for(served.probe.started.wait(), LIMIT)
    call.cancel()
    await asyncio.wait_for(served.probe.finished.wait(), LIMIT)
    assert served.probe.cancelled
    assert served.probe.received == [b"hello"]
    assert await served.unary("Echo")(b"next", timeout=LIMIT) == b"next"


async def test_half_close_makes_read_return_none(served: Served) -> None:
    call = served.bidi("Count")(timeout=LIMIT)
    for _ in range(3):
        await call.write(b"m")
    await call.done_writing()
    assert await call.read() == b"3"
    assert await call.code() == grpc.StatusCode.OK
    # a unary call half-closes with its only message
    assert await served.unary("Count")(b"m", timeout=LIMIT) == b"1"


async def test_metadata_sees_client_headers(served: Served) -> None:
    got = await served.unary("Meta")(
        b"x-tenant,x-request-id,x-missing,:path",
        metadata=(("x-tenant", "blue"), ("x-request-id", "r-17")),
        timeout=LIMIT,
    )
    assert got == b"x-tenant=blue,x-request-id=r-17,x-missing=None,:path=/t.T/Meta"


async def test_graceful_stop_finishes_calls_in_progress_and_refuses_new_ones(served: Served) -> None:
    call = served.bidi("Block")(timeout=LIMIT)
    await call.write(b"in progress")
    await asyncio.wait_for(served.probe.started.wait(), LIMIT)
    stop = asyncio.create_task(served.server.stop(grace=LIMIT))
    try:
        await asyncio.sleep(0)  # one loop turn: stop() sends GOAWAY and closes the listener before its first await
        assert all(c.going_away for c in served.server.connections)
        for channel in (served.channel, grpc.aio.insecure_channel(f"127.0.0.1:{served.port}")):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await channel.unary_unary("/t.T/Echo")(b"new", timeout=LIMIT)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            if channel is not served.channel:
                await channel.close()
        assert not stop.done()  # still waiting for the call in progress
        served.probe.release.set()
        assert await call.read() == b"released"
        assert await call.code() == grpc.StatusCode.OK
        await asyncio.wait_for(stop, LIMIT)  # returns as soon as the last connection closed, well within grace
        assert not served.probe.cancelled
    finally:
        served.probe.release.set()
        await stop


async def test_graceful_stop_cancels_calls_still_running_after_grace(served: Served) -> None:
    call = served.bidi("Block")(timeout=LIMIT)
    await call.write(b"stuck")
    await asyncio.wait_for(served.probe.started.wait(), LIMIT)
    await asyncio.wait_for(served.server.stop(grace=0.05), LIMIT)
    assert served.probe.finished.is_set()  # stop() returned after the handler's cleanup ran
    assert served.probe.cancelled
    assert not served.server.connections
    assert await call.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)


async def test_second_server_on_the_same_port_raises_oserror(served: Served) -> None:
    other = H2GrpcServer({})
    try:
        with pytest.raises(OSError, match="in use"):
            await other.start("127.0.0.1", served.port)
    finally:
        await other.stop(0)
    assert await served.unary("Echo")(b"first still serves", timeout=LIMIT) == b"first still serves"


async def test_tls_with_a_self_signed_certificate() -> None:
    cert = self_signed()
    probe = Probe()
    server = H2GrpcServer(make_methods(probe))
    port = await server.start("127.0.0.1", 0, ssl_context(cert))
    try:
        creds = grpc.ssl_channel_credentials(root_certificates=cert.cert_pem)
        async with grpc.aio.secure_channel(f"127.0.0.1:{port}", creds) as ch:
            call = ch.stream_stream("/t.T/Echo")(timeout=LIMIT)
            for msg in (b"one", b"two", os.urandom(200_000)):
                await call.write(msg)
                assert await call.read() == msg
            await call.done_writing()
            assert await call.code() == grpc.StatusCode.OK
            got = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service="svc"))
            assert got.status == health_pb2.HealthCheckResponse.SERVING
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:  # plaintext cannot talk to the TLS port
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await ch.unary_unary("/t.T/Echo")(b"x", timeout=LIMIT)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(0)


@pytest.mark.parametrize(
    "scenario",
    [
        test_bidi_echo_keeps_order_of_many_messages,
        test_fifty_concurrent_calls_share_one_connection,
        test_large_messages_both_ways_through_flow_control,
        test_client_cancel_cancels_the_handler,
        test_graceful_stop_finishes_calls_in_progress_and_refuses_new_ones,
    ],
    ids=lambda f: f.__name__.removeprefix("test_"),
)
def test_on_uvloop(scenario: Callable[[Served], Awaitable[None]]) -> None:
    """`inferplane epp` runs on uvloop, whose transports are not asyncio's: the main scenarios once more there."""

    async def run() -> None:
        async with serving() as s:
            await scenario(s)

    run_on_uvloop(run())


def test_tls_on_uvloop() -> None:
    run_on_uvloop(test_tls_with_a_self_signed_certificate())


def run_on_uvloop(coro: Coroutine[Any, Any, None]) -> None:
    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(coro)
    finally:
        loop.close()

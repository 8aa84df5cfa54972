"""The scraper's keep-alive GET client: response parsing wherever reads split, and real servers on loopback."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.epp.datalayer.http_get import HTTPGetError, HTTPGetter, _ResponseParser
from inferplane.net import free_port


def chunked(body: bytes, sizes: list[int]) -> bytes:
    out, pos = [], 0
    for n in sizes:
        part = body[pos : pos + n]
        if not part:
            break
        out.append(b"%x;ext=1\r\n%s\r\n" % (len(part), part))
        pos += n
    if pos < len(body):
        out.append(b"%x\r\n%s\r\n" % (len(body) - pos, body[pos:]))
    return b"".join(out) + b"0\r\n\r\n"


@settings(max_examples=150, deadline=None)
@given(
    body=st.binary(max_size=3000),
    use_chunked=st.booleans(),
    sizes=st.lists(st.integers(1, 700), max_size=6),
    cuts=st.lists(st.integers(0, 4000), max_size=6),
)
def test_parser_handles_any_split(body: bytes, use_chunked: bool, sizes: list[int], cuts: list[int]) -> None:
    if use_chunked:
        wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, sizes)
    else:
        wire = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: %d\r\nX: y\r\n\r\n" % len(body) + body
    p = _ResponseParser()
    prev = 0
    for c in sorted({min(c, len(wire)) for c in cuts}):
        p.feed(wire[prev:c])
        prev = c
        if c < len(wire):
            assert not p.done  # never done before the last byte of the message
    p.feed(wire[prev:])
    assert p.done
    assert p.body == body
    assert p.status == (200 if use_chunked else 503)
    assert p.keep_alive


@pytest.mark.parametrize(
    "wire",
    [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", b"HTTP/1.1 200\r\n"
     b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"],
)  # fmt: skip
def test_parser_rejects_garbage(wire: bytes) -> None:
    with pytest.raises(HTTPGetError):
        _ResponseParser().feed(wire)


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


async def test_real_server_keep_alive_chunked_and_reconnect() -> None:
    page = "vllm:num_requests_waiting 3\n" * 500

    async def plain(request: web.Request) -> web.Response:
        return web.Response(text=page)

    async def chunky(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(0, len(page), 1000):
            await resp.write(page[i : i + 1000].encode())
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/metrics", plain)
    app.router.add_get("/chunked", chunky)
    runner, port = await serve(app)
    try:
        g = HTTPGetter("127.0.0.1", port)
        for _ in range(3):
            assert await g.get(2.0) == (200, page.encode())
        assert g.connections == 1  # kept alive
        c = HTTPGetter("127.0.0.1", port, "/chunked")
        assert await c.get(2.0) == (200, page.encode())
        assert (await HTTPGetter("127.0.0.1", port, "/nope").get(2.0))[0] == 404
        # the server drops idle connections: the next GET reconnects on its own
        assert g._proto is not None
        assert g._proto.transport is not None
        g._proto.transport.close()
        await asyncio.sleep(0.01)
        assert await g.get(2.0) == (200, page.encode())
        assert g.connections == 2
        g.close()
        c.close()
    finally:
        await runner.cleanup()


async def test_refused_and_silent_servers() -> None:
    with pytest.raises(ConnectionRefusedError):
        await HTTPGetter("127.0.0.1", free_port()).get(1.0)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TimeoutError):
            await HTTPGetter("127.0.0.1", port).get(0.1)
    finally:
        server.close()

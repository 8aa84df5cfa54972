"""Echo backends for gateway tests: one process, one port per backend name, every answer says who served it.

    python echo_server.py --names a,b,c --ports-file F

binds 127.0.0.1:0 for each name (the kernel picks free ports, so parallel tests never collide), writes
`{"name": port, ...}` to F once every socket listens, and answers every request with JSON: backend, method, path,
query, headers, host and the body. `x-echo-delay-ms` delays the answer (timeouts, in-flight tests), and a request
with `x-echo-sleeping` answers how many delayed requests are running.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

from aiohttp import web


def make_app(name: str) -> web.Application:
    sleeping = 0

    async def echo(request: web.Request) -> web.Response:
        nonlocal sleeping
        if "x-echo-sleeping" in request.headers:  # asked directly by a test: how many delayed requests run here
            return web.json_response({"sleeping": sleeping})
        body = await request.read()
        delay = float(request.headers.get("x-echo-delay-ms", "0")) / 1000
        if delay:
            sleeping += 1
            try:
                await asyncio.sleep(delay)
            finally:
                sleeping -= 1
        return web.json_response(
            {
                "backend": name,
                "method": request.method,
                "path": request.path,
                "query": list(request.query.items()),
                # repeated headers joined with "," as RFC 9110 §5.3 allows (what an `add` filter produces)
                "headers": {k.lower(): ",".join(request.headers.getall(k)) for k in request.headers},
                "host": request.host,
                "body_len": len(body),
                "body": body.decode(errors="replace")[:2000],
            },
            headers={"x-echo-backend": name},
        )

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


async def serve(names: list[str], ports_file: Path) -> None:
    ports = {}
    for name in names:
        runner = web.AppRunner(make_app(name), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        ports[name] = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    tmp = ports_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(ports))
    os.replace(tmp, ports_file)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--names", required=True)
    parser.add_argument("--ports-file", required=True, type=Path)
    args = parser.parse_args()
    asyncio.run(serve([n for n in args.names.split(",") if n], args.ports_file))


if __name__ == "__main__":
    main()

"""The server: listens, one `Connection` per client, one task per gRPC call (see the package docstring for why
this exists next to grpc.aio)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from inferplane.epp.h2grpc.call import Call, CallError, Method
from inferplane.epp.h2grpc.connection import Connection

__all__ = ["Call", "CallError", "H2GrpcServer", "Method"]

CANCEL_WAIT = 1.0  # seconds stop() waits for cancelled handlers to finish


class H2GrpcServer:
    """Serves `methods` ({"/package.Service/Method": Method}) on one listening socket."""

    def __init__(self, methods: dict[str, Method]) -> None:
        self.methods = {path.encode(): m for path, m in methods.items()}
        self.connections: set[Connection] = set()
        self._all_closed = asyncio.Event()
        self._server: asyncio.Server | None = None

    def forget(self, conn: Connection) -> None:
        self.connections.discard(conn)
        if not self.connections:
            self._all_closed.set()

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> int:
        """Listen; returns the bound port (useful with port 0). A port in use raises OSError."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self), host, port, ssl=ssl_context)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self, grace: float = 1.0) -> None:
        if self._server is None:
            return
        self._server.close()
        for conn in list(self.connections):
            conn.goaway()
        if self.connections:
            self._all_closed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_closed.wait(), grace)
        running = [
            call.task
            for conn in self.connections
            for call in conn.calls.values()
            if call.task is not None and call.task is not asyncio.current_task()
        ]
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
            conn.connection_lost(None)  # cancels the calls still running
        if running:
            # when stop returns no handler of this server is still running (their `finally` blocks have run);
            # bounded, in case a handler swallows the cancellation
            await asyncio.wait(running, timeout=CANCEL_WAIT)
        with contextlib.suppress(Exception):
            await self._server.wait_closed()
        self._server = None

"""One gRPC call (an HTTP/2 stream the client opened) as its handler sees it, with what grpc.aio's servicer context
offers streaming methods: `await call.read()` (a message, or None once the client half-closed) and
`await call.write(message)`, so one servicer runs on either server."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from inferplane.epp.h2grpc import wire as w

if TYPE_CHECKING:
    from inferplane.epp.h2grpc.connection import Connection

MAX_MESSAGE = 64 * 1024 * 1024  # the picker's grpc.aio limit (server.GRPC_OPTIONS)
STREAM_WINDOW = 1 << 20  # what each call may receive before we acknowledge it
# Received messages a handler has not read yet, in wire bytes, above which the stream's flow-control credit is held
# back until it reads: a peer cannot make the server buffer more than about a window per call. Bytes of a message
# still arriving are always credited, so a message larger than the window can complete.
HOLD = STREAM_WINDOW // 2


@dataclass(frozen=True)
class Method:
    """A gRPC method: the coroutine serving one call, and how its messages are (de)serialised."""

    handler: Callable[[Call], Awaitable[None]]
    deserialize: Callable[[bytes], Any]
    serialize: Callable[[Any], bytes]


class CallError(Exception):
    """Ends a call with a gRPC status (a stream error, not a connection error)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Call:
    """One gRPC call: an HTTP/2 stream the client opened."""

    __slots__ = (
        "_buf",
        "_conn",
        "_inbox",
        "_method",
        "_waiter",
        "deferred",
        "drained",
        "headers",
        "headers_sent",
        "local_closed",
        "pending",
        "recv_unacked",
        "remote_closed",
        "reset",
        "send_window",
        "stream_id",
        "task",
        "trailers",
        "unread",
    )

    def __init__(self, conn: Connection, stream_id: int, method: Method, headers: list[tuple[bytes, bytes]]) -> None:
        self._conn = conn
        self._method = method
        self.stream_id = stream_id
        self.headers = headers
        self._inbox: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._buf = bytearray()
        self.remote_closed = False
        self.local_closed = False
        self.reset = False
        self.headers_sent = False
        self.send_window = conn.peer_initial_window
        self.recv_unacked = 0  # bytes received and consumed, not yet acknowledged with a WINDOW_UPDATE
        self.unread = 0  # wire bytes of the messages in the inbox
        self.deferred = 0  # bytes received while the handler was behind: acknowledged once it reads
        self.pending = bytearray()  # DATA waiting for flow-control window
        self.trailers: bytes | None = None  # written once `pending` drains
        self.drained: asyncio.Future[None] | None = None  # a write waiting for `pending` to drain
        self.task: asyncio.Task[None] | None = None

    async def read(self) -> Any:
        """The next request message, or None once the client has half-closed the stream."""
        while not self._inbox:
            if self.remote_closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        message = self._inbox.popleft()
        self.unread -= 5 + len(message)
        if self.deferred and self.unread <= HOLD:
            self._conn.release_credit(self)
        return self._method.deserialize(message)

    async def write(self, message: Any) -> None:
        self._conn.send_message(self, self._method.serialize(message))
        if len(self.pending) > HOLD:  # the peer is not taking what it is sent: wait until flow control lets it out
            self.drained = asyncio.get_running_loop().create_future()
            try:
                await self.drained
            finally:
                self.drained = None

    def metadata(self, name: str) -> str | None:
        key = name.encode()
        for k, v in self.headers:
            if k == key:
                return v.decode("latin-1")
        return None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def feed(self, data: bytes) -> None:
        """Bytes of the request stream in; whole length-prefixed gRPC messages out to the inbox."""
        buf = self._buf
        if (
            not buf
            and len(data) >= 5
            and data[0] == 0
            and int.from_bytes(data[1:5], "big") == len(data) - 5 <= MAX_MESSAGE
        ):
            self._inbox.append(data[5:])  # the common case: one message in one DATA frame
            self.unread += len(data)
            self._wake()
            return
        buf += data
        while len(buf) >= 5:
            if buf[0] != 0:
                raise CallError(w.UNIMPLEMENTED, "compressed messages are not supported (identity encoding only)")
            n = int.from_bytes(buf[1:5], "big")
            if n > MAX_MESSAGE:
                raise CallError(w.RESOURCE_EXHAUSTED, f"message of {n} bytes is larger than {MAX_MESSAGE}")
            if len(buf) < 5 + n:
                break
            self._inbox.append(bytes(buf[5 : 5 + n]))
            self.unread += 5 + n
            del buf[: 5 + n]
        self._wake()

    def end_of_input(self) -> None:
        self.remote_closed = True
        self._wake()

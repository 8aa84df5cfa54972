"""One HTTP/2 connection: frames in, calls out (RFC 9113). Everything runs on the event-loop thread: a read is
parsed, whole messages go to their call's task, and an answer goes out in the same loop turn with one write
(HEADERS and DATA together)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from inferplane.epp.h2grpc import wire as w
from inferplane.epp.h2grpc.call import HOLD, STREAM_WINDOW, Call, CallError
from inferplane.epp.h2grpc.hpack_decoder import HpackDecoder, HpackError

if TYPE_CHECKING:
    from inferplane.epp.h2grpc.server import H2GrpcServer

log = logging.getLogger(__name__)

CONNECTION_WINDOW = 16 << 20
MAX_HEADER_BLOCK = 64 * 1024


class Connection(asyncio.Protocol):
    def __init__(self, server: H2GrpcServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.calls: dict[int, Call] = {}
        self.blocked: dict[int, Call] = {}  # calls with DATA waiting for window
        self.peer_initial_window = w.DEFAULT_WINDOW
        self.send_window = w.DEFAULT_WINDOW  # the connection's
        self.max_frame_out = w.DEFAULT_MAX_FRAME
        self.recv_unacked = 0
        self.deferred = 0  # connection credit held back for calls whose handlers are behind
        self.last_stream_id = 0
        self.going_away = False
        self._preface_seen = False
        self._inbuf = bytearray()
        self._continuation: tuple[int, int, bytearray] | None = None
        self._decoder = HpackDecoder()
        self._corked: list[bytes] | None = None  # output of the frames being read, written when the read is done
        self._deferred: list[bytes] | None = None  # output of call tasks, written once per loop turn
        self._closing = False  # close once the pending output is written
        self._frames: dict[int, Callable[[int, int, bytes], None]] = {
            w.DATA: self._on_data,
            w.HEADERS: self._on_headers,
            w.CONTINUATION: self._on_continuation,
            w.WINDOW_UPDATE: self._on_window_update,
            w.RST_STREAM: self._on_rst_stream,
            w.SETTINGS: self._on_settings,
            w.PING: self._on_ping,
            w.GOAWAY: self._on_goaway,
            w.PRIORITY: self._on_priority,
            w.PUSH_PROMISE: self._on_push_promise,
        }

    # --- transport callbacks -----------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = transport = cast(asyncio.Transport, transport)
        self.server.connections.add(self)
        transport.write(
            w.settings({w.SETTINGS_INITIAL_WINDOW_SIZE: STREAM_WINDOW, w.SETTINGS_ENABLE_PUSH: 0})
            + w.window_update(0, CONNECTION_WINDOW - w.DEFAULT_WINDOW)
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.server.forget(self)
        for call in list(self.calls.values()):
            self._drop(call, reset=True)

    def data_received(self, data: bytes) -> None:
        if self._inbuf:
            self._inbuf += data
            view: bytes | bytearray = self._inbuf
            self._inbuf = bytearray()
        else:
            view = data
        n = len(view)
        pos = 0
        self._corked = out = []
        try:
            if not self._preface_seen:
                if n < len(w.PREFACE):
                    if not w.PREFACE.startswith(bytes(view)):
                        raise w.ProtocolError("not an HTTP/2 connection preface")
                    self._inbuf = bytearray(view)
                    return
                if view[: len(w.PREFACE)] != w.PREFACE:
                    raise w.ProtocolError("not an HTTP/2 connection preface")
                self._preface_seen = True
                pos = len(w.PREFACE)
            frames = self._frames
            while n - pos >= 9:
                length = int.from_bytes(view[pos : pos + 3], "big")
                if length > w.DEFAULT_MAX_FRAME:
                    raise w.ProtocolError(
                        f"frame of {length} bytes exceeds SETTINGS_MAX_FRAME_SIZE", w.FRAME_SIZE_ERROR
                    )
                end = pos + 9 + length
                if end > n:
                    break
                kind = view[pos + 3]
                if self._continuation is not None and kind != w.CONTINUATION:
                    raise w.ProtocolError("a header block was interrupted by another frame")
                handler = frames.get(kind)
                if handler is not None:  # unknown frame types are ignored (RFC 9113 §4.1)
                    sid = int.from_bytes(view[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
                    handler(view[pos + 4], sid, bytes(view[pos + 9 : end]))
                pos = end
            if pos < n:
                self._inbuf = bytearray(view[pos:])
        except w.ProtocolError as exc:
            log.warning("h2: connection error: %s", exc)
            out.append(w.goaway(self.last_stream_id, exc.code, str(exc).encode()))
            self._close()
        except Exception:  # a bug here must end this connection cleanly, not leave it half-parsed
            log.exception("h2: unexpected error while reading frames")
            out.append(w.goaway(self.last_stream_id, w.INTERNAL_ERROR))
            self._close()
        finally:
            self._flush_corked()

    def _flush_corked(self) -> None:
        out, self._corked = self._corked, None
        if self._deferred:  # what call tasks wrote earlier goes first: frames of one stream keep their order
            out = self._deferred + (out or [])
            self._deferred = None
        self._send(out)

    def _flush_deferred(self) -> None:
        if self._corked is None:  # else the read in progress flushes it, in order
            out, self._deferred = self._deferred, None
            self._send(out)

    def _send(self, out: list[bytes] | None) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if out:
            self.transport.write(b"".join(out))
        if self._closing:
            self.transport.close()

    def _close(self) -> None:
        """Close the connection after what this loop turn wrote: a transport drops writes made after close()."""
        self._closing = True
        if self._corked is None:
            self._flush_deferred()

    def _write(self, data: bytes) -> None:
        if self._corked is not None:
            self._corked.append(data)
        elif self._deferred is not None:
            self._deferred.append(data)
        elif self.transport is not None:
            # A call task's write waits until the loop has run the callbacks that are ready now, so the answers of
            # every stream that moved in this turn leave in one syscall (a write per answer was 13 % of the
            # picker's samples at 32 connections); at one request at a time it costs one callback, a few µs.
            self._deferred = [data]
            asyncio.get_running_loop().call_soon(self._flush_deferred)

    # --- frames in -----------------------------------------------------------------------------------------------

    def _on_data(self, flags: int, sid: int, payload: bytes) -> None:
        size = len(payload)  # flow control counts padding too
        if self.recv_unacked + self.deferred + size > CONNECTION_WINDOW:
            raise w.ProtocolError("DATA beyond the connection's flow-control window", w.FLOW_CONTROL_ERROR)
        call = self.calls.get(sid)
        if call is None:
            if sid == 0 or sid > self.last_stream_id:
                raise w.ProtocolError("DATA on an idle stream")
            self._credit(None, size)  # a stream we already ended (reset or answered): drop it, keep the window
            return
        if call.remote_closed:
            self._credit(None, size)
            self._abort(call, w.STREAM_CLOSED)
            return
        if call.recv_unacked + call.deferred + size > STREAM_WINDOW:
            self._credit(None, size)
            self._abort(call, w.FLOW_CONTROL_ERROR)
            return
        if flags & w.PADDED:
            payload = _unpad(payload)
        end = bool(flags & w.END_STREAM)
        try:
            if payload:
                call.feed(payload)
        except CallError as exc:
            self._credit(None, size)
            self._fail_call(call, exc.status, str(exc))
            return
        if call.unread > HOLD:  # the handler is behind: this frame's credit waits until it reads
            call.deferred += size
            self.deferred += size
        else:
            self._credit(None if end else call, size)
        if end:
            call.end_of_input()

    def _credit(self, call: Call | None, size: int) -> None:
        """Acknowledge `size` received bytes on the connection and, unless None, on `call`'s stream; WINDOW_UPDATEs
        go out once half a window is owed."""
        self.recv_unacked += size
        if self.recv_unacked >= CONNECTION_WINDOW // 2:
            self._write(w.window_update(0, self.recv_unacked))
            self.recv_unacked = 0
        if call is not None:
            call.recv_unacked += size
            if call.recv_unacked >= STREAM_WINDOW // 2:
                self._write(w.window_update(call.stream_id, call.recv_unacked))
                call.recv_unacked = 0

    def release_credit(self, call: Call) -> None:
        """The handler caught up: acknowledge what was held back for it."""
        size, call.deferred = call.deferred, 0
        self.deferred -= size
        self._credit(None if call.remote_closed or call.stream_id not in self.calls else call, size)

    def _on_headers(self, flags: int, sid: int, payload: bytes) -> None:
        if sid == 0:
            raise w.ProtocolError("HEADERS on stream 0")
        if flags & w.PADDED:
            payload = _unpad(payload)
        if flags & w.PRIORITY_FLAG:
            payload = payload[5:]
        if flags & w.END_HEADERS:
            self._headers_complete(sid, flags, payload)
        else:
            self._continuation = (sid, flags, bytearray(payload))

    def _on_continuation(self, flags: int, sid: int, payload: bytes) -> None:
        if self._continuation is None or self._continuation[0] != sid:
            raise w.ProtocolError("CONTINUATION without a header block in progress")
        block = self._continuation[2]
        block += payload
        if len(block) > MAX_HEADER_BLOCK:
            raise w.ProtocolError("header block too large", w.ENHANCE_YOUR_CALM)
        if flags & w.END_HEADERS:
            first_flags = self._continuation[1]
            self._continuation = None
            self._headers_complete(sid, first_flags, bytes(block))

    def _headers_complete(self, sid: int, flags: int, block: bytes) -> None:
        try:
            # every block goes through the one decoder in order, even a refused stream's, to keep its table in step
            headers = self._decoder.decode(block)
        except HpackError as exc:
            raise w.ProtocolError(f"header block: {exc}", w.COMPRESSION_ERROR) from None
        open_call = self.calls.get(sid)
        if open_call is not None:  # trailers from the client: they end its side
            if not flags & w.END_STREAM:
                raise w.ProtocolError("trailers without END_STREAM")
            open_call.end_of_input()
            return
        if sid % 2 == 1 and sid <= self.last_stream_id and flags & w.END_STREAM:
            # the client's trailers on a stream we already answered and reset: it sent them before our RST_STREAM
            # arrived, and frames on a stream we reset are ignored (RFC 9113 §5.1), as _on_data does with DATA
            return
        if sid % 2 == 0 or sid <= self.last_stream_id:
            raise w.ProtocolError(f"HEADERS opening stream {sid} after {self.last_stream_id}")
        self.last_stream_id = sid
        if self.going_away:
            self._write(w.rst_stream(sid, w.REFUSED_STREAM))
            return
        path = next((v for k, v in headers if k == b":path"), b"")
        method = self.server.methods.get(path)
        if method is None:
            block = w.RESPONSE_HEADERS + w.trailers(w.UNIMPLEMENTED, f"unknown method {path.decode('latin-1')}")
            self._write(w.frame(w.HEADERS, w.END_HEADERS | w.END_STREAM, sid, block))
            if not flags & w.END_STREAM:
                self._write(w.rst_stream(sid, w.NO_ERROR))
            return
        call = Call(self, sid, method, headers)
        self.calls[sid] = call
        if flags & w.END_STREAM:
            call.remote_closed = True
        call.task = asyncio.get_running_loop().create_task(self._run(call))

    def _on_window_update(self, flags: int, sid: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise w.ProtocolError("WINDOW_UPDATE of the wrong size", w.FRAME_SIZE_ERROR)
        increment = int.from_bytes(payload, "big") & 0x7FFFFFFF
        if sid == 0:
            if increment == 0:
                raise w.ProtocolError("WINDOW_UPDATE of 0 on the connection")
            self.send_window += increment
            if self.send_window > w.MAX_WINDOW:
                raise w.ProtocolError("connection window above 2^31-1", w.FLOW_CONTROL_ERROR)
            for blocked in list(self.blocked.values()):
                self._drain(blocked)
            return
        call = self.calls.get(sid)
        if call is None:
            return
        if increment == 0:
            self._abort(call, w.PROTOCOL_ERROR)
            return
        call.send_window += increment
        if call.send_window > w.MAX_WINDOW:
            self._abort(call, w.FLOW_CONTROL_ERROR)
            return
        if call.pending:
            self._drain(call)

    def _on_rst_stream(self, flags: int, sid: int, payload: bytes) -> None:
        if sid == 0 or len(payload) != 4:
            raise w.ProtocolError("malformed RST_STREAM")
        call = self.calls.get(sid)
        if call is not None:
            self._drop(call, reset=True)

    def _on_settings(self, flags: int, sid: int, payload: bytes) -> None:
        if sid != 0:
            raise w.ProtocolError("SETTINGS on a stream")
        if len(payload) % 6 or (flags & w.ACK and payload):
            raise w.ProtocolError("SETTINGS of the wrong size", w.FRAME_SIZE_ERROR)
        if flags & w.ACK:
            return
        for i in range(0, len(payload), 6):
            key = int.from_bytes(payload[i : i + 2], "big")
            value = int.from_bytes(payload[i + 2 : i + 6], "big")
            if key == w.SETTINGS_INITIAL_WINDOW_SIZE:
                if value > w.MAX_WINDOW:
                    raise w.ProtocolError("SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1", w.FLOW_CONTROL_ERROR)
                delta = value - self.peer_initial_window
                self.peer_initial_window = value
                for call in self.calls.values():
                    call.send_window += delta
            elif key == w.SETTINGS_MAX_FRAME_SIZE:
                if not w.DEFAULT_MAX_FRAME <= value <= 16_777_215:
                    raise w.ProtocolError("SETTINGS_MAX_FRAME_SIZE out of range")
                self.max_frame_out = value
            # HEADER_TABLE_SIZE needs nothing: what we send never indexes; the rest do not concern a server
        self._write(w.frame(w.SETTINGS, w.ACK, 0))
        for call in list(self.blocked.values()):
            self._drain(call)

    def _on_ping(self, flags: int, sid: int, payload: bytes) -> None:
        if sid != 0:
            raise w.ProtocolError("PING on a stream")
        if len(payload) != 8:
            raise w.ProtocolError("PING of the wrong size", w.FRAME_SIZE_ERROR)
        if not flags & w.ACK:
            self._write(w.frame(w.PING, w.ACK, 0, payload))

    def _on_goaway(self, flags: int, sid: int, payload: bytes) -> None:
        self.going_away = True
        if not self.calls:
            self._close()

    def _on_priority(self, flags: int, sid: int, payload: bytes) -> None:
        if len(payload) != 5:
            raise w.ProtocolError("PRIORITY of the wrong size", w.FRAME_SIZE_ERROR)

    def _on_push_promise(self, flags: int, sid: int, payload: bytes) -> None:
        raise w.ProtocolError("a client cannot push")

    # --- calls ---------------------------------------------------------------------------------------------------

    async def _run(self, call: Call) -> None:
        try:
            await call._method.handler(call)
        except asyncio.CancelledError:
            return  # reset by the client, or the connection went away: nothing to answer
        except CallError as exc:
            self._end(call, exc.status, str(exc))
        except Exception:
            log.exception("h2 gRPC: handler failed")
            self._end(call, w.UNKNOWN, "unexpected error in the handler")
        else:
            self._end(call, w.OK)

    def send_message(self, call: Call, message: bytes) -> None:
        if call.local_closed or call.reset:
            raise asyncio.CancelledError  # like grpc.aio's write on a cancelled call
        data = b"\x00" + len(message).to_bytes(4, "big") + message
        head = b""
        if not call.headers_sent:
            call.headers_sent = True
            head = w.frame(w.HEADERS, w.END_HEADERS, call.stream_id, w.RESPONSE_HEADERS)
        n = len(data)
        if not call.pending and n <= self.max_frame_out and n <= call.send_window and n <= self.send_window:
            call.send_window -= n
            self.send_window -= n
            self._write(head + w.frame(w.DATA, 0, call.stream_id, data))
            return
        if head:
            self._write(head)
        call.pending += data
        self._drain(call)

    def _drain(self, call: Call) -> None:
        """Send what flow control allows of a call's waiting DATA; the trailers follow once it is all out."""
        sid = call.stream_id
        while call.pending:
            n = min(len(call.pending), call.send_window, self.send_window, self.max_frame_out)
            if n <= 0:
                self.blocked[sid] = call
                return
            self._write(w.frame(w.DATA, 0, sid, bytes(call.pending[:n])))
            del call.pending[:n]
            call.send_window -= n
            self.send_window -= n
        self.blocked.pop(sid, None)
        if call.drained is not None and not call.drained.done():
            call.drained.set_result(None)
        if call.trailers is not None:
            self._close_local(call, call.trailers)

    def _end(self, call: Call, status: int, message: str = "") -> None:
        if call.reset or call.local_closed or self.transport is None:
            return
        block = w.OK_TRAILERS if status == w.OK and not message else w.trailers(status, message)
        if not call.headers_sent:
            call.headers_sent = True
            block = w.RESPONSE_HEADERS + block  # trailers-only answer
        if call.pending:
            call.trailers = block
            return
        self._close_local(call, block)

    def _close_local(self, call: Call, block: bytes) -> None:
        call.local_closed = True
        self._write(w.frame(w.HEADERS, w.END_HEADERS | w.END_STREAM, call.stream_id, block))
        if not call.remote_closed:
            self._write(w.rst_stream(call.stream_id, w.NO_ERROR))  # the answer is complete; stop sending
        self._drop(call, reset=False)

    def _fail_call(self, call: Call, status: int, message: str) -> None:
        if call.task is not None:
            call.task.cancel()
        call.pending.clear()
        self._end(call, status, message)
        self._drop(call, reset=False)

    def _abort(self, call: Call, code: int) -> None:
        self._write(w.rst_stream(call.stream_id, code))
        self._drop(call, reset=True)

    def _drop(self, call: Call, reset: bool) -> None:
        if call.deferred:  # the stream is gone, the connection window is not
            self.deferred -= call.deferred
            self._credit(None, call.deferred)
            call.deferred = 0
        self.calls.pop(call.stream_id, None)
        self.blocked.pop(call.stream_id, None)
        if reset:
            call.reset = True
            if call.task is not None and not call.task.done():
                call.task.cancel()
        if self.going_away and not self.calls:
            self._close()

    def goaway(self) -> None:
        """Graceful shutdown: no new calls; the connection closes when the open ones end."""
        if self.transport is None or self.going_away:
            return
        self.going_away = True
        self._write(w.goaway(self.last_stream_id, w.NO_ERROR))
        if not self.calls:
            self._close()


def _unpad(payload: bytes) -> bytes:
    if not payload or payload[0] >= len(payload):
        raise w.ProtocolError("padding longer than the frame")
    return payload[1 : len(payload) - payload[0]]

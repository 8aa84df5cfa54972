"""A small gRPC server over HTTP/2 on the asyncio event loop, for the ext_proc hot path.

Why hand-written (the house rule asks): grpc.aio moves every message through five thread wake-ups (gRPC core's
event-engine threads, the completion-queue poller, the loop) and ~400 µs of CPU per ext_proc stream on this
machine; grpclib (h2 in Python) costs as much. This server does the little gRPC needs of HTTP/2 on the loop thread
itself — frames, flow control, an HPACK decoder (the `hpack` library's tables and Huffman code, with a cache),
constant response header blocks, one write per loop turn — and hands whole messages to async handlers. Measured
through Envoy (benchmarks/BENCHMARKS.md, run H): a bare ext_proc server on it costs 90–160 µs of CPU per request
against ~500 µs on grpc.aio, and adds about half the latency; `benchmarks/epp_envoy_latency.py` compares all three.

Scope: server side only, plaintext or TLS (ALPN h2), identity encoding, unary and bidirectional-streaming methods.
Back-pressure both ways: a call's receive credit is held back while its handler has more than `call.HOLD` bytes of
unread messages (a peer sending past the window is reset with FLOW_CONTROL_ERROR), and `Call.write` waits while
more than `HOLD` bytes wait for the peer's window. One message is capped at MAX_MESSAGE.
"""

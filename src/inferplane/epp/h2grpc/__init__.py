"""A small gRPC server over HTTP/2 on the asyncio event loop, for the ext_proc hot path.

Why hand-written (the house rule asks): grpc.aio moves every message through five thread wake-ups (gRPC core's
event-engine threads, the completion-queue poller, the loop) and ~400 µs of CPU per ext_proc stream on this
machine; grpclib (h2 in Python) costs as much. This server does the little gRPC needs of HTTP/2 on the loop thread
itself — frames, flow control, one HPACK decoder (the `hpack` library), constant response header blocks — and hands
whole messages to async handlers. `benchmarks/epp_envoy_latency.py` measures it against both.

Scope: server side only, plaintext or TLS (ALPN h2), identity encoding, unary and bidirectional-streaming methods.
"""

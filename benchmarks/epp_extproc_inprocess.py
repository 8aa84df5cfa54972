"""The picker's own Python per request, without gRPC: one BUFFERED ext_proc exchange (request headers as Envoy sends
them, then the whole ~200-byte body) through `inferplane.epp.extproc` and the director with the default scheduling
profile, two ready endpoints, as `EppServer` wires them. Prints thread-CPU µs per request (median of batches) and
the top functions under cProfile.

    .venv/bin/python benchmarks/epp_extproc_inprocess.py [--requests 20000] [--profile] [--no-plugin-timing]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

import uvloop

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2  # noqa: E402
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb  # noqa: E402

from inferplane.api.epp_config import default_epp_config  # noqa: E402
from inferplane.epp.datalayer.discovery import StaticDiscovery, parse_endpoints  # noqa: E402
from inferplane.epp.extproc import BUFFERED, _Stream  # noqa: E402
from inferplane.epp.intree import register_in_tree_plugins  # noqa: E402
from inferplane.epp.server import EppOptions, EppServer  # noqa: E402

register_in_tree_plugins()  # this script is a composition root: the kernel's registry imports no plugin

HEADERS = {
    ":authority": "127.0.0.1:10000",
    ":path": "/v1/completions",
    ":method": "POST",
    ":scheme": "http",
    "content-type": "application/json",
    "content-length": "120",
    "user-agent": "wrk",
    "x-forwarded-proto": "http",
    "x-request-id": "6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b",
}


def messages(i: int) -> tuple[bytes, bytes]:
    hdr = pb.ProcessingRequest()
    for k, v in HEADERS.items():
        h = hdr.request_headers.headers.headers.add()
        h.key = k
        h.raw_value = (v if k != "x-request-id" else f"{v[:-6]}{i:06d}").encode()
    hdr.protocol_config.request_body_mode = processing_mode_pb2.ProcessingMode.BUFFERED
    hdr.protocol_config.response_body_mode = processing_mode_pb2.ProcessingMode.NONE
    body = pb.ProcessingRequest()
    body.request_body.body = (
        f'{{"model":"m","prompt":"benchmark request {i} from thread 1: tell me a short fact about the sea",'
        '"max_tokens":1}'
    ).encode()
    body.request_body.end_of_stream = True
    return hdr.SerializeToString(), body.SerializeToString()


async def one(server: EppServer, hdr: bytes, body: bytes) -> None:
    """What the servicer does per stream, minus gRPC: parse both messages, answer both, serialise the answers."""
    stream = _Stream(server.director, BUFFERED)
    for out in (
        await server.servicer._dispatch(stream, pb.ProcessingRequest.FromString(hdr)),
        await server.servicer._dispatch(stream, pb.ProcessingRequest.FromString(body)),
    ):
        for resp in out:
            resp.SerializeToString()
    server.director.after_reply()
    assert stream.ctx is not None
    server.director.finish(stream.ctx)


async def main_async(args: argparse.Namespace) -> None:
    opts = EppOptions(
        pool_name="bench",
        discovery=StaticDiscovery(parse_endpoints("127.0.0.1:1,127.0.0.1:2")),
        config=default_epp_config(),
        metrics_port=None,
        seed=1,
    )
    server = EppServer(opts)
    if args.no_plugin_timing:
        server.scheduler.observer = None
    server.datastore.set_endpoints(parse_endpoints("127.0.0.1:1,127.0.0.1:2"))
    for ep in server.datastore.endpoints.values():
        ep.ready = True
    msgs = [messages(i) for i in range(args.requests)]
    for hdr, body in msgs[:2000]:  # warm the prefix index and caches
        await one(server, hdr, body)
    batch = 500
    per_req = []
    for start in range(0, len(msgs), batch):
        t0 = time.thread_time()
        for hdr, body in msgs[start : start + batch]:
            await one(server, hdr, body)
        per_req.append((time.thread_time() - t0) / batch * 1e6)
    print(
        f"picker Python per BUFFERED request (2 messages in, 2 out, default profile): median "
        f"{statistics.median(per_req):.1f} µs, min {min(per_req):.1f} µs over {len(per_req)} batches of {batch}"
    )
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        for hdr, body in msgs:
            await one(server, hdr, body)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--no-plugin-timing", action="store_true", help="what per-plugin duration metrics cost")
    args = ap.parse_args()
    uvloop.run(main_async(args))


if __name__ == "__main__":
    main()

"""Latency of a grpc.aio ext_proc server without Envoy: one stream per "request", two round trips each (headers
answer, body answer, as Envoy's BUFFERED mode does), at concurrency 1, from a grpc client in another process.
Isolates the Python/gRPC part of the picker's added latency from Envoy and varies process-level settings on the
server side (switch interval, event loop, gRPC channel args, inferplane's h2grpc server) to find where the time goes.

    .venv/bin/python benchmarks/epp_grpc_pingpong.py [--requests 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def server(port: int, switch: float, loop: str, options: list[tuple[str, Any]], kind: str = "grpc.aio") -> None:
    import asyncio

    import grpc
    from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
    from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

    if switch > 0:
        sys.setswitchinterval(switch)

    class Echo(pb_grpc.ExternalProcessorServicer):
        async def Process(self, request_iterator: Any, context: Any) -> None:
            while True:
                req = await context.read()
                if req is grpc.aio.EOF or req is None:  # None: the end of input on h2grpc
                    return
                if req.HasField("request_headers"):
                    await context.write(pb.ProcessingResponse(request_headers=pb.HeadersResponse()))
                else:
                    await context.write(pb.ProcessingResponse(request_body=pb.BodyResponse()))

    async def serve() -> None:
        if kind == "h2grpc":
            from inferplane.epp.h2grpc.server import H2GrpcServer, Method

            echo = Echo()
            decode, encode = pb.ProcessingRequest.FromString, pb.ProcessingResponse.SerializeToString
            method = Method(lambda call: echo.Process(None, call), decode, encode)
            h2 = H2GrpcServer({"/envoy.service.ext_proc.v3.ExternalProcessor/Process": method})
            await h2.start("127.0.0.1", port)
            print("ready", flush=True)
            await asyncio.Event().wait()
        s = grpc.aio.server(options=options)
        pb_grpc.add_ExternalProcessorServicer_to_server(Echo(), s)
        s.add_insecure_port(f"127.0.0.1:{port}")
        await s.start()
        print("ready", flush=True)
        await s.wait_for_termination()

    if loop == "uvloop":
        import uvloop

        uvloop.run(serve())
    else:
        asyncio.run(serve())


def client(port: int, n: int) -> list[float]:
    import grpc
    from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
    from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = pb_grpc.ExternalProcessorStub(ch)
    hdr = pb.ProcessingRequest(request_headers=pb.HttpHeaders())
    body = pb.ProcessingRequest(request_body=pb.HttpBody(body=b"x" * 200, end_of_stream=True))
    lat = []
    for i in range(n + 50):
        t = time.perf_counter()
        call = stub.Process(iter([hdr, body]))
        for _ in call:
            pass
        if i >= 50:
            lat.append(time.perf_counter() - t)
    return lat


VARIANTS: dict[str, dict[str, Any]] = {
    "uvloop, default": {"loop": "uvloop", "switch": 0, "options": []},
    "uvloop, switchinterval 0.5 ms": {"loop": "uvloop", "switch": 0.0005, "options": []},
    "asyncio, default": {"loop": "asyncio", "switch": 0, "options": []},
    "uvloop, optimization_target=latency": {
        "loop": "uvloop",
        "switch": 0,
        "options": [("grpc.optimization_target", "latency")],
    },
    "uvloop, bdp_probe off": {"loop": "uvloop", "switch": 0, "options": [("grpc.http2.bdp_probe", 0)]},
    "uvloop, inferplane h2grpc server": {"loop": "uvloop", "switch": 0, "options": [], "kind": "h2grpc"},
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server, e.g. poll strategy")
    parser.add_argument("--_serve", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--_client", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._serve:
        v = VARIANTS[args._serve[1]]
        server(int(args._serve[0]), v["switch"], v["loop"], v["options"], v.get("kind", "grpc.aio"))
        return 0
    if args._client:
        lat = client(args._client, args.requests)
        print(" ".join(f"{x:.7f}" for x in lat))
        return 0
    from inferplane.net import free_ports

    env = dict(os.environ)
    env.update(kv.split("=", 1) for kv in args.env)
    res: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name in args.variants:
            (port,) = free_ports(1)
            srv = subprocess.Popen(
                [sys.executable, __file__, "--_serve", str(port), name], stdout=subprocess.PIPE, text=True, env=env
            )
            try:
                assert srv.stdout is not None
                srv.stdout.readline()
                out = subprocess.run(
                    [sys.executable, __file__, "--_client", str(port), "--requests", str(args.requests)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                lat = [float(x) for x in out.split()]
                res.setdefault(name, []).append(statistics.median(lat) * 1e3)
            finally:
                srv.terminate()
                srv.wait()
    print("| server variant | p50 per stream (2 round trips), ms, per round |")
    print("|---|---|")
    for name, p50s in res.items():
        print(f"| {name} | {' / '.join(f'{x:.3f}' for x in p50s)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A bare ext_proc server for comparison: grpc.aio + uvloop, does nothing but set the destination header
(round robin over --endpoints) in whatever body mode Envoy announces. It is the ceiling a Python EPP can reach on
this machine; `benchmarks/epp_envoy_bench.py` runs it side by side with `inferplane epp`.

    .venv/bin/python benchmarks/epp_bare_extproc.py --port 9102 --endpoints 127.0.0.1:8000,127.0.0.1:8001 \
        [--transport grpc.aio|h2grpc|grpclib]

`--transport grpclib` needs `pip install grpclib` (not a project dependency; a data point in BENCHMARKS.md, run H).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
from typing import Any

import grpc
import uvloop
from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

LOOPBACK = "127.0.0.1"

Mode = processing_mode_pb2.ProcessingMode
OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def dest_mutation(dest: str) -> pb.HeaderMutation:
    return pb.HeaderMutation(
        set_headers=[
            base_pb2.HeaderValueOption(
                header=base_pb2.HeaderValue(key="x-gateway-destination-endpoint", raw_value=dest.encode()),
                append_action=OVERWRITE,
            )
        ]
    )


class Bare:
    """The per-stream state machine, shared by every transport: one request message in, the answers out."""

    def __init__(self, endpoints: list[str]) -> None:
        self.next_dest = itertools.cycle(endpoints).__next__

    def stream(self) -> Any:
        mode = Mode.FULL_DUPLEX_STREAMED
        body = bytearray()
        out: list[pb.ProcessingResponse] = []

        def handle(req: pb.ProcessingRequest) -> list[pb.ProcessingResponse]:
            nonlocal mode, body
            out.clear()
            kind = req.WhichOneof("request")
            if kind == "request_headers":
                if req.HasField("protocol_config"):
                    mode = req.protocol_config.request_body_mode
                if req.request_headers.end_of_stream or mode == Mode.NONE:
                    common = pb.CommonResponse(header_mutation=dest_mutation(self.next_dest()), clear_route_cache=True)
                    out.append(pb.ProcessingResponse(request_headers=pb.HeadersResponse(response=common)))
                elif mode != Mode.FULL_DUPLEX_STREAMED:
                    out.append(pb.ProcessingResponse(request_headers=pb.HeadersResponse()))
            elif kind == "request_body":
                body += req.request_body.body
                if not req.request_body.end_of_stream:
                    return out
                common = pb.CommonResponse(header_mutation=dest_mutation(self.next_dest()), clear_route_cache=True)
                if mode == Mode.FULL_DUPLEX_STREAMED:
                    out.append(pb.ProcessingResponse(request_headers=pb.HeadersResponse(response=common)))
                    sbr = pb.StreamedBodyResponse(body=bytes(body), end_of_stream=True)
                    streamed = pb.CommonResponse(body_mutation=pb.BodyMutation(streamed_response=sbr))
                    out.append(pb.ProcessingResponse(request_body=pb.BodyResponse(response=streamed)))
                else:
                    out.append(pb.ProcessingResponse(request_body=pb.BodyResponse(response=common)))
            elif kind == "request_trailers":
                out.append(pb.ProcessingResponse(request_trailers=pb.TrailersResponse()))
            elif kind == "response_headers":
                out.append(pb.ProcessingResponse(response_headers=pb.HeadersResponse()))
            elif kind == "response_body":
                rb = req.response_body
                if mode == Mode.FULL_DUPLEX_STREAMED:
                    sbr = pb.StreamedBodyResponse(body=rb.body, end_of_stream=rb.end_of_stream)
                    streamed = pb.CommonResponse(body_mutation=pb.BodyMutation(streamed_response=sbr))
                    out.append(pb.ProcessingResponse(response_body=pb.BodyResponse(response=streamed)))
                else:
                    out.append(pb.ProcessingResponse(response_body=pb.BodyResponse()))
            elif kind == "response_trailers":
                out.append(pb.ProcessingResponse(response_trailers=pb.TrailersResponse()))
            return out

        return handle


class GrpcAioBare(pb_grpc.ExternalProcessorServicer):
    def __init__(self, bare: Bare) -> None:
        self.bare = bare

    async def Process(self, request_iterator: Any, context: Any) -> None:
        handle = self.bare.stream()
        while True:
            req = await context.read()
            if req is grpc.aio.EOF or req is None:  # None: the end of input on inferplane's h2grpc server
                return
            for resp in handle(req):
                await context.write(resp)


class GrpclibBare:
    """The same server on grpclib (HTTP/2 in Python on the event loop, no gRPC core threads)."""

    def __init__(self, bare: Bare) -> None:
        self.bare = bare

    def __mapping__(self) -> dict[str, Any]:
        from grpclib.const import Cardinality, Handler

        return {
            "/envoy.service.ext_proc.v3.ExternalProcessor/Process": Handler(
                self.process, Cardinality.STREAM_STREAM, pb.ProcessingRequest, pb.ProcessingResponse
            )
        }

    async def process(self, stream: Any) -> None:
        handle = self.bare.stream()
        async for req in stream:
            for resp in handle(req):
                await stream.send_message(resp)


async def serve(port: int, endpoints: list[str], options: list[tuple[str, Any]], transport: str) -> None:
    if transport == "h2grpc":
        from inferplane.epp.h2grpc.server import H2GrpcServer, Method

        servicer = GrpcAioBare(Bare(endpoints))
        method = Method(
            lambda call: servicer.Process(None, call),
            pb.ProcessingRequest.FromString,
            pb.ProcessingResponse.SerializeToString,
        )
        h2 = H2GrpcServer({"/envoy.service.ext_proc.v3.ExternalProcessor/Process": method})
        await h2.start(LOOPBACK, port)
        await asyncio.Event().wait()
        return
    if transport == "grpclib":
        from grpclib.server import Server

        lib_server = Server([GrpclibBare(Bare(endpoints))])
        await lib_server.start(LOOPBACK, port)
        await lib_server.wait_closed()
        return
    server = grpc.aio.server(options=options)
    pb_grpc.add_ExternalProcessorServicer_to_server(GrpcAioBare(Bare(endpoints)), server)
    server.add_insecure_port(f"{LOOPBACK}:{port}")
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--endpoints", required=True)
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="sys.setswitchinterval (s); Python's default is 0.005")  # fmt: skip
    parser.add_argument("--transport", choices=("grpc.aio", "grpclib", "h2grpc"), default="grpc.aio")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--grpc-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a grpc.aio server channel argument (integer values are passed as int)")  # fmt: skip
    args = parser.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    options: list[tuple[str, Any]] = []
    for kv in args.grpc_option:
        key, _, value = kv.partition("=")
        options.append((key, int(value) if value.lstrip("-").isdigit() else value))
    coro = serve(args.port, args.endpoints.split(","), options, args.transport)
    if args.loop == "uvloop":
        uvloop.run(coro)
    else:
        asyncio.run(coro)


if __name__ == "__main__":
    main()

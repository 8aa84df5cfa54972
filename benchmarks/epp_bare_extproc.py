"""A bare ext_proc server for comparison: grpc.aio + uvloop, does nothing but set the destination header
(round robin over --endpoints) in whatever body mode Envoy announces. It is the ceiling a Python EPP can reach on
this machine; `benchmarks/epp_envoy_bench.py` runs it side by side with `inferplane epp`.

    .venv/bin/python benchmarks/epp_bare_extproc.py --port 9102 --endpoints 127.0.0.1:8000,127.0.0.1:8001
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


class Bare(pb_grpc.ExternalProcessorServicer):
    def __init__(self, endpoints: list[str]) -> None:
        self.next_dest = itertools.cycle(endpoints).__next__

    async def Process(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        mode = Mode.FULL_DUPLEX_STREAMED
        body = bytearray()
        while True:
            req = await context.read()
            if req is grpc.aio.EOF:
                return
            kind = req.WhichOneof("request")
            if kind == "request_headers":
                if req.HasField("protocol_config"):
                    mode = req.protocol_config.request_body_mode
                if req.request_headers.end_of_stream or mode == Mode.NONE:
                    common = pb.CommonResponse(header_mutation=dest_mutation(self.next_dest()), clear_route_cache=True)
                    await context.write(pb.ProcessingResponse(request_headers=pb.HeadersResponse(response=common)))
                elif mode != Mode.FULL_DUPLEX_STREAMED:
                    await context.write(pb.ProcessingResponse(request_headers=pb.HeadersResponse()))
            elif kind == "request_body":
                body += req.request_body.body
                if not req.request_body.end_of_stream:
                    continue
                common = pb.CommonResponse(header_mutation=dest_mutation(self.next_dest()), clear_route_cache=True)
                if mode == Mode.FULL_DUPLEX_STREAMED:
                    await context.write(pb.ProcessingResponse(request_headers=pb.HeadersResponse(response=common)))
                    sbr = pb.StreamedBodyResponse(body=bytes(body), end_of_stream=True)
                    streamed = pb.CommonResponse(body_mutation=pb.BodyMutation(streamed_response=sbr))
                    await context.write(pb.ProcessingResponse(request_body=pb.BodyResponse(response=streamed)))
                else:
                    await context.write(pb.ProcessingResponse(request_body=pb.BodyResponse(response=common)))
            elif kind == "request_trailers":
                await context.write(pb.ProcessingResponse(request_trailers=pb.TrailersResponse()))
            elif kind == "response_headers":
                await context.write(pb.ProcessingResponse(response_headers=pb.HeadersResponse()))
            elif kind == "response_body":
                rb = req.response_body
                if mode == Mode.FULL_DUPLEX_STREAMED:
                    sbr = pb.StreamedBodyResponse(body=rb.body, end_of_stream=rb.end_of_stream)
                    streamed = pb.CommonResponse(body_mutation=pb.BodyMutation(streamed_response=sbr))
                    await context.write(pb.ProcessingResponse(response_body=pb.BodyResponse(response=streamed)))
                else:
                    await context.write(pb.ProcessingResponse(response_body=pb.BodyResponse()))
            elif kind == "response_trailers":
                await context.write(pb.ProcessingResponse(response_trailers=pb.TrailersResponse()))


async def serve(port: int, endpoints: list[str], options: list[tuple[str, Any]]) -> None:
    server = grpc.aio.server(options=options)
    pb_grpc.add_ExternalProcessorServicer_to_server(Bare(endpoints), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--endpoints", required=True)
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="sys.setswitchinterval (s); Python's default is 0.005")  # fmt: skip
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
    coro = serve(args.port, args.endpoints.split(","), options)
    if args.loop == "uvloop":
        uvloop.run(coro)
    else:
        asyncio.run(coro)


if __name__ == "__main__":
    main()

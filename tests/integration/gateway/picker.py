"""A minimal endpoint picker for gateway tests: speaks ext_proc like an EPP in BUFFERED mode and picks the endpoint
the request names in `test-epp-endpoint-selection` (the upstream conformance header), else the first endpoint.

    python picker.py --endpoints 127.0.0.1:1,127.0.0.1:2 --port-file F

`x-picker-answer: metadata` answers with the `envoy.lb` dynamic metadata only, `header` with the header only,
`none` with no pick at all (both by default, as Proto 004 asks); `reject-NNN` answers an ImmediateResponse with
status NNN and an OpenAI-style JSON body (as the EPP does when a pool is saturated or has no endpoint). It tests
the gateway's side of the protocol — honouring picks, failure modes — without the scheduler; the real EPP is tested
with the gateway end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc
from envoy.type.v3 import http_status_pb2
from google.protobuf import struct_pb2

DESTINATION = "x-gateway-destination-endpoint"


def rejection_body(status: int) -> bytes:
    return (
        f'{{"error": {{"message": "picker rejected with {status}", "type": "PickerError", "param": null, '
        f'"code": {status}}}}}'
    ).encode()


def rejection(status: int) -> pb.ProcessingResponse:
    imm = pb.ImmediateResponse(status=http_status_pb2.HttpStatus(code=status), body=rejection_body(status))
    imm.headers.set_headers.append(
        base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key="content-type", raw_value=b"application/json"))
    )
    return pb.ProcessingResponse(immediate_response=imm)


class Picker(pb_grpc.ExternalProcessorServicer):
    def __init__(self, endpoints: list[str]) -> None:
        self.endpoints = endpoints

    def decide(self, headers: dict[str, str]) -> pb.CommonResponse:
        pick = headers.get("test-epp-endpoint-selection", self.endpoints[0])
        answer = headers.get("x-picker-answer", "both")
        common = pb.CommonResponse(clear_route_cache=True)
        if answer in ("both", "header"):
            common.header_mutation.set_headers.append(
                base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=DESTINATION, raw_value=pick.encode()))
            )
        return common

    def metadata(self, headers: dict[str, str]) -> struct_pb2.Struct | None:
        if headers.get("x-picker-answer", "both") not in ("both", "metadata"):
            return None
        md = struct_pb2.Struct()
        md.update({"envoy.lb": {DESTINATION: headers.get("test-epp-endpoint-selection", self.endpoints[0])}})
        return md

    async def Process(  # the gRPC method name
        self, request_iterator: AsyncIterator[pb.ProcessingRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ProcessingResponse]:
        headers: dict[str, str] = {}
        async for req in request_iterator:
            kind = req.WhichOneof("request")
            if kind == "request_headers":
                headers = {
                    h.key: (h.raw_value or h.value.encode()).decode() for h in req.request_headers.headers.headers
                }
                answer = headers.get("x-picker-answer", "")
                if answer.startswith("reject-"):
                    yield rejection(int(answer.removeprefix("reject-")))
                    return
                if req.request_headers.end_of_stream:
                    resp = pb.ProcessingResponse(request_headers=pb.HeadersResponse(response=self.decide(headers)))
                else:
                    resp = pb.ProcessingResponse(request_headers=pb.HeadersResponse())
                    yield resp
                    continue
            elif kind == "request_body":
                resp = pb.ProcessingResponse(request_body=pb.BodyResponse(response=self.decide(headers)))
            else:
                continue
            md = self.metadata(headers)
            if md is not None:
                resp.dynamic_metadata.CopyFrom(md)
            yield resp


async def serve(endpoints: list[str], port_file: Path) -> None:
    server = grpc.aio.server()
    pb_grpc.add_ExternalProcessorServicer_to_server(Picker(endpoints), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(port))
    os.replace(tmp, port_file)
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoints", required=True)
    parser.add_argument("--port-file", required=True, type=Path)
    args = parser.parse_args()
    asyncio.run(serve(args.endpoints.split(","), args.port_file))


if __name__ == "__main__":
    main()

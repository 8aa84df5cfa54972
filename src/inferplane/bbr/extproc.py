"""The body-based router's side of Envoy's ext_proc protocol. Protocol only: the decision is `routing.route_body`.

Per request stream:
* BUFFERED (what inferplane's gateway configures) and STREAMED: Envoy waits for the request-headers answer before
  it sends the body, so that answer only removes client-sent copies of the routing headers; the body answer sets
  them and clears the route cache so that HTTPRoute header matches see them. The body itself is not echoed: an
  answer without a body mutation leaves it unchanged.
* FULL_DUPLEX_STREAMED (upstream's configuration, `--streaming` there): the headers answer is held until the body
  is complete, then headers and the unchanged body go back together, in chunks of at most 62,000 bytes.
* Requests without a body (GET) pass with the spoofed headers removed. Response phases, when Envoy sends them,
  pass unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc
from envoy.type.v3 import http_status_pb2

from inferplane.bbr.routing import ROUTING_HEADERS, BaseModels, BbrError, Routing, route_body
from inferplane.epp.h2grpc.call import Call

log = logging.getLogger(__name__)

FULL_DUPLEX = processing_mode_pb2.ProcessingMode.FULL_DUPLEX_STREAMED
BODY_CHUNK = 62_000  # as upstream (GIE chunking.go): stays under a 64 KiB proxy limit
_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def _set(key: str, value: str) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(
        header=base_pb2.HeaderValue(key=key, raw_value=value.encode()), append_action=_OVERWRITE
    )


def strip_mutation() -> pb.HeaderMutation:
    return pb.HeaderMutation(remove_headers=list(ROUTING_HEADERS))


def routing_mutation(routing: Routing, content_length: int | None = None) -> pb.HeaderMutation:
    headers = [_set(k, v) for k, v in routing.headers().items()]
    if content_length is not None:
        headers.append(_set("content-length", str(content_length)))
    return pb.HeaderMutation(set_headers=headers)


def immediate(err: BbrError) -> pb.ProcessingResponse:
    return pb.ProcessingResponse(
        immediate_response=pb.ImmediateResponse(
            status=http_status_pb2.HttpStatus(code=err.status),
            headers=pb.HeaderMutation(set_headers=[_set("content-type", "application/json")]),
            body=err.openai_body(),
            details="bbr_invalid_body",
        )
    )


def streamed_body(body: bytes, *, request: bool) -> list[pb.ProcessingResponse]:
    chunks = [body[i : i + BODY_CHUNK] for i in range(0, len(body), BODY_CHUNK)] or [b""]
    out = []
    for i, chunk in enumerate(chunks):
        mutation = pb.BodyMutation(
            streamed_response=pb.StreamedBodyResponse(body=chunk, end_of_stream=i == len(chunks) - 1)
        )
        resp = pb.BodyResponse(response=pb.CommonResponse(body_mutation=mutation))
        out.append(pb.ProcessingResponse(request_body=resp) if request else pb.ProcessingResponse(response_body=resp))
    return out


class BbrStream:
    """State of one HTTP request's stream."""

    def __init__(self, models: BaseModels) -> None:
        self.models = models
        self.duplex = False
        self.body = bytearray()

    def on_request(self, req: pb.ProcessingRequest) -> list[pb.ProcessingResponse]:
        if req.HasField("protocol_config"):
            self.duplex = req.protocol_config.request_body_mode == FULL_DUPLEX
        kind = req.WhichOneof("request")
        if kind == "request_headers":
            if self.duplex and not req.request_headers.end_of_stream:
                return []  # answered once the body is complete
            # the route was chosen with the client's copies; choose again without them
            common = pb.CommonResponse(header_mutation=strip_mutation(), clear_route_cache=True)
            return [pb.ProcessingResponse(request_headers=pb.HeadersResponse(response=common))]
        if kind == "request_body":
            self.body += req.request_body.body
            if not req.request_body.end_of_stream:
                # STREAMED needs an answer per chunk; FULL_DUPLEX collects silently
                return [] if self.duplex else [pb.ProcessingResponse(request_body=pb.BodyResponse())]
            return self._decide()
        if kind == "request_trailers":
            return [pb.ProcessingResponse(request_trailers=pb.TrailersResponse())]
        if kind == "response_headers":
            return [pb.ProcessingResponse(response_headers=pb.HeadersResponse())]
        if kind == "response_body":
            if self.duplex:
                rb = req.response_body
                mutation = pb.BodyMutation(
                    streamed_response=pb.StreamedBodyResponse(body=rb.body, end_of_stream=rb.end_of_stream)
                )
                return [
                    pb.ProcessingResponse(
                        response_body=pb.BodyResponse(response=pb.CommonResponse(body_mutation=mutation))
                    )
                ]
            return [pb.ProcessingResponse(response_body=pb.BodyResponse())]
        if kind == "response_trailers":
            return [pb.ProcessingResponse(response_trailers=pb.TrailersResponse())]
        return []

    def _decide(self) -> list[pb.ProcessingResponse]:
        try:
            routing = route_body(bytes(self.body), self.models)
        except BbrError as err:
            log.debug("refusing request: %s", err.message)
            return [immediate(err)]
        if self.duplex:
            mutation = pb.HeaderMutation(
                set_headers=list(routing_mutation(routing, len(self.body)).set_headers),
            )
            headers = pb.ProcessingResponse(
                request_headers=pb.HeadersResponse(
                    response=pb.CommonResponse(header_mutation=mutation, clear_route_cache=True)
                )
            )
            return [headers, *streamed_body(bytes(self.body), request=True)]
        common = pb.CommonResponse(header_mutation=routing_mutation(routing), clear_route_cache=True)
        return [pb.ProcessingResponse(request_body=pb.BodyResponse(response=common))]


class BbrServicer(pb_grpc.ExternalProcessorServicer):
    def __init__(self, models: BaseModels) -> None:
        self.models = models

    async def Process(  # the gRPC method name
        self, request_iterator: AsyncIterator[pb.ProcessingRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ProcessingResponse]:
        stream = BbrStream(self.models)
        async for req in request_iterator:
            for resp in stream.on_request(req):
                yield resp
                if resp.HasField("immediate_response"):
                    return

    async def serve(self, call: Call) -> None:
        """The same stream on inferplane's h2grpc server (`read()` gives None at the end of input)."""
        stream = BbrStream(self.models)
        while (req := await call.read()) is not None:
            for resp in stream.on_request(req):
                await call.write(resp)
                if resp.HasField("immediate_response"):
                    return

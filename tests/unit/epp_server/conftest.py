"""In-process fixtures for the EPP protocol tests: real HTTP /metrics servers on loopback, a real EppServer, and a
real gRPC client that plays Envoy's part of the ext_proc protocol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from aiohttp import web
from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inferplane.api.epp_config import EndpointPickerConfig, default_epp_config
from inferplane.epp.datalayer.discovery import EndpointSpec, StaticDiscovery
from inferplane.epp.extproc import FULL_DUPLEX
from inferplane.epp.server import EppOptions, EppServer


@dataclass
class MetricsEndpoint:
    """A loopback HTTP server answering /metrics like vLLM, with values a test can change."""

    waiting: int = 0
    running: int = 0
    kv: float = 0.0
    status: int = 200
    extra: str = ""
    runner: web.AppRunner | None = None
    port: int = 0
    hits: int = 0

    def page(self) -> str:
        return (
            "# HELP vllm:num_requests_waiting x\n# TYPE vllm:num_requests_waiting gauge\n"
            f'vllm:num_requests_waiting{{model_name="m",engine="0"}} {self.waiting}\n'
            f'vllm:num_requests_running{{model_name="m",engine="0"}} {self.running}\n'
            f'vllm:kv_cache_usage_perc{{model_name="m",engine="0"}} {self.kv}\n'
            'vllm:cache_config_info{block_size="16",num_gpu_blocks="1000",cache_dtype="auto"} 1.0\n' + self.extra
        )

    async def start(self) -> None:
        async def handler(request: web.Request) -> web.Response:
            self.hits += 1
            return web.Response(text=self.page(), status=self.status)

        app = web.Application()
        app.router.add_get("/metrics", handler)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.port}"


async def wait_for(predicate: Callable[[], bool], limit: float = 5.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass
class Pool:
    server: EppServer
    endpoints: list[MetricsEndpoint]
    channel: grpc.aio.Channel
    stub: Any
    calls: list[Any] = field(default_factory=list)

    def in_flight(self) -> int:
        return sum(e.in_flight_requests for e in self.server.datastore.endpoints.values())

    def open(self) -> Any:
        call = self.stub.Process()
        self.calls.append(call)
        return call


async def start_pool(
    n: int = 3, config: EndpointPickerConfig | None = None, body_mode: int = FULL_DUPLEX, **opts: Any
) -> Pool:
    endpoints = [MetricsEndpoint() for _ in range(n)]
    for e in endpoints:
        await e.start()
    specs = [EndpointSpec("127.0.0.1", e.port, name=f"pod-{i}") for i, e in enumerate(endpoints)]
    server = EppServer(
        EppOptions(
            pool_name="pool",
            discovery=StaticDiscovery(specs),
            config=config or default_epp_config(),
            bind="127.0.0.1",
            grpc_port=0,
            grpc_health_port=0,
            metrics_port=0,
            refresh_metrics_interval=0.02,
            default_body_mode=body_mode,
            seed=7,
            **opts,
        )
    )
    await server.start()
    await wait_for(lambda: len(server.datastore.ready_endpoints()) == n, what="endpoints ready")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    return Pool(server, endpoints, channel, pb_grpc.ExternalProcessorStub(channel))


async def stop_pool(pool: Pool) -> None:
    for c in pool.calls:
        c.cancel()
    await pool.channel.close()
    await pool.server.stop(grace=0)
    for e in pool.endpoints:
        await e.stop()


@pytest.fixture(params=["h2", "grpcio"])
async def pool(request: pytest.FixtureRequest) -> AsyncIterator[Pool]:
    """Every protocol test runs against both ext_proc servers: inferplane's h2grpc (the default) and grpc.aio."""
    p = await start_pool(ext_proc_server=request.param)
    try:
        yield p
    finally:
        await stop_pool(p)


# ---- message builders: what Envoy sends ------------------------------------------------------------------------


def headers_msg(
    headers: dict[str, str],
    end_of_stream: bool = False,
    request_mode: int = FULL_DUPLEX,
    response_mode: int = FULL_DUPLEX,
    subset: list[str] | None = None,
) -> pb.ProcessingRequest:
    hm = base_pb2.HeaderMap(headers=[base_pb2.HeaderValue(key=k, raw_value=v.encode()) for k, v in headers.items()])
    req = pb.ProcessingRequest(
        request_headers=pb.HttpHeaders(headers=hm, end_of_stream=end_of_stream),
        protocol_config=pb.ProtocolConfiguration(request_body_mode=request_mode, response_body_mode=response_mode),
    )
    if subset is not None:
        st = req.metadata_context.filter_metadata["envoy.lb.subset_hint"]
        lst = st.fields["x-gateway-destination-endpoint-subset"].list_value
        for s in subset:
            lst.values.add().string_value = s
    return req


def body_msg(data: bytes, end_of_stream: bool) -> pb.ProcessingRequest:
    return pb.ProcessingRequest(request_body=pb.HttpBody(body=data, end_of_stream=end_of_stream))


def resp_headers_msg(headers: dict[str, str], served: str | None = None, end_of_stream: bool = False) -> Any:
    hm = base_pb2.HeaderMap(headers=[base_pb2.HeaderValue(key=k, raw_value=v.encode()) for k, v in headers.items()])
    req = pb.ProcessingRequest(response_headers=pb.HttpHeaders(headers=hm, end_of_stream=end_of_stream))
    if served:
        req.metadata_context.filter_metadata["envoy.lb"].fields[
            "x-gateway-destination-endpoint-served"
        ].string_value = served
    return req


def resp_body_msg(data: bytes, end_of_stream: bool) -> pb.ProcessingRequest:
    return pb.ProcessingRequest(response_body=pb.HttpBody(body=data, end_of_stream=end_of_stream))


def set_headers(mutation: Any) -> dict[str, str]:
    return {h.header.key: h.header.raw_value.decode() or h.header.value for h in mutation.set_headers}


REQ_HEADERS = {":method": "POST", ":path": "/v1/completions", "content-type": "application/json"}

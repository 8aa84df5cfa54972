"""The ext_proc port, served the same way by the endpoint picker and the body-based router: on inferplane's h2grpc
server (the default; measured in benchmarks/BENCHMARKS.md, run H) or on grpc.aio, plaintext or TLS, with gRPC health
`Check` beside ext_proc for the data plane's cluster health check; and the separate health port (grpc.aio)."""

from __future__ import annotations

import argparse
from typing import Any, Protocol

import grpc
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inferplane.epp.h2grpc.call import Call, Method
from inferplane.epp.h2grpc.server import H2GrpcServer
from inferplane.epp.health import EppHealth
from inferplane.epp.tls import ServingCert, add_grpc_port, ssl_context
from inferplane.errors import InferplaneError

EXT_PROC_SERVERS = ("h2", "grpcio")
PROCESS_METHOD = "/envoy.service.ext_proc.v3.ExternalProcessor/Process"


class ExtProcService(Protocol):
    """A servicer that runs one ext_proc stream on either server (`Process` for grpc.aio, `serve` for h2grpc)."""

    async def Process(self, request_iterator: Any, context: Any) -> Any: ...

    async def serve(self, call: Call) -> None: ...


class Stoppable(Protocol):
    async def stop(self, grace: float) -> Any: ...


def add_ext_proc_server_argument(parser: argparse.ArgumentParser) -> None:
    """`--ext-proc-server`, the same for `inferplane epp` and `inferplane bbr`."""
    parser.add_argument(
        "--ext-proc-server",
        dest="ext_proc_server",
        choices=EXT_PROC_SERVERS,
        default="h2",
        help="the gRPC server carrying ext_proc: inferplane's HTTP/2 server on the event loop (h2, faster) or "
        "grpc.aio (grpcio); the health port always uses grpcio",
    )


async def start_ext_proc_port(
    kind: str,
    service: ExtProcService,
    health: EppHealth,
    bind: str,
    port: int,
    cert: ServingCert | None,
    grpc_options: list[tuple[str, Any]],
) -> tuple[Stoppable, int]:
    """Serve ext_proc and health Check on `bind:port` with the `kind` of server; returns it and the bound port."""
    if kind == "h2":
        process = Method(service.serve, pb.ProcessingRequest.FromString, pb.ProcessingResponse.SerializeToString)
        h2 = H2GrpcServer(dict([(PROCESS_METHOD, process), health.h2_method()]))
        try:
            return h2, await h2.start(bind, port, ssl_context(cert) if cert is not None else None)
        except OSError as exc:
            raise InferplaneError(
                f"cannot listen on {bind}:{port}: {exc.strerror or exc}", hint="is another process using it?"
            ) from None
    server = grpc.aio.server(options=grpc_options)
    pb_grpc.add_ExternalProcessorServicer_to_server(service, server)
    health.add_to_server(server)
    return server, await _listen(server, bind, port, cert)


async def start_health_port(
    health: EppHealth, bind: str, port: int, grpc_options: list[tuple[str, Any]]
) -> tuple[grpc.aio.Server, int]:
    """The plaintext gRPC health port (kubelet's probes do not speak TLS); returns the server and the bound port."""
    server = grpc.aio.server(options=grpc_options)
    health.add_to_server(server)
    return server, await _listen(server, bind, port, None)


async def _listen(server: grpc.aio.Server, bind: str, port: int, cert: ServingCert | None) -> int:
    """Bind and start a grpc.aio server; one that cannot bind is shut down here, because an abandoned grpc.aio
    server schedules its own shutdown on a loop that may be closed by then (a traceback at exit)."""
    try:
        bound = add_grpc_port(server, f"{bind}:{port}", cert)
    except BaseException:
        await server.stop(None)
        raise
    await server.start()
    return bound

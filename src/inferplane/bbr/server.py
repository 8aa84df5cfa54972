"""The body-based router process: the ext_proc gRPC server and a gRPC health server on its own port (upstream BBR
uses 9004 and 9005). The ext_proc port serves TLS when given a certificate (`--secure-serving`, as upstream's router
does); the health port stays plaintext, because kubelet's gRPC probes do not speak TLS."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from inferplane.bbr.extproc import BbrServicer, add_to_server, h2_method
from inferplane.bbr.routing import BaseModels
from inferplane.epp.h2grpc.health import check_method
from inferplane.epp.h2grpc.server import H2GrpcServer
from inferplane.epp.tls import ServingCert, add_grpc_port, start_h2_port

log = logging.getLogger(__name__)

EXTPROC_SERVICE = "envoy.service.ext_proc.v3.ExternalProcessor"
# BUFFERED mode hands the whole request body to the router in one message; gRPC's 4 MiB default would refuse
# long prompts long before Envoy's own body limit does.
MAX_MESSAGE = 64 * 1024 * 1024
GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.so_reuseport", 0),
]


@dataclass(frozen=True)
class BbrOptions:
    port: int = 9004
    health_port: int | None = 9005
    bind: str = "0.0.0.0"
    models: BaseModels = field(default_factory=BaseModels)
    # TLS on the ext_proc port; None serves cleartext HTTP/2 (the local runtime's Envoy on loopback)
    serving_cert: ServingCert | None = None
    # the gRPC server carrying ext_proc: "h2" (inferplane's h2grpc, as the endpoint picker) or "grpcio" (grpc.aio)
    ext_proc_server: str = "h2"


class BbrServer:
    def __init__(self, opts: BbrOptions) -> None:
        self.opts = opts
        self.health = health.aio.HealthServicer()
        self.statuses: dict[str, int] = {}  # what Check answers on the h2grpc ext_proc port
        self.port = 0
        self.health_port = 0
        self._servers: list[grpc.aio.Server] = []
        self._h2: H2GrpcServer | None = None
        self._stopped = asyncio.Event()

    @property
    def scheme(self) -> str:
        """How the ext_proc port is reached: `grpcs` (TLS) or `grpc` (cleartext HTTP/2)."""
        return "grpcs" if self.opts.serving_cert is not None else "grpc"

    def _listen(self, server: grpc.aio.Server, port: int, cert: ServingCert | None = None) -> int:
        return add_grpc_port(server, f"{self.opts.bind}:{port}", cert)

    async def start(self) -> None:
        for name in ("", EXTPROC_SERVICE, "liveness", "readiness"):
            await self._set(name, health_pb2.HealthCheckResponse.SERVING)
        servicer = BbrServicer(self.opts.models)
        if self.opts.ext_proc_server == "h2":
            # Envoy may health-check the ext_proc port
            self._h2 = H2GrpcServer(dict([h2_method(servicer), check_method(self.statuses.get)]))
            self.port = await start_h2_port(self._h2, self.opts.bind, self.opts.port, self.opts.serving_cert)
        else:
            main = grpc.aio.server(options=GRPC_OPTIONS)
            add_to_server(servicer, main)
            health_pb2_grpc.add_HealthServicer_to_server(self.health, main)  # Envoy may health-check this port
            self.port = self._listen(main, self.opts.port, self.opts.serving_cert)
            self._servers.append(main)
        if self.opts.health_port is not None:
            side = grpc.aio.server(options=GRPC_OPTIONS)
            health_pb2_grpc.add_HealthServicer_to_server(self.health, side)
            self.health_port = self._listen(side, self.opts.health_port)
            self._servers.append(side)
        for server in self._servers:
            await server.start()
        log.debug(  # `inferplane bbr` prints the same as its one start-up line
            "body-based router: ext_proc %s://%s:%d, health %s, %d known models",
            self.scheme, self.opts.bind, self.port, self.health_port or "-", len(self.opts.models),
        )  # fmt: skip

    async def _set(self, name: str, status: int) -> None:
        self.statuses[name] = status
        await self.health.set(name, status)

    async def wait(self) -> None:
        """Returns once the router has stopped."""
        await self._stopped.wait()

    async def stop(self, grace: float = 1.0) -> None:
        for name in ("", EXTPROC_SERVICE, "readiness"):
            await self._set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        if self._h2 is not None:
            await self._h2.stop(grace)
        for server in self._servers:
            await server.stop(grace)
        self._stopped.set()

"""The body-based router process: the ext_proc gRPC server and a gRPC health server on its own port (upstream BBR
uses 9004 and 9005). The ext_proc port serves TLS when given a certificate (`--secure-serving`, as upstream's router
does); the health port stays plaintext, because kubelet's gRPC probes do not speak TLS."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from inferplane.bbr.extproc import BbrServicer, add_to_server
from inferplane.bbr.routing import BaseModels
from inferplane.epp.tls import ServingCert, add_grpc_port

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


class BbrServer:
    def __init__(self, opts: BbrOptions) -> None:
        self.opts = opts
        self.health = health.aio.HealthServicer()
        self.port = 0
        self.health_port = 0
        self._servers: list[grpc.aio.Server] = []

    @property
    def scheme(self) -> str:
        """How the ext_proc port is reached: `grpcs` (TLS) or `grpc` (cleartext HTTP/2)."""
        return "grpcs" if self.opts.serving_cert is not None else "grpc"

    def _listen(self, server: grpc.aio.Server, port: int, cert: ServingCert | None = None) -> int:
        return add_grpc_port(server, f"{self.opts.bind}:{port}", cert)

    async def start(self) -> None:
        for name in ("", EXTPROC_SERVICE, "liveness", "readiness"):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        main = grpc.aio.server(options=GRPC_OPTIONS)
        add_to_server(BbrServicer(self.opts.models), main)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, main)  # Envoy may health-check the ext_proc port
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

    async def wait(self) -> None:
        await self._servers[0].wait_for_termination()

    async def stop(self, grace: float = 1.0) -> None:
        for name in ("", EXTPROC_SERVICE, "readiness"):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        for server in self._servers:
            await server.stop(grace)

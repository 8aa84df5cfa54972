"""gRPC health on its own port (9003 upstream), with the upstream service names (extproc.md §8).

`liveness` is SERVING while the process runs; `readiness` and the ext_proc service name become SERVING once
discovery has delivered the pool (upstream also requires leadership; inferplane runs one active replica).
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

LIVENESS = "liveness"
READINESS = "readiness"
EXTPROC_SERVICE = "envoy.service.ext_proc.v3.ExternalProcessor"

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class EppHealth:
    def __init__(self) -> None:
        self.servicer = health.aio.HealthServicer()
        self.ready = False

    async def start(self) -> None:
        await self.servicer.set(LIVENESS, SERVING)
        await self.set_ready(False)

    async def set_ready(self, ready: bool) -> None:
        self.ready = ready
        status = SERVING if ready else NOT_SERVING
        for name in (READINESS, EXTPROC_SERVICE, ""):
            await self.servicer.set(name, status)

    async def shutdown(self) -> None:
        await self.set_ready(False)
        await self.servicer.set(LIVENESS, NOT_SERVING)

    def add_to_server(self, server: grpc.aio.Server) -> None:
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, server)

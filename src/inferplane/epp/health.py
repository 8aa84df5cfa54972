"""gRPC health on its own port (9003 upstream), with the upstream service names (extproc.md §8).

`liveness` is SERVING while the process runs; `readiness` and the ext_proc service name become SERVING once
discovery has delivered the pool (upstream also requires leadership; inferplane runs one active replica).
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from inferplane.epp.h2grpc.server import Call, CallError, Method

LIVENESS = "liveness"
READINESS = "readiness"
EXTPROC_SERVICE = "envoy.service.ext_proc.v3.ExternalProcessor"

CHECK_METHOD = "/grpc.health.v1.Health/Check"
NOT_FOUND = 5  # gRPC status code

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class EppHealth:
    def __init__(self) -> None:
        self.servicer = health.aio.HealthServicer()
        self.ready = False
        self.statuses: dict[str, int] = {}  # what `Check` answers on the h2grpc ext_proc port

    async def _set(self, name: str, status: int) -> None:
        self.statuses[name] = status
        await self.servicer.set(name, status)

    async def start(self) -> None:
        await self._set(LIVENESS, SERVING)
        await self.set_ready(False)

    async def set_ready(self, ready: bool) -> None:
        self.ready = ready
        status = SERVING if ready else NOT_SERVING
        for name in (READINESS, EXTPROC_SERVICE, ""):
            await self._set(name, status)

    async def shutdown(self) -> None:
        await self.set_ready(False)
        await self._set(LIVENESS, NOT_SERVING)

    async def check(self, call: Call) -> None:
        """`grpc.health.v1.Health/Check` on the h2grpc server (the ext_proc port, where Envoy's cluster health check
        asks); the health port keeps grpcio's full Health service, Watch included."""
        req = await call.read()
        status = self.statuses.get(req.service if req is not None else "")
        if status is None:
            raise CallError(NOT_FOUND, "unknown service")
        await call.write(health_pb2.HealthCheckResponse(status=status))

    def h2_method(self) -> tuple[str, Method]:
        return CHECK_METHOD, Method(
            self.check, health_pb2.HealthCheckRequest.FromString, health_pb2.HealthCheckResponse.SerializeToString
        )

    def add_to_server(self, server: grpc.aio.Server) -> None:
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, server)

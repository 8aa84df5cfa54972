"""gRPC health of the endpoint picker and the body-based router (own port 9003 / 9005 upstream, and `Check` on the
ext_proc port), with the upstream service names (extproc.md §8).

`liveness` is SERVING while the process runs; `readiness` and the ext_proc service name become SERVING once
discovery has delivered the pool (upstream also requires leadership; inferplane runs one active replica).
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from inferplane.epp.h2grpc.call import Method
from inferplane.epp.h2grpc.health import check_method

LIVENESS = "liveness"
READINESS = "readiness"
EXTPROC_SERVICE = "envoy.service.ext_proc.v3.ExternalProcessor"

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

    def h2_method(self) -> tuple[str, Method]:
        """Check on the h2grpc ext_proc port, where Envoy's cluster health check asks."""
        return check_method(self.statuses.get)

    def add_to_server(self, server: grpc.aio.Server) -> None:
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, server)

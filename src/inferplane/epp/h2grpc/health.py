"""`grpc.health.v1.Health/Check` on an h2grpc server: the ext_proc port answers Envoy's cluster health check and
kubelet-style probes there. (The separate health port keeps grpcio's full Health service, Watch included.)"""

from __future__ import annotations

from collections.abc import Callable

from grpc_health.v1 import health_pb2

from inferplane.epp.h2grpc.call import Call, CallError, Method

CHECK_METHOD = "/grpc.health.v1.Health/Check"
NOT_FOUND = 5  # gRPC status code, what grpcio's HealthServicer answers for an unknown service


def check_method(status_of: Callable[[str], int | None]) -> tuple[str, Method]:
    """The Check method answering `status_of(service)` (a HealthCheckResponse status; None = unknown service)."""

    async def check(call: Call) -> None:
        req = await call.read()
        status = status_of(req.service if req is not None else "")
        if status is None:
            raise CallError(NOT_FOUND, "unknown service")
        await call.write(health_pb2.HealthCheckResponse(status=status))

    return CHECK_METHOD, Method(
        check, health_pb2.HealthCheckRequest.FromString, health_pb2.HealthCheckResponse.SerializeToString
    )

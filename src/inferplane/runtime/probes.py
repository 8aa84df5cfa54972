"""Readiness probes, by type: what the kubelet would check before a pod counts as Ready."""

from __future__ import annotations

from collections.abc import Callable

from inferplane.net import http_status, port_open
from inferplane.runtime.components import Probe, ProbeType

ProbeFn = Callable[[Probe], bool]

PROBES: dict[ProbeType, ProbeFn] = {}


def probe(kind: ProbeType) -> Callable[[ProbeFn], ProbeFn]:
    def register(fn: ProbeFn) -> ProbeFn:
        PROBES[kind] = fn
        return fn

    return register


@probe(ProbeType.HTTP)
def _http(p: Probe) -> bool:
    return http_status(p.url, timeout=0.5) == 200


@probe(ProbeType.TCP)
def _tcp(p: Probe) -> bool:
    return port_open(p.host, p.port)


@probe(ProbeType.GRPC_HEALTH)
def _grpc_health(p: Probe) -> bool:
    # Imported here: `inferplane status` and `logs` should not pay for gRPC.
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    if not port_open(p.host, p.port):
        return False
    with grpc.insecure_channel(f"{p.host}:{p.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            resp = stub.Check(health_pb2.HealthCheckRequest(service=p.service), timeout=0.5)
        except grpc.RpcError:
            return False
        return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)


def is_ready(p: Probe) -> bool:
    return PROBES[p.type](p)

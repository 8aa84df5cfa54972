"""`inferplane epp --secure-serving true` as a process: it makes its own certificate (no `--cert-path`, as upstream),
a TLS gRPC client trusting the certificate it fetched completes an ext_proc exchange, and the real Envoy reaches it
over TLS the way the GIE reference cluster does (an empty validation context)."""

from __future__ import annotations

import json
import ssl

import grpc
import pytest
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inferplane.net import LOOPBACK
from tests.integration.epp.conftest import complete, gateway, start_epp, start_sims
from tests.support.envoy import Envoy
from tests.support.procs import Proc
from tests.unit.epp_server.conftest import REQ_HEADERS, body_msg, headers_msg, set_headers

BODY = json.dumps({"model": "m", "prompt": "hello over tls", "max_tokens": 3}).encode()


def test_secure_serving_with_a_generated_certificate(procs: list[Proc], envoys: list[Envoy]) -> None:
    ports = start_sims(procs, 2, "--zero-latency")
    endpoints = [f"{LOOPBACK}:{p}" for p in ports]
    epp = start_epp(procs, "--endpoints", ",".join(endpoints), "--secure-serving", "true")

    # a plaintext client is refused on the ext_proc port
    with grpc.insecure_channel(f"{LOOPBACK}:{epp.grpc_port}") as ch, pytest.raises(grpc.RpcError) as refused:
        health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service="liveness"), timeout=2)
    assert refused.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)

    # fetch the generated certificate without verifying it, then trust exactly that certificate
    pem = ssl.get_server_certificate((LOOPBACK, epp.grpc_port)).encode()
    creds = grpc.ssl_channel_credentials(root_certificates=pem)
    with grpc.secure_channel(f"{LOOPBACK}:{epp.grpc_port}", creds) as ch:
        call = pb_grpc.ExternalProcessorStub(ch).Process(
            iter([headers_msg(REQ_HEADERS), body_msg(BODY, True)]), timeout=10
        )
        first = next(call)
        dest = set_headers(first.request_headers.response.header_mutation)["x-gateway-destination-endpoint"]
        assert dest in endpoints
        call.cancel()

    # Envoy over TLS, accepting any certificate (GKE and the GIE reference config do not validate it either)
    gw = gateway(envoys, endpoints, epp.grpc_port, ext_proc_tls=True)
    replies = [complete(gw.url, f"tls {i} " * 10) for i in range(4)]
    assert all(r.status == 200 and r.port in ports for r in replies)
    assert epp.metric("inference_objective_request_total") == 5  # the direct exchange and the four through Envoy

"""`--secure-serving`: TLS on the ext_proc port with a certificate generated at start (as upstream does when no
`--cert-path` is given), a real TLS gRPC client completing an ext_proc exchange, and the health port left
plaintext. The CLI process behind Envoy over TLS: tests/integration/epp/test_epp_tls.py."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inferplane.epp.tls import load_cert_dir, self_signed
from inferplane.errors import UsageError
from tests.unit.epp_server.conftest import REQ_HEADERS, body_msg, headers_msg, set_headers, start_pool, stop_pool

BODY = json.dumps({"model": "m", "prompt": "hello " * 30, "max_tokens": 5}).encode()


def test_self_signed_certificate_names_loopback_and_is_fresh() -> None:
    a, b = self_signed(), self_signed()
    assert a.cert_pem != b.cert_pem  # generated per start, never a shipped key
    assert a.key_pem != b.key_pem
    cert = x509.load_pem_x509_certificate(a.cert_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert cert.issuer == cert.subject


def test_cert_dir_needs_both_files(tmp_path: Path) -> None:
    cert = self_signed()
    (tmp_path / "tls.crt").write_bytes(cert.cert_pem)
    with pytest.raises(UsageError, match=r"tls\.key not found"):
        load_cert_dir(tmp_path)
    (tmp_path / "tls.key").write_bytes(cert.key_pem)
    assert load_cert_dir(tmp_path) == cert


async def test_tls_client_completes_an_ext_proc_exchange() -> None:
    cert = self_signed()
    pool = await start_pool(serving_cert=cert)
    try:
        creds = grpc.ssl_channel_credentials(root_certificates=cert.cert_pem)
        async with grpc.aio.secure_channel(f"127.0.0.1:{pool.server.grpc_port}", creds) as ch:
            call = pb_grpc.ExternalProcessorStub(ch).Process()
            await call.write(headers_msg(REQ_HEADERS))
            await call.write(body_msg(BODY, True))
            resp = await call.read()
            dest = set_headers(resp.request_headers.response.header_mutation)["x-gateway-destination-endpoint"]
            assert dest in {e.hostport for e in pool.endpoints}
            call.cancel()
        # a plaintext client cannot talk to the TLS port
        async with grpc.aio.insecure_channel(f"127.0.0.1:{pool.server.grpc_port}") as ch:
            call = pb_grpc.ExternalProcessorStub(ch).Process()

            async def exchange() -> None:
                await call.write(headers_msg(REQ_HEADERS))
                await call.read()

            with pytest.raises(grpc.aio.AioRpcError):
                await exchange()
        # the health port stays plaintext for kubelet's gRPC probes
        async with grpc.aio.insecure_channel(f"127.0.0.1:{pool.server.health_port}") as ch:
            ok = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service="liveness"))
            assert ok.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await stop_pool(pool)

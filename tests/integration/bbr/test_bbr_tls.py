"""`inferplane bbr --secure-serving true`: TLS on the ext_proc port (a generated or a mounted certificate), plaintext
health, and cleartext refused on the ext_proc port."""

from __future__ import annotations

import json
import re
import ssl
from pathlib import Path

import grpc
import pytest
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inferplane.epp.tls import self_signed
from tests.integration.bbr.bbr_support import serving, start_bbr
from tests.integration.bbr.test_bbr_extproc import body, headers, set_headers
from tests.support.procs import INFERPLANE, Proc

BANNER = re.compile(r"inferplane bbr: ext_proc (grpcs?)://127\.0\.0\.1:(\d+) ")


def banner(proc: Proc) -> tuple[str, int]:
    """(scheme, port) from the start-up line, printed just after health turns SERVING."""
    proc.wait_ready(lambda: BANNER.search(proc.output()) is not None, timeout=10, what="the bbr banner")
    m = BANNER.search(proc.output())
    assert m is not None
    return m.group(1), int(m.group(2))


def exchange(channel: grpc.Channel) -> dict[str, str]:
    """One BBR exchange (headers, then the whole body); the header mutation of the body reply."""
    stub = pb_grpc.ExternalProcessorStub(channel)
    payload = json.dumps({"model": "sql-lora", "prompt": "hi"}).encode()
    replies = list(stub.Process(iter([headers(), body(payload)]), timeout=10))
    return set_headers(replies[1].request_body.response.header_mutation)


def tls_channel(port: int, root_pem: bytes) -> grpc.Channel:
    return grpc.secure_channel(f"127.0.0.1:{port}", grpc.ssl_channel_credentials(root_certificates=root_pem))


def health_status(channel: grpc.Channel) -> int:
    resp = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="readiness"), timeout=5)
    return int(resp.status)


EXPECTED = {"x-gateway-model-name": "sql-lora", "x-gateway-base-model-name": "meta-llama/Llama-3.1-8B-Instruct"}


def test_generated_certificate_serves_tls_and_refuses_cleartext(tmp_path: Path) -> None:
    # start_bbr waits on the health port over plaintext: health stays cleartext with TLS on
    proc, port, health_port = start_bbr(tmp_path, "--secure-serving", "true")
    try:
        assert banner(proc) == ("grpcs", port)
        assert serving(health_port, "readiness")  # plaintext, for kubelet's gRPC probes
        assert not serving(port)  # a plaintext health check on the TLS port fails
        # the self-signed certificate made at start, fetched from the port, then trusted as the only root
        generated = ssl.get_server_certificate(("127.0.0.1", port), timeout=5).encode()
        with tls_channel(port, generated) as channel:
            assert exchange(channel) == EXPECTED
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.RpcError) as refused:
                exchange(channel)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        # an unrelated certificate as the only root: the handshake fails, so the client really verified the chain
        with tls_channel(port, self_signed().cert_pem) as channel, pytest.raises(grpc.RpcError) as untrusted:
            exchange(channel)
        assert untrusted.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        proc.stop()


def test_cert_path_serves_the_mounted_certificate(tmp_path: Path) -> None:
    cert = self_signed()
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "tls.crt").write_bytes(cert.cert_pem)
    (certs / "tls.key").write_bytes(cert.key_pem)
    proc, port, _ = start_bbr(tmp_path, "--secure-serving", "true", "--cert-path", str(certs))
    try:
        with tls_channel(port, cert.cert_pem) as channel:
            assert exchange(channel) == EXPECTED
            # Envoy health-checks the ext_proc port itself: over TLS there too
            assert health_status(channel) == health_pb2.HealthCheckResponse.SERVING
    finally:
        proc.stop()


def test_plaintext_by_default(tmp_path: Path) -> None:
    proc, port, _ = start_bbr(tmp_path)
    try:
        assert banner(proc) == ("grpc", port)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert exchange(channel) == EXPECTED
    finally:
        proc.stop()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--cert-path", "."], "--cert-path is only read with --secure-serving true"),
        (["--secure-serving", "true", "--cert-path", "no-such-dir"], "tls.crt not found"),
    ],
)
def test_bad_tls_flags_are_usage_errors(args: list[str], fragment: str) -> None:
    proc = Proc([*INFERPLANE, "bbr", "--port", "0", "--health-port", "0", "--bind", "127.0.0.1", *args])
    try:
        code = proc.popen.wait(timeout=30)
        output = proc.output()
    finally:
        proc.stop()
    assert code != 0
    assert fragment in output
    assert "Traceback" not in output

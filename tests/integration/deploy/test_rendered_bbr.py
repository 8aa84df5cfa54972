"""The rendered body-based router, run for real on loopback with the args `inferplane render` wrote, and called the
way that gateway calls it: over TLS where the renderer made the router serve TLS (GKE, Istio), over cleartext HTTP/2
where it did not (Envoy Gateway, kgateway). Only what a pod would change is changed: ports, bind address and the
models file's path (the ConfigMap's content, written to a temp file)."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import grpc
import pytest
import yaml
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inferplane.deploy.command import render_path
from inferplane.deploy.plan import RenderOptions
from inferplane.net import LOOPBACK, free_ports
from tests.conftest import DEPLOYMENTS
from tests.integration.bbr.bbr_support import serving
from tests.integration.deploy.test_rendered_components import first, with_flag
from tests.support.procs import INFERPLANE, Proc


def exchange(channel: grpc.Channel, model: str) -> dict[str, str]:
    headers = pb.ProcessingRequest(request_headers=pb.HttpHeaders())
    body = pb.ProcessingRequest(
        request_body=pb.HttpBody(body=json.dumps({"model": model}).encode(), end_of_stream=True)
    )
    replies = list(pb_grpc.ExternalProcessorStub(channel).Process(iter([headers, body]), timeout=10))
    mutation = replies[1].request_body.response.header_mutation
    return {h.header.key: h.header.raw_value.decode() for h in mutation.set_headers}


@pytest.mark.parametrize(
    ("target", "klass", "tls"),
    [("gke", None, True), ("kubernetes", "istio", True), ("kubernetes", "kgateway", False)],
)
def test_rendered_router_speaks_what_its_gateway_expects(
    target: str, klass: str | None, tls: bool, tmp_path: Path, procs: list[Proc]
) -> None:
    # Istio's EnvoyFilter names the router's cluster with its namespace, so that render needs one.
    namespace = "team-a" if klass == "istio" else None
    options = RenderOptions(target, "inferplane:test", klass, namespace=namespace)
    out = render_path(DEPLOYMENTS / "pattern2-multimodel", options).manifests
    container = first(out, "Deployment", "body-based-router")["spec"]["template"]["spec"]["containers"][0]
    models = tmp_path / "models.yaml"
    models.write_text(first(out, "ConfigMap", "body-based-router")["data"]["models.yaml"])
    some_model = yaml.safe_load(models.read_text())[0]["baseModel"]
    port, health = free_ports(2)
    args = container["args"]
    for flag, value in (("--grpc-port", str(port)), ("--grpc-health-port", str(health)), ("--bind", LOOPBACK),
                        ("--models-file", str(models))):  # fmt: skip
        args = with_flag(args, flag, value)
    proc = Proc([*INFERPLANE, *args])
    procs.append(proc)
    proc.wait_ready(lambda: serving(health), timeout=30, what="rendered bbr health")
    address = f"{LOOPBACK}:{port}"
    if tls:
        # GKE and Istio accept the router's self-signed certificate unverified; the test trusts exactly that one
        cert = ssl.get_server_certificate((LOOPBACK, port), timeout=5).encode()
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=cert))
    else:
        channel = grpc.insecure_channel(address)
    with channel:
        assert exchange(channel, some_model)["x-gateway-model-name"] == some_model
    # and the other transport is refused: a gateway speaking it would fail every request
    other = grpc.insecure_channel(address) if tls else grpc.secure_channel(address, grpc.ssl_channel_credentials())
    with other, pytest.raises(grpc.RpcError) as refused:
        exchange(other, some_model)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

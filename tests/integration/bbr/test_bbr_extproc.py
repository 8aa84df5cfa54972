"""`inferplane bbr` as a real process, driven by a real gRPC ext_proc client through every phase."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from tests.integration.bbr.bbr_support import serving, start_bbr
from tests.support.procs import INFERPLANE

Mode = processing_mode_pb2.ProcessingMode


@pytest.fixture(scope="module", params=["h2", "grpcio"])
def bbr(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[int]:
    """The router on both ext_proc servers: inferplane's h2grpc (the default) and grpc.aio."""
    proc, port, health_port = start_bbr(tmp_path_factory.mktemp("bbr"), "--ext-proc-server", request.param)
    try:
        assert serving(health_port, "envoy.service.ext_proc.v3.ExternalProcessor")
        assert serving(port)  # health on the ext_proc port too, for Envoy's cluster health checks
        yield port
    finally:
        proc.stop()


@pytest.fixture
def stub(bbr: int) -> Iterator[pb_grpc.ExternalProcessorStub]:
    with grpc.insecure_channel(f"127.0.0.1:{bbr}") as channel:
        yield pb_grpc.ExternalProcessorStub(channel)


def headers(eos: bool = False, body_mode: int = Mode.BUFFERED, **extra: str) -> pb.ProcessingRequest:
    values = {":method": "POST", ":path": "/v1/completions", "content-type": "application/json", **extra}
    hmap = base_pb2.HeaderMap(headers=[base_pb2.HeaderValue(key=k, raw_value=v.encode()) for k, v in values.items()])
    return pb.ProcessingRequest(
        request_headers=pb.HttpHeaders(headers=hmap, end_of_stream=eos),
        protocol_config=pb.ProtocolConfiguration(request_body_mode=body_mode),
    )


def body(data: bytes, eos: bool = True) -> pb.ProcessingRequest:
    return pb.ProcessingRequest(request_body=pb.HttpBody(body=data, end_of_stream=eos))


def set_headers(mutation: pb.HeaderMutation) -> dict[str, str]:
    return {h.header.key: h.header.raw_value.decode() for h in mutation.set_headers}


def test_buffered_every_phase(stub: pb_grpc.ExternalProcessorStub) -> None:
    payload = json.dumps({"model": "food-review", "prompt": "hi"}).encode()
    requests = [
        headers(**{"x-gateway-model-name": "spoofed"}),
        body(payload),
        pb.ProcessingRequest(request_trailers=pb.HttpTrailers()),
        pb.ProcessingRequest(response_headers=pb.HttpHeaders()),
        pb.ProcessingRequest(response_body=pb.HttpBody(body=b"{}", end_of_stream=True)),
        pb.ProcessingRequest(response_trailers=pb.HttpTrailers()),
    ]
    replies = list(stub.Process(iter(requests), timeout=10))
    kinds = [r.WhichOneof("response") for r in replies]
    assert kinds == [
        "request_headers", "request_body", "request_trailers", "response_headers", "response_body", "response_trailers",
    ]  # fmt: skip
    # headers phase: client copies of the routing headers are removed
    assert set(replies[0].request_headers.response.header_mutation.remove_headers) == {
        "x-gateway-model-name",
        "x-gateway-base-model-name",
    }
    common = replies[1].request_body.response
    assert common.clear_route_cache
    assert set_headers(common.header_mutation) == {
        "x-gateway-model-name": "food-review",
        "x-gateway-base-model-name": "meta-llama/Llama-3.1-8B-Instruct",
    }
    assert not common.HasField("body_mutation")  # body passes unchanged
    for r in replies[3:]:
        assert r.ListFields()[0][1].ByteSize() == 0  # response phases pass untouched


def test_base_model_of_a_base_model_and_unknown_model(stub: pb_grpc.ExternalProcessorStub) -> None:
    for model, base in (("Qwen/Qwen3-32B", "Qwen/Qwen3-32B"), ("not-listed", "")):
        replies = list(stub.Process(iter([headers(), body(json.dumps({"model": model}).encode())]), timeout=10))
        assert set_headers(replies[1].request_body.response.header_mutation) == {
            "x-gateway-model-name": model,
            "x-gateway-base-model-name": base,
        }


def test_full_duplex_holds_headers_and_echoes_body_in_chunks(stub: pb_grpc.ExternalProcessorStub) -> None:
    payload = json.dumps({"model": "sql-lora", "prompt": "x" * 150_000}).encode()
    half = len(payload) // 2
    requests = [headers(body_mode=Mode.FULL_DUPLEX_STREAMED), body(payload[:half], eos=False), body(payload[half:])]
    replies = list(stub.Process(iter(requests), timeout=10))
    assert replies[0].WhichOneof("response") == "request_headers"
    mutation = replies[0].request_headers.response.header_mutation
    assert set_headers(mutation)["x-gateway-model-name"] == "sql-lora"
    assert set_headers(mutation)["content-length"] == str(len(payload))
    chunks = [r.request_body.response.body_mutation.streamed_response for r in replies[1:]]
    assert b"".join(c.body for c in chunks) == payload
    assert [c.end_of_stream for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert all(len(c.body) <= 62_000 for c in chunks)


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"prompt": "no model"}', "model not found"),
        (b'["model"]', "JSON object"),
        (b'{"model": 7}', "must be a string"),
    ],
)
def test_bad_bodies_get_400_openai_error(stub: pb_grpc.ExternalProcessorStub, payload: bytes, fragment: str) -> None:
    replies = list(stub.Process(iter([headers(), body(payload)]), timeout=10))
    assert replies[-1].WhichOneof("response") == "immediate_response"
    imm = replies[-1].immediate_response
    assert imm.status.code == 400
    error = json.loads(imm.body)["error"]
    assert fragment in error["message"]
    assert error["type"] == "BadRequestError"
    assert error["code"] == 400


def test_header_only_request_passes(stub: pb_grpc.ExternalProcessorStub) -> None:
    replies = list(stub.Process(iter([headers(eos=True, **{"x-gateway-base-model-name": "spoof"})]), timeout=10))
    assert len(replies) == 1
    common = replies[0].request_headers.response
    assert "x-gateway-base-model-name" in common.header_mutation.remove_headers
    assert common.clear_route_cache


def test_bad_models_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "models.yaml"
    bad.write_text("- adapters: [x]\n")
    done = subprocess.run(
        [*INFERPLANE, "bbr", "--port", "0", "--health-port", "0", "--models-file", str(bad)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "entry 0: baseModel: Field required" in done.stderr
    assert "Traceback" not in done.stderr

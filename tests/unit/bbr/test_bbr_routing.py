"""Body-based routing logic and its ext_proc answers, without a network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from hypothesis import given
from hypothesis import strategies as st

from inferplane.bbr.extproc import BbrStream
from inferplane.bbr.routing import BaseModels, BbrError, route_body
from inferplane.errors import ConfigError

MODELS = BaseModels.from_mapping({"llama": ["food-review", "sql"], "qwen": []})
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@given(model=st.text(min_size=1, max_size=40), extra=st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4))
def test_any_object_with_a_string_model_routes_on_it(model: str, extra: dict[str, object]) -> None:
    body = json.dumps({**extra, "model": model}).encode()
    routing = route_body(body, MODELS)
    assert routing.model == model
    assert routing.headers()["x-gateway-model-name"] == model


@given(value=JSON_VALUES)
def test_anything_else_is_a_400(value: object) -> None:
    if isinstance(value, dict) and isinstance(value.get("model"), str) and value["model"]:
        return
    with pytest.raises(BbrError) as info:
        route_body(json.dumps(value).encode(), MODELS)
    assert info.value.status == 400
    error = json.loads(info.value.openai_body())["error"]
    assert set(error) == {"message", "type", "param", "code"}


def test_base_models() -> None:
    assert route_body(b'{"model":"sql"}', MODELS).base_model == "llama"
    assert route_body(b'{"model":"llama"}', MODELS).base_model == "llama"
    assert route_body(b'{"model":"other"}', MODELS).base_model == ""
    with pytest.raises(ConfigError, match="listed under two base models"):
        BaseModels.from_mapping({"a": ["x"], "b": ["x"]})


def test_models_file(tmp_path: Path) -> None:
    f = tmp_path / "m.yaml"
    f.write_text("- baseModel: b\n  adapters: [a1, a2]\n")
    assert BaseModels.load(f).base_of("a2") == "b"
    f.write_text("baseModel: b\n")
    with pytest.raises(ConfigError, match="expected a list"):
        BaseModels.load(f)
    f.write_text("- baseModel: b\n  adaptors: [x]\n")
    with pytest.raises(ConfigError, match="entry 0: adaptors: Extra inputs"):
        BaseModels.load(f)
    with pytest.raises(ConfigError, match="cannot read models file"):
        BaseModels.load(tmp_path / "missing.yaml")


def _headers(eos: bool, mode: int) -> pb.ProcessingRequest:
    hmap = base_pb2.HeaderMap(headers=[base_pb2.HeaderValue(key=":method", raw_value=b"POST")])
    return pb.ProcessingRequest(
        request_headers=pb.HttpHeaders(headers=hmap, end_of_stream=eos),
        protocol_config=pb.ProtocolConfiguration(request_body_mode=mode),
    )


def test_streamed_mode_answers_every_chunk_and_decides_at_the_end() -> None:
    stream = BbrStream(MODELS)
    mode = processing_mode_pb2.ProcessingMode.STREAMED
    assert stream.on_request(_headers(False, mode))[0].request_headers.response.clear_route_cache
    part = stream.on_request(pb.ProcessingRequest(request_body=pb.HttpBody(body=b'{"model":', end_of_stream=False)))
    assert [r.WhichOneof("response") for r in part] == ["request_body"]
    last = stream.on_request(pb.ProcessingRequest(request_body=pb.HttpBody(body=b'"qwen"}', end_of_stream=True)))
    sets = {h.header.key: h.header.raw_value for h in last[0].request_body.response.header_mutation.set_headers}
    assert sets == {"x-gateway-model-name": b"qwen", "x-gateway-base-model-name": b"qwen"}


def test_duplex_empty_body_is_a_400() -> None:
    stream = BbrStream(MODELS)
    assert stream.on_request(_headers(False, processing_mode_pb2.ProcessingMode.FULL_DUPLEX_STREAMED)) == []
    out = stream.on_request(pb.ProcessingRequest(request_body=pb.HttpBody(body=b"", end_of_stream=True)))
    assert out[0].immediate_response.status.code == 400

"""The configured `parser` plugin parses request bodies in the real EPP (not a fixed OpenAI parser)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from inferplane.api.epp_config import EndpointPickerConfig
from inferplane.epp.extproc import FULL_DUPLEX
from tests.unit.epp_server.conftest import (
    REQ_HEADERS,
    body_msg,
    headers_msg,
    set_headers,
    start_pool,
    stop_pool,
    wait_for,
)


def _config(parser: str | None) -> EndpointPickerConfig:
    data: dict[str, Any] = {
        "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
        "kind": "EndpointPickerConfig",
        "plugins": [{"type": "queue-scorer"}],
        "schedulingProfiles": [{"name": "default", "plugins": [{"pluginRef": "queue-scorer"}]}],
    }
    if parser is not None:
        data["parser"] = {"pluginRef": parser}
    return EndpointPickerConfig.model_validate(data)


async def _decide(parser: str | None, body: bytes) -> tuple[Any, list[str]]:
    pool = await start_pool(config=_config(parser))
    try:
        pool.endpoints[0].waiting = 9
        pool.endpoints[1].waiting = 0
        pool.endpoints[2].waiting = 9
        endpoints = pool.server.datastore.endpoints.values()
        await wait_for(lambda: sorted(e.metrics.waiting_queue_size for e in endpoints) == [0, 9, 9], what="queues")
        call = pool.open()
        await call.write(headers_msg({**REQ_HEADERS, "x-gateway-model-name": "m"}, request_mode=FULL_DUPLEX))
        await call.write(body_msg(body, True))
        resp = await asyncio.wait_for(call.read(), 3)
        call.cancel()
        return resp, [e.hostport for e in pool.endpoints]
    finally:
        await stop_pool(pool)


async def test_passthrough_parser_schedules_without_reading_the_body() -> None:
    # A body the OpenAI parser refuses (400) is routed untouched: the model comes from the header, and the
    # queue scorer picks the endpoint with the shortest queue (GIE's hermetic passthrough case).
    resp, hostports = await _decide("passthrough-parser", b"\x00 not json at all")
    assert resp.WhichOneof("response") == "request_headers"
    mutation = resp.request_headers.response.header_mutation
    assert set_headers(mutation)["x-gateway-destination-endpoint"] == hostports[1]


async def test_openai_parser_is_the_default_and_refuses_what_is_not_json() -> None:
    resp, _ = await _decide(None, b"\x00 not json at all")
    assert resp.immediate_response.status.code == 400
    error = json.loads(resp.immediate_response.body)["error"]
    assert "error unmarshaling request body" in error["message"]

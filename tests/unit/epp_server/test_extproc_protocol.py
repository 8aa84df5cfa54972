"""The ext_proc protocol through a real gRPC client playing Envoy, against a real in-process EPP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inferplane.epp.extproc import BODY_CHUNK, BUFFERED, FULL_DUPLEX, NONE, STREAMED
from tests.unit.epp_server.conftest import (
    REQ_HEADERS,
    Pool,
    body_msg,
    headers_msg,
    resp_body_msg,
    resp_headers_msg,
    set_headers,
    start_pool,
    stop_pool,
    wait_for,
)

BODY = json.dumps({"model": "m", "prompt": "hello " * 30, "max_tokens": 5}).encode()


_PENDING: dict[int, asyncio.Task[Any]] = {}


def _read_task(call: Any) -> asyncio.Task[Any]:
    task = _PENDING.get(id(call))
    if task is None:
        task = _PENDING[id(call)] = asyncio.ensure_future(call.read())
    return task


async def read(call: Any, limit: float = 3.0) -> Any:
    """The next message; a read left pending by `no_message` is the one awaited (gRPC allows one read at a time)."""
    task = _read_task(call)
    try:
        return await asyncio.wait_for(asyncio.shield(task), limit)
    finally:
        if task.done():
            _PENDING.pop(id(call), None)


async def no_message(call: Any, within: float = 0.15) -> bool:
    task = _read_task(call)
    await asyncio.wait({task}, timeout=within)
    return not task.done()


def dest_of(resp: Any, phase: str = "request_headers") -> str:
    common = getattr(resp, phase).response
    return set_headers(common.header_mutation)["x-gateway-destination-endpoint"]


def metadata_dest(resp: Any) -> str:
    return resp.dynamic_metadata.fields["envoy.lb"].struct_value.fields["x-gateway-destination-endpoint"].string_value


async def full_duplex_request(pool: Pool, body: bytes = BODY, headers: dict[str, str] | None = None) -> Any:
    call = pool.open()
    await call.write(headers_msg(headers or REQ_HEADERS))
    half = len(body) // 2
    await call.write(body_msg(body[:half], False))
    assert await no_message(call), "the header answer must be held until the body is complete"
    await call.write(body_msg(body[half:], True))
    return call


async def test_full_duplex_request_and_response(pool: Pool) -> None:
    call = await full_duplex_request(pool)
    hdr = await read(call)
    assert hdr.WhichOneof("response") == "request_headers"
    common = hdr.request_headers.response
    assert common.clear_route_cache
    sets = set_headers(common.header_mutation)
    dest = sets["x-gateway-destination-endpoint"]
    assert dest in {e.hostport for e in pool.endpoints}
    assert metadata_dest(hdr) == dest
    assert sets["content-length"] == str(len(BODY))
    assert "x-request-id" in sets  # generated and injected when the client sent none
    body = await read(call)
    sbr = body.request_body.response.body_mutation.streamed_response
    assert sbr.body == BODY
    assert sbr.end_of_stream
    assert pool.in_flight() == 1

    await call.write(resp_headers_msg({":status": "200", "content-type": "application/json"}, served=dest))
    rh = await read(call)
    assert set_headers(rh.response_headers.response.header_mutation)["x-went-into-resp-headers"] == "true"
    answer = json.dumps(
        {
            "object": "text_completion",
            "model": "m",
            "usage": {
                "prompt_tokens": 40,
                "completion_tokens": 5,
                "total_tokens": 45,
                "prompt_tokens_details": {"cached_tokens": 32},
            },
        }
    ).encode()
    await call.write(resp_body_msg(answer[:10], False))
    assert await no_message(call), "a non-streaming response is held until its end"
    await call.write(resp_body_msg(answer[10:], True))
    out = await read(call)
    assert out.response_body.response.body_mutation.streamed_response.body == answer
    assert out.response_body.response.body_mutation.streamed_response.end_of_stream
    assert pool.in_flight() == 0
    page = (await asyncio.to_thread(_metrics_page, pool)).splitlines()
    assert any(line.startswith("inference_objective_input_tokens_sum") and line.endswith(" 40.0") for line in page)
    assert any(
        line.startswith("inference_objective_prompt_cached_tokens_sum") and line.endswith(" 32.0") for line in page
    )
    await call.done_writing()


def _metrics_page(pool: Pool) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{pool.server.metrics_port}/metrics", timeout=2) as r:
        return r.read().decode()


async def test_buffered_mode_answers_headers_then_decides_on_body(pool: Pool) -> None:
    call = pool.open()
    spoofed = {
        **REQ_HEADERS,
        "x-gateway-destination-endpoint": "10.9.9.9:1",
        "x-gateway-destination-endpoint-fallback": "x",
    }
    await call.write(headers_msg(spoofed, request_mode=BUFFERED, response_mode=NONE))
    first = await read(call)
    assert first.WhichOneof("response") == "request_headers"
    assert set(first.request_headers.response.header_mutation.remove_headers) == {
        "x-gateway-destination-endpoint",
        "x-gateway-destination-endpoint-fallback",
    }
    await call.write(body_msg(BODY, True))
    second = await read(call)
    assert second.WhichOneof("response") == "request_body"
    dest = dest_of(second, "request_body")
    assert dest in {e.hostport for e in pool.endpoints}
    assert metadata_dest(second) == dest
    assert second.request_body.response.clear_route_cache
    assert not second.request_body.response.HasField("body_mutation")  # unchanged body is not re-sent
    assert pool.in_flight() == 1
    await call.done_writing()
    await wait_for(lambda: pool.in_flight() == 0, what="in-flight ends with the stream")


async def test_streamed_mode_answers_every_chunk() -> None:
    pool = await start_pool()
    try:
        call = pool.open()
        await call.write(headers_msg(REQ_HEADERS, request_mode=STREAMED, response_mode=STREAMED))
        assert (await read(call)).WhichOneof("response") == "request_headers"
        await call.write(body_msg(BODY[:20], False))
        assert (await read(call)).WhichOneof("response") == "request_body"
        await call.write(body_msg(BODY[20:], True))
        decided = await read(call)
        assert dest_of(decided, "request_body") in {e.hostport for e in pool.endpoints}
    finally:
        await stop_pool(pool)


async def test_headers_only_mode_decides_on_headers(pool: Pool) -> None:
    call = pool.open()
    await call.write(headers_msg({**REQ_HEADERS, "x-gateway-model-name": "m"}, request_mode=NONE, response_mode=NONE))
    resp = await read(call)
    assert dest_of(resp) in {e.hostport for e in pool.endpoints}
    assert pool.in_flight() == 1
    call.cancel()
    await wait_for(lambda: pool.in_flight() == 0, what="in-flight back to 0")


async def test_request_without_body_gets_any_ready_endpoint(pool: Pool) -> None:
    call = pool.open()
    await call.write(headers_msg({":method": "GET", ":path": "/v1/models"}, end_of_stream=True))
    resp = await read(call)
    assert dest_of(resp) in {e.hostport for e in pool.endpoints}


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "error unmarshaling request body"),
        (b'{"prompt": "x"}', 400, "model not found in request body"),
        (b'{"model": "m"}', 400, "must have a prompt"),
    ],
)
async def test_bad_bodies_get_openai_errors(pool: Pool, body: bytes, status: int, needle: str) -> None:
    call = pool.open()
    await call.write(headers_msg(REQ_HEADERS))
    await call.write(body_msg(body, True))
    resp = await read(call)
    imm = resp.immediate_response
    assert imm.status.code == status
    err = json.loads(imm.body)["error"]
    assert needle in err["message"]
    assert err["code"] == status
    assert err["type"] == "BadRequestError"
    assert {"message", "type", "param", "code"} == set(err)
    assert pool.in_flight() == 0


async def test_large_body_is_rechunked_at_62000_bytes(pool: Pool) -> None:
    prompt = "x" * 200_000
    body = json.dumps({"model": "m", "prompt": prompt}).encode()
    call = pool.open()
    await call.write(headers_msg({**REQ_HEADERS, "x-gateway-model-name-rewrite": "m-v2"}))
    for i in range(0, len(body), 16_384):
        await call.write(body_msg(body[i : i + 16_384], i + 16_384 >= len(body)))
    hdr = await read(call)
    new_len = int(set_headers(hdr.request_headers.response.header_mutation)["content-length"])
    chunks = []
    while True:
        sbr = (await read(call)).request_body.response.body_mutation.streamed_response
        chunks.append(sbr)
        if sbr.end_of_stream:
            break
    assert all(len(c.body) <= BODY_CHUNK for c in chunks)
    assert len(chunks) == -(-new_len // BODY_CHUNK)
    assert [c.end_of_stream for c in chunks] == [False] * (len(chunks) - 1) + [True]
    sent = json.loads(b"".join(c.body for c in chunks))
    assert sent == {"model": "m-v2", "prompt": prompt}
    assert len(b"".join(c.body for c in chunks)) == new_len


async def test_model_rewrite_is_restored_in_streamed_response(pool: Pool) -> None:
    call = await full_duplex_request(pool, headers={**REQ_HEADERS, "x-gateway-model-name-rewrite": "m-v2"})
    hdr = await read(call)
    dest = dest_of(hdr)
    body = await read(call)
    assert json.loads(body.request_body.response.body_mutation.streamed_response.body)["model"] == "m-v2"
    await call.write(resp_headers_msg({":status": "200", "content-type": "text/event-stream"}, served=dest))
    await read(call)
    chunk1 = b'data: {"object":"text_completion","model":"m-v2","choices":[{"text":"a"}]}\n\n'
    await call.write(resp_body_msg(chunk1, False))
    out1 = await read(call)  # SSE chunks are forwarded at once
    assert out1.response_body.response.body_mutation.streamed_response.body == chunk1.replace(b"m-v2", b"m")
    assert pool.in_flight() == 1
    chunk2 = (
        b'data: {"model": "m-v2","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}'
        b"\n\ndata: [DONE]\n\n"
    )
    await call.write(resp_body_msg(chunk2, True))
    out2 = await read(call)
    assert b'"model": "m"' in out2.response_body.response.body_mutation.streamed_response.body
    assert out2.response_body.response.body_mutation.streamed_response.end_of_stream
    assert pool.in_flight() == 0


async def test_subset_hint_restricts_the_pick(pool: Pool) -> None:
    target = pool.endpoints[2].hostport
    for _ in range(5):
        call = pool.open()
        await call.write(headers_msg(REQ_HEADERS, subset=[target]))
        await call.write(body_msg(BODY, True))
        assert dest_of(await read(call)) == target
        call.cancel()


@pytest.mark.parametrize("subset", [[], ["10.1.2.3:8000"]])
async def test_empty_or_foreign_subset_is_503(pool: Pool, subset: list[str]) -> None:
    call = pool.open()
    await call.write(headers_msg(REQ_HEADERS, subset=subset))
    await call.write(body_msg(BODY, True))
    resp = await read(call)
    assert resp.immediate_response.status.code == 503
    assert "failed to find endpoint candidates" in json.loads(resp.immediate_response.body)["error"]["message"]


async def test_client_cancel_mid_stream_ends_in_flight(pool: Pool) -> None:
    call = await full_duplex_request(pool)
    dest = dest_of(await read(call))
    await read(call)
    await call.write(resp_headers_msg({":status": "200", "content-type": "text/event-stream"}, served=dest))
    await read(call)
    await call.write(resp_body_msg(b'data: {"choices":[]}\n\n', False))
    await read(call)
    assert pool.server.datastore.endpoints[dest].in_flight_requests == 1
    call.cancel()  # the client went away: Envoy resets the ext_proc stream
    await wait_for(lambda: pool.in_flight() == 0, what="in-flight back to 0 after cancel")
    assert pool.server.servicer.active_streams == 0


async def test_no_ready_endpoints_is_503(pool: Pool) -> None:
    for e in pool.endpoints:
        e.status = 500
    await wait_for(lambda: not pool.server.datastore.ready_endpoints(), what="endpoints marked down")
    call = pool.open()
    await call.write(headers_msg(REQ_HEADERS))
    await call.write(body_msg(BODY, True))
    assert (await read(call)).immediate_response.status.code == 503
    for e in pool.endpoints:
        e.status = 200
    await wait_for(lambda: len(pool.server.datastore.ready_endpoints()) == 3, what="endpoints back up")


async def test_deep_queue_is_avoided(pool: Pool) -> None:
    pool.endpoints[0].waiting = 50
    pool.endpoints[1].waiting = 50
    await wait_for(
        lambda: pool.server.datastore.endpoints[pool.endpoints[0].hostport].metrics.waiting_queue_size == 50,
        what="scrape",
    )
    picks = set()
    for i in range(6):
        body = json.dumps({"model": "m", "prompt": f"distinct prompt {i} " * 20}).encode()
        call = pool.open()
        await call.write(headers_msg(REQ_HEADERS))
        await call.write(body_msg(body, True))
        picks.add(dest_of(await read(call)))
        call.cancel()
    assert picks == {pool.endpoints[2].hostport}


async def test_request_trailers_end_the_body(pool: Pool) -> None:
    from envoy.service.ext_proc.v3 import external_processor_pb2 as pb

    call = pool.open()
    await call.write(headers_msg(REQ_HEADERS))
    await call.write(body_msg(BODY, False))
    await call.write(pb.ProcessingRequest(request_trailers=pb.HttpTrailers()))
    kinds = [(await read(call)).WhichOneof("response") for _ in range(3)]
    assert kinds == ["request_headers", "request_body", "request_trailers"]


async def test_health_service_names(pool: Pool) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{pool.server.health_port}") as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        for name in ("liveness", "readiness", "envoy.service.ext_proc.v3.ExternalProcessor"):
            resp = await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=2)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING, name


async def test_exported_metric_names(pool: Pool) -> None:
    call = await full_duplex_request(pool)
    await read(call)
    page = await asyncio.to_thread(_metrics_page, pool)
    for name in (
        "inference_objective_request_total",
        "inference_objective_running_requests",
        "inference_pool_ready_pods",
        "inference_pool_average_kv_cache_utilization",
        "inference_pool_per_pod_queue_size",
        "inference_extension_scheduler_e2e_duration_seconds",
        "inference_extension_scheduler_attempts_total",
        "inference_extension_plugin_duration_seconds",
        "inference_extension_info",
        "inference_extension_prefix_indexer_size",
        "inference_extension_prefix_indexer_hit_ratio",
    ):
        assert name in page, name
    assert 'inference_pool_ready_pods{name="pool"} 3.0' in page


async def test_full_duplex_is_the_default_without_protocol_config(pool: Pool) -> None:
    from envoy.service.ext_proc.v3 import external_processor_pb2 as pb

    req = headers_msg(REQ_HEADERS)
    req.ClearField("protocol_config")
    call = pool.open()
    await call.write(req)
    assert await no_message(call)
    await call.write(body_msg(BODY, True))
    assert (await read(call)).WhichOneof("response") == "request_headers"
    assert isinstance(FULL_DUPLEX, int)
    assert pb is not None


async def test_streamed_response_mode_answers_every_chunk(pool: Pool) -> None:
    """Envoy's STREAMED response mode (the local gateway's choice with BUFFERED requests): every chunk gets its own
    answer, rewritten in place when the model was rewritten; usage is still read at the end."""
    call = pool.open()
    await call.write(
        headers_msg(
            {**REQ_HEADERS, "x-gateway-model-name-rewrite": "m-v2"}, request_mode=BUFFERED, response_mode=STREAMED
        )
    )
    await read(call)
    await call.write(body_msg(BODY, True))
    dest = dest_of(await read(call), "request_body")
    await call.write(resp_headers_msg({":status": "200", "content-type": "application/json"}, served=dest))
    await read(call)
    first = b'{"object":"text_completion","model":"m-v2",'
    await call.write(resp_body_msg(first, False))
    out = (await read(call)).response_body.response
    assert out.body_mutation.body == b'{"object":"text_completion","model":"m",'
    rest = b'"usage":{"prompt_tokens":11,"completion_tokens":1}}'
    await call.write(resp_body_msg(rest, True))
    last = (await read(call)).response_body
    assert not last.response.HasField("body_mutation")  # unchanged chunks are not re-sent
    assert pool.in_flight() == 0
    page = await asyncio.to_thread(_metrics_page, pool)
    assert 'inference_objective_input_tokens_sum{model_name="m",target_model_name="m-v2"} 11.0' in page


async def test_served_endpoint_takes_over_the_in_flight_count(pool: Pool) -> None:
    """Envoy retried on a fallback: the served-endpoint metadata moves the request's accounting there."""
    spoof = {
        **REQ_HEADERS,
        "x-gateway-destination-endpoint-served": "1.2.3.4:5",
        "x-gateway-destination-endpoint-x": "y",
    }
    call = await full_duplex_request(pool, headers=spoof)
    hdr = await read(call)
    assert set(hdr.request_headers.response.header_mutation.remove_headers) == {
        "x-gateway-destination-endpoint-served",
        "x-gateway-destination-endpoint-x",
    }
    primary = dest_of(hdr)
    await read(call)
    other = next(e.hostport for e in pool.endpoints if e.hostport != primary)
    eps = pool.server.datastore.endpoints
    assert eps[primary].in_flight_requests == 1
    await call.write(resp_headers_msg({":status": "200", "content-type": "application/json"}, served=other))
    await read(call)
    assert eps[primary].in_flight_requests == 0
    assert eps[other].in_flight_requests == 1
    await call.write(resp_body_msg(b"{}", True))
    await read(call)
    assert pool.in_flight() == 0


async def test_ready_only_after_the_first_scrape() -> None:
    from inferplane.api.epp_config import default_epp_config
    from inferplane.epp.datalayer.discovery import EndpointSpec, StaticDiscovery
    from inferplane.epp.server import EppOptions, EppServer
    from tests.unit.epp_server.conftest import MetricsEndpoint

    up, down = MetricsEndpoint(), MetricsEndpoint(status=500)
    for e in (up, down):
        await e.start()
    server = EppServer(
        EppOptions(
            pool_name="p",
            discovery=StaticDiscovery([EndpointSpec("127.0.0.1", e.port) for e in (up, down)]),
            config=default_epp_config(),
            bind="127.0.0.1",
            grpc_port=0,
            grpc_health_port=0,
            metrics_port=None,
            refresh_metrics_interval=0.05,
        )
    )
    try:
        await server.start()
        await wait_for(lambda: server.health.ready, what="readiness")
        # readiness implies a verdict on every endpoint: the answering one is ready, the failing one is not
        assert [e.hostport for e in server.datastore.ready_endpoints()] == [up.hostport]
        assert server.datastore.endpoints[down.hostport].metrics.scrape_error
    finally:
        await server.stop(grace=0)
        for e in (up, down):
            await e.stop()

"""Director ↔ ext_proc details: PreRequest header removals, the after-reply flush ordering, and the status when the
filters leave no endpoint — through a real gRPC client against a real in-process EPP."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from typing import Any

import grpc
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

from inferplane.api.epp_config import EndpointPickerConfig
from inferplane.epp.extproc import BUFFERED, FULL_DUPLEX
from tests.unit.epp_server.conftest import (
    REQ_HEADERS,
    Pool,
    body_msg,
    headers_msg,
    set_headers,
    start_pool,
    stop_pool,
    wait_for,
)

BODY = json.dumps({"model": "m", "prompt": "hello " * 30, "max_tokens": 5}).encode()

PD_CONFIG = {
    "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
    "kind": "EndpointPickerConfig",
    "plugins": [
        {"type": "prefill-header-handler"},
        {"type": "prefill-filter"},
        {"type": "decode-filter"},
        {"type": "max-score-picker"},
        {"type": "queue-scorer"},
        {"type": "pd-profile-handler", "parameters": {"threshold": 0}},
    ],
    "schedulingProfiles": [
        {"name": "prefill", "plugins": [{"pluginRef": "prefill-filter"}, {"pluginRef": "max-score-picker"}]},
        {
            "name": "decode",
            "plugins": [
                {"pluginRef": "decode-filter"},
                {"pluginRef": "queue-scorer"},
                {"pluginRef": "max-score-picker"},
            ],
        },
    ],
}

ONLY_PREFILL = {
    "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
    "kind": "EndpointPickerConfig",
    "plugins": [{"type": "prefill-filter"}, {"type": "queue-scorer"}],
    "schedulingProfiles": [
        {"name": "default", "plugins": [{"pluginRef": "prefill-filter"}, {"pluginRef": "queue-scorer"}]}
    ],
}


async def _decide(pool: Pool, headers: dict[str, str], mode: int) -> Any:
    call = pool.open()
    await call.write(headers_msg(headers, request_mode=mode, response_mode=mode))
    if mode == BUFFERED:
        first = await asyncio.wait_for(call.read(), 3)
        assert first.WhichOneof("response") == "request_headers"
    await call.write(body_msg(BODY, True))
    resp = await asyncio.wait_for(call.read(), 3)
    return call, resp


async def test_prerequest_none_removes_a_client_supplied_header() -> None:
    # No endpoint carries the prefill role, so no prefill runs and prefill-header-handler answers None for
    # x-prefiller-host-port: the client's own value must be removed, not passed to the decoder.
    pool = await start_pool(config=EndpointPickerConfig.model_validate(PD_CONFIG))
    try:
        spoofed = {**REQ_HEADERS, "x-prefiller-host-port": "6.6.6.6:1"}
        for mode, phase in ((FULL_DUPLEX, "request_headers"), (BUFFERED, "request_body")):
            call, resp = await _decide(pool, spoofed, mode)
            mutation = getattr(resp, phase).response.header_mutation
            assert "x-prefiller-host-port" in list(mutation.remove_headers), mode
            assert "x-prefiller-host-port" not in set_headers(mutation)
            assert set_headers(mutation)["x-gateway-destination-endpoint"] in {e.hostport for e in pool.endpoints}
            call.cancel()
    finally:
        await stop_pool(pool)


async def test_filters_leaving_no_endpoint_answer_429_like_upstream() -> None:
    pool = await start_pool(config=EndpointPickerConfig.model_validate(ONLY_PREFILL))
    try:
        call, resp = await _decide(pool, REQ_HEADERS, FULL_DUPLEX)
        assert resp.immediate_response.status.code == 429
        err = json.loads(resp.immediate_response.body)["error"]
        assert err["code"] == 429
        assert err["type"] == "RateLimitError"
        assert "ResourceExhausted - failed to find target endpoint: no endpoints available" in err["message"]
        call.cancel()
    finally:
        await stop_pool(pool)


async def test_deferred_scheduler_work_runs_after_the_reply_reached_the_client() -> None:
    """flush_deferred blocks the EPP's loop until a client in another thread has the decision in hand: if the
    flush ran before the reply was written, the client could not have it and the flush records False."""
    pool = await start_pool(body_mode=FULL_DUPLEX)
    received = threading.Event()
    seen: list[bool] = []
    scheduler: Any = pool.server.director.scheduler
    original = scheduler.flush_deferred

    def flush() -> None:
        seen.append(received.wait(3.0))
        original()

    scheduler.flush_deferred = flush
    answers: queue.Queue[Any] = queue.Queue()

    def client() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{pool.server.grpc_port}") as ch:
            stub = pb_grpc.ExternalProcessorStub(ch)
            msgs = iter([headers_msg(REQ_HEADERS), body_msg(BODY, True)])
            done = threading.Event()

            def requests() -> Any:
                yield from msgs
                done.wait(5.0)  # keep the stream open until the answer is read

            for resp in stub.Process(requests(), timeout=5.0):
                answers.put(resp)
                received.set()
                if answers.qsize() == 2:  # the held headers answer, then the body
                    break
            done.set()

    try:
        await asyncio.wait_for(asyncio.to_thread(client), 10)
        first = answers.get_nowait()
        assert first.WhichOneof("response") == "request_headers"
        await wait_for(lambda: bool(seen), what="the after-reply flush")
        assert seen == [True]
    finally:
        scheduler.flush_deferred = original
        await stop_pool(pool)

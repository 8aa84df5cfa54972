"""Admission over the wire: shedding (429) without flow control, queueing and TTL expiry (503) with it."""

from __future__ import annotations

import asyncio
import json

from inferplane.api.epp_config import EndpointPickerConfig
from inferplane.epp.datalayer.datastore import Objective
from tests.unit.epp_server.conftest import REQ_HEADERS, Pool, body_msg, headers_msg, start_pool, stop_pool, wait_for
from tests.unit.epp_server.test_extproc_protocol import BODY, dest_of, no_message, read


async def saturate(pool: Pool, waiting: int) -> None:
    for e in pool.endpoints:
        e.waiting = waiting
    await wait_for(
        lambda: all(e.metrics.waiting_queue_size == waiting for e in pool.server.datastore.endpoints.values()),
        what=f"scraped queue {waiting}",
    )


async def test_sheddable_request_is_shed_when_saturated_and_priority_zero_is_served(pool: Pool) -> None:
    pool.server.datastore.set_objectives([Objective("batch", -1), Objective("critical", 10)])
    await saturate(pool, 10)  # utilization-detector: queue 10 / threshold 5 → saturation 2.0
    call = pool.open()
    await call.write(headers_msg({**REQ_HEADERS, "x-gateway-inference-objective": "batch"}))
    await call.write(body_msg(BODY, True))
    resp = await read(call)
    assert resp.immediate_response.status.code == 429
    err = json.loads(resp.immediate_response.body)["error"]
    assert "sheddable request dropped" in err["message"]
    assert err["type"] == "RateLimitError"
    for objective in ("critical", None, "unknown-objective"):
        headers = dict(REQ_HEADERS)
        if objective:
            headers["x-gateway-inference-objective"] = objective
        call = pool.open()
        await call.write(headers_msg(headers))
        await call.write(body_msg(BODY, True))
        assert dest_of(await read(call)) in {e.hostport for e in pool.endpoints}
    await saturate(pool, 0)
    call = pool.open()
    await call.write(headers_msg({**REQ_HEADERS, "x-gateway-inference-objective": "batch"}))
    await call.write(body_msg(BODY, True))
    assert dest_of(await read(call)) in {e.hostport for e in pool.endpoints}


FLOW_CONFIG = {
    "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
    "kind": "EndpointPickerConfig",
    "featureGates": ["flowControl"],
    "plugins": [{"type": "queue-scorer"}],
    "flowControl": {"defaultRequestTTL": "300ms"},
}


async def test_flow_control_queues_while_saturated_then_dispatches() -> None:
    pool = await start_pool(config=EndpointPickerConfig.model_validate(FLOW_CONFIG))
    try:
        await saturate(pool, 10)
        call = pool.open()
        await call.write(headers_msg({**REQ_HEADERS, "x-gateway-inference-fairness-id": "tenant-a"}))
        await call.write(body_msg(BODY, True))
        assert await no_message(call, 0.1), "a request must wait in the queue while the pool is saturated"
        await saturate(pool, 0)
        assert dest_of(await read(call)) in {e.hostport for e in pool.endpoints}
        call.cancel()
        await wait_for(lambda: pool.in_flight() == 0, what="first request finished")

        await saturate(pool, 10)
        call = pool.open()
        await call.write(headers_msg(REQ_HEADERS))
        await call.write(body_msg(BODY, True))
        resp = await read(call, limit=3)
        assert resp.immediate_response.status.code == 503  # TTL expired in the queue
        assert "TTL" in json.loads(resp.immediate_response.body)["error"]["message"]

        # a client that goes away while queued leaves nothing behind
        call = pool.open()
        await call.write(headers_msg(REQ_HEADERS))
        await call.write(body_msg(BODY, True))
        await asyncio.sleep(0.05)
        call.cancel()
        flow = pool.server.admission.controller.flow
        assert flow is not None
        await wait_for(lambda: flow.count == 0, what="queue drained after cancel")
        assert pool.in_flight() == 0
    finally:
        await stop_pool(pool)

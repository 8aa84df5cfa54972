"""InferencePool backends through the real Envoy: the picker's choice is honoured (header or `envoy.lb` metadata),
picks outside the pool and client-sent destination headers are not, FailClose answers 503 and FailOpen falls back
to Envoy's own balancing when the picker is down, weighted splits across pools, and an endpoint update through
EDS files leaves in-flight requests alone."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from inferplane.api.gateway_api import Gateway, HTTPRoute
from inferplane.gateway import GatewayPlan, PoolBinding, pool_cluster_name, write_endpoints
from inferplane.net import free_port, free_ports, wait_until
from tests.integration.gateway.harness import (
    Response,
    echo_backends,
    gateway_doc,
    pool_ref,
    route_doc,
    running_gateway,
    send,
    service_ref,
    sleeping,
    start_picker,
)
from tests.integration.gateway.picker import rejection_body

NAMES = ["e1", "e2", "e3", "outsider", "svc"]


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with echo_backends(NAMES, tmp_path_factory.mktemp("echo")) as addrs:
        yield addrs


def plan_for(rules: list[dict[str, object]], pools: dict[str, PoolBinding], echo: dict[str, str]) -> GatewayPlan:
    return GatewayPlan(
        gateways=[Gateway.model_validate(gateway_doc())],
        routes=[HTTPRoute.model_validate(route_doc("r", rules))],
        pools=pools,
        services={"svc": [echo["svc"]]},
        port_map={80: free_port()},
    )


def served(port: int, n: int, **headers: str) -> collections.Counter[str]:
    out: collections.Counter[str] = collections.Counter()
    for _ in range(n):
        resp = send(port, method="POST", path="/v1/completions", body=b'{"model":"m"}', headers=headers)
        out[resp.backend or f"status {resp.status}"] += 1
    return out


def test_pick_is_honoured_and_bounded_to_the_pool(echo: dict[str, str], tmp_path: Path, procs: list) -> None:
    members = [echo["e1"], echo["e2"], echo["e3"]]
    picker, picker_port = start_picker(members, tmp_path)
    procs.append(picker)
    plan = plan_for(
        [{"backendRefs": [pool_ref("pool")]}], {"pool": PoolBinding(members, f"127.0.0.1:{picker_port}")}, echo
    )
    with running_gateway(plan, tmp_path / "envoy"):
        port = plan.local_port("default/gw", 80)
        for name in ("e2", "e3"):
            assert served(port, 5, **{"test-epp-endpoint-selection": echo[name]}) == {name: 5}
            # the metadata alone is enough (override_host reads `envoy.lb` first)
            only_md = {"test-epp-endpoint-selection": echo[name], "x-picker-answer": "metadata"}
            assert served(port, 5, **only_md) == {name: 5}
        # a pick outside the pool is never followed: Envoy's fallback balances over the members
        outside = served(port, 6, **{"test-epp-endpoint-selection": echo["outsider"]})
        assert "outsider" not in outside
        assert sum(outside.values()) == 6
        # a client cannot steer: its own destination header is dropped before any filter runs
        spoofed = served(port, 9, **{"x-picker-answer": "none", "x-gateway-destination-endpoint": echo["e3"]})
        assert set(spoofed) == {"e1", "e2", "e3"}
        # GET without a body: the picker answers on the headers
        resp = send(port, path="/v1/models", headers={"test-epp-endpoint-selection": echo["e1"]})
        assert resp.backend == "e1"


def test_fail_close_answers_503_when_the_picker_is_unreachable(echo: dict[str, str], tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    plan = plan_for(
        [{"backendRefs": [pool_ref("pool")]}], {"pool": PoolBinding([echo["e1"]], dead, failure_mode="FailClose")}, echo
    )
    with running_gateway(plan, tmp_path / "envoy"):
        resp = send(plan.local_port("default/gw", 80), method="POST", path="/v1/completions", body=b"{}")
        assert resp.status == 503
        assert resp.backend is None
        # an OpenAI-style error, not Envoy's empty body
        assert resp.headers["content-type"] == "application/json"
        assert resp.json() == {
            "error": {
                "message": "the endpoint picker (or body-based router) of this route cannot be reached",
                "type": "ServiceUnavailableError",
                "param": None,
                "code": 503,
            }
        }


def test_the_pickers_own_error_replies_pass_unchanged(echo: dict[str, str], tmp_path: Path, procs: list) -> None:
    """The picker's ImmediateResponses are local replies too: the JSON body given to the FailClose 503 must not
    replace theirs, not even for the same status."""
    picker, picker_port = start_picker([echo["e1"]], tmp_path)
    procs.append(picker)
    plan = plan_for(
        [{"backendRefs": [pool_ref("pool")]}], {"pool": PoolBinding([echo["e1"]], f"127.0.0.1:{picker_port}")}, echo
    )
    with running_gateway(plan, tmp_path / "envoy"):
        port = plan.local_port("default/gw", 80)
        for status in (429, 503):
            resp = send(
                port, method="POST", path="/v1/completions", body=b"{}", headers={"x-picker-answer": f"reject-{status}"}
            )
            assert resp.status == status
            assert resp.body == rejection_body(status)
            assert resp.headers["content-type"] == "application/json"
            assert resp.backend is None
        assert send(port, method="POST", path="/v1/completions", body=b"{}").backend == "e1"


def test_fail_open_balances_over_the_pool_when_the_picker_dies(
    echo: dict[str, str], tmp_path: Path, procs: list
) -> None:
    members = [echo["e1"], echo["e2"]]
    picker, picker_port = start_picker(members, tmp_path)
    procs.append(picker)
    pool = PoolBinding(members, f"127.0.0.1:{picker_port}", failure_mode="FailOpen")
    plan = plan_for([{"backendRefs": [pool_ref("pool")]}], {"pool": pool}, echo)
    with running_gateway(plan, tmp_path / "envoy"):
        port = plan.local_port("default/gw", 80)
        assert served(port, 4, **{"test-epp-endpoint-selection": echo["e2"]}) == {"e2": 4}
        picker.stop()
        after = served(port, 8, **{"test-epp-endpoint-selection": echo["e2"]})
        assert after == {"e1": 4, "e2": 4}  # round robin, every request answered


def test_weighted_split_across_pool_service_and_invalid_backend(
    echo: dict[str, str], tmp_path: Path, procs: list
) -> None:
    picker, picker_port = start_picker([echo["e1"]], tmp_path)
    procs.append(picker)
    rules = [{"backendRefs": [pool_ref("pool", 2), service_ref("svc", 1), service_ref("missing", 1)]}]
    plan = plan_for(rules, {"pool": PoolBinding([echo["e1"]], f"127.0.0.1:{picker_port}")}, echo)
    total = 400
    with running_gateway(plan, tmp_path / "envoy"):
        port = plan.local_port("default/gw", 80)

        def one(i: int) -> str:
            resp = send(port, path=f"/{i}")
            return resp.backend or str(resp.status)

        with ThreadPoolExecutor(8) as pool:
            seen = collections.Counter(pool.map(one, range(total)))
    assert set(seen) == {"e1", "svc", "500"}
    for key, share in (("e1", 0.5), ("svc", 0.25), ("500", 0.25)):
        assert abs(seen[key] / total - share) < 0.08, seen


def test_inflight_request_survives_endpoint_update(echo: dict[str, str], tmp_path: Path) -> None:
    dead_picker = f"127.0.0.1:{free_ports(1)[0]}"
    pool = PoolBinding([echo["e1"]], dead_picker, failure_mode="FailOpen")  # Envoy balances: only the set matters
    plan = plan_for([{"backendRefs": [pool_ref("pool")]}], {"pool": pool}, echo)
    config_dir = tmp_path / "envoy"
    with running_gateway(plan, config_dir):
        port = plan.local_port("default/gw", 80)
        assert served(port, 2) == {"e1": 2}
        slow: list[Response] = []
        thread = threading.Thread(target=lambda: slow.append(send(port, headers={"x-echo-delay-ms": "1500"})))
        thread.start()
        wait_until(lambda: sleeping(echo["e1"]) == 1, 5, what="the slow request to reach e1")
        started = time.monotonic()
        write_endpoints(config_dir, pool_cluster_name("pool"), [echo["e2"], echo["e3"]])
        while "e1" in served(port, 1):
            assert time.monotonic() - started < 5, "the endpoint update did not reach Envoy"
        applied_s = time.monotonic() - started
        assert set(served(port, 6)) == {"e2", "e3"}
        thread.join(10)
        assert [(r.status, r.backend) for r in slow] == [(200, "e1")]
        assert applied_s < 2.0


def test_a_dead_pick_is_retried_on_another_pool_member(echo: dict[str, str], tmp_path: Path, procs: list) -> None:
    """A replica that died after the picker chose it: the connection fails before the request started, so Envoy
    retries it on another member instead of answering 503."""
    dead = f"127.0.0.1:{free_port()}"
    members = [dead, echo["e1"]]
    picker, picker_port = start_picker(members, tmp_path)
    procs.append(picker)
    plan = plan_for(
        [{"backendRefs": [pool_ref("pool")]}], {"pool": PoolBinding(members, f"127.0.0.1:{picker_port}")}, echo
    )
    with running_gateway(plan, tmp_path / "envoy"):
        port = plan.local_port("default/gw", 80)
        assert served(port, 4, **{"test-epp-endpoint-selection": dead}) == {"e1": 4}

"""Body-based routing through the real Envoy: the generated config puts `inferplane bbr` first in the chain, and
HTTPRoute header matches on X-Gateway-Model-Name / X-Gateway-Base-Model-Name pick the backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferplane.api.gateway_api import Gateway, HTTPRoute
from inferplane.gateway import GatewayPlan
from inferplane.net import free_port
from tests.integration.bbr.bbr_support import start_bbr
from tests.integration.gateway.harness import Response, echo_backends, running_gateway, send

GATEWAY = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "Gateway",
    "metadata": {"name": "inference-gateway"},
    "spec": {"gatewayClassName": "inferplane", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
}


def rule(header: str, value: str, backend: str) -> dict[str, object]:
    return {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}, "headers": [{"name": header, "value": value}]}],
        "backendRefs": [{"name": backend, "port": 8000}],
    }


ROUTE = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": "models"},
    "spec": {
        "parentRefs": [{"name": "inference-gateway"}],
        "rules": [
            rule("X-Gateway-Model-Name", "Qwen/Qwen3-32B", "qwen"),
            rule("X-Gateway-Model-Name", "meta-llama/Llama-3.1-8B-Instruct", "llama"),
            rule("X-Gateway-Base-Model-Name", "meta-llama/Llama-3.1-8B-Instruct", "llama-adapters"),
        ],
    },
}


@pytest.fixture(scope="module")
def gateway_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    work = tmp_path_factory.mktemp("bbr-envoy")
    proc, bbr_port, _ = start_bbr(work)
    try:
        with echo_backends(["qwen", "llama", "llama-adapters"], work) as backends:
            port = free_port()
            plan = GatewayPlan(
                gateways=[Gateway.model_validate(GATEWAY)],
                routes=[HTTPRoute.model_validate(ROUTE)],
                services={name: [addr] for name, addr in backends.items()},
                bbr_address=f"127.0.0.1:{bbr_port}",
                port_map={80: port},
            )
            with running_gateway(plan, work / "envoy"):
                yield port
    finally:
        proc.stop()


def completion(port: int, body: bytes, **headers: str) -> Response:
    return send(
        port, method="POST", path="/v1/completions", body=body,
        headers={"content-type": "application/json", **headers},
    )  # fmt: skip


def test_model_in_body_selects_the_service(gateway_port: int) -> None:
    for model, backend in (("Qwen/Qwen3-32B", "qwen"), ("meta-llama/Llama-3.1-8B-Instruct", "llama")):
        body = json.dumps({"model": model, "prompt": "hello", "max_tokens": 3}).encode()
        resp = completion(gateway_port, body)
        assert resp.status == 200, resp.body
        echo = resp.json()
        assert echo["backend"] == backend
        assert echo["headers"]["x-gateway-model-name"] == model
        assert echo["body"] == body.decode()  # passed through unchanged


def test_adapter_routes_by_base_model(gateway_port: int) -> None:
    resp = completion(gateway_port, json.dumps({"model": "food-review", "prompt": "x"}).encode())
    assert resp.status == 200, resp.body
    echo = resp.json()
    assert echo["backend"] == "llama-adapters"
    assert echo["headers"]["x-gateway-base-model-name"] == "meta-llama/Llama-3.1-8B-Instruct"


def test_spoofed_model_header_is_overwritten(gateway_port: int) -> None:
    body = json.dumps({"model": "Qwen/Qwen3-32B", "prompt": "x"}).encode()
    resp = completion(
        gateway_port, body,
        **{"X-Gateway-Model-Name": "meta-llama/Llama-3.1-8B-Instruct", "X-Gateway-Base-Model-Name": "spoof"},
    )  # fmt: skip
    assert resp.status == 200
    echo = resp.json()
    assert echo["backend"] == "qwen"
    assert echo["headers"]["x-gateway-model-name"] == "Qwen/Qwen3-32B"
    assert echo["headers"]["x-gateway-base-model-name"] == "Qwen/Qwen3-32B"


@pytest.mark.parametrize("body", [b"{not json", b'{"prompt": "no model"}', b"\xff\xfe\x00"])
def test_bad_body_is_400_openai_error(gateway_port: int, body: bytes) -> None:
    resp = completion(gateway_port, body)
    assert resp.status == 400
    assert resp.headers["content-type"] == "application/json"
    assert resp.json()["error"]["code"] == 400


def test_unknown_model_is_404_openai_error(gateway_port: int) -> None:
    resp = completion(gateway_port, json.dumps({"model": "nope", "prompt": "x"}).encode())
    assert resp.status == 404
    error = resp.json()["error"]
    assert error["type"] == "NotFoundError"
    assert error["code"] == 404


def test_header_only_request_without_model_finds_no_route(gateway_port: int) -> None:
    resp = send(gateway_port, path="/v1/models", headers={"X-Gateway-Model-Name": "Qwen/Qwen3-32B"})
    assert resp.status == 404  # the spoofed header was removed, so no rule matches


def test_bbr_is_first_in_the_filter_chain(tmp_path: Path) -> None:
    from inferplane.gateway import build_envoy_config

    plan = GatewayPlan(
        gateways=[Gateway.model_validate(GATEWAY)], routes=[HTTPRoute.model_validate(ROUTE)],
        services={"qwen": ["127.0.0.1:1"], "llama": ["127.0.0.1:2"], "llama-adapters": ["127.0.0.1:3"]},
        bbr_address="127.0.0.1:9004",
    )  # fmt: skip
    config = build_envoy_config(plan, admin_port=0, config_dir=tmp_path)
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    names = [f["name"] for f in hcm["http_filters"]]
    assert names == ["envoy.filters.http.ext_proc/bbr", "envoy.filters.http.router"]


def test_model_routes_to_its_pool_and_that_pool_s_picker(tmp_path: Path) -> None:
    """Pattern 2: BBR sets the model header, the route is chosen again, and the chosen pool's picker (a filter
    disabled by default, enabled per route) picks within that pool."""
    from inferplane.gateway import PoolBinding
    from tests.integration.gateway.harness import pool_ref, start_picker

    proc, bbr_port, _ = start_bbr(tmp_path)
    started = [proc]
    try:
        with echo_backends(["a1", "a2", "b1"], tmp_path) as echo:
            pa, pa_port = start_picker([echo["a1"], echo["a2"]], tmp_path)
            started.append(pa)
            pb, pb_port = start_picker([echo["b1"]], tmp_path)
            started.append(pb)
            rules = [
                {**rule("X-Gateway-Model-Name", "Qwen/Qwen3-32B", "x"), "backendRefs": [pool_ref("pool-a")]},
                {
                    **rule("X-Gateway-Base-Model-Name", "meta-llama/Llama-3.1-8B-Instruct", "x"),
                    "backendRefs": [pool_ref("pool-b")],
                },
                {**rule("X-Gateway-Model-Name", "dead-model", "x"), "backendRefs": [pool_ref("pool-dead")]},
            ]
            port = free_port()
            plan = GatewayPlan(
                gateways=[Gateway.model_validate(GATEWAY)],
                routes=[HTTPRoute.model_validate({**ROUTE, "spec": {**ROUTE["spec"], "rules": rules}})],
                pools={
                    "pool-a": PoolBinding([echo["a1"], echo["a2"]], f"127.0.0.1:{pa_port}"),
                    "pool-b": PoolBinding([echo["b1"]], f"127.0.0.1:{pb_port}"),
                    # FailClose with no picker listening: only requests routed to this pool may see it
                    "pool-dead": PoolBinding([echo["b1"]], f"127.0.0.1:{free_port()}", failure_mode="FailClose"),
                },
                bbr_address=f"127.0.0.1:{bbr_port}",
                port_map={80: port},
            )
            with running_gateway(plan, tmp_path / "envoy"):
                qwen = json.dumps({"model": "Qwen/Qwen3-32B", "prompt": "x"}).encode()
                picks = {
                    completion(port, qwen, **{"test-epp-endpoint-selection": echo["a2"]}).backend for _ in range(4)
                }
                assert picks == {"a2"}  # the picker chose, every time (round robin would alternate)
                adapter = json.dumps({"model": "sql-lora", "prompt": "x"}).encode()
                resp = completion(port, adapter)
                assert (resp.status, resp.backend) == (200, "b1")
                assert resp.json()["body"] == adapter.decode()
                # each route runs only its own pool's picker: the dead one is never asked for other requests
                assert completion(port, json.dumps({"model": "dead-model"}).encode()).status == 503
                assert completion(port, json.dumps({"model": "unknown"}).encode()).status == 404
    finally:
        for p in reversed(started):
            p.stop()


def test_large_bodies(gateway_port: int) -> None:
    """10 MB passes through the router unchanged; beyond the gateway's 16 MiB buffer is a JSON 413."""
    prompt = "x" * (10 * 1024 * 1024)
    body = json.dumps({"model": "Qwen/Qwen3-32B", "prompt": prompt}).encode()
    resp = completion(gateway_port, body)
    assert (resp.status, resp.backend) == (200, "qwen")
    assert resp.json()["body_len"] == len(body)
    huge = json.dumps({"model": "Qwen/Qwen3-32B", "prompt": "x" * (17 * 1024 * 1024)}).encode()
    resp = completion(gateway_port, huge)
    assert resp.status == 413
    assert "larger than" in resp.json()["error"]["message"]


def test_wrong_content_type_still_routes_on_a_json_body(gateway_port: int) -> None:
    resp = completion(gateway_port, b'{"model": "Qwen/Qwen3-32B"}', **{"content-type": "text/plain"})
    assert (resp.status, resp.backend) == (200, "qwen")

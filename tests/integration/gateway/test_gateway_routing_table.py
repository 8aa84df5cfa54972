"""Table-driven HTTPRoute matching and precedence through the real Envoy: every expectation below is written by
hand from the Gateway API text, checked against the Python reference router, and then against Envoy. A
hypothesis run then sends generated requests to the same Envoy and requires Envoy and the reference to agree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferplane.api.gateway_api import Gateway, HTTPRoute
from inferplane.gateway import GatewayPlan
from inferplane.gateway.reference import Request, route_request
from inferplane.net import free_port
from tests.integration.gateway.harness import echo_backends, running_gateway, send

RESOURCES = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: inferplane
  listeners:
  - {name: http, port: 80, protocol: HTTP}
  - {name: shop, port: 80, protocol: HTTP, hostname: "*.shop.test"}
  - {name: api, port: 80, protocol: HTTP, hostname: api.shop.test}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: docs}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  rules:
  - matches: [{path: {type: Exact, value: /docs/api}}]
    backendRefs: [{name: svc-exact, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /docs}}]
    backendRefs: [{name: svc-docs, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /docs/api/v1/}}]
    backendRefs: [{name: svc-docs-v1, port: 80}]
  - matches: [{path: {type: RegularExpression, value: "/items/[0-9]+"}}]
    backendRefs: [{name: svc-regex, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /shop}}]
    backendRefs: [{name: svc-shop, port: 80}]
  - matches: [{method: DELETE}]
    backendRefs: [{name: svc-delete, port: 80}]
  - matches: [{method: PUT}]
    backendRefs: [{name: svc-put, port: 80}]
  - matches: [{headers: [{name: tier, value: gold}]}]
    backendRefs: [{name: svc-gold, port: 80}]
  - matches: [{queryParams: [{name: q, value: "1"}]}]
    backendRefs: [{name: svc-query, port: 80}]
  - matches: [{headers: [{name: tier, value: gold}, {name: zone, value: eu}]}]
    backendRefs: [{name: svc-gold-eu, port: 80}]
  - matches: [{path: {value: /versioned}, headers: [{name: x-version, type: RegularExpression, value: "v[0-9]+"}]}]
    backendRefs: [{name: svc-version, port: 80}]
  - matches:
    - {path: {type: Exact, value: /or}, queryParams: [{name: a, value: x}]}
    - {path: {type: Exact, value: /or}, headers: [{name: b, value: y}]}
    backendRefs: [{name: svc-or, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: catchall}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  rules:
  - backendRefs: [{name: svc-default, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: tie-b-older}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  rules:
  - matches: [{headers: [{name: zone, value: eu}]}]
    backendRefs: [{name: svc-zone-older, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: tie-a-newer}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  rules:
  - matches: [{headers: [{name: zone, value: eu}]}]
    backendRefs: [{name: svc-zone-newer, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop-wild}
spec:
  parentRefs: [{name: gw}]
  hostnames: ["*.shop.test"]
  rules:
  - backendRefs: [{name: svc-shop-wild, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop-api}
spec:
  parentRefs: [{name: gw}]
  hostnames: [api.shop.test, other.example]
  rules:
  - matches: [{path: {value: /v1}}]
    backendRefs: [{name: svc-api-v1, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: filters}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [filters.test]
  rules:
  - matches: [{path: {value: /redirect}}]
    filters: [{type: RequestRedirect, requestRedirect: {scheme: https, statusCode: 301}}]
  - matches: [{path: {value: /rewrite}}]
    filters:
    - type: URLRewrite
      urlRewrite: {hostname: rewritten.test, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
    backendRefs: [{name: svc-echo, port: 80}]
  - matches: [{path: {value: /headers}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-set, value: "yes"}], add: [{name: x-add, value: b}], remove: [x-drop]}
    - type: ResponseHeaderModifier
      responseHeaderModifier: {set: [{name: x-resp, value: "1"}]}
    backendRefs: [{name: svc-echo, port: 80}]
  - matches: [{path: {value: /empty}}]
  - matches: [{path: {value: /invalid}}]
    backendRefs: [{group: example.com, kind: Bucket, name: nope}]
  - matches: [{path: {value: /zero}}]
    backendRefs: [{name: svc-echo, port: 80, weight: 0}]
  - matches: [{path: {value: /slow}}]
    timeouts: {request: 300ms}
    backendRefs: [{name: svc-echo, port: 80}]
  - matches: [{path: {value: /full}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /replaced}}}]
    backendRefs: [{name: svc-echo, port: 80}]
"""

DOCS = [d for d in yaml.safe_load_all(RESOURCES) if d]
GATEWAYS = [Gateway.model_validate(d) for d in DOCS if d["kind"] == "Gateway"]
ROUTES = [HTTPRoute.model_validate(d) for d in DOCS if d["kind"] == "HTTPRoute"]
SERVICES = sorted(
    {
        r["name"]
        for d in DOCS
        if d["kind"] == "HTTPRoute"
        for rule in d["spec"]["rules"]
        for r in rule.get("backendRefs", [])
    }
    - {"nope"}
)

# (host, method, path, headers, query) → backend name, or an int status
CASES: list[tuple[str | None, str, str, dict[str, str], dict[str, str], str | int]] = [
    # Exact / PathPrefix segment boundaries / longest prefix / regex
    (None, "GET", "/docs/api", {}, {}, "svc-exact"),
    (None, "GET", "/docs/api/", {}, {}, "svc-docs"),
    (None, "GET", "/docs", {}, {}, "svc-docs"),
    (None, "GET", "/docs/", {}, {}, "svc-docs"),
    (None, "GET", "/docs/other", {}, {}, "svc-docs"),
    (None, "GET", "/docsx", {}, {}, "svc-default"),
    (None, "GET", "/Docs", {}, {}, "svc-default"),
    (None, "GET", "/docs/api/v1", {}, {}, "svc-docs-v1"),
    (None, "GET", "/docs/api/v1/x/y", {}, {}, "svc-docs-v1"),
    (None, "GET", "/docs/api/v10", {}, {}, "svc-docs"),
    (None, "GET", "/items/42", {}, {}, "svc-regex"),
    (None, "GET", "/items/42/more", {}, {}, "svc-default"),
    (None, "GET", "/items/abc", {}, {}, "svc-default"),
    # prefix length beats method, method beats headers, headers beat query params
    (None, "DELETE", "/shop/1", {}, {}, "svc-shop"),
    (None, "DELETE", "/other", {}, {}, "svc-delete"),
    (None, "PUT", "/", {"tier": "gold"}, {}, "svc-put"),
    (None, "GET", "/", {"tier": "gold"}, {"q": "1"}, "svc-gold"),
    (None, "GET", "/", {}, {"q": "1"}, "svc-query"),
    (None, "GET", "/", {}, {"q": "2"}, "svc-default"),
    (None, "GET", "/", {}, {"Q": "1"}, "svc-default"),
    (None, "GET", "/", {"Tier": "gold"}, {}, "svc-gold"),
    (None, "GET", "/", {"tier": "GOLD"}, {}, "svc-default"),
    # more headers win; equal across routes → the older route
    (None, "GET", "/", {"tier": "gold", "zone": "eu"}, {}, "svc-gold-eu"),
    (None, "GET", "/", {"zone": "eu"}, {}, "svc-zone-older"),
    (None, "POST", "/", {"zone": "eu"}, {}, "svc-zone-older"),
    # regex header within a prefix; OR across matches
    (None, "GET", "/versioned/x", {"x-version": "v12"}, {}, "svc-version"),
    (None, "GET", "/versioned/x", {"x-version": "v12a"}, {}, "svc-default"),
    (None, "GET", "/or", {}, {"a": "x"}, "svc-or"),
    (None, "GET", "/or", {"b": "y"}, {}, "svc-or"),
    (None, "GET", "/or", {}, {"a": "y"}, "svc-default"),
    (None, "GET", "/or/", {"b": "y"}, {}, "svc-default"),
    # listener selection by hostname, wildcard vs exact, port in Host ignored
    ("x.shop.test", "GET", "/docs", {}, {}, "svc-shop-wild"),
    ("a.b.shop.test", "GET", "/", {}, {}, "svc-shop-wild"),
    ("x.shop.test:8080", "GET", "/", {}, {}, "svc-shop-wild"),
    ("shop.test", "GET", "/docs", {}, {}, "svc-docs"),
    ("api.shop.test", "GET", "/v1/models", {}, {}, "svc-api-v1"),
    ("api.shop.test", "GET", "/v10", {}, {}, "svc-shop-wild"),
    ("API.Shop.Test", "GET", "/v1", {}, {}, "svc-api-v1"),
    ("other.example", "GET", "/v1", {}, {}, "svc-api-v1"),  # shop-api also attaches to the hostname-less listener
    ("other.example", "GET", "/v2", {}, {}, "svc-default"),
    ("unknown.test", "DELETE", "/x", {}, {}, "svc-delete"),
    # hostname-scoped route with filters, rules without backends, invalid backends, zero weights, timeouts
    ("filters.test", "GET", "/nothing", {}, {}, "svc-default"),
    ("filters.test", "GET", "/docs", {}, {}, "svc-docs"),
    ("filters.test", "GET", "/redirect/x", {}, {}, 301),
    ("filters.test", "GET", "/rewrite/a", {}, {}, "svc-echo"),
    ("filters.test", "GET", "/headers", {"x-drop": "1", "x-add": "a"}, {}, "svc-echo"),
    ("filters.test", "GET", "/empty", {}, {}, 500),
    ("filters.test", "GET", "/invalid", {}, {}, 500),
    ("filters.test", "GET", "/zero", {}, {}, 500),
    ("filters.test", "GET", "/slow", {"x-echo-delay-ms": "50"}, {}, "svc-echo"),
    ("filters.test", "GET", "/full/a/b", {}, {}, "svc-echo"),
]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayPlan, int]]:
    work = tmp_path_factory.mktemp("table")
    with echo_backends(SERVICES, work) as backends:
        plan = GatewayPlan(
            gateways=GATEWAYS,
            routes=ROUTES,
            services={name: [addr] for name, addr in backends.items()},
            port_map={80: free_port()},
        )
        with running_gateway(plan, work / "envoy"):
            yield plan, plan.local_port("default/gw", 80)


def test_at_least_40_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize(("host", "method", "path", "headers", "query", "want"), CASES)
def test_routing_table(
    gateway: tuple[GatewayPlan, int], host: str | None, method: str, path: str, headers: dict[str, str],
    query: dict[str, str], want: str | int,
) -> None:  # fmt: skip
    plan, port = gateway
    predicted = route_request(plan, "default/gw", 80, Request(host, method, path, headers, list(query.items())))
    assert (predicted.backend if isinstance(want, str) else predicted.status) == want, predicted
    resp = send(port, method=method, path=path, host=host, headers=headers, query=query)
    if isinstance(want, str):
        assert (resp.status, resp.backend) == (200, want), resp.body[:300]
    else:
        assert resp.status == want, resp.body[:300]


def test_filters_change_what_the_backend_and_client_see(gateway: tuple[GatewayPlan, int]) -> None:
    _, port = gateway
    redirect = send(port, path="/redirect/x", host="filters.test:8080", query={"k": "v"})
    assert redirect.headers["location"] == "https://filters.test/redirect/x?k=v"
    rewritten = send(port, path="/rewrite/a/b", host="filters.test", query={"k": "v"}).json()
    assert (rewritten["path"], rewritten["query"], rewritten["host"]) == ("/new/a/b", [["k", "v"]], "rewritten.test")
    assert send(port, path="/rewrite", host="filters.test").json()["path"] == "/new"
    assert send(port, path="/full/a/b", host="filters.test").json()["path"] == "/replaced"
    resp = send(port, path="/headers", host="filters.test", headers={"x-drop": "1", "x-add": "a", "x-set": "no"})
    seen = resp.json()["headers"]
    assert seen["x-set"] == "yes"
    assert "x-drop" not in seen
    assert seen["x-add"] == "a,b"
    assert resp.headers["x-resp"] == "1"
    # the reference has no clock: a backend slower than the rule's timeout is Envoy's 504
    slow = send(port, path="/slow", host="filters.test", headers={"x-echo-delay-ms": "2000"})
    assert slow.status == 504
    assert slow.json()["error"]["type"] == "TimeoutError"
    for path in ("/empty", "/invalid"):
        error = send(port, path=path, host="filters.test").json()["error"]
        assert error["code"] == 500
    not_found = send(port, path="/", host="api.shop.test", method="DELETE")
    assert not_found.status == 200  # shop-wild covers api.shop.test too


def test_no_route_is_404_openai_error(tmp_path: Path) -> None:
    plan = GatewayPlan(gateways=GATEWAYS, routes=[r for r in ROUTES if r.metadata.name == "shop-api"],
                       services={"svc-api-v1": ["127.0.0.1:9"]}, port_map={80: free_port()})  # fmt: skip
    with running_gateway(plan, tmp_path / "envoy"):
        resp = send(plan.local_port("default/gw", 80), path="/nope", host="api.shop.test")
    assert resp.status == 404
    assert resp.headers["content-type"] == "application/json"
    assert resp.json()["error"]["type"] == "NotFoundError"


SEGMENTS = st.sampled_from(["docs", "api", "v1", "v10", "items", "42", "shop", "or", "versioned", "x", "Docs", "v1x"])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    segments=st.lists(SEGMENTS, max_size=4),
    trailing=st.booleans(),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    headers=st.dictionaries(
        st.sampled_from(["tier", "zone", "x-version", "b"]), st.sampled_from(["gold", "eu", "v1", "y"]), max_size=3
    ),
    query=st.dictionaries(st.sampled_from(["q", "a", "Q"]), st.sampled_from(["1", "x", "2"]), max_size=2),
    host=st.sampled_from([None, "x.shop.test", "api.shop.test", "filters.test", "shop.test", "other.example"]),
)
def test_envoy_agrees_with_the_reference(
    gateway: tuple[GatewayPlan, int], segments: list[str], trailing: bool, method: str, headers: dict[str, str],
    query: dict[str, str], host: str | None,
) -> None:  # fmt: skip
    plan, port = gateway
    path = "/" + "/".join(segments) + ("/" if trailing and segments else "")
    predicted = route_request(plan, "default/gw", 80, Request(host, method, path, headers, list(query.items())))
    resp = send(port, method=method, path=path, host=host, headers=headers, query=query)
    got: Any = resp.backend if resp.status == 200 else resp.status
    assert got == (predicted.backend or predicted.status), (path, predicted)

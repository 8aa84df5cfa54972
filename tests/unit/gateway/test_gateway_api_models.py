"""The Gateway API models: upstream defaults, and the CRD's validation rules as clear errors."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from inferplane.api.gateway_api import (
    BackendObjectReference,
    Gateway,
    HTTPRoute,
    HTTPRouteRule,
    ReferenceGrant,
    parse_duration,
)
from tests.conftest import SHARED


def route(rules: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"parentRefs": [{"name": "gw"}], **spec}
    if rules is not None:
        body["rules"] = rules
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r"}, "spec": body}


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        HTTPRoute.model_validate(data)
    return str(info.value)


def test_defaults_follow_the_crd() -> None:
    r = HTTPRoute.model_validate(route())
    assert len(r.spec.rules) == 1
    match = r.spec.rules[0].matches[0]
    assert (match.path.type, match.path.value) == ("PathPrefix", "/")
    parent = r.spec.parent_refs[0]
    assert (parent.group, parent.kind, parent.namespace) == ("gateway.networking.k8s.io", "Gateway", None)
    r = HTTPRoute.model_validate(route([{"backendRefs": [{"name": "s", "port": 80}], "matches": []}]))
    ref = r.spec.rules[0].backend_refs[0]
    assert (ref.group, ref.kind, ref.weight) == ("", "Service", 1)
    assert r.spec.rules[0].matches[0].path.value == "/"
    assert r.metadata.namespace == "default"


def test_dumps_back_to_upstream_spelling() -> None:
    data = route(
        [{"matches": [{"path": {"type": "Exact", "value": "/a"}, "queryParams": [{"name": "q", "value": "1"}]}]}]
    )
    dumped = HTTPRoute.model_validate(data).model_dump(by_alias=True, exclude_none=True)
    assert dumped["spec"]["rules"][0]["matches"][0]["queryParams"] == [{"type": "Exact", "name": "q", "value": "1"}]
    assert dumped["spec"]["parentRefs"][0]["name"] == "gw"


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ({"type": "Exact", "value": "abc"}, "must start with '/'"),
        ({"type": "PathPrefix", "value": "/a//b"}, "must not contain '//'"),
        ({"type": "PathPrefix", "value": "/a/../b"}, "must not contain '/../'"),
        ({"type": "Exact", "value": "/a%2fb"}, "must not contain '%2f'"),
        ({"type": "Exact", "value": "/a/.."}, "must not end with"),
        ({"type": "Exact", "value": "/a b"}, "percent-encoded"),
        ({"type": "RegularExpression", "value": "/(unclosed"}, "not a valid regular expression"),
        ({"type": "Prefix", "value": "/"}, "PathPrefix"),
    ],
)
def test_bad_paths_are_rejected(path: dict[str, str], fragment: str) -> None:
    assert fragment in error_of(route([{"matches": [{"path": path}]}]))


def test_service_backend_needs_a_port_but_a_pool_does_not() -> None:
    assert "needs a port" in error_of(route([{"backendRefs": [{"name": "svc"}]}]))
    pool = {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "p"}
    ref = HTTPRoute.model_validate(route([{"backendRefs": [pool]}])).spec.rules[0].backend_refs[0]
    assert ref.is_inference_pool
    assert BackendObjectReference(
        group="inference.networking.x-k8s.io", kind="InferencePool", name="p"
    ).is_inference_pool


def test_weight_range() -> None:
    assert "less than or equal to 1000000" in error_of(
        route([{"backendRefs": [{"name": "s", "port": 1, "weight": 2_000_000}]}])
    )


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ({"filters": [{"type": "RequestHeaderModifier"}]}, "needs its `requestHeaderModifier` field"),
        (
            {
                "filters": [
                    {
                        "type": "RequestHeaderModifier",
                        "requestRedirect": {"statusCode": 301},
                        "requestHeaderModifier": {},
                    }
                ]
            },
            "must not set `requestRedirect`",
        ),
        (
            {
                "filters": [{"type": "RequestRedirect", "requestRedirect": {}}],
                "backendRefs": [{"name": "s", "port": 1}],
            },
            "must not have backendRefs",
        ),
        (
            {"filters": [{"type": "RequestRedirect", "requestRedirect": {}}, {"type": "URLRewrite", "urlRewrite": {}}]},
            "both RequestRedirect and URLRewrite",
        ),
        (
            {"filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {}}] * 2},
            "only once per rule",
        ),
        (
            {
                "matches": [{"path": {"type": "Exact", "value": "/a"}}],
                "filters": [
                    {
                        "type": "URLRewrite",
                        "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/b"}},
                    }
                ],
            },
            "exactly one match, of type PathPrefix",
        ),
        (
            {"filters": [{"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplaceFullPath"}}}]},
            "needs replaceFullPath",
        ),
        (
            {
                "filters": [
                    {
                        "type": "RequestHeaderModifier",
                        "requestHeaderModifier": {"set": [{"name": "A", "value": "1"}], "remove": ["a"]},
                    }
                ]
            },
            "give each header one action",
        ),
        ({"filters": [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 304}}]}, "301"),
        ({"timeouts": {"request": "1s", "backendRequest": "2s"}}, "must not exceed"),
        ({"timeouts": {"request": "1 second"}}, "invalid duration"),
        ({"matches": [{"method": "get"}]}, "GET"),
    ],
)
def test_bad_rules_are_rejected(rule: dict[str, Any], fragment: str) -> None:
    assert fragment in error_of(route([rule]))


def test_bad_hostnames_and_unknown_fields() -> None:
    assert "not a valid hostname" in error_of(route(hostnames=["Bad_Host"]))
    assert "not a valid hostname" in error_of(route(hostnames=["10.0.0.1:80"]))
    assert "Extra inputs are not permitted" in error_of(route(hostnames=["a.b"], unknown=1))


def test_durations() -> None:
    assert parse_duration("500ms") == 0.5
    assert parse_duration("1h30m") == 5400
    assert parse_duration("0s") == 0
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("1.5s")


def test_gateway_rules() -> None:
    base = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "g"}}
    ok = Gateway.model_validate(
        {**base, "spec": {"gatewayClassName": "c", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}
    )
    listener = ok.spec.listeners[0]
    assert listener.allowed_routes.namespaces.from_ == "Same"
    assert listener.allows_kind("gateway.networking.k8s.io", "HTTPRoute")
    assert not listener.allows_kind("gateway.networking.k8s.io", "TCPRoute")
    dup = {"name": "a", "port": 80, "protocol": "HTTP"}
    with pytest.raises(ValidationError, match="listener names must be unique"):
        Gateway.model_validate({**base, "spec": {"gatewayClassName": "c", "listeners": [dup, dup]}})
    with pytest.raises(ValidationError, match="share port"):
        Gateway.model_validate({**base, "spec": {"gatewayClassName": "c", "listeners": [dup, {**dup, "name": "b"}]}})
    with pytest.raises(ValidationError, match="at least 1"):
        Gateway.model_validate({**base, "spec": {"gatewayClassName": "c", "listeners": []}})


def test_every_conformance_manifest_loads() -> None:
    data = yaml.safe_load((SHARED / "conformance" / "gateway-api" / "cases.yaml").read_text())
    models = {"Gateway": Gateway, "HTTPRoute": HTTPRoute, "ReferenceGrant": ReferenceGrant}
    loaded = 0
    for test in data["tests"]:
        for doc in yaml.safe_load_all(test["manifests"]):
            models[doc["kind"]].model_validate(doc)
            loaded += 1
    assert loaded >= 30


def test_reference_grant_permits_only_the_exact_pair() -> None:
    grant = ReferenceGrant.model_validate(
        {
            "apiVersion": "gateway.networking.k8s.io/v1beta1",
            "kind": "ReferenceGrant",
            "metadata": {"name": "g", "namespace": "backends"},
            "spec": {
                "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "routes"}],
                "to": [{"group": "", "kind": "Service", "name": "web"}],
            },
        }
    )
    web = BackendObjectReference(name="web", port=80)
    kw = {"from_group": "gateway.networking.k8s.io", "from_kind": "HTTPRoute"}
    assert grant.permits(from_namespace="routes", to=web, **kw)
    assert not grant.permits(from_namespace="other", to=web, **kw)
    assert not grant.permits(from_namespace="routes", to=BackendObjectReference(name="api", port=80), **kw)


def test_rule_model_is_usable_on_its_own() -> None:
    rule = HTTPRouteRule.model_validate(
        {"matches": [{"headers": [{"name": "A", "value": "1"}, {"name": "a", "value": "2"}]}]}
    )
    assert [h.value for h in rule.matches[0].effective_headers()] == ["1"]  # duplicates: the first counts

"""The generated Envoy configuration, structurally: listeners, virtual hosts in precedence order, the ext_proc
filters and their modes, cluster types and load-balancing policies, route actions, and the errors for what the
local gateway cannot do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inferplane.api.gateway_api import Gateway, HTTPRoute
from inferplane.errors import ConfigError
from inferplane.gateway import GatewayPlan, PoolBinding, build_envoy_config, write_bootstrap, write_endpoints
from inferplane.gateway.eds import eds_path
from inferplane.gateway.routes import prefix_rewrite

POOL = {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "pool"}


def gateway(**listener: Any) -> Gateway:
    return Gateway.model_validate(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "gw"},
            "spec": {
                "gatewayClassName": "c",
                "listeners": [{"name": "http", "port": 80, "protocol": "HTTP", **listener}],
            },
        }
    )


def route(rules: list[dict[str, Any]], name: str = "r", **spec: Any) -> HTTPRoute:
    return HTTPRoute.model_validate(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": name},
            "spec": {"parentRefs": [{"name": "gw"}], "rules": rules, **spec},
        }
    )


def build(routes: list[HTTPRoute], tmp_path: Path, **plan: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {"services": {"a": ["127.0.0.1:1"], "b": ["127.0.0.1:2"]}, "port_map": {80: 18080}}
    return build_envoy_config(
        GatewayPlan(gateways=[gateway()], routes=routes, **{**defaults, **plan}), admin_port=0, config_dir=tmp_path
    )


def hcm(config: dict[str, Any]) -> dict[str, Any]:
    return config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def routes_of(config: dict[str, Any], vhost: int = 0) -> list[dict[str, Any]]:
    """The routes generated from HTTPRoutes (every virtual host ends in the same explicit 404 route)."""
    routes = hcm(config)["route_config"]["virtual_hosts"][vhost]["routes"]
    assert routes[-1]["name"] == "no-match"
    assert routes[-1]["direct_response"]["status"] == 404
    return routes[:-1]


def clusters(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in config["static_resources"]["clusters"]}


def test_listener_binds_the_mapped_local_port_and_admin_is_loopback(tmp_path: Path) -> None:
    config = build([route([{"backendRefs": [{"name": "a", "port": 80}]}])], tmp_path)
    listener = config["static_resources"]["listeners"][0]
    assert listener["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 18080}
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    assert hcm(config)["strip_any_host_port"] is True
    assert [f["name"] for f in hcm(config)["http_filters"]] == ["envoy.filters.http.router"]


def test_matches_are_emitted_in_precedence_order(tmp_path: Path) -> None:
    rules = [
        {"matches": [{"headers": [{"name": "h", "value": "1"}]}], "backendRefs": [{"name": "a", "port": 80}]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/docs/"}}], "backendRefs": [{"name": "a", "port": 80}]},
        {"matches": [{"path": {"type": "Exact", "value": "/docs/x"}}], "backendRefs": [{"name": "a", "port": 80}]},
        {"matches": [{"method": "GET"}], "backendRefs": [{"name": "a", "port": 80}]},
        {
            "matches": [{"path": {"type": "RegularExpression", "value": "/r.*"}}],
            "backendRefs": [{"name": "a", "port": 80}],
        },
    ]
    matches = [r["match"] for r in routes_of(build([route(rules)], tmp_path))]
    assert matches == [
        {"path": "/docs/x"},
        {"safe_regex": {"regex": "/r.*"}},
        {"path_separated_prefix": "/docs"},
        {"prefix": "/", "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
        {"prefix": "/", "headers": [{"name": "h", "string_match": {"exact": "1"}}]},
    ]


def test_older_route_wins_a_tie(tmp_path: Path) -> None:
    first = route([{"backendRefs": [{"name": "b", "port": 80}]}], name="zzz-older")
    second = route([{"backendRefs": [{"name": "a", "port": 80}]}], name="aaa-newer")
    names = [r["name"] for r in routes_of(build([first, second], tmp_path))]
    assert names == ["default/zzz-older/rule/0/match/0", "default/aaa-newer/rule/0/match/0"]


def test_virtual_hosts_most_specific_first_and_wildcard_rules_after_exact(tmp_path: Path) -> None:
    exact = route(
        [{"matches": [{"path": {"value": "/x"}}], "backendRefs": [{"name": "a", "port": 80}]}],
        name="e",
        hostnames=["a.shop.test"],
    )
    wild = route(
        [{"matches": [{"path": {"value": "/x/y"}}], "backendRefs": [{"name": "b", "port": 80}]}],
        name="w",
        hostnames=["*.shop.test"],
    )
    config = build([exact, wild], tmp_path)
    vhosts = hcm(config)["route_config"]["virtual_hosts"]
    assert [v["domains"] for v in vhosts] == [["a.shop.test"], ["*.shop.test"], ["*"]]
    # hostname precedence comes before path length: the exact host's route first, the wildcard one after it
    assert [r["name"].split("/")[1] for r in vhosts[0]["routes"][:-1]] == ["e", "w"]
    assert [r["name"] for r in vhosts[2]["routes"]] == ["no-match"]


def test_weighted_services_use_weighted_clusters_and_drop_zero_weights(tmp_path: Path) -> None:
    refs = [
        {"name": "a", "port": 80, "weight": 70},
        {"name": "b", "port": 80, "weight": 30},
        {"name": "a", "port": 80, "weight": 0},
    ]
    action = routes_of(build([route([{"backendRefs": refs}])], tmp_path))[0]["route"]
    assert action["weighted_clusters"]["clusters"] == [
        {"name": "service.a", "weight": 70},
        {"name": "service.b", "weight": 30},
    ]
    assert action["timeout"] == "0s"
    # a request reset before any response (a replica that just died, on a pooled connection) is retried elsewhere
    assert set(action["retry_policy"]["retry_on"].split(",")) >= {"connect-failure", "reset-before-request", "reset"}


def test_pool_and_invalid_share_become_a_fraction_cascade(tmp_path: Path) -> None:
    refs = [{**POOL, "weight": 2}, {"name": "a", "port": 80, "weight": 1}, {"name": "missing", "port": 80, "weight": 1}]
    pool = PoolBinding(["127.0.0.1:7"], "127.0.0.1:9002")
    rs = routes_of(build([route([{"backendRefs": refs}])], tmp_path, pools={"pool": pool}))
    assert [r["match"].get("runtime_fraction", {}).get("default_value", {}).get("numerator") for r in rs] == [
        500000,
        750000,
        None,
    ]
    assert rs[0]["route"]["cluster"] == "pool.pool"
    assert "typed_per_filter_config" not in rs[0]  # the pool's picker runs
    off = {
        "envoy.filters.http.ext_proc/pool/pool": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute",
            "disabled": True,
        }
    }
    assert rs[1]["route"]["cluster"] == "service.a"
    assert rs[1]["typed_per_filter_config"] == off  # a Service share runs no picker
    assert rs[2]["direct_response"]["status"] == 500
    assert rs[2]["typed_per_filter_config"] == off


def test_pool_filter_and_cluster(tmp_path: Path) -> None:
    pool = PoolBinding(["127.0.0.1:7", "127.0.0.1:8"], "127.0.0.1:9002", failure_mode="FailOpen")
    config = build([route([{"backendRefs": [POOL]}])], tmp_path, pools={"pool": pool})
    ext = hcm(config)["http_filters"][0]
    assert ext["name"] == "envoy.filters.http.ext_proc/pool/pool"
    assert "disabled" not in ext  # switched off per route, when it runs (after any re-routing)
    cfg = ext["typed_config"]
    assert cfg["failure_mode_allow"] is True
    assert cfg["status_on_error"] == {"code": 503}
    assert cfg["processing_mode"] == {
        "request_header_mode": "SEND", "request_body_mode": "BUFFERED", "request_trailer_mode": "SKIP",
        "response_header_mode": "SKIP", "response_body_mode": "NONE", "response_trailer_mode": "SKIP",
    }  # fmt: skip
    assert cfg["metadata_options"]["receiving_namespaces"] == {"untyped": ["envoy.lb"]}
    cs = clusters(config)
    policy = cs["pool.pool"]["load_balancing_policy"]["policies"][0]["typed_extension_config"]
    assert policy["name"] == "envoy.load_balancing_policies.override_host"
    fallback = policy["typed_config"]["fallback_policy"]["policies"][0]["typed_extension_config"]["name"]
    assert fallback == "envoy.load_balancing_policies.round_robin"
    assert cs["pool.pool"]["type"] == "EDS"
    # Envoy's default allows 3 concurrent retries per cluster: the 4th request meeting a just-killed replica would
    # fail unretried (upstream_rq_retry_overflow)
    assert cs["pool.pool"]["circuit_breakers"]["thresholds"][0]["max_retries"] >= 100
    assert cs["pool.pool"]["eds_cluster_config"]["eds_config"]["path_config_source"]["path"] == str(
        eds_path(tmp_path, "pool.pool")
    )
    epp = cs["epp.pool"]
    assert epp["type"] == "STATIC"
    assert "http2_protocol_options" in json.dumps(epp)


def test_response_phases_and_fail_close(tmp_path: Path) -> None:
    pool = PoolBinding(["127.0.0.1:7"], "127.0.0.1:9002", response_phases=True)
    cfg = hcm(build([route([{"backendRefs": [POOL]}])], tmp_path, pools={"pool": pool}))["http_filters"][0][
        "typed_config"
    ]
    assert cfg["failure_mode_allow"] is False
    assert cfg["processing_mode"]["response_header_mode"] == "SEND"
    assert cfg["processing_mode"]["response_body_mode"] == "STREAMED"
    assert cfg["metadata_options"]["forwarding_namespaces"] == {"untyped": ["envoy.lb"]}


def test_model_header_routes_put_bbr_first(tmp_path: Path) -> None:
    rule = {"matches": [{"headers": [{"name": "X-Gateway-Model-Name", "value": "m"}]}], "backendRefs": [POOL]}
    pool = PoolBinding(["127.0.0.1:7"], "127.0.0.1:9002")
    config = build([route([rule])], tmp_path, pools={"pool": pool}, bbr_address="127.0.0.1:9004")
    names = [f["name"] for f in hcm(config)["http_filters"]]
    assert names == [
        "envoy.filters.http.ext_proc/bbr",
        "envoy.filters.http.ext_proc/pool/pool",
        "envoy.filters.http.router",
    ]
    bbr = hcm(config)["http_filters"][0]
    assert "disabled" not in bbr
    assert bbr["typed_config"]["failure_mode_allow"] is False
    with pytest.raises(ConfigError, match="no body-based router runs"):
        build([route([rule])], tmp_path, pools={"pool": pool})


def test_redirect_rewrite_headers_and_timeouts(tmp_path: Path) -> None:
    rules = [
        {
            "matches": [{"path": {"value": "/r"}}],
            "filters": [
                {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "port": 443, "statusCode": 308}}
            ],
        },
        {
            "matches": [{"path": {"value": "/w"}}],
            "filters": [
                {
                    "type": "URLRewrite",
                    "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
                },
                {
                    "type": "RequestHeaderModifier",
                    "requestHeaderModifier": {"add": [{"name": "X-A", "value": "1"}], "remove": ["X-B"]},
                },
            ],
            "backendRefs": [{"name": "a", "port": 80}],
            "timeouts": {"request": "10s", "backendRequest": "2s"},
        },
        {"matches": [{"path": {"value": "/none"}}]},
    ]
    rs = {r["match"]["path_separated_prefix"]: r for r in routes_of(build([route(rules)], tmp_path))}
    assert rs["/r"]["redirect"] == {"response_code": "PERMANENT_REDIRECT", "scheme_redirect": "https"}
    w = rs["/w"]
    assert w["route"]["regex_rewrite"] == {"pattern": {"regex": "^/w/*(.*)$"}, "substitution": "/\\1"}
    assert w["route"]["timeout"] == "2s"
    assert w["request_headers_to_add"] == [
        {"header": {"key": "X-A", "value": "1"}, "append_action": "APPEND_IF_EXISTS_OR_ADD"}
    ]
    assert w["request_headers_to_remove"] == ["x-b"]
    assert rs["/none"]["direct_response"]["status"] == 500


@pytest.mark.parametrize(
    ("prefix", "replacement", "path", "want"),
    [
        ("/foo", "/xyz", "/foo/bar", "/xyz/bar"),
        ("/foo", "/xyz/", "/foo/bar", "/xyz/bar"),
        ("/foo", "/xyz", "/foo", "/xyz"),
        ("/foo", "", "/foo", "/"),
        ("/foo", "/", "/foo/bar", "/bar"),
        ("/foo/", "/xyz", "/foo/", "/xyz/"),
    ],
)
def test_prefix_rewrite_works_on_path_elements(prefix: str, replacement: str, path: str, want: str) -> None:
    import re

    rw = prefix_rewrite(prefix, replacement)
    # Envoy's substitution syntax is \1; Python's re.sub reads the same
    assert re.sub(rw["pattern"]["regex"], rw["substitution"], path) == want


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        (
            {
                "filters": [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "a", "port": 80}}}],
                "backendRefs": [{"name": "a", "port": 80}],
            },
            "RequestMirror is not supported",
        ),
        (
            {
                "filters": [{"type": "ExtensionRef", "extensionRef": {"group": "x", "kind": "Y", "name": "z"}}],
                "backendRefs": [{"name": "a", "port": 80}],
            },
            "ExtensionRef is not supported",
        ),
        (
            {"backendRefs": [{"name": "a", "port": 80, "filters": [{"type": "URLRewrite", "urlRewrite": {}}]}]},
            "backendRef filter URLRewrite",
        ),
    ],
)
def test_unsupported_features_are_named(tmp_path: Path, rule: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        build([route([rule])], tmp_path)


def test_plan_errors(tmp_path: Path) -> None:
    pool = PoolBinding(["127.0.0.1:7"], "127.0.0.1:9002", failure_mode="FailOpen", body_mode="FULL_DUPLEX_STREAMED")
    with pytest.raises(ConfigError, match="FailOpen cannot be combined"):
        build([route([{"backendRefs": [POOL]}])], tmp_path, pools={"pool": pool})
    with pytest.raises(ConfigError, match="must use an IP address"):
        PoolBinding(["model-server:8000"], "127.0.0.1:9002")
    with pytest.raises(ConfigError, match="is not host:port"):
        PoolBinding(["127.0.0.1"], "127.0.0.1:9002")
    https = Gateway.model_validate(
        {
            **gateway().model_dump(by_alias=True),
            "spec": {"gatewayClassName": "c", "listeners": [{"name": "s", "port": 443, "protocol": "HTTPS"}]},
        }
    )
    with pytest.raises(ConfigError, match="protocol HTTPS is not supported"):
        build_envoy_config(GatewayPlan(gateways=[https], routes=[]), admin_port=0, config_dir=tmp_path)
    other = Gateway.model_validate({**gateway().model_dump(by_alias=True), "metadata": {"name": "gw2"}})
    with pytest.raises(ConfigError, match="would both listen on local port 80"):
        build_envoy_config(GatewayPlan(gateways=[gateway(), other], routes=[]), admin_port=0, config_dir=tmp_path)


def test_write_bootstrap_and_endpoints(tmp_path: Path) -> None:
    plan = GatewayPlan(
        gateways=[gateway()],
        routes=[route([{"backendRefs": [{"name": "a", "port": 80}]}])],
        services={"a": ["localhost:5"]},
    )
    path = write_bootstrap(tmp_path, plan)
    assert json.loads(path.read_text())["static_resources"]["clusters"][0]["name"] == "service.a"
    eds = json.loads(eds_path(tmp_path, "service.a").read_text())
    address = eds["resources"][0]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert address == {"address": "127.0.0.1", "port_value": 5}
    write_endpoints(tmp_path, "service.a", ["127.0.0.1:6", "[::1]:7"])
    eds = json.loads(eds_path(tmp_path, "service.a").read_text())
    hosts = [e["endpoint"]["address"]["socket_address"] for e in eds["resources"][0]["endpoints"][0]["lb_endpoints"]]
    assert hosts == [{"address": "127.0.0.1", "port_value": 6}, {"address": "::1", "port_value": 7}]
    assert sorted(p.name for p in (tmp_path / "eds").iterdir()) == ["service.a.json"]  # no temp files left behind


def test_model_routing_listeners_name_the_model_in_their_no_route_404(tmp_path: Path) -> None:
    """The text itself is checked against Envoy in tests/e2e/test_e2e_pattern2.py; here: which listeners get it."""
    rules = [
        {"matches": [{"headers": [{"name": "X-Gateway-Model-Name", "value": m}]}], "backendRefs": [POOL]}
        for m in ("b-model", "a-model")
    ]
    pool = PoolBinding(["127.0.0.1:7"], "127.0.0.1:9002")
    config = build([route(rules)], tmp_path, pools={"pool": pool}, bbr_address="127.0.0.1:9004")
    first = hcm(config)["local_reply_config"]["mappers"][0]
    message = first["body_format_override"]["json_format"]["error"]["message"]
    assert message == "no route serves model `%REQ(x-gateway-model-name)%` (models routed here: a-model, b-model)"
    assert "'x-gateway-model-name' in request.headers" in json.dumps(first["filter"])
    plain = build([route([{"backendRefs": [{"name": "a", "port": 80}]}])], tmp_path)
    assert "no route serves model" not in json.dumps(hcm(plain)["local_reply_config"])


def test_the_access_log_is_one_text_line_per_request(tmp_path: Path) -> None:
    from inferplane.gateway.envoy_config import EnvoyOptions

    config = build_envoy_config(
        GatewayPlan(gateways=[gateway()], routes=[], port_map={80: 18080}),
        admin_port=0,
        config_dir=tmp_path,
        options=EnvoyOptions(access_log_path=str(tmp_path / "access.log")),
    )
    [log] = hcm(config)["access_log"]
    assert log["typed_config"]["path"] == str(tmp_path / "access.log")
    fmt = log["typed_config"]["log_format"]["text_format_source"]["inline_string"]
    for field in ("%START_TIME", "%REQ(:METHOD)%", "%RESPONSE_CODE%", "%UPSTREAM_HOST%", "%DURATION%"):
        assert field in fmt
    assert fmt.endswith("\n")

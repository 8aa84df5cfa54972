"""Hostname semantics, path matching and the reference router, with properties checked by hypothesis; the reference
router must also reproduce every upstream conformance expectation on its own."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from inferplane.api.gateway_api import Gateway, HTTPPathMatch, HTTPRoute, ReferenceGrant
from inferplane.gateway import GatewayPlan
from inferplane.gateway import hostnames as hn
from inferplane.gateway.reference import Request, normalize_host, path_matches, route_request
from tests.conftest import SHARED

LABELS = st.sampled_from(["a", "b", "shop", "api", "test", "x"])
NAMES = st.lists(LABELS, min_size=1, max_size=4).map(".".join)
PATTERNS = st.one_of(NAMES, NAMES.map(lambda n: "*." + n))


def test_wildcards_are_suffix_matches_that_need_a_label() -> None:
    assert hn.covers("*.example.com", "a.example.com")
    assert hn.covers("*.example.com", "a.b.example.com")
    assert hn.covers("*.example.com", "*.b.example.com")
    assert not hn.covers("*.example.com", "example.com")
    assert not hn.covers("*.example.com", "aexample.com")
    assert hn.covers(None, "anything")
    assert not hn.covers("a.com", hn.ANY)


@pytest.mark.parametrize(
    ("listener", "route", "want"),
    [
        ("test.example.com", "test.example.com", "test.example.com"),
        ("test.example.com", "*.example.com", "test.example.com"),
        ("*.example.com", "foo.test.example.com", "foo.test.example.com"),
        ("*.example.com", "*.example.com", "*.example.com"),
        ("*.example.com", "example.com", None),
        ("*.example.com", "test.example.net", None),
        (None, "x.y", "x.y"),
    ],
)
def test_intersection_examples_from_the_spec(listener: str | None, route: str, want: str | None) -> None:
    assert hn.intersect(listener, route) == want


@given(listener=PATTERNS, route=PATTERNS, host=NAMES)
def test_intersection_serves_exactly_the_hosts_both_sides_match(listener: str, route: str, host: str) -> None:
    both = hn.matches_host(listener, host) and hn.matches_host(route, host)
    served = hn.intersect(listener, route)
    assert (served is not None and hn.matches_host(served, host)) == both


@given(a=PATTERNS, b=PATTERNS)
def test_more_specific_wins_only_when_it_is_covered(a: str, b: str) -> None:
    if hn.covers(a, b) and a != b:
        assert hn.specificity(b) > hn.specificity(a)


def segment_prefix(value: str, path: str) -> bool:
    """PathPrefix as the spec words it: the value's path elements are the first elements of the path."""
    want = [s for s in value.split("/") if s]
    have = [s for s in path.split("/") if s]
    return have[: len(want)] == want


SEGMENTS = st.lists(st.sampled_from(["a", "ab", "b", "abc", "v1", "v10"]), max_size=4)


@given(value=SEGMENTS, value_slash=st.booleans(), path=SEGMENTS, path_slash=st.booleans())
def test_path_prefix_is_element_wise(value: list[str], value_slash: bool, path: list[str], path_slash: bool) -> None:
    v = "/" + "/".join(value) + ("/" if value_slash and value else "")
    p = "/" + "/".join(path) + ("/" if path_slash and path else "")
    assert path_matches(HTTPPathMatch(type="PathPrefix", value=v), p) == segment_prefix(v, p)


@given(value=SEGMENTS, path=SEGMENTS)
def test_exact_is_string_equality(value: list[str], path: list[str]) -> None:
    v, p = "/" + "/".join(value), "/" + "/".join(path)
    assert path_matches(HTTPPathMatch(type="Exact", value=v), p) == (v == p)


def test_regex_is_a_full_match() -> None:
    m = HTTPPathMatch(type="RegularExpression", value="/items/[0-9]+")
    assert path_matches(m, "/items/12")
    assert not path_matches(m, "/items/12/x")
    assert not path_matches(m, "/x/items/12")


def test_host_normalisation() -> None:
    assert normalize_host("Shop.Example.com:8080") == "shop.example.com"
    assert normalize_host(None) == "127.0.0.1"


def _conformance_plan(test: dict[str, Any], data: dict[str, Any]) -> GatewayPlan:
    models = {"Gateway": Gateway, "HTTPRoute": HTTPRoute, "ReferenceGrant": ReferenceGrant}
    texts = [m["yaml"] for m in data["base_manifests"] if m["kind"] == "Gateway"] + [test["manifests"]]
    objs = [models[d["kind"]].model_validate(d) for t in texts for d in yaml.safe_load_all(t) if d]
    services = [
        f"{yaml.safe_load(m['yaml'])['metadata']['namespace']}/{m['name']}"
        for m in data["base_manifests"]
        if m["kind"] == "Service"
    ]
    gateways = [o for o in objs if isinstance(o, Gateway)]
    return GatewayPlan(
        gateways=gateways,
        # every Gateway has its own address in a cluster: give each its own local port
        port_map={(g.key, 80): 10000 + i for i, g in enumerate(gateways)},
        routes=[o for o in objs if isinstance(o, HTTPRoute)],
        reference_grants=[o for o in objs if isinstance(o, ReferenceGrant)],
        services={s: ["127.0.0.1:1"] for s in services},
    )


def test_reference_router_reproduces_every_conformance_case() -> None:
    data = yaml.safe_load((SHARED / "conformance" / "gateway-api" / "cases.yaml").read_text())
    checked = 0
    for test in data["tests"]:
        plan = _conformance_plan(test, data)
        for case in test.get("cases") or []:
            req = case["request"]
            outcome = route_request(
                plan, case.get("gateway", test["gateway"]), 80,
                Request(req["host"], req["method"] or "GET", req["path"], req["headers"], list(req["query"].items())),
            )  # fmt: skip
            expect = case["expect"]
            if "backend" in expect:
                assert outcome.status == 200, (test["id"], case)
                assert f"{expect['namespace']}/{expect['backend']}" in dict(outcome.backends), (test["id"], case)
            else:
                assert outcome.status == expect["status"], (test["id"], case)
            checked += 1
    assert checked == 117

"""Gateway ↔ ext_proc transport per gateway implementation: the picker's and the router's TLS, the Services'
appProtocol, Istio's DestinationRules, and the cross-check that catches a gateway and an ext_proc server that
disagree."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferplane.bbr import command as bbr_command
from inferplane.cli import build_parser
from inferplane.deploy.crosscheck import crosscheck
from inferplane.deploy.plan import DEFAULT_GKE_GATEWAY_CLASS
from inferplane.deploy.render import render
from inferplane.deploy.transport import H2C, bbr_serves_tls, serves_tls
from inferplane.epp import command as epp_command
from tests.unit.deploy.conftest import options, plan, route

BBR_PLAN = dict(routes=(route("a", "qwen-pool", "Qwen/Qwen3-0.6B"),), needs_bbr=True)


def by(manifests: list[dict], kind: str, name: str) -> dict:
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def grpc_port(svc: dict) -> dict:
    # The picker's Service names it as the GIE inferencepool chart does; the router's as inferplane does.
    return next(p for p in svc["spec"]["ports"] if p["name"] in ("grpc-ext-proc", "grpc"))


def epp_container(manifests: list[dict]) -> dict:
    return by(manifests, "Deployment", "qwen-pool-epp")["spec"]["template"]["spec"]["containers"][0]


def bbr_container(manifests: list[dict]) -> dict:
    return by(manifests, "Deployment", "body-based-router")["spec"]["template"]["spec"]["containers"][0]


def set_arg(args: list[str], flag: str, value: str) -> None:
    args[args.index(flag) + 1] = value


EPP_RULE = {
    "host": "qwen-pool-epp.llm.svc.cluster.local",
    "trafficPolicy": {
        "tls": {"mode": "SIMPLE", "insecureSkipVerify": True},
        "connectionPool": {
            "http": {"http1MaxPendingRequests": 256000, "maxRequestsPerConnection": 256000,
                     "http2MaxRequests": 256000, "idleTimeout": "900s"},
            "tcp": {"maxConnections": 256000, "maxConnectionDuration": "1800s", "connectTimeout": "900s"},
        },
    },
}  # fmt: skip
BBR_RULE = {
    "host": "body-based-router.llm.svc.cluster.local",
    "trafficPolicy": {"tls": {"mode": "SIMPLE", "insecureSkipVerify": True}},
}


@pytest.mark.parametrize(
    ("target", "klass", "bbr_tls", "bbr_protocol", "rules"),
    [
        # GKE: TLS router behind appProtocol http2, as upstream pairs them
        ("gke", None, "true", "http2", []),
        # Istio: TLS to both ext_proc servers, each through its own DestinationRule
        ("kubernetes", "istio", "true", "http2", [EPP_RULE, BBR_RULE]),
        # Service backendRefs without a TLS policy: cleartext HTTP/2
        ("kubernetes", "kgateway", "false", H2C, []),
        ("kubernetes", "eg", "false", H2C, []),
    ],
)
def test_every_gateway_gets_ext_proc_servers_it_can_reach(
    target: str, klass: str | None, bbr_tls: str, bbr_protocol: str, rules: list[dict]
) -> None:
    out = render(plan(**BBR_PLAN), options(target, gateway_class=klass)).manifests
    args = epp_container(out)["args"]
    assert args[args.index("--secure-serving") + 1] == "true"
    # The picker's own parser, given the rendered args, serves TLS with a certificate it makes at start.
    assert epp_command.serving_cert_for(build_parser("epp").parse_args(args)) is not None
    # GKE reads `http2` as HTTP/2 over TLS; the other gateways build their own TLS cluster to the picker.
    assert grpc_port(by(out, "Service", "qwen-pool-epp"))["appProtocol"] == "http2"
    # The router's flag is rendered explicitly (its own default, false, is for local runs) and its parser agrees.
    router = bbr_container(out)["args"]
    assert router[router.index("--secure-serving") + 1] == bbr_tls
    cert = bbr_command.serving_cert_for(build_parser("bbr").parse_args(router))
    assert (cert is not None) == (bbr_tls == "true")
    assert grpc_port(by(out, "Service", "body-based-router"))["appProtocol"] == bbr_protocol
    found = [m for m in out if m["kind"] == "DestinationRule"]
    assert [m["spec"] for m in found] == rules
    assert all(m["metadata"]["namespace"] == "llm" for m in found)
    assert crosscheck(out) == []


def test_one_destination_rule_per_pool_picker() -> None:
    from tests.unit.deploy.conftest import pool

    two = plan(pools=(pool(), pool("other-pool", selector={"app": "qwen"}, epp_ref_name="other-picker")))
    out = render(two, options("kubernetes", gateway_class="istio")).manifests
    hosts = sorted(m["spec"]["host"] for m in out if m["kind"] == "DestinationRule")
    assert hosts == ["other-picker.llm.svc.cluster.local", "qwen-pool-epp.llm.svc.cluster.local"]


def test_warnings_where_the_transport_cannot_be_vouched_for() -> None:
    unknown = render(plan(), options("kubernetes", gateway_class="nginx"))
    assert any("does not know gateway class 'nginx'" in w and "TLS" in w for w in unknown.warnings)
    assert crosscheck(unknown.manifests) == []
    # every known gateway's transport to both ext_proc servers is decided, GKE's included: no warning
    known = [render(plan(**BBR_PLAN), options("gke"))]
    known += [render(plan(**BBR_PLAN), options("kubernetes", gateway_class=k)) for k in ("istio", "kgateway", "eg")]
    for rendered in known:
        assert not any("TLS" in w or "H2C" in w or "cleartext" in w for w in rendered.warnings), rendered.provider


def _render(target: str, klass: str | None = None) -> list[dict]:
    return copy.deepcopy(render(plan(), options(target, gateway_class=klass)).manifests)


def test_crosscheck_istio_without_tls_origination() -> None:
    out = [m for m in _render("kubernetes", "istio") if m["kind"] != "DestinationRule"]
    assert crosscheck(out) == [
        "InferencePool/qwen-pool: the endpoint picker serves TLS but no DestinationRule for "
        "qwen-pool-epp.llm.svc.cluster.local has tls.mode SIMPLE, so gateway class 'istio' would speak cleartext to it"
    ]
    disabled = _render("kubernetes", "istio")
    next(m for m in disabled if m["kind"] == "DestinationRule")["spec"]["trafficPolicy"]["tls"]["mode"] = "DISABLE"
    assert len(crosscheck(disabled)) == 1


@pytest.mark.parametrize(("target", "klass"), [("gke", None), ("kubernetes", "istio"), ("kubernetes", "kgateway")])
def test_crosscheck_cleartext_picker_behind_a_tls_gateway(target: str, klass: str | None) -> None:
    out = _render(target, klass)
    set_arg(epp_container(out)["args"], "--secure-serving", "false")
    problems = crosscheck(out)
    assert len(problems) == 1, problems
    assert "the endpoint picker serves cleartext HTTP/2 but gateway class" in problems[0]
    assert "speaks TLS to it (--secure-serving true)" in problems[0]


def test_crosscheck_service_app_protocol() -> None:
    out = _render("gke")
    grpc_port(by(out, "Service", "qwen-pool-epp"))["appProtocol"] = H2C
    problems = crosscheck(out)
    assert problems[0] == (
        "InferencePool/qwen-pool: the endpoint picker serves TLS but Service/qwen-pool-epp port 9002 says "
        f"appProtocol {H2C} (cleartext)"
    )
    assert "needs 'http2' for a picker that serves TLS" in problems[1]


def test_crosscheck_follows_the_pickers_own_default() -> None:
    """Without `--secure-serving`, the picker serves TLS exactly with `--discovery kubernetes`."""
    out = _render("kubernetes", "kgateway")
    args = epp_container(out)["args"]
    del args[args.index("--secure-serving") : args.index("--secure-serving") + 2]
    assert crosscheck(out) == []
    set_arg(args, "--discovery", "static")
    assert "serves cleartext HTTP/2" in crosscheck(out)[0]


@given(
    secure=st.sampled_from([None, "true", "false"]),
    discovery=st.sampled_from([None, "static", "kubernetes"]),
    equals=st.booleans(),
    secure_first=st.booleans(),
)
def test_serves_tls_agrees_with_the_picker(
    secure: str | None, discovery: str | None, equals: bool, secure_first: bool
) -> None:
    """`serves_tls` reads args the way `inferplane epp` does (checked against the picker's parser and rule)."""
    parts: list[list[str]] = []
    for flag, value in (("--secure-serving", secure), ("--discovery", discovery)):
        if value is not None:
            parts.append([f"{flag}={value}"] if equals else [flag, value])
    if not secure_first:
        parts.reverse()
    args = ["epp", "--pool-name", "p", *[a for part in parts for a in part]]
    parsed = build_parser("epp").parse_args(args)
    expected = parsed.secure_serving == "true" if parsed.secure_serving else parsed.discovery == "kubernetes"
    assert serves_tls(args) == expected


def _render_bbr(target: str, klass: str | None = None) -> list[dict]:
    return copy.deepcopy(render(plan(**BBR_PLAN), options(target, gateway_class=klass)).manifests)


@pytest.mark.parametrize(
    ("target", "klass", "flip_to", "speaks"),
    [
        ("gke", None, "false", "TLS"),
        ("kubernetes", "istio", "false", "TLS"),
        ("kubernetes", "kgateway", "true", "cleartext"),
        ("kubernetes", "eg", "true", "cleartext"),
    ],
)
def test_crosscheck_router_gateway_mismatch(target: str, klass: str | None, flip_to: str, speaks: str) -> None:
    out = _render_bbr(target, klass)
    set_arg(bbr_container(out)["args"], "--secure-serving", flip_to)
    problems = crosscheck(out)
    said = "serves TLS" if flip_to == "true" else "serves cleartext HTTP/2"
    klass = klass or DEFAULT_GKE_GATEWAY_CLASS
    expected = (
        f"Deployment/body-based-router: the body-based router {said} but gateway class {klass!r} "
        f"speaks {speaks} to it (--secure-serving {'false' if flip_to == 'true' else 'true'})"
    )
    assert expected in problems, problems
    if flip_to == "true":  # a TLS router behind `kubernetes.io/h2c` is wrong whatever the gateway
        assert any(f"says appProtocol {H2C} (cleartext)" in p for p in problems), problems


def test_crosscheck_router_without_its_flag_serves_cleartext() -> None:
    """Without `--secure-serving` the router serves cleartext (its local default), which GKE cannot reach."""
    out = _render_bbr("gke")
    args = bbr_container(out)["args"]
    del args[args.index("--secure-serving") : args.index("--secure-serving") + 2]
    assert any("body-based router serves cleartext HTTP/2 but gateway class" in p for p in crosscheck(out))


def test_crosscheck_router_app_protocol_and_istio_origination() -> None:
    gke = _render_bbr("gke")
    grpc_port(by(gke, "Service", "body-based-router"))["appProtocol"] = H2C
    problems = crosscheck(gke)
    assert problems[0] == (
        "Deployment/body-based-router: the body-based router serves TLS but Service/body-based-router port 9004 says "
        f"appProtocol {H2C} (cleartext)"
    )
    assert "needs 'http2' for a router that serves TLS" in problems[1]
    assert len(problems) == 2
    istio = [m for m in _render_bbr("kubernetes", "istio") if m["metadata"]["name"] != "body-based-router"
             or m["kind"] != "DestinationRule"]  # fmt: skip
    assert crosscheck(istio) == [
        "Deployment/body-based-router: the body-based router serves TLS but no DestinationRule for "
        "body-based-router.llm.svc.cluster.local has tls.mode SIMPLE, so gateway class 'istio' would speak "
        "cleartext to it"
    ]


@given(secure=st.sampled_from([None, "true", "false"]), equals=st.booleans(), repeat=st.booleans())
def test_bbr_serves_tls_agrees_with_the_router(secure: str | None, equals: bool, repeat: bool) -> None:
    """`bbr_serves_tls` reads args the way `inferplane bbr` does (checked against the router's parser and rule)."""
    args = ["bbr", "--grpc-port", "9004"]
    if repeat:  # argparse keeps the last value
        args += ["--secure-serving", "false" if secure == "true" else "true"]
    if secure is not None:
        args += [f"--secure-serving={secure}"] if equals else ["--secure-serving", secure]
    parsed = build_parser("bbr").parse_args(args)
    assert bbr_serves_tls(args) == (bbr_command.serving_cert_for(parsed) is not None)

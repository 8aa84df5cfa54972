"""The upstream Gateway API HTTPRoute conformance cases (shared/conformance/gateway-api/cases.yaml, v1.6.1) through
the real Envoy: one Envoy per upstream test, one echo process for every backend Service, every request checked
for the backend that answered or the status; the route/Gateway status expectations are checked on the computed
conditions."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferplane.api.gateway_api import Gateway, HTTPRoute, ReferenceGrant
from inferplane.gateway import GatewayPlan, attach_routes, attached_route_counts
from inferplane.net import free_ports
from tests.conftest import SHARED
from tests.integration.gateway.harness import echo_backends, running_gateway, send

CASES_FILE = SHARED / "conformance" / "gateway-api" / "cases.yaml"
DATA = yaml.safe_load(CASES_FILE.read_text())
TESTS = {t["id"]: t for t in DATA["tests"]}
NAMESPACE = DATA["conventions"]["namespace"]
SERVICES = [
    f"{yaml.safe_load(m['yaml'])['metadata']['namespace']}/{m['name']}"
    for m in DATA["base_manifests"]
    if m["kind"] == "Service"
]
MODELS = {"Gateway": Gateway, "HTTPRoute": HTTPRoute, "ReferenceGrant": ReferenceGrant}


def _objects(text: str) -> list[Any]:
    text = text.replace("{GATEWAY_CLASS_NAME}", "inferplane")
    return [MODELS[o["kind"]].model_validate(o) for o in yaml.safe_load_all(text) if o]


def build_plan(test: dict[str, Any], services: dict[str, str]) -> GatewayPlan:
    objects = [o for m in DATA["base_manifests"] if m["kind"] == "Gateway" for o in _objects(m["yaml"])]
    objects += _objects(test["manifests"])
    gateways = [o for o in objects if isinstance(o, Gateway)]
    ports = free_ports(sum(len(g.spec.listeners) for g in gateways))
    port_map: dict[int | tuple[str, int], int] = {}
    for g in gateways:
        for listener in g.spec.listeners:
            port_map.setdefault((g.key, listener.port), ports.pop())
    return GatewayPlan(
        gateways=gateways,
        routes=[o for o in objects if isinstance(o, HTTPRoute)],
        reference_grants=[o for o in objects if isinstance(o, ReferenceGrant)],
        services={key: [addr] for key, addr in services.items()},
        port_map=port_map,
    )


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with echo_backends(SERVICES, tmp_path_factory.mktemp("echo")) as addrs:
        yield addrs


def check_status_expectations(test: dict[str, Any], plan: GatewayPlan) -> list[str]:
    attachments, statuses = attach_routes(plan)
    errors = []
    for exp in test.get("status_expectations") or []:
        if "gateway" in exp:  # attachedRoutes == 0 on every listener
            gw = next(g for g in plan.gateways if g.key == exp["gateway"])
            counts = attached_route_counts(gw, attachments)
            if any(counts.values()):
                errors.append(f"{exp['gateway']}: attachedRoutes {counts}, want 0")
            continue
        mine = [s for s in statuses if s.route == exp["route"]]
        if "check" in exp:
            if any(s.accepted for s in mine):
                errors.append(f"{exp['route']}: a parent is Accepted")
            continue
        sections = exp.get("sectionName")
        sections = sections if isinstance(sections, list) else [sections]
        for section in sections:
            found = [s for s in mine if s.parent == exp["parent"] and (section is None or s.section_name == section)]
            if not found:
                errors.append(f"{exp['route']}: no status for parent {exp['parent']} section {section}")
                continue
            for cond in exp["conditions"]:
                want = cond["status"] == "True"
                got, reason = (
                    (found[0].accepted, found[0].accepted_reason)
                    if cond["type"] == "Accepted"
                    else (found[0].resolved_refs, found[0].resolved_reason)
                )
                if got != want or ("reason" in cond and reason != cond["reason"]):
                    errors.append(f"{exp['route']}: {cond} but got {got}/{reason}")
    for exp in test.get("listener_expectations") or []:
        gw = next(g for g in plan.gateways if g.key == exp["gateway"])
        count = attached_route_counts(gw, attachments)[exp["listener"]]
        if count != exp["attachedRoutes"]:
            errors.append(f"{exp['gateway']}/{exp['listener']}: attachedRoutes {count}, want {exp['attachedRoutes']}")
    return errors


def check_case(case: dict[str, Any], port: int) -> str | None:
    req = case["request"]
    resp = send(
        port, path=req["path"], method=req.get("method") or "GET", host=req["host"],
        headers=req["headers"], query=req["query"],
    )  # fmt: skip
    expect = case["expect"]
    if "backend" in expect:
        want = f"{expect['namespace']}/{expect['backend']}"
        if resp.status != 200 or resp.backend != want:
            return f"{req} → {resp.status} from {resp.backend}, want 200 from {want}"
    elif resp.status != expect["status"]:
        return f"{req} → {resp.status}, want {expect['status']}"
    return None


def check_weights(spec: dict[str, Any], port: int) -> list[str]:
    req = spec["request"]
    total = spec["total_requests"]

    def one(i: int) -> str | None:
        resp = send(port, path=req["path"], headers={"X-Jitter": str(i)})
        return resp.backend if resp.status == 200 else f"status {resp.status}"

    # Like upstream, a sample that misses the tolerance is drawn again (max_attempts): ±0.05 over 500 draws is
    # only about 2.4σ for a 0.7 share, so one unlucky sample in ~60 would fail a correct gateway. A weight-0 backend
    # that receives anything fails at once: that can never be luck.
    errors: list[str] = []
    for _ in range(spec.get("max_attempts", 10)):
        with ThreadPoolExecutor(spec["concurrent_requests"]) as pool:
            seen = collections.Counter(pool.map(one, range(total)))
        errors = []
        for backend, fraction in spec["expected_fractions"].items():
            got = seen.get(f"{NAMESPACE}/{backend}", 0) / total
            if fraction == 0 and got != 0:
                return [f"{backend}: weight 0 but got {got:.3f} of traffic ({seen})"]
            if abs(got - fraction) > spec["tolerance_abs"]:
                errors.append(f"{backend}: {got:.3f} of traffic, want {fraction} ± {spec['tolerance_abs']} ({seen})")
        if not errors:
            return []
    return errors


@pytest.mark.parametrize("test_id", list(TESTS))
def test_upstream_conformance(test_id: str, backends: dict[str, str], tmp_path: Path) -> None:
    test = TESTS[test_id]
    plan = build_plan(test, backends)
    errors = check_status_expectations(test, plan)
    cases = test.get("cases") or []
    if cases:
        default_gw = test["gateway"]
        with running_gateway(plan, tmp_path / "envoy"):
            for case in cases:
                gw = case.get("gateway", default_gw)
                port = plan.local_port(gw, 80)
                error = check_case(case, port)
                if error:
                    errors.append(error)
            if test.get("weights"):
                errors += check_weights(test["weights"], plan.local_port(default_gw, 80))
    assert not errors, "\n".join(errors)


def test_case_count_matches_readme() -> None:
    """Guards against silently dropping cases: the README promises 117 requests."""
    assert sum(len(t.get("cases") or []) for t in DATA["tests"]) == 117

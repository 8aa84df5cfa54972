"""Cross-checks over rendered manifests: each upstream failure mode of deployment.md §7 is caught."""

from __future__ import annotations

import copy

from inferplane.deploy.crosscheck import crosscheck
from inferplane.deploy.render import render
from tests.unit.deploy.conftest import options, plan, pool, route


def manifests() -> list[dict]:
    return copy.deepcopy(render(plan(), options()).manifests)


def first(ms: list[dict], kind: str, name: str | None = None) -> dict:
    return next(m for m in ms if m["kind"] == kind and (name is None or m["metadata"]["name"] == name))


def test_a_correct_render_has_no_problems() -> None:
    assert crosscheck(manifests()) == []


def test_pool_selector_matching_no_pods() -> None:
    out = render(plan(pools=(pool(selector={"app": "qwen3"}),)), options()).manifests
    problems = crosscheck(out)
    assert any("InferencePool/qwen-pool: selector {'app': 'qwen3'} matches no pod template" in p for p in problems)
    # The message shows the labels that exist, so the typo is visible.
    assert any("'app': 'qwen'" in p for p in problems)


def test_target_port_no_container_listens_on() -> None:
    ms = manifests()
    first(ms, "InferencePool")["spec"]["targetPorts"] = [{"number": 8200}]
    assert any("targetPort 8200 is not a container port of Deployment/qwen" in p for p in crosscheck(ms))


def test_endpoint_picker_ref_port_must_be_a_service_port() -> None:
    ms = manifests()
    first(ms, "InferencePool")["spec"]["endpointPickerRef"]["port"]["number"] = 9000
    assert any("endpointPickerRef.port 9000 is not a port of Service/qwen-pool-epp" in p for p in crosscheck(ms))


def test_endpoint_picker_ref_to_a_missing_service() -> None:
    ms = manifests()
    first(ms, "InferencePool")["spec"]["endpointPickerRef"]["name"] = "nope"
    assert any("endpointPickerRef names Service 'nope', which is not rendered" in p for p in crosscheck(ms))


def test_epp_service_port_landing_on_the_metrics_port() -> None:
    ms = manifests()
    first(ms, "Service", "qwen-pool-epp")["spec"]["ports"][0]["targetPort"] = 9090
    assert any("port 9002 targets 9090, not the EPP's gRPC port" in p for p in crosscheck(ms))


def test_service_selector_and_target_port() -> None:
    ms = manifests()
    svc = first(ms, "Service", "qwen-pool-epp")
    svc["spec"]["ports"][1]["targetPort"] = 9999
    assert any("targetPort 9999 is not a container port of Deployment/qwen-pool-epp" in p for p in crosscheck(ms))
    svc["spec"]["selector"] = {"app.kubernetes.io/name": "other"}
    assert any("Service/qwen-pool-epp: selector" in p and "matches no pod template" in p for p in crosscheck(ms))


def test_route_to_a_missing_pool_and_gateway() -> None:
    out = render(plan(routes=(route("r", "missing-pool"),)), options()).manifests
    assert any("backendRef InferencePool 'missing-pool' is not rendered" in p for p in crosscheck(out))
    ms = manifests()
    first(ms, "HTTPRoute")["spec"]["parentRefs"][0]["name"] = "elsewhere"
    assert any("parentRef Gateway 'elsewhere' is not rendered" in p for p in crosscheck(ms))


def test_two_pools_claiming_the_same_pods() -> None:
    out = render(plan(pools=(pool(), pool("second", epp_ref_name="second-epp"))), options()).manifests
    assert any("is already selected by InferencePool/qwen-pool" in p for p in crosscheck(out))


def test_deployment_selector_must_match_its_template() -> None:
    ms = manifests()
    first(ms, "Deployment", "qwen")["spec"]["selector"]["matchLabels"]["extra"] = "x"
    assert any("Deployment/qwen: spec.selector" in p for p in crosscheck(ms))


def test_missing_service_account_and_config_map() -> None:
    ms = [m for m in manifests() if m["kind"] not in ("ServiceAccount", "ConfigMap")]
    problems = crosscheck(ms)
    assert any("serviceAccountName 'qwen-pool-epp' is not rendered" in p for p in problems)
    assert any("ConfigMap volume 'qwen-pool-epp' is not rendered" in p for p in problems)


def test_pool_cel_rules() -> None:
    ms = manifests()
    spec = first(ms, "InferencePool")["spec"]
    spec["targetPorts"] = [{"number": 8000}, {"number": 8000}]
    del spec["endpointPickerRef"]["port"]
    problems = crosscheck(ms)
    assert any("targetPorts must be unique" in p for p in problems)
    assert any("endpointPickerRef.port is required when kind is Service" in p for p in problems)

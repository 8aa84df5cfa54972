"""Cross-checks over a rendered manifest set: the references a schema cannot see.

These are the failures the rendering checklist (deployment.md §7) lists from upstream: a pool selector that matches
no pod ("no healthy upstream"), a targetPort no container listens on, an endpointPickerRef to a missing Service or
port, an EPP Service that routes to the wrong container port, a route to a pool that does not exist. CEL rules of
the CRDs that matter here (unique targetPorts, the port required for a Service reference) are checked too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Manifest = dict[str, Any]


@dataclass(frozen=True)
class PodTemplate:
    owner: str
    labels: dict[str, str]
    ports: dict[int, str]  # containerPort → port name
    service_account: str | None
    config_maps: tuple[str, ...]


def _ref(m: Manifest) -> str:
    return f"{m['kind']}/{m['metadata']['name']}"


def _template(owner: str, t: dict[str, Any]) -> PodTemplate:
    spec = t.get("spec", {})
    ports = {p["containerPort"]: p.get("name", "") for c in spec.get("containers", []) for p in c.get("ports", [])}
    maps = tuple(v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v)
    return PodTemplate(owner, t.get("metadata", {}).get("labels", {}), ports, spec.get("serviceAccountName"), maps)


def pod_templates(manifests: list[Manifest]) -> Iterator[PodTemplate]:
    for m in manifests:
        if m["kind"] == "Deployment":
            yield _template(_ref(m), m["spec"]["template"])
        elif m["kind"] == "LeaderWorkerSet":
            lwt = m["spec"]["leaderWorkerTemplate"]
            for part in ("leaderTemplate", "workerTemplate"):
                if part in lwt:
                    yield _template(f"{_ref(m)} {part}", lwt[part])


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _by_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def crosscheck(manifests: list[Manifest]) -> list[str]:
    problems: list[str] = []
    templates = list(pod_templates(manifests))
    services = _by_kind(manifests, "Service")
    pools = _by_kind(manifests, "InferencePool")

    for m in manifests:
        if m["kind"] == "Deployment":
            sel = m["spec"]["selector"]["matchLabels"]
            if not _matches(sel, m["spec"]["template"]["metadata"].get("labels", {})):
                problems.append(f"{_ref(m)}: spec.selector {sel} does not match its own pod template labels")

    for t in templates:
        if t.service_account and t.service_account not in _by_kind(manifests, "ServiceAccount"):
            problems.append(f"{t.owner}: serviceAccountName {t.service_account!r} is not rendered")
        for cm in t.config_maps:
            if cm not in _by_kind(manifests, "ConfigMap"):
                problems.append(f"{t.owner}: ConfigMap volume {cm!r} is not rendered")

    for name, svc in services.items():
        selector = svc["spec"].get("selector") or {}
        backing = [t for t in templates if _matches(selector, t.labels)]
        if not backing:
            problems.append(f"Service/{name}: selector {selector} matches no pod template")
        for p in svc["spec"]["ports"]:
            target = p.get("targetPort", p["port"])
            for t in backing:
                if (isinstance(target, int) and target not in t.ports) or (
                    isinstance(target, str) and target not in t.ports.values()
                ):
                    problems.append(f"Service/{name}: targetPort {target} is not a container port of {t.owner}")

    claimed: dict[str, str] = {}
    for name, pool in pools.items():
        spec = pool["spec"]
        selector = spec["selector"]["matchLabels"]
        members = [t for t in templates if _matches(selector, t.labels)]
        if not members:
            labels = "; ".join(f"{t.owner}: {t.labels}" for t in templates) or "none"
            problems.append(f"InferencePool/{name}: selector {selector} matches no pod template (pod labels: {labels})")
        numbers = [p["number"] for p in spec["targetPorts"]]
        if len(set(numbers)) != len(numbers):
            problems.append(f"InferencePool/{name}: targetPorts must be unique, got {numbers}")
        for t in members:
            if t.owner in claimed:
                other = claimed[t.owner]
                problems.append(f"InferencePool/{name}: {t.owner} is already selected by InferencePool/{other}")
            claimed[t.owner] = name
            for n in numbers:
                if n not in t.ports:
                    problems.append(
                        f"InferencePool/{name}: targetPort {n} is not a container port of {t.owner} "
                        f"(it listens on {sorted(t.ports) or 'no declared port'})"
                    )
        problems += _check_epp_ref(name, spec.get("endpointPickerRef"), services, templates)

    for route in _by_kind(manifests, "HTTPRoute").values():
        gateways = _by_kind(manifests, "Gateway")
        for parent in route["spec"].get("parentRefs", []):
            if parent.get("kind", "Gateway") == "Gateway" and parent["name"] not in gateways:
                problems.append(f"{_ref(route)}: parentRef Gateway {parent['name']!r} is not rendered")
        for rule in route["spec"].get("rules", []):
            for ref in rule.get("backendRefs", []):
                if ref.get("kind") == "InferencePool" and ref["name"] not in pools:
                    problems.append(f"{_ref(route)}: backendRef InferencePool {ref['name']!r} is not rendered")
                if ref.get("kind") == "InferencePool" and "port" in ref:
                    problems.append(f"{_ref(route)}: backendRef to InferencePool {ref['name']!r} carries a port")
    return problems


def _check_epp_ref(
    pool: str, ref: dict[str, Any] | None, services: dict[str, Manifest], templates: list[PodTemplate]
) -> list[str]:
    if ref is None:
        return [f"InferencePool/{pool}: no endpointPickerRef; the gateway would have no endpoint picker to call"]
    if ref.get("kind", "Service") != "Service":
        return []
    if "port" not in ref:
        return [f"InferencePool/{pool}: endpointPickerRef.port is required when kind is Service"]
    svc = services.get(ref["name"])
    if svc is None:
        return [f"InferencePool/{pool}: endpointPickerRef names Service {ref['name']!r}, which is not rendered"]
    number = ref["port"]["number"]
    port = next((p for p in svc["spec"]["ports"] if p["port"] == number), None)
    if port is None:
        ports = [p["port"] for p in svc["spec"]["ports"]]
        return [f"InferencePool/{pool}: endpointPickerRef.port {number} is not a port of Service/{ref['name']} {ports}"]
    epp = [t for t in templates if _matches(svc["spec"].get("selector") or {}, t.labels)]
    target = port.get("targetPort", number)
    # The EPP container names its ext_proc port `grpc`; a Service port that lands elsewhere (health, metrics)
    # would be accepted by the API server and fail every request.
    if epp and not any(t.ports.get(target) == "grpc" or target == "grpc" for t in epp):
        return [f"InferencePool/{pool}: Service/{ref['name']} port {number} targets {target}, not the EPP's gRPC port"]
    return []

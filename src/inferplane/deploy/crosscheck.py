"""Cross-checks over a rendered manifest set: the references a schema cannot see.

These are the failures the rendering checklist (deployment.md §7) lists from upstream: a pool selector that matches
no pod ("no healthy upstream"), a targetPort no container listens on, an endpointPickerRef to a missing Service or
port, an EPP Service that routes to the wrong container port, a route to a pool that does not exist. CEL rules of
the CRDs that matter here (unique targetPorts, the port required for a Service reference) are checked too, and so is
the transport between each Gateway and its pools' pickers and the body-based router: an ext_proc server serving TLS
behind a gateway that speaks cleartext to it (or the reverse) is Accepted everywhere and fails every request
(`inferplane.deploy.transport`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from inferplane.deploy.providers import provider_for
from inferplane.deploy.transport import DEFAULT, H2C, Transport, bbr_serves_tls, serves_tls, service_host

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
        problems += _check_epp_transport(name, spec.get("endpointPickerRef"), manifests)

    problems += _check_bbr_transport(manifests)

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


def _transports(manifests: list[Manifest]) -> dict[str, Transport]:
    """gateway class → what that gateway implementation speaks to an ext_proc server."""
    out = {}
    for gw in _by_kind(manifests, "Gateway").values():
        klass = gw["spec"].get("gatewayClassName", "")
        provider = provider_for("kubernetes", klass)
        out[klass] = provider.transport if provider is not None else DEFAULT
    return out


def _check_epp_transport(pool: str, ref: dict[str, Any] | None, manifests: list[Manifest]) -> list[str]:
    if ref is None or ref.get("kind", "Service") != "Service" or "port" not in ref:
        return []  # reported by _check_epp_ref
    svc = _by_kind(manifests, "Service").get(ref["name"])
    if svc is None:
        return []
    port = next((p for p in svc["spec"]["ports"] if p["port"] == ref["port"]["number"]), None)
    selector = svc["spec"].get("selector") or {}
    pickers = [
        c
        for m in manifests
        if m["kind"] == "Deployment" and _matches(selector, m["spec"]["template"]["metadata"].get("labels", {}))
        for c in m["spec"]["template"]["spec"]["containers"]
        if c.get("args", [])[:1] == ["epp"]
    ]
    if port is None or not pickers:
        return []
    tls = serves_tls(pickers[0]["args"])
    said = "serves TLS" if tls else "serves cleartext HTTP/2"
    host = service_host(svc["metadata"]["name"], svc["metadata"].get("namespace"))
    problems = []
    if tls and port.get("appProtocol") == H2C:
        problems.append(f"InferencePool/{pool}: the endpoint picker {said} but Service/{ref['name']} port "
                        f"{port['port']} says appProtocol {H2C} (cleartext)")  # fmt: skip
    for klass, transport in _transports(manifests).items():
        if tls != transport.epp_tls:
            speaks = "TLS" if transport.epp_tls else "cleartext"
            problems.append(f"InferencePool/{pool}: the endpoint picker {said} but gateway class {klass!r} speaks "
                            f"{speaks} to it (--secure-serving {str(transport.epp_tls).lower()})")  # fmt: skip
        elif port.get("appProtocol") != transport.epp_app_protocol:
            problems.append(f"InferencePool/{pool}: Service/{ref['name']} port {port['port']} has appProtocol "
                            f"{port.get('appProtocol')!r}; gateway class {klass!r} needs "
                            f"{transport.epp_app_protocol!r} for a picker that {said}")  # fmt: skip
        if transport.epp_destination_rule and tls and not _originates_tls(manifests, svc):
            problems.append(
                f"InferencePool/{pool}: the endpoint picker {said} but no DestinationRule for {host} has "
                f"tls.mode SIMPLE, so gateway class {klass!r} would speak cleartext to it"
            )
    return problems


def _originates_tls(manifests: list[Manifest], svc: Manifest) -> bool:
    """Whether a DestinationRule makes Istio speak TLS to the Service: its host is the Service's FQDN, or the short
    name in the Service's own namespace (how Istio reads a short host: in the rule's namespace)."""
    name, namespace = svc["metadata"]["name"], svc["metadata"].get("namespace")
    fqdn = service_host(name, namespace or "default")

    def names_it(rule: Manifest) -> bool:
        host = rule["spec"].get("host")
        return host == fqdn or (host == name and rule["metadata"].get("namespace") == namespace)

    rules = [r for r in _by_kind(manifests, "DestinationRule").values() if names_it(r)]
    return any(r["spec"].get("trafficPolicy", {}).get("tls", {}).get("mode") == "SIMPLE" for r in rules)


def _check_bbr_transport(manifests: list[Manifest]) -> list[str]:
    """Each `inferplane bbr` Deployment against its Service's gRPC port and every rendered gateway."""
    problems = []
    transports = _transports(manifests)
    for m in manifests:
        if m["kind"] != "Deployment":
            continue
        template = m["spec"]["template"]
        routers = [c for c in template["spec"]["containers"] if c.get("args", [])[:1] == ["bbr"]]
        if not routers:
            continue
        grpc_ports = {p["containerPort"] for c in routers for p in c.get("ports", []) if p.get("name") == "grpc"}
        tls = bbr_serves_tls(routers[0]["args"])
        said = "serves TLS" if tls else "serves cleartext HTTP/2"
        for svc in _by_kind(manifests, "Service").values():
            if not _matches(svc["spec"].get("selector") or {}, template["metadata"].get("labels", {})):
                continue
            for port in svc["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                if target not in grpc_ports and target != "grpc":
                    continue
                name = f"Service/{svc['metadata']['name']} port {port['port']}"
                protocol = port.get("appProtocol")
                host = service_host(svc["metadata"]["name"], svc["metadata"].get("namespace"))
                if tls and protocol == H2C:
                    problems.append(f"{_ref(m)}: the body-based router {said} but {name} says appProtocol {H2C} "
                                    "(cleartext)")  # fmt: skip
                for klass, transport in transports.items():
                    if tls != transport.bbr_tls:
                        speaks = "TLS" if transport.bbr_tls else "cleartext"
                        problems.append(f"{_ref(m)}: the body-based router {said} but gateway class {klass!r} "
                                        f"speaks {speaks} to it (--secure-serving "
                                        f"{str(transport.bbr_tls).lower()})")  # fmt: skip
                    elif protocol != transport.bbr_app_protocol:
                        problems.append(f"{_ref(m)}: {name} has appProtocol {protocol!r}; gateway class {klass!r} "
                                        f"needs {transport.bbr_app_protocol!r} for a router that {said}")  # fmt: skip
                    if transport.bbr_destination_rule and tls and not _originates_tls(manifests, svc):
                        problems.append(f"{_ref(m)}: the body-based router {said} but no DestinationRule for {host} "
                                        f"has tls.mode SIMPLE, so gateway class {klass!r} would speak cleartext "
                                        "to it")  # fmt: skip
    return problems

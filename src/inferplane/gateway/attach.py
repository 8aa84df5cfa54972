"""Route attachment and reference resolution: which HTTPRoutes a Gateway listener serves, and what each backendRef
points at locally. Pure logic; the route conditions it computes are the ones a cluster controller would report
(`Accepted` / `ResolvedRefs` with upstream reasons), so `inferplane status` can show them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from inferplane.api.gateway_api import (
    GATEWAY_GROUP,
    BackendObjectReference,
    Gateway,
    HTTPRoute,
    LabelSelector,
    Listener,
    ParentReference,
)
from inferplane.gateway import hostnames as hn
from inferplane.gateway.plan import GatewayPlan, PoolBinding


@dataclass(frozen=True)
class Attachment:
    """A route served through one listener, with the hostnames it serves there (() = any)."""

    route: HTTPRoute
    route_index: int  # creation order
    gateway: Gateway
    listener: Listener
    hostnames: tuple[str, ...]


@dataclass(frozen=True)
class ParentStatus:
    """The conditions of one route parentRef, as a Gateway controller would write them in `status.parents[]`."""

    route: str  # namespace/name
    parent: str  # namespace/name of the Gateway
    section_name: str | None
    port: int | None
    accepted: bool
    accepted_reason: str
    resolved_refs: bool
    resolved_reason: str
    message: str = ""


@dataclass(frozen=True)
class ServiceTarget:
    key: str  # the plan's services key
    endpoints: tuple[str, ...]


@dataclass(frozen=True)
class PoolTarget:
    key: str  # the plan's pools key
    binding: PoolBinding


@dataclass(frozen=True)
class InvalidTarget:
    reason: str  # InvalidKind | BackendNotFound | RefNotPermitted
    message: str


Target = ServiceTarget | PoolTarget | InvalidTarget


def resolve_backend(plan: GatewayPlan, route: HTTPRoute, ref: BackendObjectReference) -> Target:
    namespace = ref.namespace or route.metadata.namespace
    what = f"{ref.kind} {namespace}/{ref.name}"
    if not (ref.is_service or ref.is_inference_pool):
        return InvalidTarget("InvalidKind", f"backendRef kind {ref.group or 'core'}/{ref.kind} is not supported")
    if namespace != route.metadata.namespace and not any(
        g.metadata.namespace == namespace
        and g.permits(from_group=GATEWAY_GROUP, from_kind="HTTPRoute", from_namespace=route.metadata.namespace, to=ref)
        for g in plan.reference_grants
    ):
        return InvalidTarget("RefNotPermitted", f"{what} is in another namespace and no ReferenceGrant allows it")
    if ref.is_service:
        endpoints = plan.service(namespace, ref.name)
        if endpoints is None:
            return InvalidTarget("BackendNotFound", f"{what} does not exist")
        key = f"{namespace}/{ref.name}" if f"{namespace}/{ref.name}" in plan.services else ref.name
        return ServiceTarget(key, tuple(endpoints))
    binding = plan.pool(namespace, ref.name)
    if binding is None:
        return InvalidTarget("BackendNotFound", f"{what} does not exist")
    key = f"{namespace}/{ref.name}" if f"{namespace}/{ref.name}" in plan.pools else ref.name
    return PoolTarget(key, binding)


def _selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.match_labels.items()):
        return False
    for expr in selector.match_expressions:
        key, op, values = str(expr.get("key")), str(expr.get("operator")), expr.get("values") or []
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(op, False)
        if not ok:
            return False
    return True


def _namespace_allowed(plan: GatewayPlan, gateway: Gateway, listener: Listener, route: HTTPRoute) -> bool:
    ns = listener.allowed_routes.namespaces
    if ns.from_ == "All":
        return True
    if ns.from_ == "Same":
        return route.metadata.namespace == gateway.metadata.namespace
    assert ns.selector is not None  # the model requires it for Selector
    return _selector_matches(ns.selector, plan.namespace_labels.get(route.metadata.namespace, {}))


def _selected_listeners(gateway: Gateway, ref: ParentReference) -> list[Listener]:
    return [
        x
        for x in gateway.spec.listeners
        if (ref.section_name is None or x.name == ref.section_name) and (ref.port is None or x.port == ref.port)
    ]


def _resolved_refs(plan: GatewayPlan, route: HTTPRoute) -> tuple[bool, str, str]:
    for rule in route.spec.rules:
        for ref in rule.backend_refs:
            target = resolve_backend(plan, route, ref)
            if isinstance(target, InvalidTarget):
                return False, target.reason, target.message
    return True, "ResolvedRefs", ""


def _attach_parent(
    plan: GatewayPlan,
    gateway: Gateway | None,
    route: HTTPRoute,
    index: int,
    ref: ParentReference,
    resolved: tuple[bool, str, str],
) -> tuple[list[Attachment], ParentStatus]:
    parent = f"{ref.namespace or route.metadata.namespace}/{ref.name}"

    def status(accepted: bool, reason: str, message: str = "") -> ParentStatus:
        ok, resolved_reason, resolved_msg = resolved
        return ParentStatus(
            route.key, parent, ref.section_name, ref.port, accepted, reason, ok, resolved_reason,
            message or resolved_msg,
        )  # fmt: skip

    if gateway is None:
        return [], status(False, "NoMatchingParent", f"no Gateway {parent}")
    listeners = _selected_listeners(gateway, ref)
    if not listeners:
        wanted = [f"sectionName {ref.section_name}" if ref.section_name else "", f"port {ref.port}" if ref.port else ""]
        want = " and ".join(w for w in wanted if w)
        return [], status(False, "NoMatchingParent", f"Gateway {parent} has no listener with {want}")
    found: list[Attachment] = []
    not_allowed = False
    for listener in listeners:
        if not listener.allows_kind(GATEWAY_GROUP, "HTTPRoute") or not _namespace_allowed(
            plan, gateway, listener, route
        ):
            not_allowed = True
            continue
        hosts = hn.effective_hostnames(listener.hostname, route.spec.hostnames)
        if hosts is not None:
            found.append(Attachment(route, index, gateway, listener, hosts))
    if found:
        return found, status(True, "Accepted")
    if not_allowed:
        return [], status(False, "NotAllowedByListeners", "no selected listener allows this route")
    return [], status(False, "NoMatchingListenerHostname", "no route hostname intersects a listener hostname")


def attach_routes(plan: GatewayPlan) -> tuple[list[Attachment], list[ParentStatus]]:
    """Every (route, listener) pair that serves traffic, and one status per handled route parentRef."""
    gateways = {g.key: g for g in plan.gateways}
    attachments: list[Attachment] = []
    statuses: list[ParentStatus] = []
    for index, route in enumerate(plan.routes):
        resolved = _resolved_refs(plan, route)
        for ref in route.spec.parent_refs:
            if ref.group != GATEWAY_GROUP or ref.kind != "Gateway":
                continue  # not a parent this gateway implementation handles
            gateway = gateways.get(f"{ref.namespace or route.metadata.namespace}/{ref.name}")
            found, status = _attach_parent(plan, gateway, route, index, ref, resolved)
            attachments.extend(found)
            statuses.append(status)
    return attachments, statuses


def attached_route_counts(gateway: Gateway, attachments: Sequence[Attachment]) -> dict[str, int]:
    """`status.listeners[].attachedRoutes` for one Gateway."""
    counts = {x.name: 0 for x in gateway.spec.listeners}
    seen: set[tuple[str, str]] = set()
    for a in attachments:
        if a.gateway.key == gateway.key and (a.listener.name, a.route.key) not in seen:
            seen.add((a.listener.name, a.route.key))
            counts[a.listener.name] += 1
    return counts

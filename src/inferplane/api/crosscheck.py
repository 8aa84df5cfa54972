"""Cross-reference checks: the troubleshooting list of a real deployment, run before anything starts.

Each check looks at the whole Deployment and returns positioned diagnostics. Errors are what would break traffic
(a route to nothing, a pool that selects nothing or targets the wrong port); warnings are what might be intended
(a Secret that lives only in the cluster, a pool no route uses).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from inferplane.api.deployment import BASE_MODEL_HEADER, MODEL_HEADER, Deployment
from inferplane.api.diagnostics import Diagnostic, did_you_mean
from inferplane.api.gateway_api import GATEWAY_GROUP, Gateway, HTTPRoute, Listener
from inferplane.api.pool import POOL_GROUPS, V1_GROUP, InferencePool
from inferplane.api.source import Source

Check = Callable[[Deployment], Iterator[Diagnostic]]
CHECKS: list[Check] = []


# Checks of components above the model, injected by the composition roots (the CLI passes the endpoint picker's
# config check, `inferplane.epp.config_check.check_epp_configs`): the model imports nothing above it.
INJECTED: list[Check] = []


def check(fn: Check) -> Check:
    CHECKS.append(fn)
    return fn


def add_check(fn: Check) -> None:
    """Inject a component's check (run after the model's own); adding the same check again changes nothing."""
    if fn not in INJECTED:
        INJECTED.append(fn)


def cross_check(dep: Deployment) -> list[Diagnostic]:
    return [d for fn in [*CHECKS, *INJECTED] for d in fn(dep)]


def _labels(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"


def _routes(dep: Deployment) -> Iterator[tuple[HTTPRoute, Source]]:
    for route in dep.http_routes:
        source = dep.source("HTTPRoute", route.metadata.name, route.metadata.namespace)
        if source is not None:
            yield route, source


def _pools(dep: Deployment) -> Iterator[tuple[InferencePool, Source]]:
    for pool in dep.inference_pools:
        source = dep.source("InferencePool", pool.name, pool.namespace)
        if source is not None:
            yield pool, source


def _listing(listeners: list[Listener]) -> str:
    return ", ".join(f"{x.name} (port {x.port})" for x in listeners)


@check
def parent_refs(dep: Deployment) -> Iterator[Diagnostic]:
    for route, src in _routes(dep):
        ns = route.metadata.namespace
        if not route.spec.parent_refs:
            yield src.diag(
                ("spec",), "this HTTPRoute has no parentRefs, so it is attached to no Gateway", severity="warning"
            )
        for i, ref in enumerate(route.spec.parent_refs):
            path: tuple[str | int, ...] = ("spec", "parentRefs", i)
            if (ref.group, ref.kind) != (GATEWAY_GROUP, "Gateway"):
                yield src.diag(
                    (*path, "kind"),
                    f"parentRef kind {ref.kind!r} in group {ref.group!r} is not supported",
                    hint=f"attach routes to a Gateway (group {GATEWAY_GROUP})",
                )
                continue
            gw = dep.gateway(ref.name, ref.namespace or ns)
            if gw is None and (
                dep.is_failed("Gateway", ref.name, ref.namespace or ns) or (dep.partial and not dep.gateways)
            ):
                continue
            if gw is None:
                names = [g.metadata.name for g in dep.gateways]
                hint = did_you_mean(ref.name, names) or (
                    f"Gateways defined here: {', '.join(names)}"
                    if names
                    else "no Gateway is defined: add one under manifests/"
                )
                yield src.diag(
                    (*path, "name"), f"parentRef names Gateway {ref.name!r}, which is not defined", hint=hint
                )
                continue
            yield from _listener_match(gw, route, ref.section_name, ref.port, src, path)


def _listener_match(
    gw: Gateway, route: HTTPRoute, section: str | None, port: int | None, src: Source, path: tuple[str | int, ...]
) -> Iterator[Diagnostic]:
    listeners = gw.spec.listeners
    named = [x for x in listeners if section is None or x.name == section]
    chosen = [x for x in named if port is None or x.port == port]
    gname = gw.metadata.name
    if section is not None and not named:
        hint = did_you_mean(section, [x.name for x in listeners]) or f"its listeners: {_listing(listeners)}"
        yield src.diag((*path, "sectionName"), f"Gateway {gname!r} has no listener named {section!r}", hint=hint)
        return
    if not chosen:
        yield src.diag(
            (*path, "port"),
            f"Gateway {gname!r} has no listener on port {port}" + (f" named {section!r}" if section else ""),
            hint=f"its listeners: {_listing(listeners)}",
        )
        return
    accepting = [
        x
        for x in chosen
        if x.allows_kind(GATEWAY_GROUP, "HTTPRoute")
        and (x.allowed_routes.namespaces.from_ != "Same" or gw.metadata.namespace == route.metadata.namespace)
    ]
    if not accepting:
        yield src.diag(
            (*path, "name"),
            f"no listener of Gateway {gname!r} accepts this HTTPRoute (protocol, allowedRoutes kinds or namespaces)",
            hint=f"its listeners: {_listing(chosen)}",
        )


@check
def backend_refs(dep: Deployment) -> Iterator[Diagnostic]:
    for route, src in _routes(dep):
        ns = route.metadata.namespace
        for j, rule in enumerate(route.spec.rules):
            for k, b in enumerate(rule.backend_refs):
                path: tuple[str | int, ...] = ("spec", "rules", j, "backendRefs", k)
                bns = b.namespace or ns
                if b.kind == "InferencePool":
                    if b.group not in POOL_GROUPS:
                        yield src.diag(
                            (*path, "group"),
                            f"an InferencePool backendRef needs group {V1_GROUP}, found {b.group!r}",
                            hint=f"group: {V1_GROUP}",
                        )
                        continue
                    pool = dep.pool(b.name, bns)
                    if pool is None and (
                        dep.is_failed("InferencePool", b.name, bns) or (dep.partial and not dep.inference_pools)
                    ):
                        continue
                    if pool is None:
                        names = [p.name for p in dep.inference_pools]
                        hint = did_you_mean(b.name, names) or (
                            f"InferencePools defined here: {', '.join(names)}"
                            if names
                            else "no InferencePool is defined"
                        )
                        yield src.diag(
                            (*path, "name"),
                            f"backendRef names InferencePool {b.name!r}, which is not defined",
                            hint=hint,
                        )
                    elif dep.pool_api_groups.get((bns, b.name), V1_GROUP) != b.group:
                        yield src.diag(
                            (*path, "group"),
                            f"InferencePool {b.name!r} is written in group "
                            f"{dep.pool_api_groups[(bns, b.name)]}, this reference uses {b.group}",
                            hint="inferplane treats them as one pool; a cluster would not",
                            severity="warning",
                        )
                elif b.group in ("", "core") and b.kind == "Service":
                    yield from _service_ref(dep, src, path, b.name, bns, b.port)
                else:
                    hint = did_you_mean(b.kind, ["InferencePool", "Service"]) or (
                        f'use an InferencePool (group {V1_GROUP}) or a Service (group "")'
                    )
                    yield src.diag(
                        (*path, "kind"), f"unsupported backendRef kind {b.kind!r} in group {b.group!r}", hint=hint
                    )


def _service_ref(
    dep: Deployment, src: Source, path: tuple[str | int, ...], name: str, ns: str, port: int | None
) -> Iterator[Diagnostic]:
    svc = dep.service(name, ns)
    if svc is None and (dep.is_failed("Service", name, ns) or (dep.partial and not dep.services)):
        return
    if svc is None:
        names = [s.metadata.name for s in dep.services]
        hint = did_you_mean(name, names) or "define the Service under manifests/, or route to an InferencePool"
        yield src.diag((*path, "name"), f"backendRef names Service {name!r}, which is not defined", hint=hint)
        return
    ports = [p.port for p in svc.spec.ports]
    if port is not None and ports and port not in ports:
        yield src.diag(
            (*path, "port"), f"Service {name!r} has no port {port}", hint=f"its ports: {', '.join(map(str, ports))}"
        )


@check
def pool_selectors(dep: Deployment) -> Iterator[Diagnostic]:
    if dep.incomplete or (dep.partial and not dep.model_services):
        return
    for pool, src in _pools(dep):
        if dep.pool_members(pool):
            continue
        shown = [f"{m.name}: {_labels(m.labels)}" for m in dep.model_services[:6]]
        hint = ("model services have labels " + "; ".join(shown)) if shown else "no model service is defined"
        yield src.diag(
            ("spec", "selector", "matchLabels"),
            f"selector {_labels(pool.match_labels)} matches no model service",
            hint=hint,
        )


@check
def target_ports(dep: Deployment) -> Iterator[Diagnostic]:
    for pool, src in _pools(dep):
        targets = pool.target_port_numbers
        for ms in dep.pool_members(pool):
            served = ms.serving_ports()
            missing = [t for t in targets if t not in served]
            if not missing:
                continue
            if len(missing) == len(targets):
                msg = f"targetPorts {targets} but model service {ms.name!r} serves on port {ms.port} ({ms.port_origin})"
            else:
                msg = f"targetPorts {missing} are not served by model service {ms.name!r} (it serves {served})"
            yield src.diag(
                ("spec", "targetPorts"),
                msg,
                hint=f"set targetPorts to [{{number: {ms.port}}}] or change the model server's port",
            )


@check
def overlapping_pools(dep: Deployment) -> Iterator[Diagnostic]:
    seen: set[tuple[str, str]] = set()
    for ms in dep.model_services:
        pools = sorted(dep.pools_for(ms), key=lambda p: (p.namespace, p.name))
        for other in pools[1:]:
            pair = (pools[0].name, other.name)
            src = dep.source("InferencePool", other.name, other.namespace)
            if pair in seen or src is None:
                continue
            seen.add(pair)
            yield src.diag(
                ("spec", "selector", "matchLabels"),
                f"InferencePools {pools[0].name!r} and "
                f"{other.name!r} both select model service {ms.name!r}: two endpoint pickers would "
                "schedule the same pods",
                hint="make the selectors disjoint",
            )


@check
def model_headers(dep: Deployment) -> Iterator[Diagnostic]:
    if dep.incomplete:
        return
    for route, src in _routes(dep):
        ns = route.metadata.namespace
        for j, rule in enumerate(route.spec.rules):
            pools = [p for b in rule.backend_refs if b.is_inference_pool if (p := dep.pool(b.name, b.namespace or ns))]
            if not pools:
                continue
            for m, match in enumerate(rule.matches):
                for h, header in enumerate(match.headers):
                    name = header.name.lower()
                    if header.type != "Exact" or name not in (MODEL_HEADER, BASE_MODEL_HEADER):
                        continue
                    if name == MODEL_HEADER:
                        served = [n for p in pools for n in dep.model_names_for_pool(p)]
                    else:
                        served = [n for p in pools for ms in dep.pool_members(p) for n in ms.served_model_names]
                    if header.value in served:
                        continue
                    where = ", ".join(p.name for p in pools)
                    hint = did_you_mean(header.value, served) or (
                        f"served there: {', '.join(dict.fromkeys(served))}" if served else None
                    )
                    yield src.diag(
                        ("spec", "rules", j, "matches", m, "headers", h, "value"),
                        f"route matches {header.name}: {header.value!r}, but no model service behind "
                        f"{where} serves that model",
                        hint=hint,
                    )


@check
def pool_refs(dep: Deployment) -> Iterator[Diagnostic]:
    for kind, objs in (("InferenceObjective", dep.objectives), ("InferenceModelRewrite", dep.rewrites)):
        for obj in objs:
            src = dep.source(kind, obj.metadata.name, obj.metadata.namespace)
            ref = obj.spec.pool_ref
            if src is None:
                continue
            if ref.kind != "InferencePool" or ref.group not in POOL_GROUPS:
                yield src.diag(
                    ("spec", "poolRef", "kind"),
                    f"poolRef must name an InferencePool (group {V1_GROUP}),"
                    f" found kind {ref.kind!r} in group {ref.group!r}",
                )
            elif dep.pool(ref.name, obj.metadata.namespace) is None and not (
                dep.is_failed("InferencePool", ref.name, obj.metadata.namespace)
                or (dep.partial and not dep.inference_pools)
            ):
                names = [p.name for p in dep.inference_pools]
                hint = did_you_mean(ref.name, names) or (
                    f"InferencePools defined here: {', '.join(names)}" if names else "no InferencePool is defined"
                )
                yield src.diag(
                    ("spec", "poolRef", "name"),
                    f"poolRef names InferencePool {ref.name!r}, which is not defined",
                    hint=hint,
                )


@check
def secrets(dep: Deployment) -> Iterator[Diagnostic]:
    for ms in dep.model_services:
        if ms.origin is None:
            continue
        for ref in ms.secret_refs:
            secret = dep.secret(ref.name)
            if secret is None:
                if ref.purpose == "image pull":
                    hint = f"kubectl create secret docker-registry {ref.name} --docker-server=... (cluster only)"
                else:
                    hint = (
                        f"create it in the cluster (kubectl create secret generic {ref.name} "
                        f"--from-literal={ref.key or 'KEY'}=...); local runs read the value from the environment"
                    )
                yield ms.origin.doc.diag(
                    ref.path,
                    f"references Secret {ref.name!r} ({ref.purpose}), which is not defined in this deployment",
                    hint=hint,
                    severity="warning",
                )
            elif ref.key and not secret.has_key(ref.key) and (secret.data or secret.string_data):
                keys = [*secret.data, *secret.string_data]
                yield ms.origin.doc.diag(
                    ref.path,
                    f"Secret {ref.name!r} has no key {ref.key!r}",
                    hint=did_you_mean(ref.key, keys),
                    severity="warning",
                )


@check
def unused(dep: Deployment) -> Iterator[Diagnostic]:
    if dep.partial:
        return
    for pool, src in _pools(dep):
        if dep.http_routes and not dep.routes_to(pool):
            yield src.diag(
                ("metadata", "name"),
                f"InferencePool {pool.name!r} is not a backend of any HTTPRoute, so no traffic reaches it",
                severity="warning",
            )
    if dep.inference_pools:
        for ms in dep.model_services:
            if not dep.pools_for(ms) and ms.origin is not None:
                yield ms.origin.doc.diag(
                    ms.origin.base,
                    f"model service {ms.name!r} (labels {_labels(ms.labels)}) is selected by no InferencePool",
                    severity="warning",
                )

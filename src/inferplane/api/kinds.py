"""Which model a YAML document is, and what loading it adds to the Deployment: a registry of handlers.

Kubernetes objects are dispatched by `kind`; values files (no `kind`) by their top-level keys.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, TypeVar

from pydantic import BaseModel

from inferplane.api.base import ObjectMeta
from inferplane.api.deployment import Deployment
from inferplane.api.diagnostics import Collector, describe, did_you_mean
from inferplane.api.epp_config import EndpointPickerConfig
from inferplane.api.gateway_api import Gateway, GatewayClass, HTTPRoute, ReferenceGrant
from inferplane.api.k8s import KubeObject, Secret, Service, Workload
from inferplane.api.lws import LeaderWorkerSet
from inferplane.api.modelservice import ModelService, from_pod_template
from inferplane.api.objective import InferenceModel, InferenceModelRewrite, InferenceObjective
from inferplane.api.pool import (
    LEGACY_GROUP,
    LEGACY_PATHS,
    LOOSE_GROUP,
    LOOSE_PATHS,
    POOL_API_VERSIONS,
    V1_GROUP,
    InferencePool,
    LegacyInferencePool,
    LooseInferencePool,
)
from inferplane.api.positions import YamlDoc
from inferplane.api.source import Source
from inferplane.api.validation import validate

M = TypeVar("M", bound=BaseModel)
Handler = Callable[["LoadContext", YamlDoc, dict[str, Any]], None]

# Kubernetes kinds inferplane does not use but accepts and keeps (Services and Secrets are also read).
OTHER_KINDS = frozenset(
    [
        "ConfigMap",
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "PersistentVolumeClaim",
        "PersistentVolume",
        "Pod",
        "DaemonSet",
        "Job",
        "CronJob",
        "ReplicaSet",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Ingress",
        "IngressClass",
        "PriorityClass",
        "StorageClass",
        "ResourceQuota",
        "LimitRange",
        "Endpoints",
        "EndpointSlice",
        "ResourceClaimTemplate",
        "ResourceClaim",
        "DeviceClass",
        "CustomResourceDefinition",
        "GRPCRoute",
        "InferencePoolImport",
        "PodMonitor",
        "ServiceMonitor",
        "PodMonitoring",
        "ClusterPodMonitoring",
        "HealthCheckPolicy",
        "GCPBackendPolicy",
        "GCPRoutingExtension",
        "GCPTrafficExtension",
        "GCPGatewayPolicy",
        "DestinationRule",
        "EnvoyFilter",
        "Telemetry",
        "PeerAuthentication",
        "EnvoyExtensionPolicy",
        "EnvoyPatchPolicy",
        "BackendTrafficPolicy",
        "ClientTrafficPolicy",
        "EnvoyProxy",
        "GatewayParameters",
        "TrafficPolicy",
    ]
)
_HANDLERS: dict[str, Handler] = {}
# The apiVersion to suggest when a manifest leaves it out.
API_VERSION_OF = {
    "Gateway": "gateway.networking.k8s.io/v1",
    "HTTPRoute": "gateway.networking.k8s.io/v1",
    "GatewayClass": "gateway.networking.k8s.io/v1",
    "ReferenceGrant": "gateway.networking.k8s.io/v1beta1",
    "InferencePool": "inference.networking.k8s.io/v1",
    "InferenceObjective": "inference.networking.x-k8s.io/v1alpha2",
    "InferenceModelRewrite": "inference.networking.x-k8s.io/v1alpha2",
    "InferenceModel": "inference.networking.x-k8s.io/v1alpha2",
    "LeaderWorkerSet": "leaderworkerset.x-k8s.io/v1",
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "Service": "v1",
    "Secret": "v1",
}


def handles(*kinds: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for kind in kinds:
            _HANDLERS[kind] = fn
        return fn

    return register


def known_kinds() -> set[str]:
    return set(_HANDLERS) | set(OTHER_KINDS)


@dataclass
class LoadContext:
    dep: Deployment
    diags: Collector
    rel: str = ""  # the current file, relative to the deployment root (posix)
    release: str = "release"  # the Helm release name a values file stands for (from its file name)
    # standalone EndpointPickerConfig documents by file (relative path)
    epp_files: dict[str, list[EndpointPickerConfig]] = field(default_factory=dict)
    # pool (namespace, name) → (config, origin) from inferencepool chart values
    values_epp: dict[tuple[str, str], tuple[EndpointPickerConfig, str]] = field(default_factory=dict)
    # files holding an EndpointPickerConfig document that failed validation (its own errors are reported)
    epp_failed: set[str] = field(default_factory=set)

    def validate(self, model: type[M], data: Any, doc: YamlDoc, base: tuple[str | int, ...] = ()) -> M | None:
        obj, problems = validate(model, data, doc, base)
        self.diags.extend(problems)
        if obj is None:
            self.dep.note_failure(data)
        return obj

    def register(self, kind: str, meta: ObjectMeta, source: Source) -> bool:
        """Record where an object was written; a second object of the same kind, namespace and name is an error."""
        key = (kind, meta.namespace, meta.name)
        first = self.dep.sources.get(key)
        if first is not None:
            where = first.pos(("metadata", "name"))
            self.diags.add(
                source.diag(
                    ("metadata", "name"),
                    f"duplicate {kind} {meta.name!r} in namespace {meta.namespace!r}",
                    hint=f"first defined at {where}; names must be unique per kind and namespace",
                )
            )
            return False
        self.dep.sources[key] = source
        return True

    def add_model_service(self, ms: ModelService, source: Source, path: tuple[str | int, ...]) -> None:
        """Add a model service; `path` is where its name comes from in the document (for duplicate errors)."""
        named = Source(source.doc, aliases={("metadata", "name"): path})
        if self.register("ModelService", ObjectMeta(name=ms.name), named):
            self.dep.model_services.append(ms)


def release_name(rel: str) -> str:
    """Helm release name a values file stands for: its file name without `-values.yaml` (or its folder's)."""
    path = PurePosixPath(rel)
    stem = re.sub(r"\.ya?ml$", "", path.name)
    stem = re.sub(r"[-_.]?values$", "", stem)
    if not stem:
        stem = path.parent.name
    return re.sub(r"[^a-z0-9-]+", "-", stem.lower()).strip("-") or "release"


def dispatch(ctx: LoadContext, doc: YamlDoc) -> None:
    data = doc.data
    if data is None:
        return  # an empty document (e.g. after a trailing ---)
    if not isinstance(data, dict):
        ctx.diags.add(doc.diag((), f"expected a mapping (a Kubernetes object or values), found {describe(data)}"))
        return
    if "kind" in data or "apiVersion" in data:
        kind = data.get("kind")
        if not isinstance(kind, str):
            ctx.diags.add(doc.diag(("kind",), "expected the object's kind as a string, e.g. kind: InferencePool"))
            return
        handler = _HANDLERS.get(kind)
        if handler is not None and "apiVersion" not in data and kind in API_VERSION_OF:
            ctx.diags.add(
                doc.diag(
                    ("apiVersion",),
                    "required field 'apiVersion' is missing",
                    at=("kind",),
                    hint=f"add apiVersion: {API_VERSION_OF[kind]}",
                )
            )
            return
        if handler is None:
            if kind in OTHER_KINDS:
                _keep_other(ctx, doc, data)
                return
            hint = did_you_mean(kind, known_kinds()) or (
                "inferplane reads Gateway API, Inference Extension, LeaderWorkerSet and core Kubernetes objects"
            )
            ctx.diags.add(doc.diag(("kind",), f"unknown kind {kind!r}", hint=hint))
            ctx.dep.note_unknown_kind(data)
            return
        handler(ctx, doc, data)
        return
    from inferplane.api.values_kinds import dispatch_values

    dispatch_values(ctx, doc, data)


def _keep_other(ctx: LoadContext, doc: YamlDoc, data: dict[str, Any]) -> None:
    obj = ctx.validate(KubeObject, data, doc)
    if obj is not None and ctx.register(obj.kind, obj.metadata, Source(doc)):
        ctx.dep.others.append(obj)


@handles("Gateway")
def _gateway(ctx: LoadContext, doc: YamlDoc, data: dict[str, Any]) -> None:
    gw = ctx.validate(Gateway, data, doc)
    if gw is not None and ctx.register("Gateway", gw.metadata, Source(doc)):
        ctx.dep.gateways.append(gw)


@handles("HTTPRoute")
def _route(ctx: LoadContext, doc: YamlDoc, data: dict[str, Any]) -> None:
    route = ctx.validate(HTTPRoute, data, doc)
    if route is not None and ctx.register("HTTPRoute", route.metadata, Source(doc)):
        ctx.dep.http_routes.append(route)


@handles("GatewayClass", "ReferenceGrant")
def _gateway_other(ctx: LoadContext, doc: YamlDoc, data: dict[str, Any]) -> None:
    model: type[BaseModel] = GatewayClass if data.get("kind") == "GatewayClass" else ReferenceGrant
    obj = ctx.validate(model, data, doc)
    if obj is not None:
        meta = obj.metadata  # type: ignore[attr-defined]
        if ctx.register(str(data["kind"]), meta, Source(doc)):
            ctx.dep.others.append(obj)


@handles("InferencePool")
def _pool(ctx: LoadContext, doc: YamlDoc, data: dict[str, Any]) -> None:
    api = data.get("apiVersion")
    group = api.split("/")[0] if isinstance(api, str) else ""
    pool: InferencePool | None = None
    source = Source(doc)
    if group == LEGACY_GROUP:
        legacy = ctx.validate(LegacyInferencePool, data, doc)
        pool = legacy.to_v1() if legacy else None
        source = Source(doc, aliases=dict(LEGACY_PATHS))
    elif group == LOOSE_GROUP:
        loose = ctx.validate(LooseInferencePool, data, doc)
        pool = loose.to_v1() if loose else None
        source = Source(doc, aliases=dict(LOOSE_PATHS))
        ctx.diags.add(
            doc.diag(
                ("apiVersion",),
                f"{api} is not a real API: accepted as inference.networking.k8s.io/v1",
                hint="write apiVersion: inference.networking.k8s.io/v1 with spec.selector.matchLabels and "
                "spec.targetPorts: [{number: N}] (the loose form's scheduler.type: EPP is implied)",
                severity="warning",
            )
        )
    elif api == f"{V1_GROUP}/v1" or not isinstance(api, str):
        pool = ctx.validate(InferencePool, data, doc)
    else:
        hint = did_you_mean(api, POOL_API_VERSIONS) or f"use {POOL_API_VERSIONS[0]}"
        ctx.diags.add(doc.diag(("apiVersion",), f"unknown apiVersion {api!r} for InferencePool", hint=hint))
        return
    if pool is not None and ctx.register("InferencePool", pool.metadata, source):
        ctx.dep.inference_pools.append(pool)
        ctx.dep.pool_api_groups[(pool.namespace, pool.name)] = group or V1_GROUP


@handles("InferenceObjective")
def _objective(ctx: LoadContext, doc: YamlDoc, data: dict[str, Any]) -> None:
    obj = ctx.validate(InferenceObjective, data, doc)
    if obj is not None and ctx.register("InferenceObjective", obj.metadata, Source(doc)):
        ctx.dep.objectives.append(obj)


@handles("InferenceModelRewrite")
def _rewrite(ctx: LoadContext, doc: YamlDoc, data: dict[str, Any]) -> None:
    obj = ctx.validate(InferenceModelRewrite, data, doc)
    if obj is not None and ctx.register("InferenceModelRewrite", obj.metadata, Source(doc)):
        ctx.dep.rewrites.append(obj)


@handles("InferenceModel")
def _legacy_model(ctx: LoadContext, doc: YamlDoc, data: dict[str, Any]) -> None:
    legacy = ctx.validate(InferenceModel, data, doc)
    if legacy is None:
        return
    aliases: dict[tuple[str | int, ...], tuple[str | int, ...]] = {("spec", "priority"): ("spec", "criticality")}
    objective = legacy.to_objective()
    if ctx.register("InferenceObjective", objective.metadata, Source(doc, aliases=aliases)):
        ctx.dep.objectives.append(objective)
    rewrite = legacy.to_rewrite()
    if rewrite is not None:
        rw_aliases: dict[tuple[str | int, ...], tuple[str | int, ...]] = {("spec", "rules"): ("spec", "targetModels")}
        if ctx.register("InferenceModelRewrite", rewrite.metadata, Source(doc, aliases=rw_aliases)):
            ctx.dep.rewrites.append(rewrite)


@handles("LeaderWorkerSet")
def _lws(ctx: LoadContext, doc: YamlDoc, data: dict[str, Any]) -> None:
    lws = ctx.validate(LeaderWorkerSet, data, doc)
    if lws is None or not ctx.register("LeaderWorkerSet", lws.metadata, Source(doc)):
        return
    ctx.dep.leader_worker_sets.append(lws)
    lwt = lws.spec.leader_worker_template
    which = "leaderTemplate" if lwt.leader_template is not None else "workerTemplate"
    ms, problems = from_pod_template(
        name=lws.name,
        template=lws.leader_template,
        replicas=lws.spec.replicas,
        source=Source(doc),
        template_path=("spec", "leaderWorkerTemplate", which),
        form="leaderworkerset",
        group_size=lws.size,
        lws=lws.name,
    )
    ctx.diags.extend(problems)
    if ms is not None:
        ctx.add_model_service(ms, Source(doc), ("metadata", "name"))


@handles("Deployment", "StatefulSet")
def _workload(ctx: LoadContext, doc: YamlDoc, data: dict[str, Any]) -> None:
    wl = ctx.validate(Workload, data, doc)
    if wl is None or not ctx.register(wl.kind, wl.metadata, Source(doc)):
        return
    ctx.dep.workloads.append(wl)
    ms, problems = from_pod_template(
        name=wl.metadata.name,
        template=wl.spec.template,
        replicas=wl.spec.replicas,
        source=Source(doc),
        template_path=("spec", "template"),
        form="deployment",
    )
    ctx.diags.extend(problems)
    if ms is not None:
        selector = (wl.spec.model_extra or {}).get("selector")
        if isinstance(selector, dict) and isinstance(selector.get("matchLabels"), dict):
            ms.selector = {str(k): str(v) for k, v in selector["matchLabels"].items()}
        ctx.add_model_service(ms, Source(doc), ("metadata", "name"))


@handles("EndpointPickerConfig")
def _epp(ctx: LoadContext, doc: YamlDoc, data: dict[str, Any]) -> None:
    cfg = ctx.validate(EndpointPickerConfig, data, doc)
    if cfg is not None:
        ctx.epp_files.setdefault(ctx.rel, []).append(cfg)
        ctx.dep.epp_config_docs.append((cfg, doc))
    else:
        ctx.epp_failed.add(ctx.rel)


@handles("Service")
def _service(ctx: LoadContext, doc: YamlDoc, data: dict[str, Any]) -> None:
    svc = ctx.validate(Service, data, doc)
    if svc is not None and ctx.register("Service", svc.metadata, Source(doc)):
        ctx.dep.services.append(svc)


@handles("Secret")
def _secret(ctx: LoadContext, doc: YamlDoc, data: dict[str, Any]) -> None:
    secret = ctx.validate(Secret, data, doc)
    if secret is not None and ctx.register("Secret", secret.metadata, Source(doc)):
        ctx.dep.secrets.append(secret)

"""Gateway, HTTPRoutes, InferencePools, InferenceObjectives and InferenceModelRewrites.

Gateway and route specs come from the user's files with their upstream field names; rendering only settles what
depends on the cluster (the gateway class) and normalises InferencePool backends to the v1 group with no port
(the port of an InferencePool backendRef is ignored, GIE conformance `InferencePoolHTTPRoutePortValidation`).

A reference's `namespace` that names the referring object's own namespace is dropped: everything is rendered into
one namespace, and a spelled-out one would pin the reference when `--namespace`, kustomize or Argo CD move the
objects. A reference to another namespace is kept as written.
"""

from __future__ import annotations

import copy
from typing import Any

from inferplane.api.gie_versions import has_field
from inferplane.deploy.common import (
    GATEWAY_GROUP,
    POOL_API,
    POOL_GROUP,
    XPOOL_GROUP,
    Manifest,
    base_labels,
    meta,
    obj,
)
from inferplane.deploy.plan import PoolPlan

GATEWAY_API = f"{GATEWAY_GROUP}/v1"
X_API = f"{XPOOL_GROUP}/v1alpha2"


def _user_meta(resource: dict[str, Any], namespace: str | None, component: str) -> dict[str, Any]:
    m = resource.get("metadata", {})
    labels = {**base_labels(m["name"], component), **m.get("labels", {})}
    return meta(m["name"], namespace, labels, annotations=m.get("annotations") or None)


def render_gateway(resource: dict[str, Any], namespace: str | None, gateway_class: str) -> Manifest:
    spec = copy.deepcopy(resource.get("spec", {}))
    spec["gatewayClassName"] = gateway_class
    return obj(GATEWAY_API, "Gateway", _user_meta(resource, namespace, "gateway"), spec=spec)


def _normalise_backend(ref: dict[str, Any]) -> dict[str, Any]:
    if ref.get("kind") == "InferencePool":
        ref = {k: v for k, v in ref.items() if k != "port"}
        ref["group"] = POOL_GROUP
    return ref


def _local(ref: dict[str, Any], home: str) -> dict[str, Any]:
    return {k: v for k, v in ref.items() if not (k == "namespace" and v == home)}


def render_route(resource: dict[str, Any], namespace: str | None) -> Manifest:
    spec = copy.deepcopy(resource.get("spec", {}))
    home = resource.get("metadata", {}).get("namespace") or "default"
    if "parentRefs" in spec:
        spec["parentRefs"] = [_local(r, home) for r in spec["parentRefs"]]
    for rule in spec.get("rules", []):
        if "backendRefs" in rule:
            rule["backendRefs"] = [_local(_normalise_backend(r), home) for r in rule["backendRefs"]]
    return obj(GATEWAY_API, "HTTPRoute", _user_meta(resource, namespace, "route"), spec=spec)


def render_pool(pool: PoolPlan, namespace: str | None, gie_version: str) -> Manifest:
    """`gie_version` is the release of the cluster's CRDs: `appProtocol` is written only where they have it."""
    spec: dict[str, Any] = {
        "selector": {"matchLabels": dict(sorted(pool.selector.items()))},
        "targetPorts": [{"number": p} for p in pool.target_ports],
    }
    if pool.app_protocol and has_field(gie_version, "InferencePool", ("spec", "appProtocol")):
        spec["appProtocol"] = pool.app_protocol
    spec["endpointPickerRef"] = {
        "group": "",
        "kind": "Service",
        "name": pool.epp_name,
        "port": {"number": pool.epp_service_port},
        "failureMode": pool.failure_mode,
    }
    return obj(POOL_API, "InferencePool", meta(pool.name, namespace, base_labels(pool.name, "inference-pool")),
               spec=spec)  # fmt: skip


def render_x_resource(resource: dict[str, Any], kind: str, namespace: str | None) -> Manifest:
    """InferenceObjective / InferenceModelRewrite (v1alpha2); their poolRef is forced to the v1 pool group."""
    spec = copy.deepcopy(resource.get("spec", {}))
    if isinstance(spec.get("poolRef"), dict):
        spec["poolRef"] = {**spec["poolRef"], "group": POOL_GROUP}
        spec["poolRef"].setdefault("kind", "InferencePool")
    component = "inference-objective" if kind == "InferenceObjective" else "model-rewrite"
    return obj(X_API, kind, _user_meta(resource, namespace, component), spec=spec)

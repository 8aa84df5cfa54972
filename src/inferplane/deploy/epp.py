"""The endpoint picker of one InferencePool: ServiceAccount, Roles, RoleBindings, ConfigMap, Deployment, Service.

Names, labels, the Deployment's selector and strategy, the Service's selector and port names, and the RBAC objects
are those of the GIE `inferencepool` chart (v1.5, `config/charts/epplib`) for a release named after the pool, so
`kubectl apply` over a Helm-installed release of the same name updates it in place: a selector is immutable, and a
Service port renamed away from `grpc-ext-proc`/`http-metrics` breaks ServiceMonitors and mesh policies that select
ports by name. What inferplane sets differently on purpose (upstream.py says it in the rendered YAML): its own image
and flags (`inferplane epp ... --discovery kubernetes`), a restricted security context with a read-only root
filesystem, smaller resource requests, and probes on the `liveness`/`readiness` gRPC health services.
"""

from __future__ import annotations

import hashlib

from inferplane.deploy.common import (
    POOL_GROUP,
    XPOOL_GROUP,
    Manifest,
    base_labels,
    meta,
    obj,
)
from inferplane.deploy.plan import EPP_GRPC_PORT, EPP_HEALTH_PORT, EPP_METRICS_PORT, PoolPlan
from inferplane.deploy.transport import HTTP2, SECURE_SERVING_FLAG

COMPONENT = "endpoint-picker"
CONFIG_KEY = "epp-config.yaml"
CONFIG_DIR = "/config"
# The chart's names: the ConfigMap volume, the pod label its selectors use, and the mode label (epplib _helpers.tpl).
CONFIG_VOLUME = "plugins-config-volume"
POOL_LABEL = "inferencepool"
MODE_LABEL = "inference.networking.k8s.io/igw-mode"
GRPC_PORT_NAME = "grpc-ext-proc"
METRICS_PORT_NAME = "http-metrics"
# Without --namespace: Kubernetes expands $(VAR) in args from the container's env, and NAMESPACE comes from the
# downward API, so the picker watches the namespace it runs in wherever kubectl, kustomize or Argo CD put it.
NAMESPACE_ARG = "$(NAMESPACE)"
KV_EVENTS_PORT = 5557
# Plugins that need the EPP to receive KV events from the model servers over ZMQ (kv-events.md).
_KV_EVENT_PLUGINS = ("precise-prefix-cache-scorer",)

RESTRICTED_SECURITY_CONTEXT = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def uses_kv_events(pool: PoolPlan) -> bool:
    return any(p in pool.epp_config for p in _KV_EVENT_PLUGINS)


def epp_selector(pool: PoolPlan) -> dict[str, str]:
    """The chart's Deployment and Service selector: `inferencepool: <pool>-epp` (immutable on a Deployment)."""
    return {POOL_LABEL: pool.epp_name}


def epp_labels(pool: PoolPlan) -> dict[str, str]:
    """Pod labels: the chart's selector and mode labels plus inferplane's own."""
    return dict(
        sorted({**base_labels(pool.epp_name, COMPONENT), **epp_selector(pool), MODE_LABEL: "inferencepool"}.items())
    )


def epp_args(pool: PoolPlan, namespace: str | None, secure_serving: bool | None = None) -> list[str]:
    """The container's arguments.

    `secure_serving` True/False renders `--secure-serving true|false`; None renders no flag, leaving the EPP's own
    default (TLS with `--discovery kubernetes`). `render` always passes the gateway's choice explicitly
    (`inferplane.deploy.transport` explains it per gateway implementation)."""
    args = [
        "epp",
        "--pool-name",
        pool.name,
        "--pool-namespace",
        namespace or NAMESPACE_ARG,
        "--config-file",
        f"{CONFIG_DIR}/{CONFIG_KEY}",
        "--discovery",
        "kubernetes",
        "--grpc-port",
        str(EPP_GRPC_PORT),
        "--grpc-health-port",
        str(EPP_HEALTH_PORT),
        "--metrics-port",
        str(EPP_METRICS_PORT),
    ]
    if secure_serving is not None:
        args += [SECURE_SERVING_FLAG, "true" if secure_serving else "false"]
    if uses_kv_events(pool):
        args += ["--kv-events-bind", f"tcp://*:{KV_EVENTS_PORT}"]
    return args


def _rbac(name: str, namespace: str | None, labels: dict[str, str]) -> list[Manifest]:
    """The chart's two Roles: `<epp>-sa` (pods) and `<epp>-non-sa` (the pool and its objectives and rewrites).

    The RoleBinding subject names no namespace when rendering without one: RBAC reads a ServiceAccount subject
    without a namespace as the binding's own, which is where kubectl, kustomize or Argo CD put both."""
    subject: dict[str, str] = {"kind": "ServiceAccount", "name": name}
    if namespace is not None:
        subject["namespace"] = namespace
    rules = {
        f"{name}-sa": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "watch", "list"]}],
        f"{name}-non-sa": [
            {"apiGroups": [XPOOL_GROUP], "resources": ["inferenceobjectives", "inferencemodelrewrites"],
             "verbs": ["get", "watch", "list"]},
            {"apiGroups": [POOL_GROUP], "resources": ["inferencepools"], "verbs": ["get", "watch", "list"]},
        ],
    }  # fmt: skip
    out: list[Manifest] = []
    for role, role_rules in rules.items():
        out.append(obj("rbac.authorization.k8s.io/v1", "Role", meta(role, namespace, labels), rules=role_rules))
        out.append(
            obj(
                "rbac.authorization.k8s.io/v1",
                "RoleBinding",
                meta(role, namespace, labels),
                roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
                subjects=[dict(subject)],
            )
        )
    return out


DOWNWARD_ENV = [
    {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
]


def render_epp(
    pool: PoolPlan, namespace: str | None, image: str, secure_serving: bool | None = None, app_protocol: str = HTTP2
) -> list[Manifest]:
    """`app_protocol` is the EPP Service port's appProtocol, which some gateways (GKE) read to choose TLS or
    cleartext; it must agree with `secure_serving`. (The v1.5 chart writes none; inferplane keeps it because the
    transport it states is what the gateway is told, see transport.py.)"""
    name = pool.epp_name
    labels = base_labels(name, COMPONENT)
    pod_labels = epp_labels(pool)
    sa = obj("v1", "ServiceAccount", meta(name, namespace, labels))
    config = obj("v1", "ConfigMap", meta(name, namespace, labels), data={CONFIG_KEY: pool.epp_config})
    ports = [
        {"name": "grpc", "containerPort": EPP_GRPC_PORT, "protocol": "TCP"},
        {"name": "grpc-health", "containerPort": EPP_HEALTH_PORT, "protocol": "TCP"},
        {"name": "metrics", "containerPort": EPP_METRICS_PORT, "protocol": "TCP"},
    ]
    service_ports = [
        {"name": GRPC_PORT_NAME, "port": pool.epp_service_port, "targetPort": EPP_GRPC_PORT, "protocol": "TCP",
         "appProtocol": app_protocol},
        {"name": METRICS_PORT_NAME, "port": EPP_METRICS_PORT, "targetPort": EPP_METRICS_PORT, "protocol": "TCP"},
    ]  # fmt: skip
    if uses_kv_events(pool):
        # The llm-d precise-prefix-cache guide adds the same port through the chart's extra(Container|Service)Ports.
        ports.append({"name": "zmq", "containerPort": KV_EVENTS_PORT, "protocol": "TCP"})
        service_ports.append({"name": "zmq", "port": KV_EVENTS_PORT, "targetPort": KV_EVENTS_PORT, "protocol": "TCP"})
    # A checksum of the config on the pod template rolls the EPP when its EndpointPickerConfig changes.
    checksum = hashlib.sha256(pool.epp_config.encode()).hexdigest()
    container = {
        "name": "epp",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        # Named explicitly, so the manifests do not depend on the image's entrypoint.
        "command": ["inferplane"],
        "args": epp_args(pool, namespace, secure_serving),
        "env": [dict(e) for e in DOWNWARD_ENV],
        "ports": ports,
        "livenessProbe": {
            "grpc": {"port": EPP_HEALTH_PORT, "service": "liveness"},
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
        },
        "readinessProbe": {
            "grpc": {"port": EPP_HEALTH_PORT, "service": "readiness"},
            "periodSeconds": 2,
        },
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
        "securityContext": RESTRICTED_SECURITY_CONTEXT,
        # The root filesystem is read-only; /tmp is the one writable place (Python and grpc may need scratch).
        "volumeMounts": [
            {"name": CONFIG_VOLUME, "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    deployment = obj(
        "apps/v1",
        "Deployment",
        meta(name, namespace, {**labels, MODE_LABEL: "inferencepool"}),
        spec={
            "replicas": 1,
            # The chart's strategy: one active picker, the old one gone before the new one starts (a rolling
            # update would keep two pickers with diverging prefix-cache state).
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": epp_selector(pool)},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": {"inferplane.dev/config-checksum": checksum}},
                "spec": {
                    "serviceAccountName": name,
                    "terminationGracePeriodSeconds": 130,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001},
                    "containers": [container],
                    "volumes": [
                        {"name": CONFIG_VOLUME, "configMap": {"name": name}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    )
    service = obj(
        "v1",
        "Service",
        meta(name, namespace, labels),
        spec={"type": "ClusterIP", "selector": epp_selector(pool), "ports": service_ports},
    )
    return [sa, *_rbac(name, namespace, labels), config, deployment, service]

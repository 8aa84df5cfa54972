"""The endpoint picker of one InferencePool: ServiceAccount, Role, RoleBinding, ConfigMap, Deployment, Service.

The shape follows the GIE `inferencepool` chart (ports 9002/9003/9090, gRPC probes, config mounted at /config), with
inferplane's own image and flags (`inferplane epp ... --discovery kubernetes`).
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
    selector_labels,
)
from inferplane.deploy.plan import EPP_GRPC_PORT, EPP_HEALTH_PORT, EPP_METRICS_PORT, PoolPlan
from inferplane.deploy.transport import HTTP2, SECURE_SERVING_FLAG

COMPONENT = "endpoint-picker"
CONFIG_KEY = "epp-config.yaml"
CONFIG_DIR = "/config"
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


def epp_labels(pool: PoolPlan) -> dict[str, str]:
    # `inferencepool: <pool>-epp` is the label the GIE chart puts on its EPP pods; llm-d debugging commands use it.
    return dict(sorted({**base_labels(pool.epp_name, COMPONENT), "inferencepool": pool.epp_name}.items()))


def epp_args(pool: PoolPlan, namespace: str, secure_serving: bool | None = None) -> list[str]:
    """The container's arguments.

    `secure_serving` True/False renders `--secure-serving true|false`; None renders no flag, leaving the EPP's own
    default (TLS with `--discovery kubernetes`). `render` always passes the gateway's choice explicitly
    (`inferplane.deploy.transport` explains it per gateway implementation)."""
    args = [
        "epp",
        "--pool-name",
        pool.name,
        "--pool-namespace",
        namespace,
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


def render_epp(
    pool: PoolPlan, namespace: str, image: str, secure_serving: bool | None = None, app_protocol: str = HTTP2
) -> list[Manifest]:
    """`app_protocol` is the EPP Service port's appProtocol, which some gateways (GKE) read to choose TLS or
    cleartext; it must agree with `secure_serving`."""
    name = pool.epp_name
    labels = epp_labels(pool)
    sa = obj("v1", "ServiceAccount", meta(name, namespace, labels))
    role = obj(
        "rbac.authorization.k8s.io/v1",
        "Role",
        meta(name, namespace, labels),
        rules=[
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [POOL_GROUP], "resources": ["inferencepools"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [XPOOL_GROUP], "resources": ["inferenceobjectives"], "verbs": ["get", "list", "watch"]},
        ],
    )
    binding = obj(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        meta(name, namespace, labels),
        roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        subjects=[{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    )
    config = obj("v1", "ConfigMap", meta(name, namespace, labels), data={CONFIG_KEY: pool.epp_config})
    ports = [
        {"name": "grpc", "containerPort": EPP_GRPC_PORT, "protocol": "TCP"},
        {"name": "grpc-health", "containerPort": EPP_HEALTH_PORT, "protocol": "TCP"},
        {"name": "metrics", "containerPort": EPP_METRICS_PORT, "protocol": "TCP"},
    ]
    service_ports = [
        {"name": "grpc", "port": pool.epp_service_port, "targetPort": EPP_GRPC_PORT, "protocol": "TCP",
         "appProtocol": app_protocol},
        {"name": "grpc-health", "port": EPP_HEALTH_PORT, "targetPort": EPP_HEALTH_PORT, "protocol": "TCP"},
        {"name": "metrics", "port": EPP_METRICS_PORT, "targetPort": EPP_METRICS_PORT, "protocol": "TCP"},
    ]  # fmt: skip
    if uses_kv_events(pool):
        ports.append({"name": "zmq", "containerPort": KV_EVENTS_PORT, "protocol": "TCP"})
        service_ports.append({"name": "zmq", "port": KV_EVENTS_PORT, "targetPort": KV_EVENTS_PORT, "protocol": "TCP"})
    # A checksum of the config on the pod template rolls the EPP when its EndpointPickerConfig changes.
    checksum = hashlib.sha256(pool.epp_config.encode()).hexdigest()
    container = {
        "name": "epp",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": epp_args(pool, namespace, secure_serving),
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
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    deployment = obj(
        "apps/v1",
        "Deployment",
        meta(name, namespace, labels),
        spec={
            "replicas": 1,
            "selector": {"matchLabels": selector_labels(name, COMPONENT)},
            "template": {
                "metadata": {"labels": labels, "annotations": {"inferplane.dev/config-checksum": checksum}},
                "spec": {
                    "serviceAccountName": name,
                    "terminationGracePeriodSeconds": 130,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001},
                    "containers": [container],
                    "volumes": [{"name": "config", "configMap": {"name": name}}, {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    )
    service = obj(
        "v1",
        "Service",
        meta(name, namespace, labels),
        spec={"type": "ClusterIP", "selector": selector_labels(name, COMPONENT), "ports": service_ports},
    )
    return [sa, role, binding, config, deployment, service]

"""The body-based router (pattern 2): ConfigMap, Deployment and Service running `inferplane bbr` (ports 9004/9005).

Whether the router serves TLS (`--secure-serving`, rendered explicitly), the Service port's appProtocol and Istio's
DestinationRule for it follow the gateway implementation (`inferplane.deploy.transport`, which says why). The
ConfigMap holds the `--models-file` list of base models and their LoRA adapters, from which the router sets
`X-Gateway-Base-Model-Name` (upstream BBR reads the same data from ConfigMaps it watches).

The Deployment's name and selector (`app: body-based-router`) and the Service's are those of the GIE
`body-based-routing` chart (v1.5), so applying over a Helm-installed router updates it in place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import yaml

from inferplane.deploy.common import Manifest, base_labels, meta, obj
from inferplane.deploy.epp import DOWNWARD_ENV, RESTRICTED_SECURITY_CONTEXT
from inferplane.deploy.plan import BBR_GRPC_PORT, BBR_HEALTH_PORT
from inferplane.deploy.transport import SECURE_SERVING_FLAG, Transport, istio_tls_destination_rule

BBR_NAME = "body-based-router"
COMPONENT = "body-based-router"


MODELS_KEY = "models.yaml"
CONFIG_DIR = "/config"


def bbr_args(tls: bool) -> list[str]:
    return [
        "bbr", "--grpc-port", str(BBR_GRPC_PORT), "--grpc-health-port", str(BBR_HEALTH_PORT),
        "--models-file", f"{CONFIG_DIR}/{MODELS_KEY}", SECURE_SERVING_FLAG, str(tls).lower(),
    ]  # fmt: skip


def models_file(models: Sequence[tuple[str, Sequence[str]]]) -> str:
    entries = [{"baseModel": base, "adapters": list(adapters)} for base, adapters in models]
    return yaml.safe_dump(entries, sort_keys=False)


def render_bbr(
    namespace: str | None, image: str, transport: Transport, models: Sequence[tuple[str, Sequence[str]]] = ()
) -> list[Manifest]:
    """The router's objects for a gateway that speaks `transport` to it: TLS or cleartext, the gRPC Service port's
    appProtocol, and Istio's DestinationRule where the gateway needs one to originate TLS."""
    # The chart's selector, on the Deployment (immutable) and the Service.
    selector = {"app": BBR_NAME}
    labels = dict(sorted({**base_labels(BBR_NAME, COMPONENT), **selector}.items()))
    models_text = models_file(models)
    config = obj("v1", "ConfigMap", meta(BBR_NAME, namespace, labels), data={MODELS_KEY: models_text})
    container = {
        "name": "bbr",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["inferplane"],
        "args": bbr_args(transport.bbr_tls),
        "env": [dict(e) for e in DOWNWARD_ENV[:1]],
        "ports": [
            {"name": "grpc", "containerPort": BBR_GRPC_PORT, "protocol": "TCP"},
            {"name": "grpc-health", "containerPort": BBR_HEALTH_PORT, "protocol": "TCP"},
        ],
        "livenessProbe": {
            "grpc": {"port": BBR_HEALTH_PORT, "service": "liveness"},
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
        },
        "readinessProbe": {"grpc": {"port": BBR_HEALTH_PORT, "service": "readiness"}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": RESTRICTED_SECURITY_CONTEXT,
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    checksum = hashlib.sha256(models_text.encode()).hexdigest()
    deployment = obj(
        "apps/v1",
        "Deployment",
        meta(BBR_NAME, namespace, labels),
        spec={
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels, "annotations": {"inferplane.dev/config-checksum": checksum}},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001},
                    "containers": [container],
                    "volumes": [{"name": "config", "configMap": {"name": BBR_NAME}}, {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    )
    service = obj(
        "v1",
        "Service",
        meta(BBR_NAME, namespace, labels),
        spec={
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {"name": "grpc", "port": BBR_GRPC_PORT, "targetPort": BBR_GRPC_PORT, "protocol": "TCP",
                 "appProtocol": transport.bbr_app_protocol},
                {"name": "grpc-health", "port": BBR_HEALTH_PORT, "targetPort": BBR_HEALTH_PORT, "protocol": "TCP"},
            ],
        },
    )  # fmt: skip
    out = [config, deployment, service]
    if transport.bbr_destination_rule and transport.bbr_tls:
        out.append(istio_tls_destination_rule(BBR_NAME, namespace, COMPONENT))
    return out

"""Scrape configuration for the model servers' `vllm:` metrics and the endpoint pickers' `inference_*` metrics.

GKE: Google Managed Prometheus `PodMonitoring`. Other clusters: prometheus-operator — a `ServiceMonitor` for each
EPP (it has a Service) and a `PodMonitor` for the model servers, which have no Service of their own (traffic goes
Gateway → InferencePool → pod IPs, like the llm-d-modelservice chart, which also renders a PodMonitor).
"""

from __future__ import annotations

from inferplane.deploy.common import Manifest, base_labels, meta, obj, selector_labels
from inferplane.deploy.epp import COMPONENT as EPP_COMPONENT
from inferplane.deploy.modelserver import COMPONENT as MS_COMPONENT
from inferplane.deploy.plan import ModelServerPlan, PoolPlan, Target

INTERVAL = "15s"


def _gke(name: str, namespace: str, selector: dict[str, str], port: str, component: str) -> Manifest:
    return obj(
        "monitoring.googleapis.com/v1",
        "PodMonitoring",
        meta(name, namespace, base_labels(name, component)),
        spec={
            "selector": {"matchLabels": selector},
            "endpoints": [{"port": port, "path": "/metrics", "interval": INTERVAL}],
        },
    )


def render_monitoring(
    target: Target, namespace: str, pools: tuple[PoolPlan, ...], servers: tuple[ModelServerPlan, ...]
) -> list[Manifest]:
    out: list[Manifest] = []
    for ms in servers:
        selector = selector_labels(ms.name, MS_COMPONENT)
        if target == "gke":
            out.append(_gke(ms.name, namespace, selector, "http", MS_COMPONENT))
        else:
            out.append(
                obj(
                    "monitoring.coreos.com/v1",
                    "PodMonitor",
                    meta(ms.name, namespace, base_labels(ms.name, MS_COMPONENT)),
                    spec={
                        "selector": {"matchLabels": selector},
                        "podMetricsEndpoints": [{"port": "http", "path": "/metrics", "interval": INTERVAL}],
                    },
                )
            )
    for pool in pools:
        selector = selector_labels(pool.epp_name, EPP_COMPONENT)
        if target == "gke":
            out.append(_gke(pool.epp_name, namespace, selector, "metrics", EPP_COMPONENT))
        else:
            out.append(
                obj(
                    "monitoring.coreos.com/v1",
                    "ServiceMonitor",
                    meta(pool.epp_name, namespace, base_labels(pool.epp_name, EPP_COMPONENT)),
                    spec={
                        "selector": {"matchLabels": selector},
                        "endpoints": [{"port": "metrics", "path": "/metrics", "interval": INTERVAL}],
                    },
                )
            )
    return out

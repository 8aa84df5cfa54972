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
    # Model servers have no Service (traffic reaches pods through the pool), so prometheus-operator scrapes them
    # with a PodMonitor; the endpoint picker has one, hence a ServiceMonitor.
    scraped = [(ms.name, MS_COMPONENT, "http", "PodMonitor", "podMetricsEndpoints") for ms in servers]
    scraped += [(p.epp_name, EPP_COMPONENT, "metrics", "ServiceMonitor", "endpoints") for p in pools]
    out: list[Manifest] = []
    for name, component, port, kind, endpoints_key in scraped:
        selector = selector_labels(name, component)
        if target == "gke":
            out.append(_gke(name, namespace, selector, port, component))
            continue
        out.append(
            obj(
                "monitoring.coreos.com/v1",
                kind,
                meta(name, namespace, base_labels(name, component)),
                spec={
                    "selector": {"matchLabels": selector},
                    endpoints_key: [{"port": port, "path": "/metrics", "interval": INTERVAL}],
                },
            )
        )
    return out

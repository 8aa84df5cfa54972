"""Scrape configuration for the model servers' `vllm:` metrics and the endpoint pickers' `inference_*` metrics.

GKE: Google Managed Prometheus `PodMonitoring`. Other clusters: prometheus-operator — a `ServiceMonitor` for each
EPP (it has a Service) and a `PodMonitor` for the model servers, which have no Service of their own (traffic goes
Gateway → InferencePool → pod IPs, like the llm-d-modelservice chart, which also renders a PodMonitor).
"""

from __future__ import annotations

from inferplane.deploy.common import Manifest, base_labels, meta, obj, selector_labels
from inferplane.deploy.epp import COMPONENT as EPP_COMPONENT
from inferplane.deploy.epp import METRICS_PORT_NAME, epp_selector
from inferplane.deploy.modelserver import COMPONENT as MS_COMPONENT
from inferplane.deploy.plan import ModelServerPlan, PoolPlan, Target

INTERVAL = "15s"


def _gke(name: str, namespace: str | None, selector: dict[str, str], port: str, component: str) -> Manifest:
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
    target: Target, namespace: str | None, pools: tuple[PoolPlan, ...], servers: tuple[ModelServerPlan, ...]
) -> list[Manifest]:
    # Model servers have no Service (traffic reaches pods through the pool), so prometheus-operator scrapes them
    # with a PodMonitor; the endpoint picker has one, hence a ServiceMonitor on the Service port the GIE chart names
    # `http-metrics` (PodMonitoring on GKE selects pods and scrapes the container port `metrics`, as the chart's does).
    scraped = [
        (
            ms.object_name,
            MS_COMPONENT,
            "http",
            "http",
            "PodMonitor",
            "podMetricsEndpoints",
            selector_labels(ms.object_name, MS_COMPONENT),
        )
        for ms in servers
    ]
    # A ServiceMonitor selects the Service by its labels; PodMonitoring selects the pods (the chart's selector).
    scraped += [
        (p.epp_name, EPP_COMPONENT, "metrics", METRICS_PORT_NAME, "ServiceMonitor", "endpoints",
         epp_selector(p) if target == "gke" else selector_labels(p.epp_name, EPP_COMPONENT))
        for p in pools
    ]  # fmt: skip
    out: list[Manifest] = []
    for name, component, pod_port, port, kind, endpoints_key, selector in scraped:
        if target == "gke":
            out.append(_gke(name, namespace, selector, pod_port, component))
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

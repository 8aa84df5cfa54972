"""Gateway implementations: how each one is told to call the body-based router, the per-pool policies it needs
(GKE's health check and backend policies, Istio's TLS DestinationRule for the picker) and the transport it speaks to
both ext_proc servers (`inferplane.deploy.transport`, which says why per implementation).

The Gateway API has no standard way to put an ext_proc server in front of route matching, so every implementation
has its own resource for it (extproc.md §7). Providers register here by name with the gateway classes that identify
them; `provider_for` picks one from the target and class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from inferplane.deploy.bbr import BBR_NAME
from inferplane.deploy.common import Manifest, base_labels, gateway_ref, meta, obj, pool_ref
from inferplane.deploy.plan import BBR_GRPC_PORT, PoolPlan, Target
from inferplane.deploy.transport import ENVOY, GKE, ISTIO, Transport, istio_epp_destination_rule
from inferplane.errors import UsageError

BbrExtension = Callable[[str, str | None], list[Manifest]]


@dataclass(frozen=True)
class Provider:
    name: str
    classes: tuple[str, ...]
    bbr_extension: BbrExtension
    transport: Transport
    # GKE's load balancer health-checks the pool itself and needs its backend timeout raised for long generations;
    # Istio needs a DestinationRule to speak TLS to the pool's picker.
    pool_policies: Callable[[PoolPlan, str | None], list[Manifest]] | None = None


def _labels(name: str) -> dict[str, str]:
    return base_labels(name, "gateway-extension")


def _gke_bbr(gateway: str, namespace: str | None) -> list[Manifest]:
    # The authority is only the :authority header GKE sends (the chart writes a made-up host); the backendRef routes.
    host = BBR_NAME if namespace is None else f"{BBR_NAME}.{namespace}"
    extension = {
        "name": BBR_NAME,
        "authority": f"{host}:{BBR_GRPC_PORT}",
        "timeout": "1s",
        "supportedEvents": ["RequestHeaders", "RequestBody", "RequestTrailers"],
        "requestBodySendMode": "FullDuplexStreamed",
        "backendRef": {"group": "", "kind": "Service", "name": BBR_NAME, "port": BBR_GRPC_PORT},
    }
    return [
        obj(
            "networking.gke.io/v1",
            "GCPRoutingExtension",
            meta(BBR_NAME, namespace, _labels(BBR_NAME)),
            spec={
                "targetRefs": [gateway_ref(gateway)],
                "extensionChains": [{"name": "bbr", "extensions": [extension]}],
            },
        )
    ]


def _gke_pool_policies(pool: PoolPlan, namespace: str | None) -> list[Manifest]:
    labels = base_labels(pool.name, "inference-pool")
    health = obj(
        "networking.gke.io/v1",
        "HealthCheckPolicy",
        meta(pool.name, namespace, labels),
        spec={
            "targetRef": pool_ref(pool.name),
            "default": {
                "checkIntervalSec": 2,
                "timeoutSec": 2,
                "config": {
                    "type": "HTTP",
                    "httpHealthCheck": {"requestPath": "/health", "port": pool.target_ports[0]},
                },
            },
        },
    )
    backend = obj(
        "networking.gke.io/v1",
        "GCPBackendPolicy",
        meta(pool.name, namespace, labels),
        spec={"targetRef": pool_ref(pool.name), "default": {"timeoutSec": 300, "logging": {"enabled": True}}},
    )
    return [health, backend]


def _istio_bbr(gateway: str, namespace: str | None) -> list[Manifest]:
    if namespace is None:
        # Istio names the router's cluster by its FQDN inside the EnvoyFilter, a string no kustomize or kubectl -n
        # can rewrite; the Helm chart format fills it in from the release namespace instead.
        raise UsageError(
            "the body-based router's Istio EnvoyFilter names the router's cluster with its namespace "
            f"(outbound|{BBR_GRPC_PORT}||{BBR_NAME}.<namespace>.svc.cluster.local), so it cannot be rendered "
            "without one",
            hint="pass --namespace, or render a Helm chart with --format helm (it takes the release namespace)",
        )
    # Inserted before the router of the gateway's listeners, as the GIE body-based-routing chart does for Istio.
    filter_config = {
        "name": "envoy.filters.http.ext_proc.bbr",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
            "failure_mode_allow": False,
            "allow_mode_override": True,
            "processing_mode": {
                "request_header_mode": "SEND",
                "response_header_mode": "SKIP",
                "request_body_mode": "FULL_DUPLEX_STREAMED",
                "response_body_mode": "NONE",
                "request_trailer_mode": "SEND",
                "response_trailer_mode": "SKIP",
            },
            "grpc_service": {
                "envoy_grpc": {"cluster_name": f"outbound|{BBR_GRPC_PORT}||{BBR_NAME}.{namespace}.svc.cluster.local"},
                "timeout": "10s",
            },
        },
    }
    return [
        obj(
            "networking.istio.io/v1alpha3",
            "EnvoyFilter",
            meta(BBR_NAME, namespace, _labels(BBR_NAME)),
            spec={
                "workloadSelector": {"labels": {"gateway.networking.k8s.io/gateway-name": gateway}},
                "configPatches": [
                    {
                        "applyTo": "HTTP_FILTER",
                        "match": {
                            "context": "GATEWAY",
                            "listener": {
                                "filterChain": {
                                    "filter": {
                                        "name": "envoy.filters.network.http_connection_manager",
                                        "subFilter": {"name": "envoy.filters.http.router"},
                                    }
                                }
                            },
                        },
                        "patch": {"operation": "INSERT_FIRST", "value": filter_config},
                    }
                ],
            },
        )
    ]


def _envoy_gateway_bbr(gateway: str, namespace: str | None) -> list[Manifest]:
    return [
        obj(
            "gateway.envoyproxy.io/v1alpha1",
            "EnvoyExtensionPolicy",
            meta(BBR_NAME, namespace, _labels(BBR_NAME)),
            spec={
                "targetRefs": [gateway_ref(gateway)],
                "extProc": [
                    {
                        "backendRefs": [{"group": "", "kind": "Service", "name": BBR_NAME, "port": BBR_GRPC_PORT}],
                        "processingMode": {"request": {"body": "FullDuplexStreamed"}},
                        "failOpen": False,
                        "messageTimeout": "1s",
                    }
                ],
            },
        )
    ]


def _kgateway_bbr(gateway: str, namespace: str | None) -> list[Manifest]:
    extension = obj(
        "gateway.kgateway.dev/v1alpha1",
        "GatewayExtension",
        meta(BBR_NAME, namespace, _labels(BBR_NAME)),
        spec={"type": "ExtProc", "extProc": {"grpcService": {"backendRef": {"name": BBR_NAME, "port": BBR_GRPC_PORT}}}},
    )
    policy = obj(
        "gateway.kgateway.dev/v1alpha1",
        "TrafficPolicy",
        meta(BBR_NAME, namespace, _labels(BBR_NAME)),
        spec={
            "targetRefs": [gateway_ref(gateway)],
            "extProc": {
                "extensionRef": {"name": BBR_NAME},
                "processingMode": {
                    "requestHeaderMode": "SEND",
                    "requestBodyMode": "FULL_DUPLEX_STREAMED",
                    "requestTrailerMode": "SEND",
                    "responseHeaderMode": "SKIP",
                    "responseBodyMode": "NONE",
                    "responseTrailerMode": "SKIP",
                },
            },
        },
    )
    return [extension, policy]


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider("gke", ("gke-l7-",), _gke_bbr, GKE, _gke_pool_policies),
        Provider("istio", ("istio",), _istio_bbr, ISTIO, istio_epp_destination_rule),
        Provider("envoy-gateway", ("eg", "envoy-gateway"), _envoy_gateway_bbr, ENVOY),
        Provider("kgateway", ("kgateway",), _kgateway_bbr, ENVOY),
    )
}


def provider_for(target: Target, gateway_class: str) -> Provider | None:
    """GKE clusters always use the GKE provider; elsewhere the class decides (None: no known provider)."""
    if target == "gke":
        return PROVIDERS["gke"]
    for p in PROVIDERS.values():
        if any(gateway_class == c or (c.endswith("-") and gateway_class.startswith(c)) for c in p.classes):
            return p
    return None


def require_bbr_provider(target: Target, gateway_class: str) -> Provider:
    provider = provider_for(target, gateway_class)
    if provider is None:
        known = ", ".join(c for p in PROVIDERS.values() if p.name != "gke" for c in p.classes)
        raise UsageError(
            f"this deployment routes on the X-Gateway-Model-Name header, which needs the body-based router in front "
            f"of the gateway, and inferplane does not know how to attach it to gateway class {gateway_class!r}",
            hint=f"use --gateway-class with one of: {known}; or --target gke",
        )
    return provider

"""Hand-written JSON Schemas for the provider resources whose CRDs are not in ../shared/schemas.

They check structure only — the fields inferplane renders, their types and enums, with unknown fields rejected — and
are written from the providers' public API references: GKE (`networking.gke.io/v1` HealthCheckPolicy,
GCPBackendPolicy, GCPRoutingExtension; `monitoring.googleapis.com/v1` PodMonitoring), Istio
(`networking.istio.io/v1alpha3` EnvoyFilter, `networking.istio.io/v1beta1` DestinationRule), Envoy Gateway
(`gateway.envoyproxy.io/v1alpha1` EnvoyExtensionPolicy), kgateway (`gateway.kgateway.dev/v1alpha1`
GatewayExtension, TrafficPolicy) and prometheus-operator (`monitoring.coreos.com/v1` PodMonitor, ServiceMonitor).
They are a weaker check than a real CRD: a field the provider added or renamed would not be caught.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
_LABEL_KEY = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"  # noqa: E501
_DURATION = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"


def o(props: dict[str, Any], *required: str, open_: bool = False) -> Schema:
    out: Schema = {"type": "object", "properties": props, "additionalProperties": open_}
    if required:
        out["required"] = list(required)
    return out


def s(*enum: str, pattern: str | None = None) -> Schema:
    out: Schema = {"type": "string"}
    if enum:
        out["enum"] = list(enum)
    if pattern:
        out["pattern"] = pattern
    return out


def i(minimum: int | None = None, maximum: int | None = None) -> Schema:
    out: Schema = {"type": "integer"}
    if minimum is not None:
        out["minimum"] = minimum
    if maximum is not None:
        out["maximum"] = maximum
    return out


def arr(items: Schema, min_items: int = 0) -> Schema:
    return {"type": "array", "items": items, "minItems": min_items}


BOOL: Schema = {"type": "boolean"}
OPEN: Schema = {"type": "object"}
STR_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
INT_OR_STR: Schema = {"anyOf": [{"type": "integer"}, {"type": "string"}]}

# ObjectMeta as the API server checks it (names, label keys and values); applied to every rendered object.
METADATA: Schema = o(
    {
        "name": {"type": "string", "pattern": _DNS_SUBDOMAIN, "maxLength": 253},
        "namespace": {"type": "string", "pattern": _DNS_LABEL, "maxLength": 63},
        "labels": {
            "type": "object",
            "propertyNames": {"pattern": _LABEL_KEY},
            "additionalProperties": {"type": "string", "pattern": _LABEL_VALUE, "maxLength": 63},
        },
        "annotations": STR_MAP,
    },
    "name",
)

_POLICY_TARGET = o({"group": s(), "kind": s(), "name": s(), "namespace": s()}, "group", "kind", "name")
_GATEWAY_TARGET = o({"group": s(), "kind": s(), "name": s(), "sectionName": s()}, "group", "kind", "name")
_SERVICE_REF = o({"group": s(), "kind": s(), "name": s(), "namespace": s(), "port": i(1, 65535)}, "name")
_SELECTOR = o({"matchLabels": STR_MAP, "matchExpressions": arr(OPEN)})

_HTTP_HEALTH_CHECK = o(
    {
        "host": s(),
        "requestPath": s(),
        "response": s(),
        "port": i(1, 65535),
        "portName": s(),
        "portSpecification": s("USE_FIXED_PORT", "USE_NAMED_PORT", "USE_SERVING_PORT"),
        "proxyHeader": s("NONE", "PROXY_V1"),
    }
)

_GKE_EXTENSION = o(
    {
        "name": s(),
        "authority": s(),
        "timeout": s(pattern=_DURATION),
        "supportedEvents": arr(
            s("RequestHeaders", "RequestBody", "RequestTrailers", "ResponseHeaders", "ResponseBody",
              "ResponseTrailers"), 1),
        "requestBodySendMode": s("Streamed", "FullDuplexStreamed"),
        "failOpen": BOOL,
        "forwardHeaders": arr(s()),
        "metadata": OPEN,
        "backendRef": _SERVICE_REF,
    },
    "name", "backendRef",
)  # fmt: skip

_PROCESSING = o({"body": s("Streamed", "Buffered", "BufferedPartial", "FullDuplexStreamed"), "attributes": arr(s())})

_KGW_MODE = {
    "requestHeaderMode": s("DEFAULT", "SEND", "SKIP"),
    "responseHeaderMode": s("DEFAULT", "SEND", "SKIP"),
    "requestBodyMode": s("NONE", "STREAMED", "BUFFERED", "BUFFERED_PARTIAL", "FULL_DUPLEX_STREAMED"),
    "responseBodyMode": s("NONE", "STREAMED", "BUFFERED", "BUFFERED_PARTIAL", "FULL_DUPLEX_STREAMED"),
    "requestTrailerMode": s("DEFAULT", "SEND", "SKIP"),
    "responseTrailerMode": s("DEFAULT", "SEND", "SKIP"),
}

# Istio's DestinationRule TrafficPolicy, as far as inferplane renders it (TLS origination, connection pools).
_ISTIO_TLS = o(
    {
        "mode": s("DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"),
        "insecureSkipVerify": BOOL,
        "sni": s(),
        "caCertificates": s(),
        "credentialName": s(),
        "subjectAltNames": arr(s()),
    },
    "mode",
)
_ISTIO_POOL = o(
    {
        "http": o(
            {
                "http1MaxPendingRequests": i(0),
                "http2MaxRequests": i(0),
                "maxRequestsPerConnection": i(0),
                "maxRetries": i(0),
                "idleTimeout": s(pattern=_DURATION),
                "h2UpgradePolicy": s("DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"),
                "useClientProtocol": BOOL,
                "maxConcurrentStreams": i(0),
            }
        ),
        "tcp": o(
            {
                "maxConnections": i(0),
                "connectTimeout": s(pattern=_DURATION),
                "maxConnectionDuration": s(pattern=_DURATION),
                "idleTimeout": s(pattern=_DURATION),
                "tcpKeepalive": OPEN,
            }
        ),
    }
)
_ISTIO_TRAFFIC_POLICY = o(
    {"tls": _ISTIO_TLS, "connectionPool": _ISTIO_POOL, "loadBalancer": OPEN, "outlierDetection": OPEN,
     "portLevelSettings": arr(OPEN)}
)  # fmt: skip

_MONITOR_ENDPOINT = {"port": INT_OR_STR, "path": s(), "interval": s(pattern=_DURATION), "scheme": s("http", "https"),
                     "timeout": s(pattern=_DURATION)}  # fmt: skip
_PROM_ENDPOINT = {"port": s(), "targetPort": INT_OR_STR, "path": s(), "interval": s(pattern=_DURATION),
                  "scheme": s("http", "https"), "scrapeTimeout": s(pattern=_DURATION)}  # fmt: skip

# fmt: off
SPECS: dict[tuple[str, str], Schema] = {
    ("networking.gke.io/v1", "HealthCheckPolicy"): o(
        {
            "targetRef": _POLICY_TARGET,
            "default": o(
                {
                    "checkIntervalSec": i(1, 300),
                    "timeoutSec": i(1, 300),
                    "healthyThreshold": i(1, 10),
                    "unhealthyThreshold": i(1, 10),
                    "logConfig": o({"enabled": BOOL}),
                    "config": o(
                        {
                            "type": s("HTTP", "HTTPS", "HTTP2", "TCP", "GRPC"),
                            "httpHealthCheck": _HTTP_HEALTH_CHECK,
                            "httpsHealthCheck": _HTTP_HEALTH_CHECK,
                            "http2HealthCheck": _HTTP_HEALTH_CHECK,
                            "grpcHealthCheck": OPEN,
                            "tcpHealthCheck": OPEN,
                        },
                        "type",
                    ),
                }
            ),
        },
        "targetRef",
    ),
    ("networking.gke.io/v1", "GCPBackendPolicy"): o(
        {
            "targetRef": _POLICY_TARGET,
            "default": o(
                {
                    "timeoutSec": i(1, 86400),
                    "logging": o({"enabled": BOOL, "sampleRate": i(0, 1000000)}),
                    "sessionAffinity": OPEN,
                    "connectionDraining": o({"drainingTimeoutSec": i(0, 3600)}),
                    "securityPolicy": s(),
                    "maxRatePerEndpoint": i(1),
                    "iap": OPEN,
                }
            ),
        },
        "targetRef",
    ),
    ("networking.gke.io/v1", "GCPRoutingExtension"): o(
        {
            "targetRefs": arr(_GATEWAY_TARGET, 1),
            "extensionChains": arr(
                o({"name": s(), "matchCondition": OPEN, "extensions": arr(_GKE_EXTENSION, 1)}, "name", "extensions"),
                1,
            ),
        },
        "targetRefs",
        "extensionChains",
    ),
    ("monitoring.googleapis.com/v1", "PodMonitoring"): o(
        {"selector": _SELECTOR, "endpoints": arr(o(_MONITOR_ENDPOINT, "port"), 1), "targetLabels": OPEN},
        "selector",
        "endpoints",
    ),
    ("monitoring.coreos.com/v1", "PodMonitor"): o(
        {"selector": _SELECTOR, "podMetricsEndpoints": arr(o(_PROM_ENDPOINT), 1), "namespaceSelector": OPEN},
        "selector",
    ),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): o(
        {"selector": _SELECTOR, "endpoints": arr(o(_PROM_ENDPOINT), 1), "namespaceSelector": OPEN},
        "selector",
        "endpoints",
    ),
    ("networking.istio.io/v1alpha3", "EnvoyFilter"): o(
        {
            "workloadSelector": o({"labels": STR_MAP}),
            "targetRefs": arr(_GATEWAY_TARGET),
            "priority": i(),
            "configPatches": arr(
                o(
                    {
                        "applyTo": s("LISTENER", "FILTER_CHAIN", "NETWORK_FILTER", "HTTP_FILTER", "ROUTE_CONFIGURATION",
                                     "VIRTUAL_HOST", "HTTP_ROUTE", "CLUSTER", "EXTENSION_CONFIG", "BOOTSTRAP",
                                     "LISTENER_FILTER"),
                        "match": o({"context": s("ANY", "SIDECAR_INBOUND", "SIDECAR_OUTBOUND", "GATEWAY"),
                                    "proxy": OPEN, "listener": OPEN, "routeConfiguration": OPEN, "cluster": OPEN}),
                        "patch": o({"operation": s("MERGE", "ADD", "REMOVE", "INSERT_BEFORE", "INSERT_AFTER",
                                                   "INSERT_FIRST", "REPLACE"),
                                    "value": OPEN, "filterClass": s()}, "operation"),
                    },
                    "applyTo",
                    "patch",
                ),
                1,
            ),
        },
        "configPatches",
    ),
    ("networking.istio.io/v1beta1", "DestinationRule"): o(
        {
            "host": {"type": "string", "minLength": 1},
            "trafficPolicy": _ISTIO_TRAFFIC_POLICY,
            "subsets": arr(OPEN),
            "exportTo": arr(s()),
            "workloadSelector": o({"matchLabels": STR_MAP}),
        },
        "host",
    ),
    ("gateway.envoyproxy.io/v1alpha1", "EnvoyExtensionPolicy"): o(
        {
            "targetRefs": arr(_GATEWAY_TARGET, 1),
            "extProc": arr(
                o(
                    {
                        "backendRefs": arr(_SERVICE_REF, 1),
                        "processingMode": o({"request": _PROCESSING, "response": _PROCESSING,
                                             "allowModeOverride": BOOL}),
                        "failOpen": BOOL,
                        "messageTimeout": s(pattern=_DURATION),
                    },
                    "backendRefs",
                ),
                1,
            ),
        },
        "targetRefs",
    ),
    ("gateway.kgateway.dev/v1alpha1", "GatewayExtension"): o(
        {
            "type": s("ExtAuth", "ExtProc", "RateLimit"),
            "extProc": o({"grpcService": o({"backendRef": _SERVICE_REF, "authority": s()}, "backendRef"),
                          "failOpen": BOOL}, "grpcService"),
        },
        "extProc",
    ),
    ("gateway.kgateway.dev/v1alpha1", "TrafficPolicy"): o(
        {
            "targetRefs": arr(_GATEWAY_TARGET, 1),
            "extProc": o({"extensionRef": o({"name": s()}, "name"), "processingMode": o(_KGW_MODE)}, "extensionRef"),
        },
        "targetRefs",
    ),
}
# fmt: on


def object_schema(api_version: str, kind: str) -> Schema | None:
    spec = SPECS.get((api_version, kind))
    if spec is None:
        return None
    return o(
        {"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": METADATA, "spec": spec},
        "apiVersion",
        "kind",
        "metadata",
        "spec",
    )

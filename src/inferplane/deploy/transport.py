"""How each gateway reaches the endpoint picker and the body-based router: TLS or cleartext HTTP/2.

A gateway and the ext_proc server behind it must agree on the transport, or every request fails at the gateway
(a TLS handshake against a cleartext server, or HTTP/2 frames against a TLS server) while every object is Accepted.
The decision per gateway implementation, from what each one builds on its own side:

Endpoint picker: TLS everywhere, with `--secure-serving true` rendered explicitly (the default of `inferplane epp`
depends on `--discovery`, and the manifests should not lean on it). The picker makes a self-signed certificate at
start (epp/tls.py), as upstream does, and every gateway below accepts it without verification:
* GKE: the load balancer reaches an InferencePool's extension over HTTP/2 *with TLS* and does not validate backend
  certificates; on GKE `appProtocol: http2` on the Service port means exactly that (HTTP/2 over TLS), which is what the
  GIE chart's EPP Service sets (extproc.md §8).
* Istio: the gateway originates TLS only where a DestinationRule tells it to, so each picker gets one for
  `<epp>.<ns>.svc.cluster.local` with `tls.mode: SIMPLE`, `insecureSkipVerify: true` and the large connection pools of
  the llm-d guide (deployment.md §6; GIE chart `inferencepool/templates/istio.yaml` renders the same object).
* Envoy Gateway (through the Envoy AI Gateway extension server, which is what implements InferencePool there) and
  kgateway build the picker's ext_proc cluster themselves with an upstream TLS context whose validation context is
  empty, i.e. TLS that accepts any certificate (as GIE's own reference Envoy and its Envoy Gateway patch do,
  schemas/gie/envoy.yaml, patch_policy.yaml). Nothing rendered can switch that to cleartext, and a cleartext picker
  does not work behind kgateway (kgateway#11429). So TLS it is, with nothing extra to render; a BackendTLSPolicy would
  not help, as it has no way to skip verification of a self-signed certificate.
* Any other class: upstream's default (TLS), with a warning that inferplane cannot vouch for that gateway.

Body-based router: `inferplane bbr` serves cleartext HTTP/2 only (bbr/server.py), unlike upstream's BBR, which
serves TLS. So its Service port says so where the gateway reads it:
* GKE: `kubernetes.io/h2c` (cleartext HTTP/2); `http2` would make the load balancer speak TLS to it. Upstream
  pairs a TLS BBR with `HTTP2` instead, so a warning asks the user to check that their GKE version accepts an H2C
  callout backend.
* Istio: `http2`, which Istio reads as HTTP/2 without TLS unless a DestinationRule says otherwise; no DestinationRule
  is rendered, so Istio's automatic mTLS still applies when the router's pod has a sidecar.
* Envoy Gateway, kgateway and others: `kubernetes.io/h2c`, the Gateway API's name for cleartext HTTP/2 (GEP-1911);
  their ext_proc clusters to a Service are cleartext unless a TLS policy is attached, and none is rendered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from inferplane.deploy.common import Manifest, base_labels, meta, obj
from inferplane.deploy.plan import PoolPlan

H2C = "kubernetes.io/h2c"
HTTP2 = "http2"
SECURE_SERVING_FLAG = "--secure-serving"
ISTIO_API = "networking.istio.io/v1beta1"  # the version GIE's inferencepool chart renders; served by Istio ≥ 1.10


@dataclass(frozen=True)
class Transport:
    """What a gateway implementation expects of the ext_proc servers it calls."""

    epp_tls: bool
    epp_app_protocol: str
    bbr_app_protocol: str
    # Istio: the gateway needs a DestinationRule to originate TLS to the picker.
    epp_destination_rule: bool = False
    bbr_warning: str | None = None


GKE_BBR_WARNING = (
    "the body-based router serves cleartext HTTP/2 (inferplane bbr has no TLS), so its Service port says "
    f"appProtocol {H2C} and GKE's load balancer calls it without TLS; upstream's router serves TLS behind "
    "appProtocol HTTP2 instead: check that your GKE version accepts an H2C callout backend"
)

GKE = Transport(epp_tls=True, epp_app_protocol=HTTP2, bbr_app_protocol=H2C, bbr_warning=GKE_BBR_WARNING)
ISTIO = Transport(epp_tls=True, epp_app_protocol=HTTP2, bbr_app_protocol=HTTP2, epp_destination_rule=True)
ENVOY = Transport(epp_tls=True, epp_app_protocol=HTTP2, bbr_app_protocol=H2C)
DEFAULT = ENVOY


def unknown_class_warning(gateway_class: str) -> str:
    return (
        f"inferplane does not know gateway class {gateway_class!r}: the endpoint picker serves TLS with a "
        "self-signed certificate on its ext_proc port (as upstream's does); make sure the gateway speaks TLS to it "
        "without verifying the certificate"
    )


def epp_host(service: str, namespace: str) -> str:
    return f"{service}.{namespace}.svc.cluster.local"


def serves_tls(args: Sequence[str]) -> bool:
    """Whether `inferplane epp` with these arguments serves TLS: `--secure-serving true|false` (also `=value`) when
    given, else true exactly with `--discovery kubernetes` (the rule in epp/command.py)."""
    value: str | None = None
    discovery: str | None = None
    items = list(args)
    for i, arg in enumerate(items):
        for flag in (SECURE_SERVING_FLAG, "--discovery"):
            if arg == flag and i + 1 < len(items):
                found = items[i + 1]
            elif arg.startswith(flag + "="):
                found = arg.split("=", 1)[1]
            else:
                continue
            if flag == SECURE_SERVING_FLAG:
                value = found
            else:
                discovery = found
    if value is not None:
        return value == "true"
    return discovery == "kubernetes"


def istio_epp_destination_rule(pool: PoolPlan, namespace: str) -> list[Manifest]:
    """TLS origination from the Istio gateway to the picker, with the connection pools of the llm-d guide (its
    `inferencepool.values.yaml`: large limits so a busy gateway never queues on the picker's connection)."""
    return [
        obj(
            ISTIO_API,
            "DestinationRule",
            meta(pool.epp_name, namespace, base_labels(pool.epp_name, "endpoint-picker")),
            spec={
                "host": epp_host(pool.epp_name, namespace),
                "trafficPolicy": {
                    "tls": {"mode": "SIMPLE", "insecureSkipVerify": True},
                    "connectionPool": {
                        "http": {
                            "http1MaxPendingRequests": 256000,
                            "maxRequestsPerConnection": 256000,
                            "http2MaxRequests": 256000,
                            "idleTimeout": "900s",
                        },
                        "tcp": {"maxConnections": 256000, "maxConnectionDuration": "1800s", "connectTimeout": "900s"},
                    },
                },
            },
        )
    ]

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

Body-based router: `inferplane bbr` serves TLS with a self-signed certificate under `--secure-serving true`
(bbr/command.py, the picker's TLS code) and cleartext HTTP/2 otherwise; upstream's router serves TLS by default. The
flag is rendered explicitly (its default, false, is for the local runtime), chosen per gateway, and the Service port's
appProtocol says the same thing in that gateway's terms:
* GKE: TLS with `appProtocol: http2`, exactly as upstream pairs them for the GCPRoutingExtension (HTTP/2 over TLS, no
  certificate validation, as for the picker above).
* Istio: TLS with a DestinationRule for `body-based-router.<ns>.svc.cluster.local` (`tls.mode: SIMPLE`,
  `insecureSkipVerify: true`), the object upstream's body-based-routing chart renders for Istio (extproc.md §7), and
  the same mechanism the picker uses. Cleartext with Istio's automatic mTLS would work only where the router's pod
  has a sidecar (and would not be encrypted at all without one); TLS + DestinationRule works with or without a mesh
  and keeps one rule for both ext_proc servers, which the cross-check verifies the same way. `appProtocol: http2`.
* Envoy Gateway, kgateway and others: cleartext, `appProtocol: kubernetes.io/h2c` (the Gateway API's name for
  cleartext HTTP/2, GEP-1911). Unlike the picker's, the router's ext_proc cluster is built from a plain Service
  backendRef (EnvoyExtensionPolicy, GatewayExtension), which is cleartext unless a BackendTLSPolicy is attached, and a
  BackendTLSPolicy cannot skip verification of the router's self-signed certificate.
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
    bbr_tls: bool
    bbr_app_protocol: str
    # Istio: the gateway needs a DestinationRule to originate TLS to each ext_proc server that serves TLS.
    epp_destination_rule: bool = False
    bbr_destination_rule: bool = False


GKE = Transport(epp_tls=True, epp_app_protocol=HTTP2, bbr_tls=True, bbr_app_protocol=HTTP2)
ISTIO = Transport(
    epp_tls=True,
    epp_app_protocol=HTTP2,
    bbr_tls=True,
    bbr_app_protocol=HTTP2,
    epp_destination_rule=True,
    bbr_destination_rule=True,
)
ENVOY = Transport(epp_tls=True, epp_app_protocol=HTTP2, bbr_tls=False, bbr_app_protocol=H2C)
DEFAULT = ENVOY


def unknown_class_warning(gateway_class: str) -> str:
    return (
        f"inferplane does not know gateway class {gateway_class!r}: the endpoint picker serves TLS with a "
        "self-signed certificate on its ext_proc port (as upstream's does); make sure the gateway speaks TLS to it "
        "without verifying the certificate"
    )


def service_host(service: str, namespace: str | None) -> str:
    """The Service's host as Istio reads a DestinationRule's `host`. Without a namespace (a render for `kubectl -n`,
    kustomize or Argo CD to place), the short name: Istio resolves it in the rule's own namespace, which is the
    Service's, and kustomize's nameReference can still rewrite it under `namePrefix`."""
    if namespace is None:
        return service
    return f"{service}.{namespace}.svc.cluster.local"


def _last_value(args: Sequence[str], flags: tuple[str, ...]) -> dict[str, str]:
    """The last value given to each flag, as argparse reads `--flag value` and `--flag=value`."""
    found: dict[str, str] = {}
    items = list(args)
    for i, arg in enumerate(items):
        for flag in flags:
            if arg == flag and i + 1 < len(items):
                found[flag] = items[i + 1]
            elif arg.startswith(flag + "="):
                found[flag] = arg.split("=", 1)[1]
    return found


def serves_tls(args: Sequence[str]) -> bool:
    """Whether `inferplane epp` with these arguments serves TLS: `--secure-serving true|false` (also `=value`) when
    given, else true exactly with `--discovery kubernetes` (the rule in epp/command.py)."""
    found = _last_value(args, (SECURE_SERVING_FLAG, "--discovery"))
    if SECURE_SERVING_FLAG in found:
        return found[SECURE_SERVING_FLAG] == "true"
    return found.get("--discovery") == "kubernetes"


def bbr_serves_tls(args: Sequence[str]) -> bool:
    """Whether `inferplane bbr` with these arguments serves TLS: `--secure-serving true` (default false, the rule in
    bbr/command.py)."""
    return _last_value(args, (SECURE_SERVING_FLAG,)).get(SECURE_SERVING_FLAG) == "true"


def istio_tls_destination_rule(
    service: str, namespace: str | None, component: str, connection_pool: dict[str, object] | None = None
) -> Manifest:
    """TLS origination from Istio's gateway to an ext_proc server's Service, accepting its self-signed certificate."""
    policy: dict[str, object] = {"tls": {"mode": "SIMPLE", "insecureSkipVerify": True}}
    if connection_pool is not None:
        policy["connectionPool"] = connection_pool
    return obj(
        ISTIO_API,
        "DestinationRule",
        meta(service, namespace, base_labels(service, component)),
        spec={"host": service_host(service, namespace), "trafficPolicy": policy},
    )


# The llm-d guide's pools for the picker (its `inferencepool.values.yaml`): large limits so a busy gateway never
# queues on the picker's connection.
EPP_CONNECTION_POOL: dict[str, object] = {
    "http": {
        "http1MaxPendingRequests": 256000,
        "maxRequestsPerConnection": 256000,
        "http2MaxRequests": 256000,
        "idleTimeout": "900s",
    },
    "tcp": {"maxConnections": 256000, "maxConnectionDuration": "1800s", "connectTimeout": "900s"},
}


def istio_epp_destination_rule(pool: PoolPlan, namespace: str | None) -> list[Manifest]:
    """TLS origination from the Istio gateway to the picker, with the connection pools of the llm-d guide."""
    return [istio_tls_destination_rule(pool.epp_name, namespace, "endpoint-picker", EPP_CONNECTION_POOL)]

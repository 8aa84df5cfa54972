"""What the gateway translation needs to know, beyond the user's resources: where things run locally.

The runtime builds a `GatewayPlan` from the loaded resources and the processes it started (which local ports the
model servers, endpoint pickers and the body-based router listen on); `build_envoy_config` turns it into an Envoy
bootstrap. Keeping the plan a plain value object keeps the translation pure and testable without processes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from inferplane.api.gateway_api import Gateway, HTTPRoute, ReferenceGrant
from inferplane.errors import ConfigError

T = TypeVar("T")
FailureMode = Literal["FailOpen", "FailClose"]
# ext_proc request body modes. BUFFERED hands the picker the whole body in one message after the headers answer (two
# round trips); FULL_DUPLEX_STREAMED sends headers and body without waiting (one round trip, the picker echoes the
# body back): the faster of the two with inferplane's picker at one request at a time (BENCHMARKS.md, run H), but
# Envoy refuses it with FailOpen. STREAMED exists for servers that want every chunk answered.
BodyMode = Literal["BUFFERED", "STREAMED", "FULL_DUPLEX_STREAMED"]


def parse_host_port(value: str, *, what: str) -> tuple[str, int]:
    """`ip:port` (IPv6 in brackets) → (ip, port). Envoy's static/EDS endpoints need literal IPs; `localhost` is
    accepted and means 127.0.0.1."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not host:
        raise ConfigError(f"{what}: {value!r} is not host:port", hint="write it as 127.0.0.1:8000")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(
            f"{what}: {value!r} must use an IP address, not a host name", hint="use 127.0.0.1:<port> locally"
        ) from None
    port = int(port_text)
    if not 0 < port < 65536:
        raise ConfigError(f"{what}: port {port} out of range in {value!r}")
    return host, port


@dataclass(frozen=True)
class PoolBinding:
    """One InferencePool as it runs locally.

    endpoints: the pool's model-server replicas (`ip:port`), the members the picker may choose from.
    epp_address: the pool's endpoint picker ext_proc server (`ip:port`).
    failure_mode: FailClose → 503 when the picker cannot be reached; FailOpen → Envoy balances across the pool.
    body_mode: how Envoy sends the request body to the picker (the runtime picks per pool: runtime.gateway_link).
    response_phases: also send response headers and body to the picker (usage tracking, response plugins).
    """

    endpoints: Sequence[str]
    epp_address: str
    failure_mode: FailureMode = "FailClose"
    body_mode: BodyMode = "BUFFERED"
    response_phases: bool = False
    message_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        parse_host_port(self.epp_address, what="epp_address")
        for e in self.endpoints:
            parse_host_port(e, what="pool endpoint")


@dataclass(frozen=True)
class GatewayPlan:
    """Everything the Envoy configuration is generated from.

    gateways/routes: the user's resources; routes are in creation order (file order), which the precedence rules use
      as the creation timestamp tie-breaker.
    pools: InferencePool name → PoolBinding. Keys are `namespace/name` or plain `name` (any namespace).
    services: Service name → local endpoints (`ip:port`), keyed the same way; a Service missing here is a backendRef
      to a Service that does not exist (500, `BackendNotFound`).
    bbr_address: the body-based router (`ip:port`); required when a route matches on X-Gateway-Model-Name.
    port_map: Gateway listener port → local port to bind (the cluster port 80 becomes e.g. 8080 on a laptop); a key
      `(gateway "namespace/name", port)` overrides the plain port for one Gateway (each Gateway has its own address
      in a cluster, so two Gateways on port 80 need two local ports).
    bind_address: where the gateway listeners bind.
    reference_grants / namespace_labels: for cross-namespace backends and `allowedRoutes.namespaces.from: Selector`.
    """

    gateways: Sequence[Gateway]
    routes: Sequence[HTTPRoute]
    pools: Mapping[str, PoolBinding] = field(default_factory=dict)
    services: Mapping[str, Sequence[str]] = field(default_factory=dict)
    bbr_address: str | None = None
    port_map: Mapping[int | tuple[str, int], int] = field(default_factory=dict)
    bind_address: str = "127.0.0.1"
    reference_grants: Sequence[ReferenceGrant] = ()
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    bbr_message_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.bbr_address is not None:
            parse_host_port(self.bbr_address, what="bbr_address")
        for name, eps in self.services.items():
            for e in eps:
                parse_host_port(e, what=f"service {name} endpoint")

    def local_port(self, gateway: str, port: int) -> int:
        """The local port serving `port` of Gateway `gateway` (`namespace/name`)."""
        return self.port_map.get((gateway, port), self.port_map.get(port, port))

    def service(self, namespace: str, name: str) -> Sequence[str] | None:
        return _lookup(self.services, namespace, name)

    def pool(self, namespace: str, name: str) -> PoolBinding | None:
        return _lookup(self.pools, namespace, name)


def _lookup(table: Mapping[str, T], namespace: str, name: str) -> T | None:
    found = table.get(f"{namespace}/{name}")
    return found if found is not None else table.get(name)

"""GatewayPlan → Envoy bootstrap (a dict that dumps to the YAML Envoy loads).

Layout of the generated config:
* one Envoy listener per local port; Gateway listeners sharing a port become virtual hosts of that listener, one
  per hostname, so Envoy's most-specific-domain selection does the Gateway's listener selection;
* per virtual host, the attached routes' matches in precedence order (`precedence.py`), then a 404 route;
* HTTP filters: the body-based router first (only on listeners whose routes match on the model header), then one
  ext_proc filter per InferencePool, switched off by every route that does not send to that pool, then the
  router;
* clusters: one EDS cluster per Service and per InferencePool (endpoints from files, see `eds.py`); pool clusters
  use the `override_host` load-balancing policy, which honours the picker's `x-gateway-destination-endpoint` and
  falls back to round robin when there is no pick (FailOpen with the picker down);
* local replies (`local_reply_config`): what Envoy itself answers — no route, body too large, no reachable endpoint,
  timeout, and the empty 503 of an unreachable ext_proc server under FailClose — gets an OpenAI-style JSON body;
  the ext_proc servers' own ImmediateResponses (the picker's 429/503, the router's 400) keep theirs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inferplane.api.gateway_api import Listener
from inferplane.errors import ConfigError
from inferplane.gateway.attach import Attachment, PoolTarget, ServiceTarget, attach_routes
from inferplane.gateway.eds import eds_cluster
from inferplane.gateway.extproc_config import (
    EXTPROC,
    EXTPROC_OFF,
    any_of,
    dead_replica_ejection,
    epp_cluster_name,
    extproc_filter,
    extproc_filter_name,
    override_host_policy,
    pool_filter,
    processing_mode,
    socket_address,
    static_cluster,
)
from inferplane.gateway.local_reply import local_reply_config
from inferplane.gateway.plan import GatewayPlan, PoolBinding
from inferplane.gateway.precedence import virtual_hosts
from inferplane.gateway.routes import NOT_FOUND_BODY, Clusters, RouteOptions, build_routes

MODEL_HEADERS = ("x-gateway-model-name", "x-gateway-base-model-name")
DESTINATION_HEADERS = ("x-gateway-destination-endpoint", "x-gateway-destination-endpoint-served")
BBR_FILTER = f"{EXTPROC}/bbr"
BBR_CLUSTER = "bbr"


def _not_found_route() -> dict[str, Any]:
    return {
        "name": "no-match",
        "match": {"prefix": "/"},
        "direct_response": {"status": 404, "body": {"inline_string": NOT_FOUND_BODY}},
        "response_headers_to_add": [
            {
                "header": {"key": "content-type", "value": "application/json"},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            }
        ],
    }


@dataclass(frozen=True)
class EnvoyOptions:
    """Envoy settings that are not in the Gateway API resources."""

    routes: RouteOptions = field(default_factory=RouteOptions)
    max_request_bytes: int = 16 * 1024 * 1024  # buffered ext_proc needs the whole body in Envoy's buffer
    access_log_path: str | None = None
    connect_timeout_s: float = 2.0


def service_cluster_name(key: str) -> str:
    return "service." + key.replace("/", ".")


def pool_cluster_name(key: str) -> str:
    return "pool." + key.replace("/", ".")


class _Builder:
    def __init__(self, plan: GatewayPlan, config_dir: Path, options: EnvoyOptions) -> None:
        self.plan = plan
        self.config_dir = config_dir
        self.options = options
        self.clusters: dict[str, dict[str, Any]] = {}
        self.eds_endpoints: dict[str, tuple[str, ...]] = {}
        self.listener_pools: dict[str, PoolBinding] = {}  # pools used on the listener being built

    def service_cluster(self, target: ServiceTarget) -> str:
        name = service_cluster_name(target.key)
        if name not in self.clusters:
            self.clusters[name] = eds_cluster(name, self.config_dir, self.options.connect_timeout_s)
            self.eds_endpoints[name] = target.endpoints
        return name

    def pool_cluster(self, target: PoolTarget) -> str:
        name = pool_cluster_name(target.key)
        if name not in self.clusters:
            cluster = eds_cluster(name, self.config_dir, self.options.connect_timeout_s)
            cluster["load_balancing_policy"] = override_host_policy()
            cluster["outlier_detection"] = dead_replica_ejection()
            self.clusters[name] = cluster
            self.eds_endpoints[name] = tuple(target.binding.endpoints)
            epp = epp_cluster_name(target.key)
            self.clusters[epp] = static_cluster(
                epp, target.binding.epp_address, http2=True, connect_timeout_s=self.options.connect_timeout_s
            )
        self.listener_pools[target.key] = target.binding
        return name

    def virtual_hosts(self, listeners: Sequence[Listener], attachments: list[Attachment]) -> list[dict[str, Any]]:
        clusters = Clusters(self.service_cluster, self.pool_cluster)
        out: list[dict[str, Any]] = [
            {
                "name": f"{vh.listener.name}/{vh.domain}",
                "domains": [vh.domain],
                "routes": [r for e in vh.entries for r in build_routes(e, self.plan, clusters, self.options.routes)],
            }
            for vh in virtual_hosts(listeners, attachments)
        ]
        if not any(v["domains"] == ["*"] for v in out):
            out.append({"name": "no-listener", "domains": ["*"], "routes": []})
        for vhost in out:
            vhost["routes"].append(_not_found_route())
        return out

    def _scope_pickers(self, vhosts: list[dict[str, Any]]) -> None:
        """Each route runs only the picker of the pool it sends to.

        The pickers' ext_proc filters are enabled in the chain and switched off per route with
        `ExtProcPerRoute.disabled`, which the filter reads when it runs, after the body-based router has changed the
        model header and the route was chosen again. (`HttpFilter.disabled` plus a per-route enable would be
        decided when the filter chain is built, before that re-routing, so the new route's picker would never run.)
        Routes that match nothing end in an explicit 404 route, so that no picker runs for them either."""
        names = {pool_cluster_name(k): extproc_filter_name(k) for k in self.listener_pools}
        for vhost in vhosts:
            for route in vhost["routes"]:
                own = names.get(route.get("route", {}).get("cluster", ""))
                off = {n: EXTPROC_OFF for n in sorted(names.values()) if n != own}
                if off:
                    route["typed_per_filter_config"] = off

    def listener(self, port: int, listeners: Sequence[Listener], attachments: list[Attachment]) -> dict[str, Any]:
        self.listener_pools = {}
        vhosts = self.virtual_hosts(listeners, attachments)
        self._scope_pickers(vhosts)
        filters: list[dict[str, Any]] = []
        untrusted = list(DESTINATION_HEADERS)
        bbr = _needs_bbr(attachments)
        if bbr:
            untrusted += MODEL_HEADERS
            if self.plan.bbr_address is None:
                raise ConfigError(
                    f"routes on port {port} match on the X-Gateway-Model-Name header, but no body-based router runs",
                    hint="start `inferplane bbr` and pass its address as bbr_address",
                )
            filters.append(
                extproc_filter(
                    BBR_FILTER,
                    BBR_CLUSTER,
                    self.plan.bbr_address,
                    processing_mode("BUFFERED", response_phases=False),
                    fail_open=False,
                    timeout_s=self.plan.bbr_message_timeout_s,
                    forward_lb_metadata=False,
                )
            )
            self.clusters[BBR_CLUSTER] = static_cluster(
                BBR_CLUSTER, self.plan.bbr_address, http2=True, connect_timeout_s=self.options.connect_timeout_s
            )
        filters += [pool_filter(k, b) for k, b in sorted(self.listener_pools.items())]
        filters.append(
            {
                "name": "envoy.filters.http.router",
                "typed_config": any_of("envoy.extensions.filters.http.router.v3.Router", suppress_envoy_headers=True),
            }
        )
        hcm: dict[str, Any] = any_of(
            "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            stat_prefix=f"gateway_{port}",
            codec_type="AUTO",
            strip_any_host_port=True,
            normalize_path=True,
            merge_slashes=True,
            use_remote_address=True,
            # the pickers' and the router's headers count only when they wrote them: drop client-sent copies first
            early_header_mutation_extensions=[
                {
                    "name": "envoy.http.early_header_mutation.header_mutation",
                    "typed_config": any_of(
                        "envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation",
                        mutations=[{"remove": h} for h in untrusted],
                    ),
                }
            ],
            route_config={"name": f"gateway_{port}", "virtual_hosts": vhosts},
            http_filters=filters,
            local_reply_config=local_reply_config(
                self.options.max_request_bytes, routed_models=_routed_models(attachments) if bbr else None
            ),
        )
        if self.options.access_log_path:
            hcm["access_log"] = [_access_log(self.options.access_log_path)]
        host = self.plan.bind_address
        return {
            "name": f"gateway_{port}",
            "address": socket_address(host, port),
            "per_connection_buffer_limit_bytes": self.options.max_request_bytes,
            "filter_chains": [
                {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
            ],
        }


def _needs_bbr(attachments: list[Attachment]) -> bool:
    return any(
        h.name.lower() in MODEL_HEADERS
        for a in attachments
        for rule in a.route.spec.rules
        for m in rule.matches
        for h in m.headers
    )


# One line per request, for `inferplane logs`: time, method, path, status, upstream replica (`-` when Envoy answered
# itself), duration, and the response flags that say why Envoy answered (NR no route, UH no healthy upstream...).
ACCESS_LOG_FORMAT = (
    "%START_TIME(%Y-%m-%dT%H:%M:%S.%3fZ)% %REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %RESPONSE_CODE% "
    "%UPSTREAM_HOST% %DURATION%ms model=%REQ(X-GATEWAY-MODEL-NAME)% flags=%RESPONSE_FLAGS%\n"
)


def _routed_models(attachments: list[Attachment]) -> list[str]:
    """The models the routes match on exactly (the X-Gateway-Model-Name values), for the no-route message."""
    return sorted(
        {
            h.value
            for a in attachments
            for rule in a.route.spec.rules
            for m in rule.matches
            for h in m.headers
            if h.name.lower() in MODEL_HEADERS and h.type == "Exact"
        }
    )


def _access_log(path: str) -> dict[str, Any]:
    return {
        "name": "envoy.access_loggers.file",
        "typed_config": any_of(
            "envoy.extensions.access_loggers.file.v3.FileAccessLog",
            path=path,
            log_format={"text_format_source": {"inline_string": ACCESS_LOG_FORMAT}},
        ),
    }


@dataclass(frozen=True)
class EnvoyConfig:
    """The bootstrap plus the initial endpoints of every EDS cluster (cluster name → `ip:port` list)."""

    bootstrap: dict[str, Any]
    endpoints: dict[str, tuple[str, ...]]


def build_envoy(
    plan: GatewayPlan, *, admin_port: int, config_dir: Path, options: EnvoyOptions | None = None
) -> EnvoyConfig:
    options = options or EnvoyOptions()
    attachments, _ = attach_routes(plan)
    builder = _Builder(plan, Path(config_dir), options)
    by_port: dict[int, list[Listener]] = {}
    owner: dict[int, str] = {}
    for gateway in plan.gateways:
        for listener in gateway.spec.listeners:
            if listener.protocol != "HTTP":
                raise ConfigError(
                    f"Gateway {gateway.key} listener {listener.name}: protocol {listener.protocol} is not supported "
                    "by the local gateway",
                    hint="use protocol: HTTP (TLS termination is left to the cluster's gateway)",
                )
            local = plan.local_port(gateway.key, listener.port)
            if owner.setdefault(local, gateway.key) != gateway.key:
                raise ConfigError(
                    f"Gateways {owner[local]} and {gateway.key} would both listen on local port {local}",
                    hint="give each Gateway its own local port (GatewayPlan.port_map[(gateway, port)])",
                )
            by_port.setdefault(local, []).append(listener)
    envoy_listeners = [
        builder.listener(local, listeners, [a for a in attachments if any(a.listener is x for x in listeners)])
        for local, listeners in sorted(by_port.items())
    ]
    bootstrap = {
        "node": {"id": "inferplane-gateway", "cluster": "inferplane"},
        "admin": {"address": socket_address("127.0.0.1", admin_port)},
        "static_resources": {"listeners": envoy_listeners, "clusters": list(builder.clusters.values())},
        "layered_runtime": {"layers": [{"name": "static", "static_layer": {}}]},
    }
    return EnvoyConfig(bootstrap, dict(builder.eds_endpoints))


def build_envoy_config(
    plan: GatewayPlan, *, admin_port: int, config_dir: Path, options: EnvoyOptions | None = None
) -> dict[str, Any]:
    """The Envoy bootstrap for `plan` (EDS files are expected in `config_dir/eds`; see `write_bootstrap`)."""
    return build_envoy(plan, admin_port=admin_port, config_dir=config_dir, options=options).bootstrap


def dump_yaml(config: dict[str, Any]) -> str:
    # JSON is valid YAML and keeps every string exactly as written (no YAML 1.1 surprises such as `on` or `0s`)
    return json.dumps(config, indent=1)

"""A real Envoy for tests and benchmarks: a static bootstrap modelled on GIE's reference config
(/work/shared/schemas/gie/envoy.yaml), with the pool as a STATIC cluster whose host the endpoint picker chooses
through Envoy's `override_host` load-balancing policy (extproc.md §6.2), and a readiness wait on admin `/ready`.

`override_host` rather than the reference ORIGINAL_DST cluster: it only connects to pool members (a spoofed header
cannot steer traffic elsewhere), honours the comma-separated fallback list, and its fallback policy (round robin)
is what serves requests when a FailOpen ext_proc filter lets them through without a pick.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inferplane.net import LOOPBACK, free_ports, http_status
from tests.support.procs import Proc

ENVOY_BIN = str(Path(sys.executable).with_name("envoy"))


@dataclass
class EnvoyConfig:
    listen_port: int
    admin_port: int
    endpoints: list[str]  # host:port of the pool's members
    ext_proc_port: int | None = None  # None: no ext_proc filter (Envoy routing alone)
    request_body_mode: str = "FULL_DUPLEX_STREAMED"
    response_header_mode: str = "SEND"
    response_body_mode: str = "FULL_DUPLEX_STREAMED"
    request_trailer_mode: str = "SEND"
    response_trailer_mode: str = "SEND"
    failure_mode_allow: bool = False  # True = the pool's FailOpen
    # TLS to the picker (`inferplane epp --secure-serving true`), accepting any certificate as the GIE reference
    # cluster does (an empty validation context)
    ext_proc_tls: bool = False
    # ext_proc gRPC client inside Envoy: "envoy_grpc" (Envoy's own HTTP/2 stack, the reference config) or
    # "google_grpc" (the gRPC C++ library); benchmarks/epp_envoy_latency.py compares them
    ext_proc_client: str = "envoy_grpc"
    retries: int = 4  # as inferplane.gateway.routes.RouteOptions: retries may hit the dead replica again
    extra_listener_filters: list[dict[str, Any]] = field(default_factory=list)

    def ext_proc_filter(self) -> dict[str, Any]:
        return {
            "name": "envoy.filters.http.ext_proc",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
                "grpc_service": {**self._grpc_target(), "timeout": "10s"},
                "processing_mode": {
                    "request_header_mode": "SEND",
                    "response_header_mode": self.response_header_mode,
                    "request_body_mode": self.request_body_mode,
                    "response_body_mode": self.response_body_mode,
                    "request_trailer_mode": self.request_trailer_mode,
                    "response_trailer_mode": self.response_trailer_mode,
                },
                "message_timeout": "1000s",
                "failure_mode_allow": self.failure_mode_allow,
                # FailClose answers 503 (Proto 004: no endpoint available), not Envoy's default 500
                "status_on_error": {"code": 503},
                "metadata_options": {
                    "forwarding_namespaces": {"untyped": ["envoy.lb"]},
                    "receiving_namespaces": {"untyped": ["envoy.lb"]},
                },
                "allow_mode_override": True,
            },
        }

    def _grpc_target(self) -> dict[str, Any]:
        if self.ext_proc_client == "google_grpc":
            target = f"{LOOPBACK}:{self.ext_proc_port}"
            return {"google_grpc": {"target_uri": target, "stat_prefix": "ext_proc"}}
        return {"envoy_grpc": {"cluster_name": "ext_proc"}}

    def pool_cluster(self) -> dict[str, Any]:
        lb_endpoints = []
        for hp in self.endpoints:
            host, _, port = hp.rpartition(":")
            lb_endpoints.append(
                {"endpoint": {"address": {"socket_address": {"address": host, "port_value": int(port)}}}}
            )
        return {
            "name": "pool",
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {"cluster_name": "pool", "endpoints": [{"lb_endpoints": lb_endpoints}]},
            # as inferplane.gateway: one refused connection ejects the replica, so a retry's override_host pick
            # skips it and the fallback balances over the live ones
            "outlier_detection": {
                "split_external_local_origin_errors": True,
                "consecutive_local_origin_failure": 1,
                "enforcing_consecutive_local_origin_failure": 100,
                "consecutive_5xx": 1000000,
                "consecutive_gateway_failure": 1000000,
                "interval": "1s",
                "base_ejection_time": "1s",
                "max_ejection_percent": 100,
            },
            # max_retries as in inferplane.gateway.eds: Envoy's default of 3 concurrent retries per cluster fails
            # the 4th request that meets a just-killed replica at once (upstream_rq_retry_overflow), retry or not
            "circuit_breakers": {
                "thresholds": [
                    {
                        "max_connections": 40000,
                        "max_pending_requests": 40000,
                        "max_requests": 40000,
                        "max_retries": 1024,
                    }
                ]
            },
            "load_balancing_policy": {
                "policies": [
                    {
                        "typed_extension_config": {
                            "name": "envoy.load_balancing_policies.override_host",
                            "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.load_balancing_policies."
                                "override_host.v3.OverrideHost",
                                "override_host_sources": [
                                    {"header": "x-gateway-destination-endpoint"},
                                    {
                                        "metadata": {
                                            "key": "envoy.lb",
                                            "path": [{"key": "x-gateway-destination-endpoint"}],
                                        }
                                    },
                                ],
                                "selected_host_key": {
                                    "key": "envoy.lb",
                                    "path": [{"key": "x-gateway-destination-endpoint-served"}],
                                },
                                "fallback_policy": {
                                    "policies": [
                                        {
                                            "typed_extension_config": {
                                                "name": "envoy.load_balancing_policies.round_robin",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.extensions."
                                                    "load_balancing_policies.round_robin.v3.RoundRobin"
                                                },
                                            }
                                        }
                                    ]
                                },
                            },
                        }
                    }
                ]
            },
        }

    def bootstrap(self) -> dict[str, Any]:
        http_filters = [*self.extra_listener_filters]
        if self.ext_proc_port is not None:
            http_filters.append(self.ext_proc_filter())
        http_filters.append(
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                    "suppress_envoy_headers": True,
                },
            }
        )
        route: dict[str, Any] = {"cluster": "pool", "timeout": "300s"}
        if self.retries:
            # a request whose connection was refused or reset before any response (a replica that just died,
            # possibly on a pooled connection Envoy had not yet seen close) was never answered: retry it, on the
            # EPP's fallback list first, then the round-robin fallback (same policy as inferplane.gateway.routes)
            route["retry_policy"] = {
                "retry_on": "connect-failure,refused-stream,reset-before-request,reset",
                "num_retries": self.retries,
                # a retry goes elsewhere: the picker's fallbacks first, then hosts not tried yet
                "retry_host_predicate": [
                    {
                        "name": "envoy.retry_host_predicates.previous_hosts",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3."
                            "PreviousHostsPredicate"
                        },
                    }
                ],
                "host_selection_retry_max_attempts": 5,
            }
        clusters = [self.pool_cluster()]
        if self.ext_proc_port is not None:
            tls: dict[str, Any] = {}
            if self.ext_proc_tls:
                tls["transport_socket"] = {
                    "name": "envoy.transport_sockets.tls",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                        "common_tls_context": {"alpn_protocols": ["h2"], "validation_context": {}},
                    },
                }
            clusters.append(
                {
                    **tls,
                    "name": "ext_proc",
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "typed_extension_protocol_options": {
                        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                            "explicit_http_config": {"http2_protocol_options": {}},
                        }
                    },
                    "circuit_breakers": {
                        "thresholds": [
                            {
                                "max_connections": 40000,
                                "max_pending_requests": 40000,
                                "max_requests": 40000,
                                "max_retries": 1024,
                            }
                        ]
                    },
                    "load_assignment": {
                        "cluster_name": "ext_proc",
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {
                                                    "address": LOOPBACK,
                                                    "port_value": self.ext_proc_port,
                                                }
                                            }
                                        }
                                    }
                                ]
                            }
                        ],
                    },
                }
            )
        return {
            "admin": {"address": {"socket_address": {"address": LOOPBACK, "port_value": self.admin_port}}},
            "static_resources": {
                "listeners": [
                    {
                        "name": "gateway",
                        "address": {"socket_address": {"address": LOOPBACK, "port_value": self.listen_port}},
                        "filter_chains": [
                            {
                                "filters": [
                                    {
                                        "name": "envoy.filters.network.http_connection_manager",
                                        "typed_config": {
                                            "@type": "type.googleapis.com/envoy.extensions.filters.network."
                                            "http_connection_manager.v3.HttpConnectionManager",
                                            "stat_prefix": "gateway",
                                            "route_config": {
                                                "name": "gateway",
                                                "virtual_hosts": [
                                                    {
                                                        "name": "all",
                                                        "domains": ["*"],
                                                        "routes": [{"match": {"prefix": "/"}, "route": route}],
                                                    }
                                                ],
                                            },
                                            "http_filters": http_filters,
                                        },
                                    }
                                ]
                            }
                        ],
                    }
                ],
                "clusters": clusters,
            },
        }


class Envoy:
    """A running Envoy (a Proc in its own process group); `url` is the gateway's base URL."""

    def __init__(self, config: EnvoyConfig, concurrency: int = 2) -> None:
        self.config = config
        fd, path = tempfile.mkstemp(prefix="inferplane-envoy-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(config.bootstrap(), f)
        self.config_path = path
        self.proc = Proc(
            [
                ENVOY_BIN,
                "-c",
                path,
                "--concurrency",
                str(concurrency),
                "--log-level",
                "warning",
                "--disable-hot-restart",
                "--base-id-path",
                path + ".base-id",
                "--use-dynamic-base-id",
            ]
        )

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.config.listen_port}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        admin = f"http://{LOOPBACK}:{self.config.admin_port}/ready"
        self.proc.wait_ready(lambda: http_status(admin, timeout=0.5) == 200, timeout, what="Envoy admin /ready")

    def stats(self, prefix: str) -> dict[str, str]:
        """Admin counters and gauges whose names start with `prefix` (for assertion messages)."""
        url = f"http://{LOOPBACK}:{self.config.admin_port}/stats?filter=^{re.escape(prefix)}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            lines = resp.read().decode().splitlines()
        return dict(line.split(": ", 1) for line in lines if ": " in line)

    def stop(self) -> None:
        self.proc.stop()
        for p in (self.config_path, self.config_path + ".base-id"):
            try:
                os.unlink(p)
            except OSError:
                pass


def start_envoy(endpoints: list[str], ext_proc_port: int | None = None, concurrency: int = 2, **options: Any) -> Envoy:
    listen, admin = free_ports(2)
    envoy = Envoy(
        EnvoyConfig(listen_port=listen, admin_port=admin, endpoints=endpoints, ext_proc_port=ext_proc_port, **options),
        concurrency=concurrency,
    )
    try:
        envoy.wait_ready()
    except BaseException:
        envoy.stop()
        raise
    return envoy

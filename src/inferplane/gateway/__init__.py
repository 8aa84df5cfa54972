"""The local gateway: Gateway/HTTPRoute/InferencePool → Envoy configuration, and locating and running Envoy.

Entry points for the runtime:
    plan = GatewayPlan(gateways, routes, pools={...: PoolBinding(...)}, services={...}, bbr_address=...)
    path = write_bootstrap(config_dir, plan, admin_port=0)
    with EnvoyProcess(find_envoy_binary(args.envoy_bin), config_dir) as envoy: ...
    write_endpoints(config_dir, pool_cluster_name(pool_key), ["127.0.0.1:8001", ...])   # replicas changed
"""

from inferplane.gateway.attach import Attachment, ParentStatus, attach_routes, attached_route_counts
from inferplane.gateway.binary import find_envoy_binary
from inferplane.gateway.bootstrap import BOOTSTRAP_FILE, write_bootstrap
from inferplane.gateway.eds import write_endpoints
from inferplane.gateway.envoy_config import (
    EnvoyOptions,
    build_envoy_config,
    pool_cluster_name,
    service_cluster_name,
)
from inferplane.gateway.plan import GatewayPlan, PoolBinding
from inferplane.gateway.process import EnvoyProcess, envoy_argv
from inferplane.gateway.routes import RouteOptions

__all__ = [
    "BOOTSTRAP_FILE",
    "Attachment",
    "EnvoyOptions",
    "EnvoyProcess",
    "GatewayPlan",
    "ParentStatus",
    "PoolBinding",
    "RouteOptions",
    "attach_routes",
    "attached_route_counts",
    "build_envoy_config",
    "envoy_argv",
    "find_envoy_binary",
    "pool_cluster_name",
    "service_cluster_name",
    "write_bootstrap",
    "write_endpoints",
]

"""Resources → processes: the list of components `inferplane up` starts, with their ports and readiness probes.

In a cluster the model servers' `--port` is the pod port and every pod has its own IP; locally everything shares
127.0.0.1, so every replica gets its own free port and the pool's targetPort is mapped onto it. The Gateway
listener port (80 in the patterns) becomes `--port` (8080 by default).

This module puts the plan together; the model servers are planned in `server_plan`, the pickers, BBR and Envoy in
`router_plan`, and the plan's data types live in `plan_types` (all re-exported here).
"""

from __future__ import annotations

from collections.abc import Sequence

from inferplane.net import free_ports
from inferplane.runtime.backends import get_backend
from inferplane.runtime.components import ComponentSpec
from inferplane.runtime.plan_types import LOOPBACK, MODEL_HEADER, PoolPlan, RuntimeOptions, RuntimePlan, ServicePlan
from inferplane.runtime.router_plan import (
    bbr_component,
    envoy_component,
    gateway_ports,
    needs_bbr,
    plan_pool,
    port_free,
)
from inferplane.runtime.server_plan import kv_events_args, server_components, wants_kv_events
from inferplane.runtime.state import StateDir
from inferplane.runtime.templates import PoolTemplate, ServerTemplate, ServiceTemplate

__all__ = [
    "LOOPBACK",
    "MODEL_HEADER",
    "PoolPlan",
    "RuntimeOptions",
    "RuntimePlan",
    "ServicePlan",
    "build_plan",
    "needs_bbr",
    "port_free",
]


def build_plan(
    *,
    name: str,
    source: str,
    servers: Sequence[ServerTemplate],
    pools: Sequence[PoolTemplate],
    listener_ports: Sequence[int],
    use_bbr: bool,
    state: StateDir,
    options: RuntimeOptions,
    secrets: dict[str, str] | None = None,
    services: Sequence[ServiceTemplate] = (),
) -> RuntimePlan:
    """Every component with its ports; files the components read are named here and written by `materialize`."""
    backend = get_backend(options.backend)
    backend.check(list(servers))
    components: list[ComponentSpec] = []
    service_plans = {s.key: ServicePlan(s.name, s.namespace) for s in services}
    kv_ports = {p.name: free_ports(1)[0] for p in pools if wants_kv_events(p.epp_config)}
    for server in servers:
        made = server_components(server, pools, options, secrets or {})
        selecting = [s.key for s in services if s.selects(server)]
        for c in made:
            if c.serves:
                c.argv += kv_events_args(c, kv_ports)
                c.services = list(selecting)
                for key in selecting:
                    service_plans[key].members.append(c.name)
        components += made
    warnings = [_empty_service_warning(s, servers) for s in services if not service_plans[s.key].members]

    pool_plans: dict[str, PoolPlan] = {}
    for pool in pools:
        epp, pool_plans[pool.name] = plan_pool(pool, options, state, kv_ports.get(pool.name), components)
        components.append(epp)

    bbr_address = None
    if use_bbr:
        bbr = bbr_component(options, state)
        bbr_address = f"{LOOPBACK}:{bbr.ports['grpc']}"
        components.append(bbr)

    ports = gateway_ports(listener_ports, options)
    envoy_config = str(state.config / "envoy.yaml")
    components.append(envoy_component(ports))
    models = [n for s in servers for n in (s.served_names or [s.model])]
    return RuntimePlan(
        name=name,
        source=source,
        backend=options.backend,
        gateway_port=ports.gateway,
        admin_port=ports.admin,
        port_map=ports.port_map,
        components=components,
        pools=pool_plans,
        bbr_address=bbr_address,
        models=list(dict.fromkeys(models)),
        envoy_config=envoy_config,
        services=service_plans,
        warnings=warnings,
    )


def _empty_service_warning(service: ServiceTemplate, servers: Sequence[ServerTemplate]) -> str:
    """Why a Service has no local endpoint; routes to it answer 500 as in a cluster (no backend)."""
    what = f"Service {service.key}"
    if not service.selector:
        why = "has no selector, and inferplane runs no hand-made Endpoints"
    else:
        labelled = [s for s in servers if all(s.labels.get(k) == v for k, v in service.selector.items())]
        selector = ",".join(f"{k}={v}" for k, v in service.selector.items())
        if not labelled:
            why = f"selects no model server (selector {selector})"
        else:
            ports = ", ".join(f"{s.name} :{s.port}" for s in labelled)
            targets = ", ".join(map(str, service.target_ports)) or "none"
            why = f"selects {ports}, but its target ports ({targets}) reach none of them"
    return f"{what} {why}; routes to it answer 500"

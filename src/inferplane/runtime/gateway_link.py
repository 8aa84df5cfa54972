"""Writing the files the routers read before they start, and the hook that keeps Envoy's endpoints current.

The gateway package turns Gateway/HTTPRoute/InferencePool into an Envoy bootstrap (`inferplane.gateway`); this
module only binds it to the processes of a plan: the pickers' addresses, the body-based router, local ports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inferplane.runtime.components import Kind
from inferplane.runtime.endpoints import EnvoySink
from inferplane.runtime.plan import RuntimeOptions, RuntimePlan
from inferplane.runtime.resources import RuntimeView, config_yaml
from inferplane.runtime.state import StateDir, write_atomic

if TYPE_CHECKING:
    from inferplane.gateway.plan import PoolBinding

GATEWAY_DIR = "gateway"
ACCESS_LOG = "envoy-access"  # logs/envoy-access.log: Envoy's access log


def _drop_flag(argv: list[str], flag: str) -> list[str]:
    if flag in argv:
        i = argv.index(flag)
        return argv[:i] + argv[i + 2 :]
    return argv


def write_epp_configs(plan: RuntimePlan, view: RuntimeView) -> None:
    for pool in view.pools:
        pp = plan.pools[pool.name]
        epp = plan.component(pp.epp)
        if pool.epp_config is None:
            # no EndpointPickerConfig for this pool: the picker runs its upstream defaults
            epp.argv = _drop_flag(epp.argv, "--config-file")
            pp.config_file = None
        else:
            assert pp.config_file is not None
            write_atomic(Path(pp.config_file), config_yaml(pool.epp_config))


def write_bbr_models(plan: RuntimePlan, view: RuntimeView, state: StateDir) -> None:
    """The models file of the body-based router (upstream's ConfigMap shape): each base model with its LoRA
    adapters, so a request for an adapter also gets X-Gateway-Base-Model-Name."""
    if plan.bbr_address is None:
        return
    families: dict[str, list[str]] = {}
    for s in view.servers:
        names = s.served_names or [s.model]
        adapters = families.setdefault(names[0], [])
        adapters.extend(n for n in [*names[1:], *s.adapters] if n not in adapters)
    doc = [{"baseModel": base, "adapters": adapters} for base, adapters in families.items()]
    write_atomic(state.config / "bbr-models.json", json.dumps(doc, indent=2) + "\n")


@dataclass(frozen=True)
class EnvoySinks:
    """Updaters of Envoy's endpoint sets: per InferencePool name, and per plain Service `namespace/name`."""

    pools: EnvoySink
    services: EnvoySink


def pool_bindings(plan: RuntimePlan, view: RuntimeView) -> dict[str, PoolBinding]:
    """How Envoy talks to each pool's picker, in the fastest mode that keeps what the pool needs (benchmarks/
    BENCHMARKS.md, "Endpoint picker: through Envoy", run H): a FULL_DUPLEX_STREAMED request body with the response
    phases skipped is one round trip per request (Envoy sends headers and body without waiting for the headers
    answer), ~0.3–0.4 ms less at one request at a time than BUFFERED's two; FailOpen pools keep BUFFERED because
    Envoy refuses `failure_mode_allow` with full duplex. A pool with InferenceModelRewrites also gets the response
    phases, because the picker must put the client's model name back into the answers."""
    from inferplane.gateway.plan import PoolBinding

    return {
        name: PoolBinding(
            endpoints=[],
            epp_address=pp.epp_address,
            failure_mode=pp.failure_mode,  # type: ignore[arg-type]
            body_mode="BUFFERED" if pp.failure_mode == "FailOpen" else "FULL_DUPLEX_STREAMED",
            response_phases="modelRewrites" in view.pool_extras.get(pp.name, {}),
        )
        for name, pp in plan.pools.items()
    }


def materialize(
    plan: RuntimePlan, deployment: Any, view: RuntimeView, state: StateDir, options: RuntimeOptions
) -> EnvoySinks:
    """Write every component's input files and fill in Envoy's argv; returns the Envoy endpoint updaters.

    A Service that selects no replica is left out of the gateway plan, so its routes answer 500 as a backendRef
    to a missing backend does (`plan.warnings` says why); the others start empty and fill as replicas get ready.
    """
    from inferplane.gateway.binary import find_envoy_binary
    from inferplane.gateway.bootstrap import write_bootstrap
    from inferplane.gateway.eds import write_endpoints
    from inferplane.gateway.envoy_config import EnvoyOptions, pool_cluster_name, service_cluster_name
    from inferplane.gateway.plan import GatewayPlan
    from inferplane.gateway.process import envoy_argv

    write_epp_configs(plan, view)
    write_bbr_models(plan, view, state)
    port_map: dict[int | tuple[str, int], int] = {k: v for k, v in plan.port_map.items()}
    gateway_plan = GatewayPlan(
        gateways=list(deployment.gateways),
        routes=list(deployment.http_routes),
        pools=pool_bindings(plan, view),
        services={key: [] for key, svc in plan.services.items() if svc.members},
        bbr_address=plan.bbr_address,
        port_map=port_map,
        reference_grants=list(getattr(deployment, "reference_grants", ())),
    )
    config_dir = state.config / GATEWAY_DIR
    # the access log sits with the components' logs, so `inferplane logs` shows it as one more source
    access_log = state.log_file(ACCESS_LOG)
    access_log.parent.mkdir(parents=True, exist_ok=True)
    access_log.unlink(missing_ok=True)  # a fresh run starts a fresh log, as the supervisor's event log does
    envoy_options = EnvoyOptions(access_log_path=str(access_log))
    bootstrap = write_bootstrap(config_dir, gateway_plan, admin_port=plan.admin_port, options=envoy_options)
    plan.envoy_config = str(bootstrap)
    envoy = next(c for c in plan.components if c.kind == Kind.ENVOY)
    envoy.argv = envoy_argv(find_envoy_binary(options.envoy_bin), bootstrap)

    def update_pool(pool: str, endpoints: list[str]) -> None:
        write_endpoints(config_dir, pool_cluster_name(pool), endpoints)

    def update_service(key: str, endpoints: list[str]) -> None:
        write_endpoints(config_dir, service_cluster_name(key), endpoints)

    return EnvoySinks(update_pool, update_service)

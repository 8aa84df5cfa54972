"""Routing-tier planning: each pool's endpoint picker (EPP), the body-based router (BBR) and Envoy with its ports.

These components run after the model servers (stage ROUTERS, then GATEWAY); the files they read are named here and
written by `materialize`.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inferplane.errors import InferplaneError
from inferplane.net import free_ports
from inferplane.runtime.backends import python_env_path
from inferplane.runtime.components import ComponentSpec, Kind, Probe, ProbeType, Stage
from inferplane.runtime.plan_types import LOOPBACK, MODEL_HEADER, PoolPlan, RuntimeOptions
from inferplane.runtime.state import StateDir
from inferplane.runtime.templates import PoolTemplate


def needs_bbr(routes: Sequence[Any]) -> bool:
    """True when any HTTPRoute rule matches on X-Gateway-Model-Name (case-insensitively, as HTTP headers are)."""
    for route in routes:
        for rule in route.spec.rules or ():
            for match in rule.matches or ():
                for header in match.headers or ():
                    if header.name.lower() == MODEL_HEADER:
                        return True
    return False


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Envoy binds: TIME_WAIT leftovers are fine
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def plan_pool(
    pool: PoolTemplate,
    options: RuntimeOptions,
    state: StateDir,
    kv_port: int | None,
    servers: Sequence[ComponentSpec],
) -> tuple[ComponentSpec, PoolPlan]:
    """The pool's endpoint picker and the pool's plan; `kv_port` is where the picker binds its KV-event socket."""
    grpc, health, metrics = free_ports(3)
    epp = f"{pool.name}-epp"
    config_file = str(state.config / f"{epp}.yaml")
    endpoints_file = str(state.config / f"{pool.name}-endpoints.json")
    argv = [
        options.python, "-m", "inferplane", "epp",
        "--pool-name", pool.name, "--pool-namespace", pool.namespace,
        "--config-file", config_file, "--endpoints-file", endpoints_file,
        "--grpc-port", str(grpc), "--grpc-health-port", str(health), "--metrics-port", str(metrics),
        "--bind", LOOPBACK,
    ]  # fmt: skip
    if kv_port is not None:
        argv += ["--kv-events-bind", f"tcp://{LOOPBACK}:{kv_port}"]
    component = ComponentSpec(
        name=epp,
        kind=Kind.EPP,
        argv=argv,
        env=python_env_path(),
        ports={"grpc": grpc, "health": health, "metrics": metrics},
        probe=Probe(ProbeType.GRPC_HEALTH, health, service="readiness"),
        stage=Stage.ROUTERS,
    )
    plan = PoolPlan(
        name=pool.name,
        namespace=pool.namespace,
        failure_mode=pool.failure_mode,
        epp=epp,
        epp_address=f"{LOOPBACK}:{grpc}",
        epp_metrics_port=metrics,
        config_file=config_file,
        endpoints_file=endpoints_file,
        target_ports=list(pool.target_ports),
        members=[c.name for c in servers if c.serves and pool.name in c.pools],
    )
    return component, plan


def bbr_component(options: RuntimeOptions, state: StateDir) -> ComponentSpec:
    """The body-based router, which copies the request's model into X-Gateway-Model-Name for the routes."""
    port, health = free_ports(2)
    argv = [
        options.python, "-m", "inferplane", "bbr",
        "--port", str(port), "--health-port", str(health), "--bind", LOOPBACK,
        "--models-file", str(state.config / "bbr-models.json"),
    ]  # fmt: skip
    return ComponentSpec(
        name="body-based-router",
        kind=Kind.BBR,
        argv=argv,
        env=python_env_path(),
        ports={"grpc": port, "health": health},
        probe=Probe(ProbeType.GRPC_HEALTH, health, service=""),
        stage=Stage.ROUTERS,
    )


@dataclass
class GatewayPorts:
    gateway: int  # where the first listener port is served locally
    admin: int
    port_map: dict[int, int]  # listener port in the files → local port


def gateway_ports(listener_ports: Sequence[int], options: RuntimeOptions) -> GatewayPorts:
    """Local ports for the Gateway's listeners and Envoy's admin interface; a taken `--port` is a user error."""
    distinct = list(dict.fromkeys(listener_ports))
    gateway_port = options.port
    if gateway_port and not port_free(gateway_port):
        raise InferplaneError(
            f"port {gateway_port} on 127.0.0.1 is in use, so the gateway cannot listen there",
            hint="pick another with --port N (or --port 0 for any free port), or stop what holds it "
            "(`inferplane down` if it is an earlier deployment)",
        )
    # one port for the admin interface, one per extra listener port, and the gateway's when it is chosen here
    extra = free_ports(len(distinct) + (1 if gateway_port == 0 else 0) + (0 if distinct else 1))
    if gateway_port == 0:
        gateway_port = extra.pop()
    admin = extra.pop()
    port_map = {distinct[0]: gateway_port} if distinct else {}
    port_map.update({p: extra.pop() for p in distinct[1:]})
    return GatewayPorts(gateway=gateway_port, admin=admin, port_map=port_map)


def envoy_component(ports: GatewayPorts) -> ComponentSpec:
    return ComponentSpec(
        name="envoy",
        kind=Kind.ENVOY,
        argv=[],  # filled by materialize(): the binary is located there
        ports={"http": ports.gateway, "admin": ports.admin, **{f"listener-{k}": v for k, v in ports.port_map.items()}},
        probe=Probe(ProbeType.HTTP, ports.admin, "/ready"),
        stage=Stage.GATEWAY,
    )

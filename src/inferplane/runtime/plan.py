"""Resources → processes: the list of components `inferplane up` starts, with their ports and readiness probes.

In a cluster the model servers' `--port` is the pod port and every pod has its own IP; locally everything shares
127.0.0.1, so every replica gets its own free port and the pool's targetPort is mapped onto it. The Gateway
listener port (80 in the patterns) becomes `--port` (8080 by default).
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from inferplane.errors import InferplaneError
from inferplane.net import free_ports
from inferplane.runtime.backends import BackendOptions, ReplicaContext, get_backend, python_env_path
from inferplane.runtime.components import ComponentSpec, Kind, Probe, ProbeType, RestartPolicy, Stage
from inferplane.runtime.state import StateDir
from inferplane.runtime.templates import PoolTemplate, ServerTemplate, ServiceTemplate

LOOPBACK = "127.0.0.1"
MODEL_HEADER = "x-gateway-model-name"


@dataclass
class RuntimeOptions:
    """How to run a deployment locally (the flags of `inferplane up`)."""

    backend: str = "sim"
    port: int = 8080  # the gateway's local port; 0 picks a free one
    profile: str | None = None  # simulator latency profile
    time_scale: float | None = None  # simulator time scale (0.01 = a hundred times faster)
    startup_delay: float | None = None  # simulator model-load delay
    sim_args: tuple[str, ...] = ()
    epp_config_override: Any = None  # EndpointPickerConfig, a path to one, or {pool: either}
    envoy_bin: str | None = None
    python: str = sys.executable


@dataclass
class PoolPlan:
    name: str
    namespace: str
    failure_mode: str
    epp: str  # component name of the pool's endpoint picker
    epp_address: str
    epp_metrics_port: int
    config_file: str | None
    endpoints_file: str
    target_ports: list[int]
    members: list[str] = field(default_factory=list)  # serving components


@dataclass
class ServicePlan:
    """A plain Service backend: the serving components its selector and ports reach (their ready subset is
    published to Envoy as the Service's endpoints)."""

    name: str
    namespace: str
    members: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class RuntimePlan:
    name: str
    source: str
    backend: str
    gateway_port: int
    admin_port: int
    port_map: dict[int, int]
    components: list[ComponentSpec]
    pools: dict[str, PoolPlan]
    bbr_address: str | None
    models: list[str]
    envoy_config: str = ""
    services: dict[str, ServicePlan] = field(default_factory=dict)  # keyed `namespace/name`
    warnings: list[str] = field(default_factory=list)  # shown by `up`: what will not work as the files say
    curl_host: str | None = None  # the Host the routes accept, when they name hostnames

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.gateway_port}"

    def component(self, name: str) -> ComponentSpec:
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(name)

    def servers(self, pool: str | None = None) -> list[ComponentSpec]:
        """Serving model-server components (replicas and LWS leaders), of one pool or all."""
        return [c for c in self.components if c.serves and (pool is None or pool in c.pools)]

    def curl(self) -> str:
        """A request that works: to the first model an InferencePool member serves (the routes of the patterns send
        /v1 to pools, by path or by the model header), else the first model of any server."""
        pooled = [n for c in self.components if c.serves and c.pools for n in (c.served_names or [c.model])]
        model = next(iter(pooled or self.models), "MODEL")
        body = f'{{"model": "{model}", "prompt": "Hello, my name is", "max_tokens": 16}}'
        host = f" -H 'Host: {self.curl_host}'" if self.curl_host else ""
        return f"curl -s {self.base_url}/v1/completions{host} -H 'Content-Type: application/json' -d '{body}'"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["components"] = [c.to_json() for c in self.components]
        data["base_url"] = self.base_url
        data["curl"] = self.curl()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RuntimePlan:
        return cls(
            name=data["name"],
            source=data["source"],
            backend=data["backend"],
            gateway_port=int(data["gateway_port"]),
            admin_port=int(data["admin_port"]),
            port_map={int(k): int(v) for k, v in data["port_map"].items()},
            components=[ComponentSpec.from_json(c) for c in data["components"]],
            pools={k: PoolPlan(**v) for k, v in data["pools"].items()},
            bbr_address=data.get("bbr_address"),
            models=list(data.get("models", [])),
            envoy_config=data.get("envoy_config", ""),
            services={k: ServicePlan(**v) for k, v in data.get("services", {}).items()},
            warnings=list(data.get("warnings", [])),
            curl_host=data.get("curl_host"),
        )


def _lws_env(server: ServerTemplate, group: int, worker: int) -> dict[str, str]:
    lws = server.lws
    assert lws is not None
    # LWS injects these first and they win over user duplicates (NOTES.md §3). The leader is reached at
    # 127.0.0.1 locally; its in-cluster name is kept for commands that log it.
    return {
        "LWS_LEADER_ADDRESS": LOOPBACK,
        "LWS_GROUP_SIZE": str(lws.size),
        "LWS_WORKER_INDEX": str(worker),
        "INFERPLANE_LWS_LEADER_NAME": lws.leader_address(group),
    }


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Envoy binds: TIME_WAIT leftovers are fine
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _pod_env(pod: str) -> dict[str, str]:
    # Kubernetes sets HOSTNAME to the pod name in every container; POD_NAME is the usual downward-API variable
    # (the simulator names itself from it in the x-inference-pod header).
    return {"HOSTNAME": pod, "POD_NAME": pod}


def _server_components(
    server: ServerTemplate,
    pools: Sequence[PoolTemplate],
    opts: RuntimeOptions,
    secrets: dict[str, str],
) -> list[ComponentSpec]:
    backend = get_backend(opts.backend)
    bopts = BackendOptions(
        python=opts.python,
        profile=opts.profile,
        time_scale=opts.time_scale,
        startup_delay=opts.startup_delay,
        sim_args=opts.sim_args,
    )
    member_of = [p.name for p in pools if server.name in p.members]
    base_env = {**python_env_path(), **server.env, **secrets}
    out: list[ComponentSpec] = []
    for i in range(server.replicas):
        if server.lws is None:
            (port,) = free_ports(1)
            name = f"{server.name}-{i}"
            ctx = ReplicaContext(name=name, port=port, index=i, env={**base_env, **_pod_env(name)})
            env = {**ctx.env, **backend.accelerator_env(server, ctx)}
            out.append(
                ComponentSpec(
                    name=name,
                    kind=Kind.MODEL_SERVER,
                    argv=backend.leader_argv(server, ctx, bopts),
                    env=env,
                    ports={"http": port},
                    probe=Probe(ProbeType.HTTP, port, backend.ready_path),
                    restart=RestartPolicy.ALWAYS,
                    stage=Stage.MODEL_SERVERS,
                    pools=member_of,
                    serves=True,
                    labels=dict(server.labels),
                    model=server.model,
                    served_names=list(server.served_names or [server.model]),
                )
            )
            continue
        lws = server.lws
        group = f"{lws.name}-{i}"
        ports = free_ports(lws.size)
        # RecreateGroupOnPodRestart / RecreateGroupAfterStart: the group restarts as one (every member here has
        # started by the time one can fail); None: only the failed pod restarts.
        restart = RestartPolicy.GROUP if lws.restart_policy.startswith("RecreateGroup") else RestartPolicy.ALWAYS
        unit = group if restart == RestartPolicy.GROUP else ""  # under None every pod is supervised alone
        leader_ctx = ReplicaContext(name=group, port=ports[0], index=i * lws.size, env={})
        leader_ctx.env = {**_lws_env(server, i, 0), **base_env, **_pod_env(group)}
        leader_ctx.env.update(backend.accelerator_env(server, leader_ctx))
        out.append(
            ComponentSpec(
                name=group,
                kind=Kind.MODEL_SERVER,
                argv=backend.leader_argv(server, leader_ctx, bopts),
                env=leader_ctx.env,
                ports={"http": ports[0]},
                probe=Probe(ProbeType.HTTP, ports[0], backend.ready_path),
                restart=restart,
                stage=Stage.MODEL_SERVERS,
                group=unit,
                pools=member_of,
                serves=True,
                labels=dict(server.labels),
                model=server.model,
                served_names=list(server.served_names or [server.model]),
            )
        )
        for w in range(1, lws.size):
            ctx = ReplicaContext(name=f"{group}-{w}", port=ports[w], index=i * lws.size + w, env={})
            ctx.env = {**_lws_env(server, i, w), **python_env_path(), **lws.worker_env, **secrets, **_pod_env(ctx.name)}
            ctx.env.update(backend.accelerator_env(server, ctx))
            argv, ready_path = backend.worker_argv(server, ctx, f"{LOOPBACK}:{ports[0]}", bopts)
            out.append(
                ComponentSpec(
                    name=ctx.name,
                    kind=Kind.LWS_WORKER,
                    argv=argv,
                    env=ctx.env,
                    ports={"health": ports[w]},
                    probe=Probe(ProbeType.HTTP, ports[w], ready_path) if ready_path else None,
                    restart=restart,
                    stage=Stage.MODEL_SERVERS,
                    group=unit,
                    pools=[],
                    after_leader=lws.startup_policy == "LeaderReady",
                    labels=dict(lws.worker_labels),
                    model=server.model,
                )
            )
    return out


def _wants_kv_events(config: Any) -> bool:
    """Whether a pool's EndpointPickerConfig has the precise prefix index, which is fed by the replicas' KV events."""
    return config is not None and any(p.type == "precise-prefix-cache-scorer" for p in config.plugins)


def _kv_events_args(c: ComponentSpec, kv_ports: dict[str, int]) -> list[str]:
    """vLLM's `--kv-events-config` for a replica of a pool whose picker binds a KV-event socket: publish there, on
    the topic `kv@<ip>:<port>@<model>` the picker maps back to this replica (reference/kv-events.md)."""
    port = next((kv_ports[p] for p in c.pools if p in kv_ports), None)
    if port is None:
        return []
    topic = f"kv@{LOOPBACK}:{c.ports['http']}@{(c.served_names or [c.model])[0]}"
    endpoint = f"tcp://{LOOPBACK}:{port}"
    config = {"enable_kv_cache_events": True, "publisher": "zmq", "endpoint": endpoint, "topic": topic}
    return ["--kv-events-config", json.dumps(config)]


def needs_bbr(routes: Sequence[Any]) -> bool:
    """True when any HTTPRoute rule matches on X-Gateway-Model-Name (case-insensitively, as HTTP headers are)."""
    for route in routes:
        for rule in route.spec.rules or ():
            for match in rule.matches or ():
                for header in match.headers or ():
                    if header.name.lower() == MODEL_HEADER:
                        return True
    return False


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
    kv_ports = {p.name: free_ports(1)[0] for p in pools if _wants_kv_events(p.epp_config)}
    for server in servers:
        made = _server_components(server, pools, options, secrets or {})
        selecting = [s.key for s in services if s.selects(server)]
        for c in made:
            if c.serves:
                c.argv += _kv_events_args(c, kv_ports)
                c.services = list(selecting)
                for key in selecting:
                    service_plans[key].members.append(c.name)
        components += made
    warnings = [_empty_service_warning(s, servers) for s in services if not service_plans[s.key].members]

    pool_plans: dict[str, PoolPlan] = {}
    for pool in pools:
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
        if pool.name in kv_ports:
            argv += ["--kv-events-bind", f"tcp://{LOOPBACK}:{kv_ports[pool.name]}"]
        components.append(
            ComponentSpec(
                name=epp,
                kind=Kind.EPP,
                argv=argv,
                env=python_env_path(),
                ports={"grpc": grpc, "health": health, "metrics": metrics},
                probe=Probe(ProbeType.GRPC_HEALTH, health, service="readiness"),
                stage=Stage.ROUTERS,
            )
        )
        pool_plans[pool.name] = PoolPlan(
            name=pool.name,
            namespace=pool.namespace,
            failure_mode=pool.failure_mode,
            epp=epp,
            epp_address=f"{LOOPBACK}:{grpc}",
            epp_metrics_port=metrics,
            config_file=config_file,
            endpoints_file=endpoints_file,
            target_ports=list(pool.target_ports),
            members=[c.name for c in components if c.serves and pool.name in c.pools],
        )

    bbr_address = None
    if use_bbr:
        port, health = free_ports(2)
        bbr_address = f"{LOOPBACK}:{port}"
        components.append(
            ComponentSpec(
                name="body-based-router",
                kind=Kind.BBR,
                argv=[
                    options.python,
                    "-m",
                    "inferplane",
                    "bbr",
                    "--port",
                    str(port),
                    "--health-port",
                    str(health),
                    "--bind",
                    LOOPBACK,
                    "--models-file",
                    str(state.config / "bbr-models.json"),
                ],
                env=python_env_path(),
                ports={"grpc": port, "health": health},
                probe=Probe(ProbeType.GRPC_HEALTH, health, service=""),
                stage=Stage.ROUTERS,
            )
        )

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
    envoy_config = str(state.config / "envoy.yaml")
    components.append(
        ComponentSpec(
            name="envoy",
            kind=Kind.ENVOY,
            argv=[],  # filled by materialize(): the binary is located there
            ports={"http": gateway_port, "admin": admin, **{f"listener-{k}": v for k, v in port_map.items()}},
            probe=Probe(ProbeType.HTTP, admin, "/ready"),
            stage=Stage.GATEWAY,
        )
    )
    models = [n for s in servers for n in (s.served_names or [s.model])]
    return RuntimePlan(
        name=name,
        source=source,
        backend=options.backend,
        gateway_port=gateway_port,
        admin_port=admin,
        port_map=port_map,
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

"""Model-server planning: the replicas and LeaderWorkerSet groups of each server template, as components.

Every replica (and every LWS pod) gets its own free port on 127.0.0.1, the environment Kubernetes and LWS would give
the pod, and, when its pool's picker keeps a precise prefix index, the flag that publishes its KV events there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from inferplane.net import free_ports
from inferplane.runtime.backends import Backend, BackendOptions, ReplicaContext, get_backend, python_env_path
from inferplane.runtime.components import ComponentSpec, Kind, Probe, ProbeType, RestartPolicy, Stage
from inferplane.runtime.plan_types import LOOPBACK
from inferplane.runtime.templates import PoolTemplate, ServerTemplate

if TYPE_CHECKING:
    from inferplane.runtime.plan_types import RuntimeOptions


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


def _pod_env(pod: str) -> dict[str, str]:
    # Kubernetes sets HOSTNAME to the pod name in every container; POD_NAME is the usual downward-API variable
    # (the simulator names itself from it in the x-inference-pod header).
    return {"HOSTNAME": pod, "POD_NAME": pod}


def server_components(
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
            out.append(_serving_component(server, ctx, env, backend, bopts, member_of, RestartPolicy.ALWAYS))
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
            _serving_component(server, leader_ctx, leader_ctx.env, backend, bopts, member_of, restart, group=unit)
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


def _serving_component(
    server: ServerTemplate,
    ctx: ReplicaContext,
    env: dict[str, str],
    backend: Backend,
    bopts: BackendOptions,
    pools: list[str],
    restart: RestartPolicy,
    *,
    group: str = "",
) -> ComponentSpec:
    """The process that serves: a Deployment replica, or a LeaderWorkerSet group's leader (the pod its Service and
    InferencePool reach)."""
    return ComponentSpec(
        name=ctx.name,
        kind=Kind.MODEL_SERVER,
        argv=backend.leader_argv(server, ctx, bopts),
        env=env,
        ports={"http": ctx.port},
        probe=Probe(ProbeType.HTTP, ctx.port, backend.ready_path),
        restart=restart,
        stage=Stage.MODEL_SERVERS,
        group=group,
        pools=pools,
        serves=True,
        labels=dict(server.labels),
        model=server.model,
        served_names=list(server.served_names or [server.model]),
    )


def wants_kv_events(config: Any) -> bool:
    """Whether a pool's EndpointPickerConfig has the precise prefix index, which is fed by the replicas' KV events."""
    return config is not None and any(p.type == "precise-prefix-cache-scorer" for p in config.plugins)


def kv_events_args(c: ComponentSpec, kv_ports: dict[str, int]) -> list[str]:
    """vLLM's `--kv-events-config` for a replica of a pool whose picker binds a KV-event socket: publish there, on
    the topic `kv@<ip>:<port>@<model>` the picker maps back to this replica (reference/kv-events.md)."""
    port = next((kv_ports[p] for p in c.pools if p in kv_ports), None)
    if port is None:
        return []
    topic = f"kv@{LOOPBACK}:{c.ports['http']}@{(c.served_names or [c.model])[0]}"
    endpoint = f"tcp://{LOOPBACK}:{port}"
    config = {"enable_kv_cache_events": True, "publisher": "zmq", "endpoint": endpoint, "topic": topic}
    return ["--kv-events-config", json.dumps(config)]

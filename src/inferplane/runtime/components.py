"""What the local runtime runs: one `ComponentSpec` per process, grouped into supervision units.

A spec is plain data (it is written to the state directory as JSON and read back by `status`, `logs` and `down`),
so nothing here starts a process or opens a socket.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Kind(enum.StrEnum):
    MODEL_SERVER = "model-server"
    LWS_WORKER = "lws-worker"
    EPP = "epp"
    BBR = "bbr"
    ENVOY = "envoy"


class ProbeType(enum.StrEnum):
    HTTP = "http"  # GET url answers 200
    GRPC_HEALTH = "grpc-health"  # grpc.health.v1 Check answers SERVING
    TCP = "tcp"  # the port accepts connections


@dataclass(frozen=True)
class Probe:
    """A readiness probe, as Kubernetes would run it against the container."""

    type: ProbeType
    port: int
    path: str = "/"
    service: str = ""  # gRPC health service name ("" = the whole server)
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"


class RestartPolicy(enum.StrEnum):
    """How the supervisor reacts when a process exits on its own."""

    ALWAYS = "always"  # restart it alone, with backoff (a Deployment's pod)
    GROUP = "group"  # recreate its whole group, with backoff (LeaderWorkerSet RecreateGroupOnPodRestart)
    NEVER = "never"


class Stage(enum.IntEnum):
    """Start order: every stage is ready before the next one starts (model servers take longest, and the
    endpoint pickers and Envoy then come up with the full endpoint set)."""

    MODEL_SERVERS = 0
    ROUTERS = 1  # endpoint pickers and the body-based router
    GATEWAY = 2


@dataclass
class ComponentSpec:
    """One process of a local deployment.

    `group` names the supervision unit: replicas of a Deployment are each their own unit, the pods of one
    LeaderWorkerSet group share one. `pools`, `services` and `serves` say which InferencePool and Service endpoint
    this process provides (only a group's leader serves)."""

    name: str
    kind: Kind
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    probe: Probe | None = None
    restart: RestartPolicy = RestartPolicy.ALWAYS
    stage: Stage = Stage.MODEL_SERVERS
    group: str = ""
    pools: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)  # `namespace/name` of the plain Services selecting it
    serves: bool = False
    after_leader: bool = False  # LeaderWorkerSet startupPolicy LeaderReady: start once the group's leader is ready
    labels: dict[str, str] = field(default_factory=dict)
    model: str = ""
    served_names: list[str] = field(default_factory=list)

    @property
    def unit(self) -> str:
        return self.group or self.name

    @property
    def endpoint(self) -> str | None:
        """host:port of the model-server API when this process serves a pool."""
        if not self.serves or "http" not in self.ports:
            return None
        return f"127.0.0.1:{self.ports['http']}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ComponentSpec:
        probe = data.get("probe")
        return cls(
            name=data["name"],
            kind=Kind(data["kind"]),
            argv=list(data["argv"]),
            env=dict(data.get("env", {})),
            ports={k: int(v) for k, v in data.get("ports", {}).items()},
            probe=Probe(
                type=ProbeType(probe["type"]),
                port=int(probe["port"]),
                path=probe.get("path", "/"),
                service=probe.get("service", ""),
                host=probe.get("host", "127.0.0.1"),
            )
            if probe
            else None,
            restart=RestartPolicy(data.get("restart", "always")),
            stage=Stage(int(data.get("stage", 0))),
            group=data.get("group", ""),
            pools=list(data.get("pools", [])),
            services=list(data.get("services", [])),
            serves=bool(data.get("serves", False)),
            after_leader=bool(data.get("after_leader", False)),
            labels=dict(data.get("labels", {})),
            model=data.get("model", ""),
            served_names=list(data.get("served_names", [])),
        )

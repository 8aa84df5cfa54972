"""The data of a local deployment's plan: the options of `inferplane up`, the pools, Services and components.

The plan is saved as plan.json in the state directory, so `status`, `logs` and `down` see what `up` started.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from inferplane.runtime.components import ComponentSpec

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

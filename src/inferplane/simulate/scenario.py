"""A deployment as a virtual fleet: model services' replicas, one picker per InferencePool, models routed to pools.

Built from the same runtime view `inferplane up` plans from (pools, their members, their EndpointPickerConfigs,
model services with their vLLM args), with the replica counts and the picker configuration optionally overridden
for what-ifs and sweeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from inferplane.errors import UsageError
from inferplane.runtime.resources import RuntimeView
from inferplane.simulate.events import EventQueue
from inferplane.simulate.fleet import ServiceFleet, VirtualReplica, build_replica, sim_config
from inferplane.simulate.picker import PickerTiming, VirtualPicker, build_picker


@dataclass(frozen=True)
class FleetOptions:
    replicas: Mapping[str, int] | int | None = None  # all services (int) or per service name
    profile: str | None = None  # simulator latency profile for every replica
    sim_args: tuple[str, ...] = ()  # extra simulator flags for every replica
    epp_config: Any = None  # an EndpointPickerConfig for every pool (None: each pool's own)
    timing: PickerTiming = field(default_factory=PickerTiming)
    seed: int = 0

    def replicas_for(self, service: str, declared: int) -> int:
        if self.replicas is None:
            return declared
        if isinstance(self.replicas, int):
            return self.replicas
        return self.replicas.get(service, declared)


@dataclass
class Scenario:
    events: EventQueue
    fleets: dict[str, ServiceFleet]  # by model service name
    pickers: dict[str, VirtualPicker]  # by pool name
    models: dict[str, VirtualPicker]  # served model name → its pool's picker

    @property
    def replicas(self) -> list[VirtualReplica]:
        return [r for f in self.fleets.values() for r in f.replicas]

    def accelerators(self) -> int:
        return sum(len(f.replicas) * max(1, f.server.accelerator_count) for f in self.fleets.values())

    def describe(self) -> dict[str, Any]:
        return {
            "services": [f.describe() for f in self.fleets.values()],
            "pools": {
                name: {"replicas": [r.name for r in p.replicas], "scheduler": sorted(p.scheduler.plugins)}
                for name, p in self.pickers.items()
            },
            "timing": {
                "scrape_interval": next(iter(self.pickers.values())).timing.scrape_interval if self.pickers else None,
            },
        }

    def add_replica(self, service: str) -> VirtualReplica:
        """Scale a model service out by one fresh replica (autoscaling, recovery)."""
        fleet = self.fleets[service]
        r = build_replica(fleet.server, len(fleet.replicas), fleet.cfg, self.events.clock, None)
        fleet.replicas.append(r)
        for picker in self.pickers.values():
            if any(x.service == service for x in picker.replicas):
                picker.replicas.append(r)
                picker.sync_endpoints()
        return r


def build_scenario(view: RuntimeView, options: FleetOptions) -> Scenario:
    events = EventQueue()
    servers = {s.name: s for s in view.servers}
    unknown = sorted(set(options.replicas) - set(servers)) if isinstance(options.replicas, Mapping) else []
    if unknown:
        raise UsageError(
            f"--replicas names unknown model service(s) {', '.join(unknown)}",
            hint=f"model services: {', '.join(servers)}",
        )
    fleets: dict[str, ServiceFleet] = {}
    for i, server in enumerate(view.servers):
        if server.role == "prefill":
            raise UsageError(
                f"model service {server.name} is a prefill role: prefill/decode disaggregation is not simulated yet"
            )
        cfg = sim_config(server, options.profile, options.sim_args)
        count = options.replicas_for(server.name, server.replicas)
        if count < 0:
            raise UsageError(f"--replicas for {server.name} must be ≥ 0")
        fleet = ServiceFleet(server, cfg)
        for k in range(count):
            seed = options.seed * 10_000 + i * 1_000 + k
            fleet.replicas.append(build_replica(server, k, cfg, events.clock, seed))
        fleets[server.name] = fleet
    pickers: dict[str, VirtualPicker] = {}
    models: dict[str, VirtualPicker] = {}
    for n, pool in enumerate(view.pools):
        members = [r for name in pool.members if name in fleets for r in fleets[name].replicas]
        config = options.epp_config if options.epp_config is not None else pool.epp_config
        picker = build_picker(pool.name, config, members, options.timing, events.clock, options.seed * 100 + n)
        pickers[pool.name] = picker
        for name in pool.members:
            if name not in servers:
                continue
            s = servers[name]
            for model in [*(s.served_names or [s.model]), *s.adapters]:
                models.setdefault(model, picker)
    return Scenario(events, fleets, pickers, models)

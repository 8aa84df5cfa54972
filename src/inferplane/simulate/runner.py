"""One simulated run from start to `RunResult`: scenario, workload source, stages, what-if events, results."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from inferplane.bench.client import Target
from inferplane.bench.loadgen import Stage
from inferplane.bench.metrics import Slo
from inferplane.bench.results import RunResult
from inferplane.bench.workloads import Workload
from inferplane.runtime.resources import RuntimeView
from inferplane.simulate.driver import Hops, Simulation
from inferplane.simulate.scenario import FleetOptions, Scenario, build_scenario
from inferplane.simulate.whatif import WhatIf, schedule_whatifs


@dataclass
class SimulatedRun:
    result: RunResult
    scenario: Scenario
    wall_seconds: float
    events: int
    accelerator_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def simulate_run(
    label: str,
    view: RuntimeView,
    fleet: FleetOptions,
    target: Target,
    workload: Workload,
    stages: Sequence[Stage],
    *,
    hops: Hops = Hops(),
    slo: Slo | None = None,
    whatifs: Sequence[WhatIf] = (),
    configuration: dict[str, Any] | None = None,
    seed: int = 0,
    drain_timeout: float = 120.0,
    keep_itl: bool = True,
) -> SimulatedRun:
    """Build the fleet, drive the workload through it in virtual time, and summarise it like a measured run."""
    scenario = build_scenario(view, fleet)
    sim = Simulation(
        scenario.events,
        scenario.models,
        target,
        hops=hops,
        seed=seed,
        drain_timeout=drain_timeout,
        keep_itl=keep_itl,
    )
    notes = schedule_whatifs(scenario, sim, whatifs)
    t0 = time.perf_counter()
    # The workload sources are asyncio-flavoured (a multi-turn source waits on an Event): a running loop is all they
    # need; nothing in the simulation awaits.
    records, infos = _in_loop(lambda: sim.run(workload.source(), stages))
    wall = time.perf_counter() - t0
    config = dict(configuration or {})
    config["simulation"] = {
        **scenario.describe(),
        "hops": {"gateway": hops.gateway, "ext_proc": hops.ext_proc, "network": hops.network},
        "whatifs": [str(w) for w in whatifs],
        "virtual_seconds": round(scenario.events.now, 3),
        "wall_seconds": round(wall, 3),
        "events": scenario.events.processed,
    }
    result = RunResult(label, records, infos, config, seed, slo)
    return SimulatedRun(
        result,
        scenario,
        wall,
        scenario.events.processed,
        accelerator_seconds=scenario.accelerators() * scenario.events.now,
        notes=notes,
    )


def _in_loop(fn: Callable[[], Any]) -> Any:
    async def main() -> Any:
        return fn()

    return asyncio.run(main())

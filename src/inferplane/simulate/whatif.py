"""What-ifs scripted on the command line: replicas failing and recovering, a zone lost, scale-out at a time.

    --what-if fail:SERVICE:COUNT@60s          COUNT replicas of SERVICE die at 60 s (virtual)
    --what-if fail:SERVICE:COUNT@60s+30s      ... and come back (fresh, empty caches) 30 s later
    --what-if add:SERVICE:COUNT@120s          scale out by COUNT fresh replicas at 120 s

A zone loss is `fail` of the zone's share of replicas. Times are from the start of the run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from inferplane.bench.metrics import parse_duration
from inferplane.errors import UsageError
from inferplane.simulate.driver import Simulation
from inferplane.simulate.fleet import build_replica
from inferplane.simulate.scenario import Scenario

_SPEC = re.compile(r"^(fail|add):([^:@]+):(\d+)@([^+]+)(?:\+(.+))?$")


@dataclass(frozen=True)
class WhatIf:
    action: str  # fail | add
    service: str
    count: int
    at: float
    recover_after: float | None = None

    def __str__(self) -> str:
        tail = f"+{self.recover_after:g}s" if self.recover_after is not None else ""
        return f"{self.action}:{self.service}:{self.count}@{self.at:g}s{tail}"


def parse_whatif(text: str) -> WhatIf:
    m = _SPEC.match(text.strip())
    if m is None:
        raise UsageError(
            f"--what-if {text!r}: expected fail:SERVICE:COUNT@TIME[+RECOVER] or add:SERVICE:COUNT@TIME",
            hint="e.g. --what-if fail:llama-8b:1@60s+30s",
        )
    action, service, count, at, recover = m.groups()
    if action == "add" and recover:
        raise UsageError(f"--what-if {text!r}: `add` takes no recovery time")
    return WhatIf(
        action,
        service,
        int(count),
        parse_duration(at),
        parse_duration(recover) if recover else None,
    )


def schedule_whatifs(scenario: Scenario, sim: Simulation, whatifs: Sequence[WhatIf]) -> list[str]:
    """Put the what-ifs on the event queue; returns a line per what-if for the report."""
    notes = []
    for w in whatifs:
        if w.service not in scenario.fleets:
            raise UsageError(
                f"--what-if {w}: no model service {w.service!r}", hint=f"model services: {', '.join(scenario.fleets)}"
            )
        fleet = scenario.fleets[w.service]
        if w.action == "fail":
            if w.count > len(fleet.replicas):
                raise UsageError(f"--what-if {w}: {w.service} has only {len(fleet.replicas)} replicas")
            victims = fleet.replicas[: w.count]

            def fail(victims=victims, w=w) -> None:
                for r in victims:
                    sim.kill(r)
                if w.recover_after is not None:
                    scenario.events.after(w.recover_after, lambda: recover(victims))

            def recover(victims=victims, fleet=fleet) -> None:
                for r in victims:
                    fresh = build_replica(fleet.server, r.index, fleet.cfg, scenario.events.clock, None)
                    r.engine, r.latency, r.up, r.history = fresh.engine, fresh.latency, True, []
                for picker in scenario.pickers.values():
                    if any(v in picker.replicas for v in victims):
                        picker.sync_endpoints()

            scenario.events.at(w.at, fail)
            notes.append(
                f"{w.count} replica(s) of {w.service} fail at {w.at:g} s"
                + (f", back {w.recover_after:g} s later" if w.recover_after is not None else "")
            )
        else:

            def add(w=w) -> None:
                for _ in range(w.count):
                    scenario.add_replica(w.service)

            scenario.events.at(w.at, add)
            notes.append(f"{w.count} replica(s) of {w.service} added at {w.at:g} s")
    return notes

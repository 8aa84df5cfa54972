"""What the supervisor supervises: units (one process, or one LeaderWorkerSet group), their members and phases.

A LeaderWorkerSet group is one unit: ready only when every member is, and restarted as a whole. Everything else is a
unit of one. This module only holds the state and the grouping; the supervisor moves units between phases.
"""

from __future__ import annotations

import enum
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

from inferplane.runtime.components import ComponentSpec, RestartPolicy, Stage


class Phase(enum.StrEnum):
    PENDING = "pending"
    STARTING = "starting"
    READY = "ready"
    TERMINATING = "terminating"  # being torn down before a group recreation
    BACKOFF = "backoff"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass
class Member:
    spec: ComponentSpec
    popen: subprocess.Popen[bytes] | None = None
    ready: bool = False
    last_exit: int | None = None
    next_probe: float = 0.0
    log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def exited(self) -> bool:
        return self.popen is not None and self.popen.poll() is not None


@dataclass
class Unit:
    """What restarts together: one process, or all the pods of one LeaderWorkerSet group."""

    name: str
    members: list[Member]
    phase: Phase = Phase.PENDING
    restarts: int = 0
    failures: int = 0  # consecutive, for the backoff
    started_at: float = 0.0
    ready_at: float = 0.0
    restart_at: float = 0.0
    kill_deadline: float = 0.0
    reason: str = ""

    @property
    def stage(self) -> Stage:
        return min(m.spec.stage for m in self.members)

    @property
    def policy(self) -> RestartPolicy:
        return self.members[0].spec.restart

    @property
    def serving(self) -> list[ComponentSpec]:
        return [m.spec for m in self.members if m.spec.serves]


def group_units(specs: Iterable[ComponentSpec]) -> list[Unit]:
    """One unit per `spec.unit`, in the order the specs first name it (a group's members share one unit name)."""
    units: dict[str, Unit] = {}
    for spec in specs:
        units.setdefault(spec.unit, Unit(name=spec.unit, members=[])).members.append(Member(spec))
    return list(units.values())


def backoff_delay(failures: int, base: float, cap: float) -> float:
    """CrashLoopBackOff: `base` after the first consecutive failure, doubling each time, never above `cap`."""
    return min(base * 2 ** (failures - 1), cap)

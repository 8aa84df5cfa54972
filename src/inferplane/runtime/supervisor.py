"""Supervision of a local deployment's processes, the way Kubernetes controllers would treat the pods.

* Start in stages (model servers, then routers, then Envoy), each stage ready before the next starts.
* A crashed process restarts with exponential backoff (CrashLoopBackOff, scaled down for a laptop) and an event.
* A LeaderWorkerSet group is one unit: ready only when every member is, and one member's exit recreates the whole
  group (RecreateGroupOnPodRestart). While a serving unit is down its endpoint is withdrawn from its pools at once,
  so the gateway answers 503 quickly instead of sending requests to a dead port.

All spawning happens on the monitor thread, which lives as long as the supervisor: PR_SET_PDEATHSIG fires when the
spawning thread exits, so children die with supervision rather than with whichever thread called `start()`.

This module is the control loop; the units it moves between phases are in `units`, the endpoint announcements in
`ready_endpoints`, and the event records in `supervisor_events` (the names are re-exported here).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any

from inferplane.errors import InferplaneError
from inferplane.runtime.components import ComponentSpec, RestartPolicy, Stage
from inferplane.runtime.logtail import log_excerpt
from inferplane.runtime.probes import is_ready
from inferplane.runtime.procs import Guardian, signal_group, spawn
from inferplane.runtime.ready_endpoints import EndpointsCallback, PoolEndpoints, ReadyEndpoints
from inferplane.runtime.state import StateDir
from inferplane.runtime.supervisor_events import EventCallback, EventRecorder
from inferplane.runtime.units import Member, Phase, Unit, backoff_delay, group_units

__all__ = [
    "EndpointsCallback",
    "EventCallback",
    "Member",
    "Phase",
    "PoolEndpoints",
    "StartupError",
    "Supervisor",
    "SupervisorOptions",
    "Unit",
]


class StartupError(InferplaneError):
    """A component exited or never became ready while the deployment was starting."""


@dataclass
class SupervisorOptions:
    startup_timeout: float = 120.0
    backoff_base: float = 1.0  # first restart after 1 s, then 2, 4, ... (Kubernetes: 10 s doubling to 5 min)
    backoff_max: float = 30.0
    backoff_reset: float = 60.0  # ready this long → the next crash starts the backoff over
    stop_grace: float = 5.0
    recreate_grace: float = 2.0
    probe_interval: float = 0.1
    tick: float = 0.05


@dataclass
class _Failure:
    error: BaseException | None = None


class Supervisor:
    def __init__(
        self,
        specs: list[ComponentSpec],
        state: StateDir,
        *,
        on_endpoints: EndpointsCallback | None = None,
        on_service_endpoints: EndpointsCallback | None = None,
        on_event: EventCallback | None = None,
        options: SupervisorOptions | None = None,
        base_env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        self.state = state
        self.options = options or SupervisorOptions()
        self._endpoints = ReadyEndpoints(on_endpoints, on_service_endpoints)
        self._event = EventRecorder(state, self._log_names, on_event)
        self._base_env = dict(os.environ if base_env is None else base_env)
        self._cwd = cwd
        self.units = group_units(specs)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._started = threading.Event()
        # Set when the monitor thread has cleaned up. Waiters use this instead of Thread.join: a join interrupted by
        # Ctrl-C marks a still-running thread as finished on CPython < 3.13 (gh-90882), and a later join would then
        # return before the shutdown ran.
        self._finished = threading.Event()
        self._failure = _Failure()
        self._thread: threading.Thread | None = None
        self._guardian: Guardian | None = None
        self.status = "starting"

    # ---- public API (any thread) ----

    def start(self) -> None:
        """Start everything and block until all of it is ready; raises StartupError otherwise."""
        self._thread = threading.Thread(target=self._run, name="inferplane-supervisor", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._failure.error is not None:
            self._finished.wait()
            raise self._failure.error

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            while not self._finished.wait(0.2):
                pass

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the supervisor stops (True) or `timeout` passes (False)."""
        if self._thread is None:
            return True
        return self._finished.wait(timeout)

    def unit(self, name: str) -> Unit:
        for u in self.units:
            if u.name == name or any(m.spec.name == name for m in u.members):
                return u
        raise KeyError(name)

    def member(self, name: str) -> Member:
        for u in self.units:
            for m in u.members:
                if m.spec.name == name:
                    return m
        raise KeyError(name)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "status": self.status,
                "up_pid": os.getpid(),
                "guardian_pid": self._guardian.pid if self._guardian else None,
                "components": {
                    m.spec.name: {
                        "unit": u.name,
                        "phase": u.phase.value,
                        "ready": m.ready,
                        "pid": m.pid,
                        "restarts": u.restarts,
                        "last_exit": m.last_exit,
                        "started_at": u.started_at,
                        "ready_at": u.ready_at,
                        "reason": u.reason,
                    }
                    for u in self.units
                    for m in u.members
                },
            }

    # ---- monitor thread ----

    def _run(self) -> None:
        try:
            self._guardian = Guardian()
            self._start_all()
            with self._lock:
                self.status = "ready"
            self._save()
            self._started.set()
            while not self._stop.is_set():
                self._tick()
                self._stop.wait(self.options.tick)
        except BaseException as exc:
            self._failure.error = exc
            with self._lock:
                self.status = "failed"
        finally:
            with self._lock:
                self.status = "stopping"
            self._shutdown()
            with self._lock:
                self.status = "stopped"
            self._save()
            if self._guardian is not None:
                self._guardian.close()
            self._finished.set()
            self._started.set()

    def _start_all(self) -> None:
        for stage in sorted({u.stage for u in self.units}):
            batch = [u for u in self.units if u.stage == stage]
            for u in batch:
                self._spawn_unit(u)
            deadline = time.monotonic() + self.options.startup_timeout
            while not all(u.phase == Phase.READY for u in batch):
                if self._stop.is_set():
                    raise StartupError("stopped while starting")
                for u in batch:
                    for m in u.members:
                        if m.exited():
                            m.last_exit = m.popen.returncode if m.popen else None
                            raise StartupError(
                                f"{m.spec.name} exited with status {m.last_exit} while starting",
                                hint=log_excerpt(self.state.log_file(m.spec.name)),
                            )
                    if u.phase != Phase.READY:  # probed again, a ready unit would report ready twice
                        self._probe_unit(u)
                if time.monotonic() > deadline:
                    waiting = [m.spec.name for u in batch for m in u.members if not m.ready]
                    raise StartupError(
                        f"not ready after {self.options.startup_timeout:.0f}s: {', '.join(waiting)}",
                        hint=log_excerpt(self.state.log_file(waiting[0])) if waiting else None,
                    )
                time.sleep(self.options.tick)
            if stage == Stage.MODEL_SERVERS:
                self._publish()

    def _tick(self) -> None:
        now = time.monotonic()
        changed = False
        for u in self.units:
            if u.phase in (Phase.STARTING, Phase.READY):
                dead = [m for m in u.members if m.exited()]
                if dead:
                    self._on_exit(u, dead, now)
                    changed = True
                elif u.phase == Phase.STARTING:
                    was = u.phase
                    self._probe_unit(u)
                    if u.phase != was:
                        changed = True
                    elif now - u.started_at > self.options.startup_timeout:
                        self._event(u.name, f"not ready after {self.options.startup_timeout:.0f}s; restarting")
                        self._begin_teardown(u, now, "startup timeout")
                        changed = True
                elif u.failures and now - u.ready_at > self.options.backoff_reset:
                    u.failures = 0
            elif u.phase == Phase.TERMINATING:
                if all(m.popen is None or m.exited() for m in u.members):
                    self._reap(u)
                    self._schedule_restart(u, now)
                    changed = True
                elif now > u.kill_deadline:
                    for m in u.members:
                        if m.popen is not None and not m.exited():
                            signal_group(m.popen.pid, signal.SIGKILL)
            elif u.phase == Phase.BACKOFF and now >= u.restart_at:
                u.restarts += 1
                self._event(u.name, f"restarting (restart {u.restarts})")
                self._spawn_unit(u)
                changed = True
        if changed:
            self._publish()
            self._save()

    def _on_exit(self, u: Unit, dead: list[Member], now: float) -> None:
        for m in dead:
            m.last_exit = m.popen.returncode if m.popen else None
            m.ready = False
        what = ", ".join(f"{m.spec.name} exited with status {m.last_exit}" for m in dead)
        if u.policy == RestartPolicy.NEVER:
            u.phase = Phase.FAILED
            u.reason = what
            self._event(u.name, f"{what}; not restarted (restart policy never)")
            self._withdraw(u)
            return
        if len(u.members) > 1:
            self._event(u.name, f"{what}; recreating the whole group (RecreateGroupOnPodRestart)")
        self._begin_teardown(u, now, what)

    def _begin_teardown(self, u: Unit, now: float, reason: str) -> None:
        """Withdraw the unit's endpoints now, then terminate what is left of it (SIGKILL after a grace)."""
        u.reason = reason
        u.phase = Phase.TERMINATING
        for m in u.members:
            m.ready = False
        self._withdraw(u)
        for m in u.members:
            if m.popen is not None and not m.exited():
                signal_group(m.popen.pid, signal.SIGTERM)
        u.kill_deadline = now + self.options.recreate_grace

    def _withdraw(self, u: Unit) -> None:
        if u.serving:
            self._publish()

    def _schedule_restart(self, u: Unit, now: float) -> None:
        u.failures += 1
        delay = backoff_delay(u.failures, self.options.backoff_base, self.options.backoff_max)
        u.phase = Phase.BACKOFF
        u.restart_at = now + delay
        self._event(u.name, f"back-off {delay:.1f}s before restart ({u.reason})")

    def _reap(self, u: Unit) -> None:
        for m in u.members:
            # the leader is gone; make sure nothing it forked lingers in its group
            self._kill_member(m, wait=1)

    def _kill_member(self, m: Member, *, wait: float) -> None:
        """SIGKILL the member's process group, wait up to `wait` seconds for it, stop guarding it, close its log."""
        if m.popen is not None:
            signal_group(m.popen.pid, signal.SIGKILL)
            try:
                m.popen.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                pass
            if self._guardian is not None:
                self._guardian.forget(m.popen.pid)
        if m.log is not None:
            m.log.close()
            m.log = None

    def _spawn_unit(self, u: Unit) -> None:
        u.phase = Phase.STARTING
        u.started_at = time.monotonic()
        for m in u.members:
            m.ready = False
            m.popen = None
            m.next_probe = 0.0
            if not m.spec.after_leader:
                self._spawn(m)

    def _spawn(self, m: Member) -> None:
        path = self.state.log_file(m.spec.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        m.log = path.open("ab")
        m.log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {m.spec.name}\n".encode())
        m.log.flush()
        env = {**self._base_env, "PYTHONUNBUFFERED": "1", **m.spec.env}
        try:
            m.popen = spawn(m.spec.argv, env, m.log, cwd=self._cwd)
        except OSError as exc:
            raise StartupError(f"cannot start {m.spec.name} ({m.spec.argv[0]}): {exc}") from None
        if self._guardian is not None:
            self._guardian.watch(m.popen.pid)
        self._event(m.spec.name, f"started (pid {m.popen.pid})", to_log=False)  # the log has its own marker

    def _probe_unit(self, u: Unit) -> None:
        now = time.monotonic()
        for m in u.members:
            if m.ready or m.popen is None or now < m.next_probe:
                continue
            m.next_probe = now + self.options.probe_interval
            m.ready = m.spec.probe is None or is_ready(m.spec.probe)
        waiting = [m for m in u.members if m.popen is None]
        if waiting and all(m.ready for m in u.members if m.spec.serves):
            # LeaderWorkerSet startupPolicy LeaderReady: the workers start once the leader is ready
            for m in waiting:
                self._spawn(m)
            return
        if all(m.ready for m in u.members):
            u.phase = Phase.READY
            u.ready_at = time.monotonic()
            u.reason = ""
            took = u.ready_at - u.started_at
            members = f" ({len(u.members)} members)" if len(u.members) > 1 else ""
            self._event(u.name, f"ready in {took:.1f}s{members}")

    def _publish(self) -> None:
        self._endpoints.publish(self.units)

    def _shutdown(self) -> None:
        """Terminate everything, Envoy first (stop taking traffic), model servers last."""
        for stage in sorted({u.stage for u in self.units}, reverse=True):
            batch = [m for u in self.units if u.stage == stage for m in u.members]
            for m in batch:
                if m.popen is not None and m.popen.poll() is None:
                    signal_group(m.popen.pid, signal.SIGTERM)
            deadline = time.monotonic() + self.options.stop_grace
            for m in batch:
                if m.popen is None:
                    continue
                try:
                    m.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
                self._kill_member(m, wait=2)
                m.ready = False
        for u in self.units:
            u.phase = Phase.STOPPED

    def _log_names(self, component: str) -> list[str]:
        """The processes an event about `component` (a unit or one member) belongs to: all of a unit's members."""
        try:
            return [m.spec.name for m in self.unit(component).members]
        except KeyError:
            return [component]

    def _save(self) -> None:
        try:
            self.state.write_json(self.state.state_file, self.snapshot())
        except OSError:
            pass

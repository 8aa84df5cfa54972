"""`Runtime`: a deployment directory brought up locally, as a Python object (what `inferplane up` and
`inferplane bench compare` use).

    with run_deployment("deployments/pattern3-caching", port=0, time_scale=0.01) as rt:
        openai.OpenAI(base_url=rt.base_url + "/v1", api_key="x").completions.create(...)
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from inferplane.errors import InferplaneError, UsageError
from inferplane.net import wait_until
from inferplane.runtime import gateway_link, resources
from inferplane.runtime.endpoints import EndpointPublisher
from inferplane.runtime.plan import RuntimeOptions, RuntimePlan, build_plan
from inferplane.runtime.procs import pid_alive
from inferplane.runtime.state import StateDir
from inferplane.runtime.supervisor import Phase, Supervisor, SupervisorOptions

EventCallback = Callable[[str, str], None]
log = logging.getLogger(__name__)


class Runtime:
    """A local deployment: plan, state directory, and the supervised processes.

    `source` is a deployment directory, a file, or a pattern name (`pattern3-caching`, `pattern3`).
    Keyword arguments are `RuntimeOptions` fields (backend, port, profile, time_scale, startup_delay, sim_args,
    epp_config_override, envoy_bin); `port=0` picks a free gateway port.
    """

    def __init__(
        self,
        source: str | os.PathLike[str],
        *,
        options: RuntimeOptions | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        supervisor: SupervisorOptions | None = None,
        on_event: EventCallback | None = None,
        **overrides: Any,
    ) -> None:
        known = {f.name for f in fields(RuntimeOptions)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown runtime options: {', '.join(sorted(unknown))}")
        self.options = replace(options or RuntimeOptions(), **overrides)
        self.source = resources.resolve_source(str(source))
        self.state_root = Path(state_dir) if state_dir is not None else None
        self.supervisor_options = supervisor or SupervisorOptions()
        self.on_event = on_event
        self.plan: RuntimePlan | None = None
        self.state: StateDir | None = None
        self._supervisor: Supervisor | None = None
        self._stopped = threading.Event()

    # ---- lifecycle ----

    def start(self) -> Runtime:
        check_options(self.options)
        deployment = resources.load(self.source)
        name = resources.deployment_name(self.source)
        state = state_for(self.source, self.state_root)
        refuse_if_running(state, name)
        state.prepare()
        self.state = state
        view = resources.runtime_view(deployment, self.options.epp_config_override)
        plan = build_plan(
            name=name,
            source=str(self.source),
            servers=view.servers,
            pools=view.pools,
            listener_ports=view.listener_ports,
            use_bbr=view.use_bbr,
            state=state,
            options=self.options,
            secrets=resources.secret_env(view.servers),
            services=view.services,
        )
        plan.curl_host = view.curl_host
        sinks = gateway_link.materialize(plan, deployment, view, state, self.options)
        state.write_json(state.plan_file, {**plan.to_json(), "summary": view.summary})
        state.pid_file.write_text(f"{os.getpid()}\n")
        self.plan = plan
        for warning in plan.warnings:
            log.warning("%s", warning)
        publisher = EndpointPublisher(plan, envoy=sinks.pools, extras=view.pool_extras, envoy_services=sinks.services)
        publisher({p: [] for p in plan.pools})  # the pickers and Envoy start from a file that exists
        publisher.services({})
        self._supervisor = Supervisor(
            plan.components,
            state,
            on_endpoints=publisher,
            on_service_endpoints=publisher.services,
            on_event=self.on_event,
            options=self.supervisor_options,
        )
        atexit.register(self.stop)
        try:
            self._supervisor.start()
        except BaseException:
            self._cleanup_state()
            raise
        return self

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._supervisor is not None:
            self._supervisor.stop()
        self._cleanup_state()
        atexit.unregister(self.stop)

    def _cleanup_state(self) -> None:
        if self.state is not None and self.state.up_pid() == os.getpid():
            try:
                self.state.pid_file.unlink()
            except FileNotFoundError:
                pass

    def wait(self, timeout: float | None = None) -> bool:
        return self.supervisor.wait(timeout)

    def __enter__(self) -> Runtime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- where things are ----

    @property
    def supervisor(self) -> Supervisor:
        if self._supervisor is None:
            raise InferplaneError("the runtime has not been started")
        return self._supervisor

    @property
    def running_plan(self) -> RuntimePlan:
        if self.plan is None:
            raise InferplaneError("the runtime has not been started")
        return self.plan

    @property
    def base_url(self) -> str:
        """The gateway, e.g. http://127.0.0.1:8080 (append /v1 for an OpenAI client)."""
        return self.running_plan.base_url

    def endpoint_urls(self, pool: str | None = None) -> list[str]:
        """The model-server replicas (group leaders) themselves, bypassing the gateway."""
        return [f"http://{c.endpoint}" for c in self.running_plan.servers(pool)]

    def pid(self, component: str) -> int | None:
        return self.supervisor.member(component).pid

    def kill(self, component: str, sig: int = signal.SIGKILL) -> int:
        """Send `sig` to one component's process (tests use this to inject faults); returns the pid."""
        pid = self.pid(component)
        if pid is None:
            raise InferplaneError(f"{component} is not running")
        os.kill(pid, sig)
        return pid

    def wait_ready(self, component: str, timeout: float = 60.0) -> None:
        """Wait until the unit holding `component` is ready again (after a restart or group recreation)."""
        unit = self.supervisor.unit(component)
        wait_until(lambda: unit.phase == Phase.READY, timeout, what=f"{component} ready")

    def status(self) -> dict[str, Any]:
        from inferplane.runtime.status import collect

        assert self.state is not None
        return collect(self.state)


@contextmanager
def run_deployment(source: str | os.PathLike[str], **kwargs: Any) -> Iterator[Runtime]:
    """Bring a deployment up for the duration of a `with` block; everything is stopped on exit, even on errors."""
    rt = Runtime(source, **kwargs)
    try:
        rt.start()
        yield rt
    finally:
        rt.stop()


def _is_state_dir(path: Path | None) -> bool:
    return path is not None and (path / "plan.json").exists()


def check_options(options: RuntimeOptions) -> None:
    """The simulator's and the pickers' options, checked before anything starts (each child would refuse them
    only after its siblings were already up)."""
    if options.time_scale is not None and options.time_scale <= 0:
        raise UsageError(f"--time-scale {options.time_scale:g} must be > 0", hint="0.1 runs ten times faster")
    if options.startup_delay is not None and options.startup_delay < 0:
        raise UsageError(f"--startup-delay {options.startup_delay:g} must be >= 0")
    if options.profile is not None and options.backend == "sim":
        from inferplane.sim.profiles import load_profile

        try:
            load_profile(options.profile)
        except InferplaneError as exc:
            raise UsageError(f"--profile: {exc.message}", hint=exc.hint) from None
    if options.epp_config_override is not None:
        resources.check_epp_override(options.epp_config_override)


def state_for(source: Path, state_root: Path | None) -> StateDir:
    """The state directory `up` uses for `source` (`state_root` may be one deployment's state directory itself)."""
    if state_root is not None and _is_state_dir(state_root):
        return StateDir(state_root)
    return StateDir.for_deployment(resources.deployment_name(source), state_root)


def refuse_if_running(state: StateDir, name: str) -> None:
    pid = state.up_pid()
    if pid is not None and pid != os.getpid() and pid_alive(pid):
        raise InferplaneError(
            f"{name} is already running (inferplane up, pid {pid}, state in {state.path})",
            hint=f"stop it with `inferplane down {name}`, or pass --state-dir to run a second copy",
        )

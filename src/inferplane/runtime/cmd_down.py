"""`inferplane down [NAME]`: stop a deployment started with `inferplane up --detach`."""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path

from inferplane.errors import InferplaneError
from inferplane.runtime.procs import pid_alive
from inferplane.runtime.state import StateDir, find_state


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="deployment name (default: the only one running)")
    parser.add_argument("--state-dir", help="state directory root (default .inferplane/ or $INFERPLANE_STATE_DIR)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a clean stop")


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _leftovers(state: StateDir) -> list[int]:
    """Component processes still alive after `up` is gone, checked by command line so a reused pid is spared."""
    if not state.state_file.exists():
        return []
    live = state.read_json(state.state_file)
    plan = state.read_json(state.plan_file)
    argv0 = {c["name"]: (c["argv"] or [""])[0] for c in plan["components"]}
    found = []
    for name, info in live.get("components", {}).items():
        pid = info.get("pid")
        if pid and pid_alive(pid):
            cmd = _cmdline(pid)
            if cmd and (cmd[0] == argv0.get(name) or Path(cmd[0]).name == Path(argv0.get(name, "")).name):
                found.append(pid)
    return found


def stop_deployment(state: StateDir, timeout: float = 30.0) -> bool:
    """SIGTERM the supervising `up` (it stops its components), then clean up anything left. True if it ran."""
    pid = state.up_pid()
    was_running = pid is not None and pid_alive(pid)
    if pid is not None and was_running:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)  # its guardian and PDEATHSIG take the children down with it
            time.sleep(0.5)
    for leftover in _leftovers(state):
        try:
            os.killpg(leftover, signal.SIGKILL)
        except OSError:
            pass
    state.pid_file.unlink(missing_ok=True)
    return was_running


def run(args: argparse.Namespace) -> int:
    state = find_state(args.name, args.state_dir)
    name = state.path.name
    if stop_deployment(state, args.timeout):
        print(f"stopped {name}")
    else:
        if not state.plan_file.exists():
            raise InferplaneError(f"nothing to stop at {state.path}")
        print(f"{name} was not running (cleaned up its state)")
    return 0

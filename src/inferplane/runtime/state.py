"""The state directory of a local deployment: where `down`, `status` and `logs` find what `up` started.

Layout of `.inferplane/<deployment>/` (or `$INFERPLANE_STATE_DIR/<deployment>/`, or `--state-dir`):

    plan.json            the components (argv, env, ports, probes), pools, gateway URL — written once by `up`
    state.json           live state per component (pid, status, restarts), rewritten by the supervisor
    events.jsonl         one line per supervision event (started, ready, exited, restarting, group recreated)
    up.pid               the supervising `inferplane up` process; removed when it stops cleanly (or by `down`), so
                         a deployment runs while this file names a live process
    logs/<component>.log stdout and stderr of each component, kept across restarts
    config/              files handed to components: EPP configs, endpoint lists, Envoy bootstrap and EDS files
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferplane.errors import InferplaneError
from inferplane.runtime.procs import pid_alive

STATE_ENV = "INFERPLANE_STATE_DIR"
DEFAULT_ROOT = ".inferplane"


def state_root(explicit: str | Path | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get(STATE_ENV)
    return Path(env) if env else Path.cwd() / DEFAULT_ROOT


def write_atomic(path: Path, text: str) -> None:
    """Write via a temp file and rename, so readers (the EPP, Envoy, `status`) never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


@dataclass
class StateDir:
    path: Path

    @classmethod
    def for_deployment(cls, name: str, root: str | Path | None = None) -> StateDir:
        return cls(state_root(root) / name)

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def config(self) -> Path:
        return self.path / "config"

    @property
    def plan_file(self) -> Path:
        return self.path / "plan.json"

    @property
    def state_file(self) -> Path:
        return self.path / "state.json"

    @property
    def events_file(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def pid_file(self) -> Path:
        return self.path / "up.pid"

    def prepare(self) -> None:
        for d in (self.path, self.logs, self.config):
            d.mkdir(parents=True, exist_ok=True)
        # A fresh run starts with fresh live state; logs of the last run are kept until overwritten.
        for f in (self.state_file, self.events_file):
            if f.exists():
                f.unlink()

    def log_file(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def write_json(self, path: Path, data: Any) -> None:
        write_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")

    def read_json(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise InferplaneError(
                f"no running deployment state at {self.path}",
                hint="start one with `inferplane up PATH --detach`, or pass --state-dir",
            ) from None
        except json.JSONDecodeError as exc:
            raise InferplaneError(f"{path} is damaged: {exc}") from None

    def append_event(self, component: str, message: str, **extra: Any) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        record = {"time": time.time(), "component": component, "message": message, **extra}
        with self.events_file.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def events(self) -> Iterator[dict[str, Any]]:
        if not self.events_file.exists():
            return
        for line in self.events_file.read_text().splitlines():
            if line.strip():
                yield json.loads(line)

    def up_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def running(self) -> bool:
        pid = self.up_pid()
        return pid is not None and pid_alive(pid)

    def stop_reason(self) -> str:
        """Why a deployment that is not running stopped, as far as the state directory tells."""
        pid = self.up_pid()
        if pid is None:
            return "stopped cleanly (`inferplane down`, Ctrl-C, or a failed start)"
        if pid_alive(pid):
            return ""
        # a clean stop removes up.pid; a pid file naming a dead process means `up` was killed
        return f"inferplane up (pid {pid}) exited unexpectedly; the guardian stopped its components"


def find_state(name_or_path: str | None, root: str | Path | None = None) -> StateDir:
    """The state directory a `down`/`status`/`logs` call means: a deployment name, a state path, or the only one."""
    base = state_root(root)
    if name_or_path:
        candidate = Path(name_or_path)
        if (candidate / "plan.json").exists():
            return StateDir(candidate)
        if (base / "plan.json").exists() and base.name == name_or_path:
            return StateDir(base)
        named = base / candidate.name
        if (named / "plan.json").exists():
            return StateDir(named)
        raise InferplaneError(
            f"no deployment named {name_or_path!r} under {base}",
            hint=f"deployments here: {', '.join(list_deployments(root)) or 'none'}",
        )
    if (base / "plan.json").exists():
        return StateDir(base)
    found = list_deployments(root)
    running = [n for n in found if StateDir(base / n).running()]
    if len(running) == 1:
        return StateDir(base / running[0])
    if len(running) > 1:
        raise InferplaneError(
            f"several deployments are running under {base}: {', '.join(running)}",
            hint=f"name the one you mean, e.g. `inferplane status {running[0]}`",
        )
    if len(found) == 1:
        return StateDir(base / found[0])  # stopped: `status` says so, `down` cleans up after a killed `up`
    if not found:
        raise InferplaneError(
            f"no deployment state under {base}",
            hint="start one with `inferplane up PATH --detach` (or point --state-dir at its state directory)",
        )
    raise InferplaneError(
        f"no deployment is running under {base} (stopped: {', '.join(found)})",
        hint=f"start one with `inferplane up PATH --detach`, or name one: `inferplane status {found[0]}`",
    )


def list_deployments(root: str | Path | None = None) -> list[str]:
    """Every deployment with state under the root, running or stopped."""
    base = state_root(root)
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / "plan.json").exists())

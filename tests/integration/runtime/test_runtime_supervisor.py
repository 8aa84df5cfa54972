"""The supervisor against real child processes (stdlib HTTP servers standing in for nothing but 'a process with a
readiness endpoint'): staged start, restart with backoff, group recreation, startup failures, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from inferplane.net import free_ports, wait_until
from inferplane.runtime.components import ComponentSpec, Kind, Probe, ProbeType, RestartPolicy, Stage
from inferplane.runtime.procs import pid_alive
from inferplane.runtime.state import StateDir
from inferplane.runtime.supervisor import Phase, StartupError, Supervisor, SupervisorOptions

FAST = SupervisorOptions(startup_timeout=20, backoff_base=0.2, backoff_max=1.0, stop_grace=2, recreate_grace=1)


def http_server(name: str, port: int, **kw: object) -> ComponentSpec:
    return ComponentSpec(
        name=name,
        kind=kw.pop("kind", Kind.MODEL_SERVER),  # type: ignore[arg-type]
        argv=[sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        ports={"http": port},
        probe=Probe(ProbeType.HTTP, port, "/"),
        **kw,  # type: ignore[arg-type]
    )


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.history: list[dict[str, list[str]]] = []
        self.events: list[tuple[str, str]] = []

    def endpoints(self, pools: dict[str, list[ComponentSpec]]) -> None:
        with self.lock:
            self.history.append({p: sorted(s.name for s in specs) for p, specs in pools.items()})

    def event(self, component: str, message: str) -> None:
        with self.lock:
            self.events.append((component, message))

    @property
    def current(self) -> dict[str, list[str]]:
        with self.lock:
            return self.history[-1] if self.history else {}


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    s = StateDir(tmp_path / "state")
    s.prepare()
    return s


def test_staged_start_publishes_ready_servers_and_stops_everything(state: StateDir) -> None:
    p1, p2, p3 = free_ports(3)
    rec = Recorder()
    specs = [
        http_server("ms-0", p1, pools=["pool"], serves=True),
        http_server("ms-1", p2, pools=["pool"], serves=True),
        http_server("router", p3, kind=Kind.EPP, stage=Stage.ROUTERS),
    ]
    sup = Supervisor(specs, state, on_endpoints=rec.endpoints, on_event=rec.event, options=FAST)
    sup.start()
    try:
        assert rec.current == {"pool": ["ms-0", "ms-1"]}
        # the routers started only after the model servers were ready
        started = [c for c, m in rec.events if m.startswith("started")]
        assert started.index("router") > max(started.index("ms-0"), started.index("ms-1"))
        pids = [sup.member(n).pid for n in ("ms-0", "ms-1", "router")]
        assert all(p is not None and pid_alive(p) for p in pids)
        snap = state.read_json(state.state_file)
        assert snap["status"] == "ready"
        assert snap["components"]["ms-1"]["ready"] is True
    finally:
        sup.stop()
    assert not any(pid_alive(p) for p in pids if p is not None)
    assert state.read_json(state.state_file)["status"] == "stopped"


def test_crashed_server_is_withdrawn_then_restarted_with_backoff(state: StateDir) -> None:
    p1, p2 = free_ports(2)
    rec = Recorder()
    specs = [
        http_server("ms-0", p1, pools=["pool"], serves=True),
        http_server("ms-1", p2, pools=["pool"], serves=True),
    ]
    sup = Supervisor(specs, state, on_endpoints=rec.endpoints, on_event=rec.event, options=FAST)
    sup.start()
    try:
        for crash in (1, 2):
            old = sup.member("ms-0").pid
            assert old is not None
            killed_at = time.monotonic()
            os.kill(old, signal.SIGKILL)
            wait_until(lambda: rec.current == {"pool": ["ms-1"]}, 5, what="ms-0 withdrawn")
            withdrawn_after = time.monotonic() - killed_at
            assert withdrawn_after < 1.0
            wait_until(lambda: rec.current == {"pool": ["ms-0", "ms-1"]}, 15, what="ms-0 back")
            assert sup.member("ms-0").pid != old
            assert sup.unit("ms-0").restarts == crash
        backoffs = [m for c, m in rec.events if c == "ms-0" and m.startswith("back-off")]
        # exponential: the second crash waits twice as long as the first
        assert backoffs[0].startswith("back-off 0.2s")
        assert backoffs[1].startswith("back-off 0.4s")
        assert "exited with status -9" in backoffs[0]
        assert sup.member("ms-1").popen is not None
        assert sup.unit("ms-1").restarts == 0
        # the reasons are in the component's own log, between its output, in order (what `inferplane logs` shows)
        marks = [ln for ln in state.log_file("ms-0").read_text().splitlines() if ln.startswith("--- ")]
        kinds = [m.split(" ", 3)[3].split(" ")[0] for m in marks]
        assert kinds == ["starting", "ready"] + ["back-off", "restarting", "starting", "ready"] * 2, marks
        assert "exited with status -9" in marks[2]
        assert state.read_json(state.state_file)["components"]["ms-0"]["last_exit"] == -9
    finally:
        sup.stop()


def test_service_endpoints_are_published_apart_from_pools_and_follow_restarts(state: StateDir) -> None:
    p1, p2 = free_ports(2)
    pools, services = Recorder(), Recorder()
    specs = [
        http_server("ms-0", p1, pools=["pool"], services=["default/direct"], serves=True),
        http_server("ms-1", p2, services=["default/direct"], serves=True),  # in no pool, reached by the Service
    ]
    sup = Supervisor(specs, state, on_endpoints=pools.endpoints, on_service_endpoints=services.endpoints, options=FAST)
    sup.start()
    try:
        assert services.current == {"default/direct": ["ms-0", "ms-1"]}
        assert pools.current == {"pool": ["ms-0"]}
        old = sup.member("ms-1").pid
        assert old is not None
        pool_updates = len(pools.history)
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: services.current == {"default/direct": ["ms-0"]}, 5, what="ms-1 withdrawn")
        wait_until(lambda: services.current == {"default/direct": ["ms-0", "ms-1"]}, 15, what="ms-1 back")
        assert sup.member("ms-1").pid != old
        assert len(pools.history) == pool_updates  # the pool did not change, so its files are not rewritten
    finally:
        sup.stop()


def test_group_member_death_recreates_the_whole_group(state: StateDir) -> None:
    p1, p2, p3 = free_ports(3)
    rec = Recorder()
    specs = [
        http_server("lws-0", p1, pools=["pool"], serves=True, group="lws-0", restart=RestartPolicy.GROUP),
        http_server("lws-0-1", p2, kind=Kind.LWS_WORKER, group="lws-0", restart=RestartPolicy.GROUP, pools=["pool"]),
        http_server("other", p3, pools=["pool"], serves=True),
    ]
    sup = Supervisor(specs, state, on_endpoints=rec.endpoints, on_event=rec.event, options=FAST)
    sup.start()
    try:
        assert rec.current == {"pool": ["lws-0", "other"]}
        leader, worker, other = (sup.member(n).pid for n in ("lws-0", "lws-0-1", "other"))
        assert leader
        assert worker
        assert other
        os.kill(worker, signal.SIGKILL)
        wait_until(lambda: rec.current == {"pool": ["other"]}, 5, what="group withdrawn")
        wait_until(lambda: sup.unit("lws-0").phase == Phase.READY, 15, what="group recreated")
        assert rec.current == {"pool": ["lws-0", "other"]}
        # the leader did not crash, yet it was replaced with its group
        assert not pid_alive(leader)
        assert sup.member("lws-0").pid != leader
        assert sup.member("lws-0-1").pid != worker
        assert sup.member("other").pid == other
        assert any("recreating the whole group" in m for c, m in rec.events if c == "lws-0")
    finally:
        sup.stop()


def test_startup_failure_names_the_component_and_shows_its_log(state: StateDir) -> None:
    (port,) = free_ports(1)
    bad = ComponentSpec(
        name="broken",
        kind=Kind.MODEL_SERVER,
        argv=[sys.executable, "-c", "import sys; print('model weights not found'); sys.exit(3)"],
        probe=Probe(ProbeType.HTTP, port, "/"),
    )
    ok = http_server("fine", free_ports(1)[0])
    sup = Supervisor([ok, bad], state, options=FAST)
    with pytest.raises(StartupError) as info:
        sup.start()
    assert "broken exited with status 3 while starting" in str(info.value)
    assert "model weights not found" in str(info.value)
    fine_pid = sup.member("fine").pid
    assert fine_pid is not None
    assert not pid_alive(fine_pid)


def test_a_child_refusing_its_arguments_shows_its_error_line_not_its_usage_block(state: StateDir) -> None:
    (port,) = free_ports(1)
    script = (
        "import argparse; p = argparse.ArgumentParser(prog='sim'); "
        + "".join(f"p.add_argument('--opt{i}', help='option {i}'); " for i in range(12))
        + "p.add_argument('--max-model-len', type=int); p.parse_args(['--max-model-len', 'lots'])"
    )
    bad = ComponentSpec(
        name="sim", kind=Kind.MODEL_SERVER, argv=[sys.executable, "-c", script], probe=Probe(ProbeType.HTTP, port, "/")
    )
    with pytest.raises(StartupError) as info:
        Supervisor([bad], state, options=FAST).start()
    shown = str(info.value)
    assert "sim exited with status 2 while starting" in shown
    assert "sim: error: argument --max-model-len: invalid int value: 'lots'" in shown
    assert "usage:" not in shown
    assert "--opt3" not in shown


SUPERVISE_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from inferplane.runtime.components import ComponentSpec, Kind, Probe, ProbeType
    from inferplane.runtime.state import StateDir
    from inferplane.runtime.supervisor import Supervisor

    out, p1, p2 = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    specs = [
        ComponentSpec("direct", Kind.MODEL_SERVER,
                      [sys.executable, "-m", "http.server", str(p1), "--bind", "127.0.0.1"],
                      probe=Probe(ProbeType.HTTP, p1, "/")),
        # a shell that forks: its child is a grandchild of the supervisor, out of PDEATHSIG's reach
        ComponentSpec("wrapped", Kind.MODEL_SERVER,
                      ["sh", "-c", f"{sys.executable} -m http.server {p2} --bind 127.0.0.1; echo after"],
                      probe=Probe(ProbeType.HTTP, p2, "/")),
    ]
    state = StateDir(out / "state"); state.prepare()
    sup = Supervisor(specs, state)
    sup.start()
    (out / "ready").write_text("ok")
    time.sleep(600)
    """
)


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [root]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in found:
                found.add(c)
                todo.append(c)
    return found


def test_sigkill_of_the_supervising_process_leaves_no_orphans(tmp_path: Path) -> None:
    p1, p2 = free_ports(2)
    script = tmp_path / "supervise.py"
    script.write_text(SUPERVISE_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path), str(p1), str(p2)], start_new_session=True)
    try:
        wait_until(lambda: (tmp_path / "ready").exists() or proc.poll() is not None, 30, what="supervisor ready")
        assert proc.poll() is None
        tree = _descendants(proc.pid)
        state = StateDir(tmp_path / "state").read_json(StateDir(tmp_path / "state").state_file)
        guardian = state["guardian_pid"]
        tree.add(guardian)
        assert len(tree) >= 4  # http.server, sh, its http.server grandchild, the guardian
        proc.kill()
        proc.wait()
        wait_until(lambda: not any(pid_alive(p) for p in tree), 10, what="every descendant gone")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in _descendants(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def test_leader_ready_startup_policy_starts_workers_after_the_leader(state: StateDir) -> None:
    lp, wp = free_ports(2)
    # the worker refuses to start unless the leader already answers: started too early, startup fails
    check = (
        "import socket, sys, http.server\n"
        f"socket.create_connection(('127.0.0.1', {lp}), timeout=1).close()\n"
        f"http.server.HTTPServer(('127.0.0.1', {wp}), http.server.SimpleHTTPRequestHandler).serve_forever()\n"
    )
    specs = [
        http_server("g-0", lp, pools=["pool"], serves=True, group="g-0", restart=RestartPolicy.GROUP),
        ComponentSpec(
            name="g-0-1",
            kind=Kind.LWS_WORKER,
            argv=[sys.executable, "-c", check],
            probe=Probe(ProbeType.HTTP, wp, "/"),
            group="g-0",
            restart=RestartPolicy.GROUP,
            after_leader=True,
        ),
    ]
    rec = Recorder()
    sup = Supervisor(specs, state, on_endpoints=rec.endpoints, on_event=rec.event, options=FAST)
    sup.start()
    try:
        assert rec.current == {"pool": ["g-0"]}
        order = [c for c, m in rec.events if m.startswith("started")]
        assert order == ["g-0", "g-0-1"]
    finally:
        sup.stop()

"""The CLI around one deployment's state: the curl line with a route's hostnames, a refused second `up` that leaves
the running one alone, crash reasons in `logs` and `status`, the access log, and nameless commands after `down`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from inferplane.net import wait_until
from inferplane.runtime.state import StateDir
from tests.e2e.helpers import DEPLOYMENTS, pids_alive, send_curl_line
from tests.e2e.test_e2e_cli import CURL, INFERPLANE, cli, component_pids

HOST = "llm.example.com"


def _hosted_copy(tmp_path: Path) -> Path:
    """Pattern 1 whose HTTPRoute only takes requests for llm.example.com."""
    copy = tmp_path / "hosted"
    shutil.copytree(DEPLOYMENTS / "pattern1-baseline", copy)
    for f in (copy / "manifests").glob("*.yaml"):
        docs = list(yaml.safe_load_all(f.read_text()))
        for doc in docs:
            if doc and doc.get("kind") == "HTTPRoute":
                doc["spec"]["hostnames"] = [HOST]
        f.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return copy


def _curl_line(stdout: str) -> str:
    [line] = [ln.strip() for ln in stdout.splitlines() if ln.strip().startswith("curl ")]
    return line


def test_one_deployment_through_its_state(tmp_path: Path) -> None:
    states = str(tmp_path / "states")
    source = _hosted_copy(tmp_path)
    up = cli("up", str(source), "--detach", "--port", "0", "--state-dir", states, "--profile", "zero")
    state = StateDir(Path(states) / "hosted")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        line = _curl_line(up.stdout)
        assert f"-H 'Host: {HOST}'" in line
        assert send_curl_line(line).status == 200
        assert send_curl_line(line.replace(f" -H 'Host: {HOST}'", "")).status == 404  # why the header is there
        status = cli("status", "--state-dir", states)
        assert status.returncode == 0, status.stderr
        assert _curl_line(status.stdout) == line

        # a refused second `up` leaves the running one's files alone
        before = {p: p.read_bytes() for p in (state.path / "up.log", state.plan_file, state.pid_file)}
        again = cli("up", str(source), "--detach", "--port", "0", "--state-dir", states)
        assert again.returncode == 1
        assert "hosted is already running" in again.stderr
        assert {p: p.read_bytes() for p in before} == before

        # a crash: its reason in the replica's log and in status -o json
        live = state.read_json(state.state_file)["components"]["vllm-gemma-0"]
        os.kill(live["pid"], signal.SIGKILL)

        def restarted() -> bool:
            data = json.loads(cli("status", "hosted", "--state-dir", states, "-o", "json").stdout)
            [sim] = [c for c in data["components"] if c["name"] == "vllm-gemma-0"]
            return bool(sim["restarts"] >= 1 and sim["last_exit"] == -9 and data["status"] == "ready")

        wait_until(restarted, 60, what="the replica restarted, with last_exit -9")
        logs = cli("logs", "--state-dir", states, "vllm-gemma-0", "--tail", "0").stdout
        assert "back-off" in logs
        assert "vllm-gemma-0 exited with status -9" in logs
        assert logs.count("starting vllm-gemma-0") == 2
        # the gateway's access log, one line per request
        wait_until(
            lambda: "POST /v1/completions 200 127.0.0.1:" in cli("logs", "--state-dir", states, "envoy-access").stdout,
            10,
            what="the curl request in the access log",
        )
        pids = component_pids(state)
    finally:
        down = cli("down", "--state-dir", states)
    assert down.returncode == 0, down.stderr
    wait_until(lambda: not pids_alive(pids), 10, what="every component gone after down")

    # another deployment beside the stopped one: nameless commands mean the running one
    other = cli("up", "pattern1", "--detach", "--port", "0", "--state-dir", states, "--profile", "zero")
    try:
        assert other.returncode == 0, other.stdout + other.stderr
        status = cli("status", "--state-dir", states)
        assert status.returncode == 0, status.stderr
        assert status.stdout.startswith("pattern1-baseline ready")
        assert "starting vllm-gemma-0" in cli("logs", "--state-dir", states, "vllm-gemma-0").stdout
        stopped = cli("status", "hosted", "--state-dir", states)
        assert stopped.returncode == 1
        assert "hosted stopped (not running): stopped cleanly" in stopped.stdout
        assert "ENDPOINTS" not in stopped.stdout  # no stale tables
        assert "curl" not in stopped.stdout
        follow = subprocess.run(
            [*INFERPLANE, "logs", "hosted", "envoy", "-f", "--state-dir", states],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert follow.returncode == 0
        assert "not running" in follow.stderr
    finally:
        down = cli("down", "--state-dir", states)
    assert down.returncode == 0, down.stderr
    assert "stopped pattern1-baseline" in down.stdout


def test_status_after_sigkill_of_up_says_it_exited_unexpectedly(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*INFERPLANE, "up", "pattern1", "--port", "0", "--state-dir", str(tmp_path), "--profile", "zero"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while not CURL.search(proc.stdout.readline()):
            assert proc.poll() is None, "up exited before printing its curl line"
            assert time.monotonic() < deadline, "no curl line"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        status = cli("status", "--state-dir", str(tmp_path))
        assert status.returncode == 1
        assert f"inferplane up (pid {proc.pid}) exited unexpectedly" in status.stdout
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "nope"], "--profile: unknown latency profile 'nope'"),
        (["--time-scale", "-1"], "--time-scale -1 must be > 0"),
        (["--detach", "--time-scale", "-1"], "--time-scale -1 must be > 0"),
    ],
)
def test_bad_simulator_options_fail_before_anything_starts(tmp_path: Path, args: list[str], message: str) -> None:
    done = cli("up", "pattern1", "--port", "0", "--state-dir", str(tmp_path), *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "pattern1-baseline" / "logs").exists()  # no process was started

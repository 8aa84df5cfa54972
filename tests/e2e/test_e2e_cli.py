"""The `inferplane up/status/logs/down` commands as a user runs them, and the no-orphans guarantee."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inferplane.net import wait_until
from inferplane.runtime.state import StateDir
from tests.e2e.helpers import DEPLOYMENTS, pids_alive, post, send_curl_line

INFERPLANE = [sys.executable, "-m", "inferplane"]
CURL = re.compile(r"curl -s (http://127\.0\.0\.1:(\d+))/v1/completions .* -d '(.*)'")


def cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*INFERPLANE, *args], capture_output=True, text=True, timeout=timeout, env=env)


def component_pids(state: StateDir) -> list[int]:
    live = state.read_json(state.state_file)
    pids = [c["pid"] for c in live["components"].values() if c["pid"]]
    return [*pids, live["guardian_pid"]]


def test_detached_up_then_status_logs_and_down(tmp_path: Path) -> None:
    up = cli("up", "pattern1", "--detach", "--port", "0", "--state-dir", str(tmp_path), "--profile", "zero")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        m = CURL.search(up.stdout)
        assert m is not None, up.stdout
        reply = post(m.group(1) + "/v1/completions", m.group(3).encode())
        assert reply.status == 200, reply.body[:300]
        assert reply.headers["x-inference-pod"] == "vllm-gemma-0"

        status = cli("status", "--state-dir", str(tmp_path))
        assert status.returncode == 0, status.stderr
        for word in ("GATEWAYS", "inference-gateway", "gemma-route", "gemma-pool", "FailClose", "vllm-gemma-0"):
            assert word in status.stdout
        # status repeats the curl line of `up`, and it still works
        [line] = [ln.strip() for ln in status.stdout.splitlines() if ln.strip().startswith("curl ")]
        assert line == m.group(0)
        assert send_curl_line(line).status == 200
        data = json.loads(cli("status", "pattern1-baseline", "--state-dir", str(tmp_path), "-o", "json").stdout)
        assert data["status"] == "ready"
        assert data["pools"][0]["ready"] == 1
        assert data["endpoints"][0]["metrics"]["requests_served"] >= 1

        logs = cli("logs", "--state-dir", str(tmp_path), "vllm-gemma-0")
        assert logs.returncode == 0
        assert "starting vllm-gemma-0" in logs.stdout
        everything = cli("logs", "--state-dir", str(tmp_path), "--tail", "5")
        assert "envoy |" in everything.stdout
        assert "gemma-pool-epp |" in everything.stdout
        bad = cli("logs", "--state-dir", str(tmp_path), "nope")
        assert bad.returncode == 1
        assert "no component 'nope'" in bad.stderr

        state = StateDir(tmp_path / "pattern1-baseline")
        follow = subprocess.Popen(
            [*INFERPLANE, "logs", "--state-dir", str(tmp_path), "envoy", "-f", "--tail", "1"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert follow.stdout is not None
            follow.stdout.readline()  # the tail
            with state.log_file("envoy").open("a") as f:
                f.write("a line written while following\n")
            assert follow.stdout.readline().strip() == "a line written while following"
        finally:
            follow.kill()
            follow.wait()
        pids = component_pids(state)
        again = cli("up", "pattern1", "--detach", "--port", "0", "--state-dir", str(tmp_path))
        assert again.returncode == 1
        assert "already running" in again.stderr
    finally:
        down = cli("down", "--state-dir", str(tmp_path))
    assert down.returncode == 0, down.stderr
    assert "stopped pattern1-baseline" in down.stdout
    wait_until(lambda: not pids_alive(pids), 10, what="every component gone after down")
    after = cli("status", "--state-dir", str(tmp_path))
    assert after.returncode == 1
    assert "stopped" in after.stdout


def _foreground(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [*INFERPLANE, "up", "pattern1", "--port", "0", "--state-dir", str(tmp_path), "--profile", "zero", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if CURL.search(line):
            return proc, "".join(seen)
    proc.kill()
    raise AssertionError("no curl line:\n" + "".join(seen))


def test_foreground_up_prints_a_working_curl_line_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    proc, out = _foreground(tmp_path)
    try:
        m = CURL.search(out)
        assert m is not None
        assert "vllm-gemma-0" in out  # the table of what runs where
        curl = shutil.which("curl")
        if curl:  # the exact line, as printed, through a shell
            done = subprocess.run(m.group(0), shell=True, capture_output=True, text=True, timeout=30)
            assert '"choices"' in done.stdout, done.stdout + done.stderr
        pids = component_pids(StateDir(tmp_path / "pattern1-baseline"))
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(30) == 0
        assert pids_alive(pids) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_sigkill_of_up_leaves_no_orphans(tmp_path: Path) -> None:
    proc, _ = _foreground(tmp_path)
    try:
        pids = component_pids(StateDir(tmp_path / "pattern1-baseline"))
        assert len(pids) == 4  # simulator, picker, Envoy, guardian
        assert len(pids_alive(pids)) == len(pids)
        proc.send_signal(signal.SIGKILL)  # no handler runs: only PDEATHSIG and the guardian are left to act
        proc.wait(10)
        wait_until(lambda: not pids_alive(pids), 10, what="every component gone after SIGKILL of up")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_sigterm_of_up_stops_everything(tmp_path: Path) -> None:
    proc, _ = _foreground(tmp_path)
    try:
        pids = component_pids(StateDir(tmp_path / "pattern1-baseline"))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert pids_alive(pids) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_invalid_deployment_gets_the_validate_report_not_a_traceback(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(DEPLOYMENTS / "pattern1-baseline", broken)
    route = broken / "manifests" / "inferencepool.yaml"
    route.write_text(route.read_text().replace("targetPorts:", "targetPortz:"))
    done = cli("up", str(broken), "--port", "0", "--state-dir", str(tmp_path / "state"))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert "inferencepool.yaml" in done.stdout + done.stderr
    assert "targetPorts" in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-pattern"], "no deployment at 'no-such-pattern'"),
        (["pattern1", "--backend", "vllm"], "vLLM is not installed"),
        (["pattern1", "--port", "70000"], "--port 70000 is not a TCP port"),
    ],
)
def test_up_usage_errors_are_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # no vllm anywhere
    done = cli("up", *args, "--state-dir", str(tmp_path), env=env)
    assert done.returncode in (1, 2)
    assert message in done.stderr
    assert "Traceback" not in done.stderr

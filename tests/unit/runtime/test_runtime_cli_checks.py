"""What `up`, `status`, `logs` and `down` decide before (or without) starting anything: the Host of the printed
curl line, which deployment a nameless command means, option checks, and the excerpt of a failed child's log."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from inferplane.api.diagnostics import DiagnosticsError
from inferplane.api.loader import load_deployment
from inferplane.errors import InferplaneError, UsageError
from inferplane.runtime.logtail import error_excerpt, log_excerpt
from inferplane.runtime.plan import RuntimeOptions
from inferplane.runtime.resources import curl_host
from inferplane.runtime.runtime import check_options
from inferplane.runtime.state import StateDir, find_state

REPO = Path(__file__).resolve().parents[3]
PATTERN1 = REPO / "deployments" / "pattern1-baseline"


def _with_hostnames(tmp_path: Path, route_hosts: list[str] | None, listener_host: str | None = None) -> Path:
    copy = tmp_path / "hosted"
    shutil.copytree(PATTERN1, copy)
    for f in (copy / "manifests").glob("*.yaml"):
        docs = list(yaml.safe_load_all(f.read_text()))
        for doc in docs:
            if doc and doc.get("kind") == "HTTPRoute" and route_hosts is not None:
                doc["spec"]["hostnames"] = route_hosts
            if doc and doc.get("kind") == "Gateway" and listener_host is not None:
                doc["spec"]["listeners"][0]["hostname"] = listener_host
        f.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return copy


@pytest.mark.parametrize(
    ("route_hosts", "listener_host", "expected"),
    [
        (None, None, None),  # the pattern as shipped: any host
        (["llm.example.com"], None, "llm.example.com"),
        (["*.example.com"], None, "llm.example.com"),  # a wildcard gets a concrete name it covers
        (None, "gw.example.org", "gw.example.org"),  # no route hostnames: the listener's decides
        (["*.example.org"], "api.example.org", "api.example.org"),  # the intersection
    ],
)
def test_the_curl_line_carries_a_host_the_route_accepts(
    tmp_path: Path, route_hosts: list[str] | None, listener_host: str | None, expected: str | None
) -> None:
    from inferplane.gateway.hostnames import matches_host

    dep = load_deployment(_with_hostnames(tmp_path, route_hosts, listener_host))
    host = curl_host(dep)
    assert host == expected
    if host is not None:
        for pattern in (*(route_hosts or ()), listener_host):
            assert matches_host(pattern, host)


def _state(root: Path, name: str, pid: int | None) -> StateDir:
    state = StateDir(root / name)
    state.path.mkdir(parents=True)
    state.plan_file.write_text("{}")
    if pid is not None:
        state.pid_file.write_text(f"{pid}\n")
    return state


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_a_nameless_command_means_the_only_running_deployment(tmp_path: Path) -> None:
    _state(tmp_path, "a-stopped", None)  # stopped with `down`: no up.pid
    _state(tmp_path, "b-killed", _dead_pid())  # `up` was killed: up.pid names a dead process
    running = _state(tmp_path, "c-running", os.getpid())
    assert find_state(None, tmp_path) == running
    assert find_state("a-stopped", tmp_path).path.name == "a-stopped"  # a stopped one can still be named


def test_several_running_or_none_running_is_an_error_that_lists_the_right_ones(tmp_path: Path) -> None:
    _state(tmp_path, "a-stopped", None)
    _state(tmp_path, "b-stopped", None)
    with pytest.raises(InferplaneError, match=r"no deployment is running .*stopped: a-stopped, b-stopped"):
        find_state(None, tmp_path)
    _state(tmp_path, "c-running", os.getpid())
    _state(tmp_path, "d-running", os.getppid())
    with pytest.raises(InferplaneError, match=r"several deployments are running .*: c-running, d-running\n"):
        find_state(None, tmp_path)


def test_the_stop_reason_tells_a_clean_stop_from_a_killed_up(tmp_path: Path) -> None:
    assert not _state(tmp_path, "clean", None).running()
    assert find_state("clean", tmp_path).stop_reason().startswith("stopped cleanly")
    killed = _state(tmp_path, "killed", _dead_pid())
    assert not killed.running()
    assert "exited unexpectedly" in killed.stop_reason()
    assert _state(tmp_path, "live", os.getpid()).running()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (RuntimeOptions(profile="nope"), "--profile: unknown latency profile 'nope'"),
        (RuntimeOptions(time_scale=-1), "--time-scale -1 must be > 0"),
        (RuntimeOptions(time_scale=0), "--time-scale 0 must be > 0"),
        (RuntimeOptions(startup_delay=-2), "--startup-delay -2 must be >= 0"),
        (RuntimeOptions(epp_config_override="/no/such/file.yaml"), "--epp-config /no/such/file.yaml: no such file"),
    ],
)
def test_bad_simulator_and_picker_options_fail_before_anything_starts(options: RuntimeOptions, message: str) -> None:
    with pytest.raises(UsageError) as info:
        check_options(options)
    assert message in str(info.value)


def test_an_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(UsageError) as info:
        check_options(RuntimeOptions(profile="nope"))
    assert "zero" in (info.value.hint or "")


def test_a_bad_epp_config_file_is_reported_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "epp.yaml"
    bad.write_text(
        "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n"
        "- type: queue-scorer\n- type: magic-scorer\nschedulingProfiles:\n- name: default\n  plugins:\n"
        "  - pluginRef: queue-scorer\n"
    )
    with pytest.raises(DiagnosticsError) as info:
        check_options(RuntimeOptions(epp_config_override=str(bad)))
    assert f"{bad}:5:9: error: plugins[1].type: unknown plugin type 'magic-scorer'" in str(info.value)
    check_options(
        RuntimeOptions(epp_config_override=str(REPO / "deployments/pattern3-caching/manifests/epp-config.yaml"))
    )


USAGE = [
    "usage: inferplane sim [-h] [--model MODEL] [--port PORT]",
    "                      [--max-model-len MAX_MODEL_LEN] [--profile PROFILE]",
    "                      [--time-scale TIME_SCALE] [--enable-lora]",
    "inferplane sim: error: argument --max-model-len: invalid int value: 'lots'",
]


def test_the_excerpt_of_a_failed_child_is_its_error_not_its_usage_block() -> None:
    assert error_excerpt(USAGE) == [USAGE[-1]]
    traceback = ["Traceback (most recent call last):", '  File "x.py", line 1', "ValueError: bad value"]
    assert error_excerpt(["starting", *traceback]) == ["ValueError: bad value"]
    assert error_excerpt(["error: no such model", "  hint: pass --model"]) == [
        "error: no such model",
        "  hint: pass --model",
    ]
    plain = [f"line {i}" for i in range(30)]
    assert error_excerpt(plain) == plain[-15:]


def test_the_log_excerpt_reads_the_last_run_only(tmp_path: Path) -> None:
    log = tmp_path / "sim.log"
    log.write_text(
        "--- 2026-01-01 00:00:00 starting sim\nerror: the old run's error\n"
        "--- 2026-01-01 00:00:05 back-off 1.0s before restart (sim exited with status 2)\n"
        "--- 2026-01-01 00:00:06 starting sim\n" + "\n".join(USAGE) + "\n"
    )
    excerpt = log_excerpt(log)
    assert excerpt.endswith("\n    " + USAGE[-1])
    assert "old run" not in excerpt
    assert "usage:" not in excerpt

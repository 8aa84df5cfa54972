"""Pattern 4 (a LeaderWorkerSet group serving Mixtral) end to end: the group comes up as one, a worker's death
recreates the whole group, and requests meanwhile get a fast 503."""

from __future__ import annotations

import time

from inferplane.net import wait_until
from inferplane.runtime import Runtime
from inferplane.runtime.procs import pid_alive
from tests.e2e.helpers import client, completion, send_curl_line

PATTERN = "pattern4-moe"
MODEL = "mistralai/Mixtral-8x7B-Instruct-v0.1"
LEADER, WORKER = "mixtral-8x7b-0", "mixtral-8x7b-0-1"


def test_the_printed_curl_line_answers_200(deployment: Runtime) -> None:
    """What `inferplane up` and `inferplane status` print under "Try it", sent as the HTTP request it makes."""
    reply = send_curl_line(deployment.running_plan.curl())
    assert reply.status == 200, reply.body[:300]
    assert reply.json()["choices"][0]["text"]


def test_group_comes_up_as_one_unit(deployment: Runtime) -> None:
    unit = deployment.supervisor.unit(LEADER)
    assert [m.spec.name for m in unit.members] == [LEADER, WORKER]
    assert all(m.ready for m in unit.members)
    worker = deployment.running_plan.component(WORKER)
    assert worker.env["LWS_WORKER_INDEX"] == "1"
    assert worker.env["LWS_GROUP_SIZE"] == "2"
    raw = client(deployment).completions.with_raw_response.create(model=MODEL, prompt="hi", max_tokens=3)
    assert raw.headers["x-inference-pod"] == LEADER
    assert deployment.endpoint_urls("mixtral-pool") == [f"http://{deployment.running_plan.component(LEADER).endpoint}"]


def test_worker_death_recreates_the_group_and_requests_get_fast_503s(deployment: Runtime) -> None:
    leader_pid = deployment.pid(LEADER)
    assert leader_pid is not None
    deployment.kill(WORKER)
    wait_until(lambda: deployment.supervisor.unit(LEADER).phase.value != "ready", 5, what="group seen down")
    statuses = []
    deadline = time.monotonic() + 30
    while deployment.supervisor.unit(LEADER).phase.value != "ready" and time.monotonic() < deadline:
        reply = completion(deployment, MODEL)
        statuses.append(reply.status)
        assert reply.seconds < 2.0, "a request hung while the group was down"
        time.sleep(0.05)
    assert statuses, "the group came back before any request was sent"
    assert 503 in statuses, statuses
    assert set(statuses) <= {503, 200}
    deployment.wait_ready(LEADER, timeout=60)
    assert not pid_alive(leader_pid), "the leader survived its group's recreation"
    assert deployment.pid(LEADER) != leader_pid
    assert deployment.supervisor.unit(LEADER).restarts == 1
    wait_until(lambda: completion(deployment, MODEL).status == 200, 15, what="serving again")

"""Pattern 3 (three replicas, prefix-cache-aware picker, FailOpen) end to end: prefix affinity, the picker killed,
a replica killed under load and restarted by the supervisor."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter

from inferplane.net import wait_until
from inferplane.runtime import Runtime
from inferplane.runtime.procs import pid_alive
from tests.e2e.helpers import client, completion, send_curl_line

PATTERN = "pattern3-caching"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
]


def shared_prefix(group: int, tokens: int = 600) -> str:
    # distinct per group from the first block on, so prefixes of different groups share no cached block
    words = [f"{WORDS[(group * 7 + i * 3) % len(WORDS)]}{group}" for i in range(tokens // 2)]
    return "System: " + " ".join(words) + "\n"


def served_by(rt: Runtime, prompt: str) -> str:
    raw = client(rt).completions.with_raw_response.create(model=MODEL, prompt=prompt, max_tokens=2)
    return raw.headers["x-inference-pod"]


def test_the_printed_curl_line_answers_200(deployment: Runtime) -> None:
    """What `inferplane up` and `inferplane status` print under "Try it", sent as the HTTP request it makes."""
    reply = send_curl_line(deployment.running_plan.curl())
    assert reply.status == 200, reply.body[:300]
    assert reply.json()["choices"][0]["text"]


def test_requests_sharing_a_prefix_stick_to_one_replica_while_distinct_prefixes_spread(deployment: Runtime) -> None:
    homes = {}
    for group in range(8):
        prefix = shared_prefix(group)
        pods = [served_by(deployment, f"{prefix}Question {q}: what is {q} + {group}?") for q in range(5)]
        # the first request seeds the cache; the rest follow it to the replica that holds the prefix
        assert len(set(pods[1:])) == 1, (group, pods)
        assert pods[1] == pods[0], (group, pods)
        homes[group] = pods[0]
    assert len(set(homes.values())) >= 2, homes


def test_failopen_pool_keeps_serving_while_the_picker_is_down(deployment: Runtime) -> None:
    epp = "llama-8b-pool-epp"
    old = deployment.kill(epp)
    wait_until(lambda: deployment.supervisor.unit(epp).phase.value != "ready", 5, what="picker seen down")
    pods = Counter()
    for i in range(6):
        reply = completion(deployment, MODEL, prompt=f"fail open {i}")
        assert reply.status == 200, reply.body[:300]
        pods[reply.headers["x-inference-pod"]] += 1
    assert deployment.supervisor.unit(epp).restarts == 0, "the picker came back before the requests were sent"
    assert sum(pods.values()) == 6
    deployment.wait_ready(epp, timeout=30)
    assert deployment.pid(epp) != old


def test_killing_a_replica_under_load_only_fails_what_it_was_running(deployment: Runtime) -> None:
    victim = "llm-d-pattern3-decode-1"
    results: list[tuple[float, int, str]] = []
    lock = threading.Lock()
    stop = time.monotonic() + 4.0
    killed_at: list[float] = []

    def worker(n: int) -> None:
        i = 0
        while time.monotonic() < stop and i < 2_000:  # the time bound ends it; the count is a backstop
            started = time.monotonic()
            reply = completion(deployment, MODEL, prompt=f"load {n} {i} " + shared_prefix(n % 3, 40))
            with lock:
                results.append((started, reply.status, reply.headers.get("x-inference-pod", "")))
            i += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    pid = deployment.kill(victim)
    wait_until(lambda: not pid_alive(pid), 5, what=f"{victim} dead")
    killed_at.append(time.monotonic())
    # the supervisor restarts the victim after its back-off (1 s); the load may outlast that, so note when it did:
    # a request sent after the restart may rightly be served by the new process
    restarted_at = math.inf
    while any(t.is_alive() for t in threads):  # the workers end by `stop` (4 s)
        if restarted_at == math.inf and deployment.supervisor.unit(victim).restarts >= 1:
            restarted_at = time.monotonic()
        next(t for t in threads if t.is_alive()).join(0.01)
    # from the kill to the restart the victim is gone: a request sent then may still be picked for it (the picker
    # learns of the death at its next scrape), but Envoy retries it elsewhere, so none of them may fail
    after = [r for r in results if killed_at[0] < r[0] < restarted_at]
    failed = [r for r in results if r[1] != 200]
    assert after, "no requests were sent after the kill"
    # requests that had not reached the dead replica were sent elsewhere; at most the 4 in flight could fail
    assert all(status == 200 for _, status, _ in after), Counter(s for _, s, _ in after)
    assert len(failed) <= 4, failed
    assert all(pod != victim for _, status, pod in after if status == 200)
    deployment.wait_ready(victim, timeout=60)
    assert deployment.supervisor.unit(victim).restarts == 1
    events = [e["message"] for e in deployment.state.events() if e["component"] == victim] if deployment.state else []
    assert any(m.startswith("back-off") and "exited with status -9" in m for m in events), events
    # back in the pool: it serves again
    seen = {completion(deployment, MODEL, prompt=f"after {i}").headers.get("x-inference-pod") for i in range(30)}
    assert victim in seen or len(seen) >= 2


def test_status_shows_live_endpoints(deployment: Runtime) -> None:
    status = deployment.status()
    assert status["status"] == "ready"
    pool = status["pools"][0]
    assert (pool["name"], pool["failure_mode"], pool["endpoints"]) == ("llama-8b-pool", "FailOpen", 3)
    served = sum((e["metrics"] or {}).get("requests_served") or 0 for e in status["endpoints"])
    assert served > 0
    assert all(e["metrics"] is not None for e in status["endpoints"] if e["ready"])
    # the shared-prefix traffic above shows up as prefix-cache hits on the replicas that took it
    assert any(((e["metrics"] or {}).get("prefix_hit_rate") or 0) > 0 for e in status["endpoints"])

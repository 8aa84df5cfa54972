"""Plain Service backends under `inferplane up`: an HTTPRoute rule that sends to a Service reaches the replicas its
selector picks (on the local port of its targetPort), follows their restarts, and a Service that selects nothing
keeps the Gateway API answer for a rule without a valid backend (500), with a warning at `up`."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferplane.net import wait_until
from inferplane.runtime import Runtime
from inferplane.runtime.supervisor import SupervisorOptions
from tests.e2e.helpers import FAST, assert_openai_error, completion, post

MODEL = "org/direct-model"
MANIFESTS = {
    "gateway.yaml": """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: local
  listeners: [{name: http, protocol: HTTP, port: 80}]
""",
    "route.yaml": """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mixed}
spec:
  parentRefs: [{name: gw}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /direct}}]
      filters:
        - type: URLRewrite
          urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /v1}}
      backendRefs: [{kind: Service, name: direct, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /nothing}}]
      backendRefs: [{kind: Service, name: nothing, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /v1}}]
      backendRefs: [{group: inference.networking.k8s.io, kind: InferencePool, name: pool}]
""",
    "pool.yaml": """
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: pool}
spec:
  selector: {matchLabels: {app: m}}
  targetPorts: [{number: 8000}]
  endpointPickerRef: {name: pool-epp, port: {number: 9002}, failureMode: FailClose}
""",
    "services.yaml": """
apiVersion: v1
kind: Service
metadata: {name: direct}
spec:
  selector: {app: m}
  ports: [{name: http, port: 80, targetPort: 8000}]
---
apiVersion: v1
kind: Service
metadata: {name: nothing}
spec:
  selector: {app: absent}
  ports: [{port: 80, targetPort: 8000}]
""",
    "servers.yaml": f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: m}}
spec:
  replicas: 2
  template:
    metadata: {{labels: {{app: m}}}}
    spec:
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.11.0
          args: [--model, {MODEL}, --port, "8000"]
""",
}
# a long first backoff: a killed replica stays down long enough to observe Envoy without it
SUPERVISION = SupervisorOptions(startup_timeout=90, backoff_base=4.0, backoff_max=4.0, stop_grace=3)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    root = tmp_path_factory.mktemp("services")
    for name, text in MANIFESTS.items():
        (root / "manifests").mkdir(exist_ok=True)
        (root / "manifests" / name).write_text(text.lstrip())
    rt = Runtime(root, port=0, state_dir=root / "state", supervisor=SUPERVISION, **FAST)
    rt.start()
    try:
        yield rt
    finally:
        rt.stop()


def direct(rt: Runtime) -> tuple[int, str]:
    body = json.dumps({"model": MODEL, "prompt": "Hi", "max_tokens": 2}).encode()
    reply = post(rt.base_url + "/direct/completions", body)
    return reply.status, reply.headers.get("x-inference-pod", "")


def service_hosts(rt: Runtime) -> set[str]:
    """The hosts Envoy holds for the Service's cluster right now (its admin /clusters listing)."""
    url = f"http://127.0.0.1:{rt.running_plan.admin_port}/clusters?format=json"
    with urllib.request.urlopen(url, timeout=5) as resp:
        data = json.load(resp)
    for cluster in data["cluster_statuses"]:
        if cluster["name"] == "service.default.direct":
            return {
                f"{h['address']['socket_address']['address']}:{h['address']['socket_address']['port_value']}"
                for h in cluster.get("host_statuses", [])
            }
    raise AssertionError("no Envoy cluster for Service default/direct")


def test_service_rule_reaches_every_selected_replica_and_the_pool_rule_its_pool(deployment: Runtime) -> None:
    replicas = {c.name for c in deployment.running_plan.servers()}
    assert replicas == {"m-0", "m-1"}
    seen = set()
    for _ in range(8):  # round robin over the Service's two endpoints
        status, pod = direct(deployment)
        assert status == 200
        seen.add(pod)
    assert seen == replicas
    pooled = completion(deployment, MODEL)
    assert pooled.status == 200, pooled.body[:300]
    assert pooled.headers["x-inference-pod"] in replicas
    # locally the replicas listen on their own free ports, not on the Service's targetPort 8000
    assert service_hosts(deployment) == {c.endpoint for c in deployment.running_plan.servers()}


def test_service_that_selects_nothing_answers_500_and_is_warned_about(deployment: Runtime) -> None:
    [warning] = deployment.running_plan.warnings
    assert warning.startswith("Service default/nothing selects no model server (selector app=absent)")
    reply = post(deployment.base_url + "/nothing/completions", b"{}")
    assert reply.status == 500


def test_service_endpoints_follow_a_replica_restart(deployment: Runtime) -> None:
    victim = deployment.running_plan.component("m-0")
    survivor = deployment.running_plan.component("m-1")
    deployment.kill("m-0")
    wait_until(lambda: service_hosts(deployment) == {survivor.endpoint}, 3, what="m-0 withdrawn from the Service")
    replies = [direct(deployment) for _ in range(6)]
    assert deployment.supervisor.unit("m-0").restarts == 0, "m-0 came back before the requests were sent"
    assert replies == [(200, "m-1")] * 6
    deployment.wait_ready("m-0", timeout=60)
    wait_until(lambda: service_hosts(deployment) == {victim.endpoint, survivor.endpoint}, 5, what="m-0 back")
    assert {direct(deployment)[1] for _ in range(6)} == {"m-0", "m-1"}


def test_status_and_plan_json_keep_the_services(deployment: Runtime) -> None:
    assert deployment.state is not None
    saved = json.loads(Path(deployment.state.plan_file).read_text())
    assert saved["services"]["default/direct"]["members"] == ["m-0", "m-1"]
    assert saved["services"]["default/nothing"]["members"] == []
    assert_openai_error(post(deployment.base_url + "/v1/completions", b'{"model": '), 400)

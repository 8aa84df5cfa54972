"""The loaded Deployment: lookups, kept Kubernetes objects, warnings, and the validate summary."""

from __future__ import annotations

from pathlib import Path

from inferplane.api import load_deployment
from inferplane.api.summary import summarize
from tests.conftest import DEPLOYMENTS
from tests.unit.api.helpers import GATEWAY, flat, pool, route, write_tree

OTHERS = """
apiVersion: v1
kind: Namespace
metadata: {name: llm}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {a: b}
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec: {ports: [{port: 8080}], selector: {app: echo}}
"""


def test_lookups_and_kept_objects(tmp_path: Path) -> None:
    service_route = route("p").replace(
        "    - backendRefs: [{group: inference.networking.k8s.io, kind: InferencePool, name: p}]",
        "    - backendRefs: [{group: inference.networking.k8s.io, kind: InferencePool, name: p}]\n"
        "    - matches: [{path: {type: PathPrefix, value: /echo}}]\n      backendRefs: [{name: echo, port: 8080}]",
    )
    write_tree(
        tmp_path,
        {
            "a.yaml": flat("a", "org/a"),
            "manifests/gw.yaml": GATEWAY,
            "manifests/pool.yaml": pool("p", "app: a"),
            "manifests/route.yaml": service_route,
            "manifests/others.yaml": OTHERS,
        },
    )
    dep = load_deployment(tmp_path)
    p = dep.pool("p")
    assert p is not None
    assert dep.pool("missing") is None
    assert [m.name for m in dep.pool_members(p)] == ["a"]
    assert dep.pools_for(dep.model_services[0]) == [p]
    assert [r.metadata.name for r in dep.routes_to(p)] == ["r-p"]
    assert dep.service("echo") is not None
    assert sorted(o.kind for o in dep.others) == ["ConfigMap", "Namespace"]  # type: ignore[attr-defined]
    assert not dep.needs_bbr
    assert dep.gateway("gw") is not None
    source = dep.source("InferencePool", "p")
    assert source is not None
    assert str(source.pos(("spec", "targetPorts"))).endswith("manifests/pool.yaml:7:16")


def test_summary_of_pattern3() -> None:
    summary = summarize(load_deployment(DEPLOYMENTS / "pattern3-caching"))
    [gw] = summary["gateways"]
    assert gw["listeners"] == [{"name": "http", "port": 80, "protocol": "HTTP", "hostname": None}]
    [p] = summary["inferencePools"]
    assert p["members"] == ["llm-d-pattern3-decode"]
    assert p["failureMode"] == "FailOpen"
    assert p["eppConfig"] == "manifests/epp-config.yaml"
    assert p["scorers"] == ["queue-scorer×2", "kv-cache-utilization-scorer×2", "prefix-cache-scorer×3"]
    [ms] = summary["modelServices"]
    assert (ms["replicas"], ms["port"], ms["accelerator"]) == (3, 8000, "gpu")


def test_pattern4_lws_model_service() -> None:
    dep = load_deployment(DEPLOYMENTS / "pattern4-moe")
    [lws] = dep.leader_worker_sets
    [ms] = dep.model_services
    assert ms.lws == lws.name
    assert ms.group_size == 2
    assert ms.vllm.tensor_parallel_size == 8
    assert ms.model == "mistralai/Mixtral-8x7B-Instruct-v0.1"
    assert ms.labels["role"] == "leader"
    assert [m.name for m in dep.pool_members(dep.inference_pools[0])] == [ms.name]

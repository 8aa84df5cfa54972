"""The pure part of Kubernetes discovery: which pods are endpoints, and what a pool and its objectives say."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from inferplane.epp.datalayer.kubernetes import ObjectiveSpec, pod_endpoints, pod_ready, pool_objectives, pool_spec


def pod(name: str, ip: str | None = "10.0.0.1", *, ready: bool = True, phase: str = "Running", **meta) -> dict:
    status: dict = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status["podIP"] = ip
    return {"metadata": {"name": name, "namespace": "ns", "labels": {"app": "x"}, **meta}, "status": status}


def test_pod_readiness_rules() -> None:
    assert pod_ready(pod("a"))
    assert not pod_ready(pod("a", ready=False))
    assert not pod_ready(pod("a", None))
    assert not pod_ready(pod("a", phase="Pending"))
    assert not pod_ready(pod("a", deletionTimestamp="2026-01-01T00:00:00Z"))
    assert not pod_ready({"metadata": {"name": "a"}, "status": {"phase": "Running", "podIP": "10.0.0.1"}})


def test_pool_spec() -> None:
    spec = pool_spec({"spec": {"selector": {"matchLabels": {"b": "2", "a": "1"}}, "targetPorts": [{"number": 8000}]}})
    assert spec is not None
    assert spec.label_selector == "a=1,b=2"
    assert spec.target_ports == (8000,)
    assert pool_spec({"spec": {"selector": {"matchLabels": {}}, "targetPorts": [{"number": 8000}]}}) is None
    assert pool_spec({"spec": {"selector": {"matchLabels": {"a": "1"}}}}) is None


def test_endpoints_per_target_port_named_like_upstream() -> None:
    spec = pool_spec({"spec": {"selector": {"matchLabels": {"app": "x"}}, "targetPorts": [{"number": 8000},
                                                                                       {"number": 8001}]}})  # fmt: skip
    assert spec is not None
    eps = pod_endpoints([pod("b", "10.0.0.2"), pod("a", "10.0.0.1"), pod("c", "10.0.0.3", ready=False)], spec)
    assert [(e.name, e.hostport) for e in eps] == [
        ("a-rank-0", "10.0.0.1:8000"), ("a-rank-1", "10.0.0.1:8001"),
        ("b-rank-0", "10.0.0.2:8000"), ("b-rank-1", "10.0.0.2:8001"),
    ]  # fmt: skip
    assert eps[0].namespace == "ns"
    assert eps[0].label_dict() == {"app": "x"}


@given(st.lists(st.tuples(st.integers(0, 50), st.booleans()), max_size=20), st.randoms())
def test_endpoint_set_depends_only_on_ready_pods_not_their_order(pods, rnd) -> None:
    spec = pool_spec({"spec": {"selector": {"matchLabels": {"app": "x"}}, "targetPorts": [{"number": 8000}]}})
    assert spec is not None
    objs = [pod(f"p{i}", f"10.0.{i}.1", ready=r) for i, r in dict(pods).items()]
    shuffled = list(objs)
    rnd.shuffle(shuffled)
    eps = pod_endpoints(objs, spec)
    assert eps == pod_endpoints(shuffled, spec)
    assert {e.name for e in eps} == {o["metadata"]["name"] for o in objs if pod_ready(o)}


def test_objectives_of_one_pool() -> None:
    objs = [
        {"metadata": {"name": "hi"}, "spec": {"priority": 5, "poolRef": {"name": "p"}}},
        {"metadata": {"name": "default-priority"}, "spec": {"poolRef": {"name": "p"}}},
        {"metadata": {"name": "theirs"}, "spec": {"priority": 1, "poolRef": {"name": "q"}}},
    ]
    assert pool_objectives(objs, "p") == {
        "hi": ObjectiveSpec("hi", 5),
        "default-priority": ObjectiveSpec("default-priority", 0),
    }

"""Property test of the cross-checks: random small deployments either fail with DiagnosticsError or, when they load,
satisfy every invariant the checks promise (routes reach defined things, pools select members on the right port,
no two pools share a model service, model headers name served models)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from inferplane.api import Deployment, DiagnosticsError, load_deployment

NAMES = st.sampled_from(["a", "b", "c"])
LABELS = st.dictionaries(st.sampled_from(["app", "tier"]), st.sampled_from(["x", "y"]), min_size=1, max_size=2)
PORTS = st.sampled_from([8000, 8001])
MODELS = st.sampled_from(["org/x", "org/y"])


@st.composite
def deployments(draw: st.DrawFn) -> dict[str, Any]:
    services = draw(st.lists(st.tuples(NAMES, LABELS, PORTS, MODELS), max_size=3, unique_by=lambda t: t[0]))
    pools = draw(st.lists(st.tuples(NAMES, LABELS, PORTS), max_size=3, unique_by=lambda t: t[0]))
    routes = draw(
        st.lists(
            st.tuples(NAMES, st.sampled_from(["gw", "other"]), NAMES, st.none() | MODELS),
            max_size=3,
            unique_by=lambda t: t[0],
        )
    )
    return {"services": services, "pools": pools, "routes": routes}


def write(root: Path, spec: dict[str, Any]) -> None:
    (root / "manifests").mkdir()
    for name, labels, port, model in spec["services"]:
        values = {
            "modelservice": {
                "name": f"ms-{name}",
                "image": {"repository": "vllm/vllm-openai"},
                "model": model,
                "args": [f"--port={port}"],
                "labels": labels,
            }
        }
        (root / f"{name}.yaml").write_text(yaml.safe_dump(values))
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "gw"},
            "spec": {"gatewayClassName": "c", "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]},
        }
    ]
    for name, labels, port in spec["pools"]:
        docs.append(
            {
                "apiVersion": "inference.networking.k8s.io/v1",
                "kind": "InferencePool",
                "metadata": {"name": f"p-{name}"},
                "spec": {"selector": {"matchLabels": labels}, "targetPorts": [{"number": port}]},
            }
        )
    for name, gateway, pool, header in spec["routes"]:
        match = {"headers": [{"name": "X-Gateway-Model-Name", "value": header}]} if header else {}
        docs.append(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": {"name": name},
                "spec": {
                    "parentRefs": [{"name": gateway}],
                    "rules": [
                        {
                            "matches": [match] if match else [],
                            "backendRefs": [
                                {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": f"p-{pool}"}
                            ],
                        }
                    ],
                },
            }
        )
    (root / "manifests" / "all.yaml").write_text(yaml.safe_dump_all(docs))


def check_invariants(dep: Deployment) -> None:
    for pool in dep.inference_pools:
        members = dep.pool_members(pool)
        assert members, f"pool {pool.name} loaded without members"
        for ms in members:
            assert set(pool.target_port_numbers) <= set(ms.serving_ports())
            assert dep.pools_for(ms) == [pool]
    for route in dep.http_routes:
        for ref in route.spec.parent_refs:
            assert dep.gateway(ref.name) is not None
        for rule in route.spec.rules:
            pools = [dep.pool(b.name) for b in rule.backend_refs]
            assert all(p is not None for p in pools)
            served = {n for p in pools if p is not None for n in dep.model_names_for_pool(p)}
            for match in rule.matches:
                for h in match.headers:
                    assert h.value in served


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deployments())
def test_loaded_deployments_satisfy_the_checks(spec: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp), spec)
        try:
            dep = load_deployment(tmp)
        except DiagnosticsError as exc:
            failure: DiagnosticsError | None = exc
        else:
            failure = None
            event("loaded")
            check_invariants(dep)
    if failure is not None:
        assert failure.errors
        assert all(Path(d.file).name in {"all.yaml", "a.yaml", "b.yaml", "c.yaml"} for d in failure.errors)

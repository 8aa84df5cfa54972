"""Small in-test plans for the renderers, independent of the patterns under deployments/."""

from __future__ import annotations

import pytest

from inferplane.deploy.plan import EnvVar, ModelServerPlan, PoolPlan, RenderOptions, RenderPlan
from inferplane.deploy.validate import ManifestValidator
from tests.conftest import SHARED

EPP_CONFIG = """apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
"""

GATEWAY = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "Gateway",
    "metadata": {"name": "inference-gateway"},
    "spec": {"gatewayClassName": "istio", "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]},
}


def route(name: str, pool: str, model: str | None = None) -> dict:
    match: dict = {"path": {"type": "PathPrefix", "value": "/"}}
    if model:
        match["headers"] = [{"type": "Exact", "name": "X-Gateway-Model-Name", "value": model}]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "inference-gateway"}],
            "rules": [
                {
                    "matches": [match],
                    # The legacy group and a port: rendering must normalise both.
                    "backendRefs": [
                        {"group": "inference.networking.x-k8s.io", "kind": "InferencePool", "name": pool, "port": 8000}
                    ],
                }
            ],
        },
    }


def server(name: str = "qwen", **kw) -> ModelServerPlan:
    defaults = dict(
        model="Qwen/Qwen3-0.6B",
        image="vllm/vllm-openai:v0.11.0",
        port=8000,
        labels={"llm-d.ai/inference-serving": "true", "app": name},
        command=("vllm", "serve"),
        args=("Qwen/Qwen3-0.6B", "--port", "8000"),
        env=(EnvVar("HF_TOKEN", secret_name="hf-token", secret_key="HF_TOKEN"),),
    )
    defaults.update(kw)
    return ModelServerPlan(name=name, **defaults)  # type: ignore[arg-type]


def pool(name: str = "qwen-pool", selector: dict | None = None, **kw) -> PoolPlan:
    kw.setdefault("epp_config", EPP_CONFIG)
    return PoolPlan(name=name, selector=selector or {"app": "qwen"}, target_ports=(8000,), **kw)


def plan(**kw) -> RenderPlan:
    defaults = dict(
        name="test",
        namespace="llm",
        gateways=(GATEWAY,),
        routes=(route("qwen-route", "qwen-pool"),),
        pools=(pool(),),
        model_servers=(server(),),
    )
    defaults.update(kw)
    return RenderPlan(**defaults)  # type: ignore[arg-type]


def options(target: str = "gke", **kw) -> RenderOptions:
    return RenderOptions(target=target, image="inferplane:test", **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def validator() -> ManifestValidator:
    """Every object must be covered by some schema: the shared CRDs, the Kubernetes schemas or a hand schema."""
    v = ManifestValidator(SHARED / "schemas", require_schema=True)
    assert v.has_kubernetes_schemas, "kubernetes-validate must be installed for the schema tests"
    return v

"""Model conversions: legacy and loose pools, InferenceModel, LeaderWorkerSet defaults, model-service forms."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferplane.api import DiagnosticsError, load_deployment
from inferplane.api.lws import LeaderWorkerSet
from inferplane.api.objective import InferenceModel
from inferplane.api.pool import LegacyInferencePool
from tests.unit.api.helpers import GATEWAY, flat, pool, route, write_tree


def test_legacy_pool_converts_to_v1_with_upstream_defaults() -> None:
    legacy = LegacyInferencePool.model_validate(
        {
            "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
            "kind": "InferencePool",
            "metadata": {"name": "p"},
            "spec": {"selector": {"app": "m"}, "targetPortNumber": 8000, "extensionRef": {"name": "p-epp"}},
        }
    )
    v1 = legacy.to_v1()
    assert v1.api_version == "inference.networking.k8s.io/v1"
    assert v1.match_labels == {"app": "m"}
    assert v1.target_port_numbers == [8000]
    ref = v1.spec.endpoint_picker_ref
    assert ref is not None
    assert ref.port is not None
    assert (ref.name, ref.kind, ref.port.number, ref.failure_mode) == ("p-epp", "Service", 9002, "FailClose")


def test_legacy_pool_in_a_directory_points_errors_at_the_fields_written(tmp_path: Path) -> None:
    legacy = """
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: p}
spec:
  selector: {app: m}
  targetPortNumber: 8001
  extensionRef: {name: p-epp}
"""
    write_tree(
        tmp_path,
        {
            "ms.yaml": flat(),
            "manifests/pool.yaml": legacy,
            "manifests/gw.yaml": GATEWAY,
            "manifests/route.yaml": route(),
        },
    )
    with pytest.raises(DiagnosticsError) as info:
        load_deployment(tmp_path)
    [error] = info.value.errors
    assert (error.line, error.path) == (6, "spec.targetPortNumber")
    assert error.message.startswith("targetPorts [8001] but model service 'm' serves on port 8000")


def test_loose_llmd_pool_is_accepted_with_a_warning(tmp_path: Path) -> None:
    loose = """
apiVersion: inference.gateway.llm-d.ai/v1alpha2
kind: InferencePool
metadata: {name: p}
spec:
  selector: {app: m}
  targetPort: 8000
  scheduler: {type: EPP}
"""
    write_tree(
        tmp_path,
        {
            "ms.yaml": flat(),
            "manifests/pool.yaml": loose,
            "manifests/gw.yaml": GATEWAY,
            "manifests/route.yaml": route(),
        },
    )
    dep = load_deployment(tmp_path)
    [p] = dep.inference_pools
    assert p.target_port_numbers == [8000]
    assert dep.pool_members(p)[0].name == "m"
    [warning] = [w for w in dep.warnings if w.path == "apiVersion"]
    assert warning.message == (
        "inference.gateway.llm-d.ai/v1alpha2 is not a real API: accepted as inference.networking.k8s.io/v1"
    )


def test_inference_model_becomes_objective_and_weighted_rewrite() -> None:
    legacy = InferenceModel.model_validate(
        {
            "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
            "kind": "InferenceModel",
            "metadata": {"name": "food"},
            "spec": {
                "modelName": "food-review",
                "criticality": "Sheddable",
                "poolRef": {"name": "p"},
                "targetModels": [{"name": "food-review-1", "weight": 90}, {"name": "food-review-2", "weight": 10}],
            },
        }
    )
    objective = legacy.to_objective()
    assert objective.priority == -1
    assert objective.sheddable
    assert objective.spec.pool_ref.name == "p"
    rewrite = legacy.to_rewrite()
    assert rewrite is not None
    assert rewrite.matched_models() == {"food-review"}
    [rule] = rewrite.spec.rules
    assert [(t.model_rewrite, t.weight) for t in rule.targets] == [("food-review-1", 90), ("food-review-2", 10)]


def test_inference_model_names_count_as_served_by_the_pool(tmp_path: Path) -> None:
    model = """
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: alias}
spec:
  modelName: my-alias
  poolRef: {name: p}
  targetModels: [{name: org/model}]
"""
    write_tree(
        tmp_path,
        {
            "ms.yaml": flat(),
            "manifests/pool.yaml": pool(),
            "manifests/gw.yaml": GATEWAY,
            "manifests/route.yaml": route(header="my-alias"),
            "manifests/model.yaml": model,
        },
    )
    dep = load_deployment(tmp_path)
    assert dep.model_names_for_pool(dep.inference_pools[0]) == ["org/model", "my-alias"]
    assert dep.objectives[0].priority == 0
    assert dep.needs_bbr


def test_lws_defaults_and_deprecated_default_policy() -> None:
    data = {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": "l"},
        "spec": {"leaderWorkerTemplate": {"workerTemplate": {"spec": {"containers": [{"name": "c"}]}}}},
    }
    lws = LeaderWorkerSet.model_validate(data)
    assert (lws.spec.replicas, lws.size, lws.restart_policy) == (1, 1, "RecreateGroupOnPodRestart")
    assert lws.spec.startup_policy == "LeaderCreated"
    assert lws.leader_template is lws.worker_template
    data["spec"]["leaderWorkerTemplate"]["restartPolicy"] = "Default"  # type: ignore[index]
    assert LeaderWorkerSet.model_validate(data).restart_policy == "None"


def test_pattern_form_model_service(tmp_path: Path) -> None:
    values = """
modelservice:
  name: vllm-gemma
  image: {repository: registry.redhat.io/rhaiis/vllm-tpu-rhel9, tag: "3.2.5"}
  model: google/gemma-2b-it
  replicas: 2
  resources: {limits: {google.com/tpu: 4}}
  env:
    - {name: HF_TOKEN, valueFrom: {secretKeyRef: {name: hf, key: token}}}
  args: [--dtype=half, --max-model-len=2048, --port=8000]
"""
    write_tree(tmp_path, {"values.yaml": values})
    [ms] = load_deployment(tmp_path / "values.yaml").model_services
    assert ms.image == "registry.redhat.io/rhaiis/vllm-tpu-rhel9:3.2.5"
    assert (ms.accelerator, ms.accelerator_count, ms.replicas, ms.port) == ("tpu", 4, 2, 8000)
    assert ms.labels == {"app": "vllm-gemma"}
    assert ms.served_model_names == ["google/gemma-2b-it"]
    assert ms.vllm.max_model_len == 2048
    assert ms.vllm.dtype == "half"
    assert [(r.name, r.key) for r in ms.secret_refs] == [("hf", "token")]
    assert ms.command == ["vllm", "serve"]
    assert ms.args[0] == "google/gemma-2b-it"


CHART = """
modelArtifacts:
  uri: "hf://org/model"
  name: "served/name"
  authSecretName: hf-token
  labels: {llm-d.ai/guide: g}
routing:
  servicePort: 8000
decode:
  replicas: 2
  parallelism: {tensor: 2}
  containers:
    - name: vllm
      image: ghcr.io/llm-d/llm-d-cuda:v0.5.0
      modelCommand: vllmServe
      args: ["--max-model-len=4096"]
prefill:
  replicas: 1
  containers:
    - {name: vllm, image: ghcr.io/llm-d/llm-d-cuda:v0.5.0, modelCommand: vllmServe}
"""


def test_chart_form_follows_the_chart_rules(tmp_path: Path) -> None:
    write_tree(tmp_path, {"ms-values.yaml": CHART})
    dep = load_deployment(tmp_path / "ms-values.yaml")
    decode, prefill = dep.model_services
    assert (decode.name, prefill.name) == ("ms-decode", "ms-prefill")
    # decode has the routing sidecar (proxy enabled by default): it serves on servicePort, vLLM on targetPort
    assert (decode.port, decode.proxy_target_port, decode.vllm.port) == (8000, 8200, 8200)
    assert (prefill.port, prefill.proxy_target_port, prefill.vllm.port) == (8000, None, 8000)
    assert decode.command == ["vllm", "serve"]
    assert decode.args[:3] == ["org/model", "--port", "8200"]
    assert "--tensor-parallel-size" in decode.args
    assert decode.served_model_names == ["served/name"]
    assert decode.model == "org/model"
    assert decode.labels == {"llm-d.ai/inference-serving": "true", "llm-d.ai/guide": "g", "llm-d.ai/role": "decode"}
    assert (decode.accelerator, decode.accelerator_count) == ("gpu", 2)  # tensor × dataLocal
    env = {e.name: e for e in decode.env}
    assert env["TP_SIZE"].value == "2"
    assert env["HF_TOKEN"].secret_ref is not None
    assert decode.vllm.max_model_len == 4096


def test_chart_unknown_top_level_key_is_a_warning_with_suggestion(tmp_path: Path) -> None:
    write_tree(tmp_path, {"ms-values.yaml": CHART + "multinodes: true\n"})
    dep = load_deployment(tmp_path / "ms-values.yaml")
    [w] = [w for w in dep.warnings if w.path == "multinodes"]
    assert w.message == "unknown field 'multinodes' (the chart ignores it)"
    assert w.hint == "did you mean multinode?"


def test_multinode_chart_group_size_from_parallelism(tmp_path: Path) -> None:
    values = CHART.replace("parallelism: {tensor: 2}", "parallelism: {data: 16, dataLocal: 8}") + "multinode: true\n"
    write_tree(tmp_path, {"ms-values.yaml": values})
    decode = load_deployment(tmp_path / "ms-values.yaml").model_services[0]
    assert decode.group_size == 2
    assert decode.accelerator_count == 8


def test_deployment_manifest_running_vllm_is_a_model_service(tmp_path: Path) -> None:
    manifest = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  template:
    metadata: {labels: {app: m}}
    spec:
      imagePullSecrets: [{name: regcred}]
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.11.0
          args: [--model, org/model, --port, "8080", --data-parallel-size, "2"]
"""
    write_tree(tmp_path, {"manifests/deploy.yaml": manifest, "manifests/pool.yaml": pool(port=8081)})
    dep = load_deployment(tmp_path)
    [ms] = dep.model_services
    assert (ms.form, ms.replicas, ms.port, ms.serving_ports()) == ("deployment", 3, 8080, [8080, 8081])
    warnings = {w.message for w in dep.warnings}
    assert "references Secret 'regcred' (image pull), which is not defined in this deployment" in warnings


def test_secret_defined_in_the_deployment_satisfies_the_reference(tmp_path: Path) -> None:
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: hf}\nstringData: {HF_TOKEN: x}\n"
    values = flat().replace("  args:", "  env: [{name: T, valueFrom: {secretKeyRef: {name: hf, key: token}}}]\n  args:")
    write_tree(tmp_path, {"ms.yaml": values, "manifests/secret.yaml": secret})
    dep = load_deployment(tmp_path)
    [w] = [w for w in dep.warnings if "Secret" in w.message]
    assert w.message == "Secret 'hf' has no key 'token'"

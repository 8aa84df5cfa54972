"""Schema validation: every rendered object is covered, the schemas are the real ones, and they catch mistakes.

Built-in kinds: kubernetes-validate's strict Kubernetes 1.33 schemas. Custom resources: the CRDs in
../shared/schemas (Gateway API v1.2.0 and v1.6.1, InferencePool v1, LeaderWorkerSet). GKE, Istio, Envoy Gateway,
kgateway and prometheus-operator resources: the hand-written structural schemas of inferplane.deploy.handschemas
(their CRDs are not available here).
"""

from __future__ import annotations

import copy
import shutil

import pytest

from inferplane.deploy.command import render_path
from inferplane.deploy.crd import to_json_schema
from inferplane.deploy.crosscheck import crosscheck
from inferplane.deploy.plan import RenderOptions
from inferplane.deploy.render import render
from inferplane.deploy.validate import ManifestValidator
from inferplane.errors import UsageError
from tests.conftest import DEPLOYMENTS, SHARED
from tests.unit.deploy.conftest import options, plan, pool, route, server

HAND_WRITTEN = {
    "HealthCheckPolicy", "GCPBackendPolicy", "GCPRoutingExtension", "PodMonitoring", "PodMonitor",
    "ServiceMonitor", "EnvoyFilter", "EnvoyExtensionPolicy", "GatewayExtension", "TrafficPolicy", "DestinationRule",
}  # fmt: skip


def everything(target: str, klass: str | None) -> list[dict]:
    """A plan that exercises every renderer: BBR, a TPU/GPU Deployment, a Ray LWS, a data-parallel LWS."""
    servers = (
        server(accelerator="tpu" if target == "gke" else "gpu", accelerator_count=4, tensor_parallel_size=4),
        server(
            "moe", labels={"role": "leader"}, worker_labels={"role": "worker"}, group_size=2, tensor_parallel_size=8
        ),
        server(
            "wide", labels={"app": "wide"}, group_size=2, multinode_style="data-parallel", data_parallel_size_local=8
        ),
    )
    pools = (pool(), pool("moe-pool", {"role": "leader"}), pool("wide-pool", {"app": "wide"}, failure_mode="FailOpen"))
    objective = {"metadata": {"name": "critical"}, "spec": {"priority": 10, "poolRef": {"name": "qwen-pool"}}}
    p = plan(
        model_servers=servers,
        pools=pools,
        routes=(route("a", "qwen-pool", "Qwen/Qwen3-0.6B"), route("b", "moe-pool", "moe"), route("c", "wide-pool")),
        objectives=(objective,),
        needs_bbr=True,
    )
    return render(p, options(target, gateway_class=klass)).manifests


@pytest.mark.parametrize(("target", "klass"), [("gke", None), ("kubernetes", "istio"), ("kubernetes", "eg"),
                                                ("kubernetes", "kgateway")])  # fmt: skip
def test_every_rendered_object_validates(validator: ManifestValidator, target: str, klass: str | None) -> None:
    manifests = everything(target, klass)
    assert validator.validate_all(manifests) == []


def test_coverage_uses_the_real_crds(validator: ManifestValidator) -> None:
    manifests = [
        m
        for t, k in (("gke", None), ("kubernetes", "kgateway"), ("kubernetes", "istio"), ("kubernetes", "eg"))
        for m in everything(t, k)
    ]
    covered = {m["kind"]: validator.covered_by(m) for m in manifests}
    assert covered["Gateway"] == ["crd gateway-api/v1.2.0", "crd gateway-api/v1.6.1"]
    assert covered["HTTPRoute"] == ["crd gateway-api/v1.2.0", "crd gateway-api/v1.6.1"]
    assert covered["InferencePool"] == ["crd gie"]
    assert covered["InferenceObjective"] == ["crd gie"]
    assert covered["LeaderWorkerSet"] == ["crd lws"]
    for kind in ("Deployment", "Service", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Namespace"):
        assert covered[kind] == ["kubernetes 1.33"], kind
    for kind in HAND_WRITTEN:
        assert covered[kind] == ["hand-written"], kind


def _first(manifests: list[dict], kind: str) -> dict:
    return copy.deepcopy(next(m for m in manifests if m["kind"] == kind))


@pytest.mark.parametrize(
    ("kind", "mutate", "schema", "message"),
    [
        ("Deployment", lambda m: m["spec"].update(replicas="3"), "kubernetes 1.33", "is not of type 'integer'"),
        ("Deployment", lambda m: m["spec"]["template"]["spec"]["containers"][0].update(livenesProbe={}),
         "kubernetes 1.33", "'livenesProbe' was unexpected"),
        ("Service", lambda m: m["spec"]["ports"][0].update(port="grpc"), "kubernetes 1.33", "is not of type"),
        ("InferencePool", lambda m: m["spec"]["endpointPickerRef"].update(failureMode="Open"), "CRD gie",
         "is not one of ['FailOpen', 'FailClose']"),
        ("InferencePool", lambda m: m["spec"].update(targetPortNumber=8000), "CRD gie", "was unexpected"),
        ("HTTPRoute", lambda m: m["spec"]["rules"][0]["backendRefs"][0].update(weight=-1), "CRD gateway-api/v1.6.1",
         "less than the minimum"),
        ("Gateway", lambda m: m["spec"].pop("listeners"), "CRD gateway-api/v1.2.0", "'listeners' is a required"),
        ("LeaderWorkerSet", lambda m: m["spec"]["leaderWorkerTemplate"].update(restartPolicy="Always"), "CRD lws",
         "is not one of"),
        ("GCPRoutingExtension",
         lambda m: m["spec"]["extensionChains"][0]["extensions"][0].update(requestBodySendMode="Buffered"),
         "hand-written", "is not one of"),
        ("HealthCheckPolicy", lambda m: m["spec"].pop("targetRef"), "hand-written", "'targetRef' is a required"),
        ("PodMonitoring", lambda m: m["spec"]["endpoints"][0].update(interval="often"), "hand-written",
         "does not match"),
        ("ConfigMap", lambda m: m["metadata"]["labels"].update(bad="not a label value!"), "ObjectMeta",
         "does not match"),
        ("InferenceObjective", lambda m: m["spec"].update(priority="high"), "CRD gie", "is not of type 'integer'"),
    ],
)  # fmt: skip
def test_schemas_catch_mistakes(validator: ManifestValidator, kind, mutate, schema: str, message: str) -> None:
    m = _first(everything("gke", None), kind)
    mutate(m)
    problems = validator.validate(m)
    assert any(p.schema == schema and message in p.message for p in problems), problems


def test_hand_schemas_for_other_gateways_catch_mistakes(validator: ManifestValidator) -> None:
    policy = _first(everything("kubernetes", "eg"), "EnvoyExtensionPolicy")
    policy["spec"]["extProc"][0]["processingMode"]["request"]["body"] = "FULL_DUPLEX"
    assert validator.validate(policy)
    envoy_filter = _first(everything("kubernetes", "istio"), "EnvoyFilter")
    envoy_filter["spec"]["configPatches"][0]["patch"]["operation"] = "PREPEND"
    assert validator.validate(envoy_filter)
    traffic = _first(everything("kubernetes", "kgateway"), "TrafficPolicy")
    traffic["spec"]["extProc"]["processingMode"]["requestBodyMode"] = "FullDuplexStreamed"
    assert validator.validate(traffic)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda m: m["spec"]["trafficPolicy"]["tls"].update(mode="TLS"), "is not one of"),
        (lambda m: m["spec"]["trafficPolicy"]["tls"].update(insecureSkipVerify="yes"), "is not of type 'boolean'"),
        (lambda m: m["spec"]["trafficPolicy"]["connectionPool"]["tcp"].update(connectTimeout=900),
         "is not of type 'string'"),
        (lambda m: m["spec"]["trafficPolicy"]["connectionPool"]["http"].update(idleTimeout="15 minutes"),
         "does not match"),
        (lambda m: m["spec"]["trafficPolicy"].update(tlsSettings={}), "was unexpected"),
        (lambda m: m["spec"].pop("host"), "'host' is a required"),
    ],
)  # fmt: skip
def test_istio_destination_rule_schema_catches_mistakes(validator: ManifestValidator, mutate, message: str) -> None:
    rule = _first(everything("kubernetes", "istio"), "DestinationRule")
    assert validator.validate(rule) == []
    mutate(rule)
    problems = validator.validate(rule)
    assert any(p.schema == "hand-written" and message in p.message for p in problems), problems


def test_unknown_kind_is_reported_when_coverage_is_required(validator: ManifestValidator) -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
    assert [p.message for p in validator.validate(obj)] == ["no schema for example.com/v1 Widget"]
    assert ManifestValidator(None).validate(obj) == []


def test_crd_conversion() -> None:
    schema = to_json_schema(
        {
            "type": "object",
            "description": "dropped",
            "properties": {
                "port": {"x-kubernetes-int-or-string": True},
                "maybe": {"type": "string", "nullable": True},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"a": {}}},
                "strict": {"type": "object", "properties": {"a": {"type": "string"}}},
            },
        }
    )
    assert "description" not in schema
    props = schema["properties"]
    assert props["port"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert props["maybe"]["type"] == ["string", "null"]
    assert "additionalProperties" not in props["free"]
    assert props["strict"]["additionalProperties"] is False
    assert schema["additionalProperties"] is False


def test_objectives_and_rewrites_from_a_deployment(validator: ManifestValidator, tmp_path) -> None:
    """InferenceObjective and InferenceModelRewrite go from the user's files through the loader to CRD-valid
    manifests (the patterns have none, so this adds them to a copy of pattern 3)."""
    root = tmp_path / "p3"
    shutil.copytree(DEPLOYMENTS / "pattern3-caching", root)
    (root / "manifests" / "objectives.yaml").write_text(
        """apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceObjective
metadata: {name: interactive}
spec: {priority: 10, poolRef: {name: llama-8b-pool}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModelRewrite
metadata: {name: llama-alias}
spec:
  poolRef: {name: llama-8b-pool}
  rules:
  - matches: [{model: {value: llama}}]
    targets: [{modelRewrite: meta-llama/Llama-3.1-8B-Instruct, weight: 1}]
"""
    )
    manifests = render_path(root, RenderOptions("gke", "img")).manifests
    kinds = {m["kind"]: m for m in manifests}
    pool_ref = {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "llama-8b-pool"}
    assert kinds["InferenceObjective"]["spec"] == {"priority": 10, "poolRef": pool_ref}
    assert kinds["InferenceModelRewrite"]["spec"]["rules"][0]["targets"][0]["modelRewrite"] == (
        "meta-llama/Llama-3.1-8B-Instruct"
    )
    assert validator.covered_by(kinds["InferenceModelRewrite"]) == ["crd gie"]
    assert validator.validate_all(manifests) == []


def test_upstream_llm_d_guide_values_render_valid_manifests(validator: ManifestValidator, tmp_path) -> None:
    """The llm-d inference-scheduling guide's own values (modelservice + GIE chart) render into manifests that
    validate and cross-check, with the pool the GIE values describe."""
    guide = ("llm-d-guides_ms-inference-scheduling_values.yaml", "llm-d-guides_gaie-inference-scheduling_values.yaml")
    for name in guide:
        shutil.copy(SHARED / "schemas" / "llmd" / name, tmp_path / name)
    manifests = render_path(tmp_path, RenderOptions("gke", "img")).manifests
    assert validator.validate_all(manifests) == []
    assert crosscheck(manifests) == []
    kinds = [m["kind"] for m in manifests]
    assert kinds.count("InferencePool") == 1
    assert kinds.count("Deployment") == 2  # the vLLM decode servers and the endpoint picker


def test_routing_sidecar_values_are_refused_not_rendered_broken(tmp_path) -> None:
    shutil.copy(SHARED / "schemas" / "llmd" / "infra-2025-09_ms-pd_values.yaml", tmp_path / "values.yaml")
    with pytest.raises(UsageError, match="behind the llm-d routing sidecar"):
        render_path(tmp_path, RenderOptions("gke", "img"))

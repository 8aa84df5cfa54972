"""The renderers on small in-test plans: the objects, their order, and the details that break clusters."""

from __future__ import annotations

import pytest
import yaml

from inferplane.deploy.crosscheck import crosscheck
from inferplane.deploy.plan import RenderPlan
from inferplane.deploy.render import KIND_ORDER, render, to_stream, write_dir
from inferplane.errors import UsageError
from tests.unit.deploy.conftest import EPP_CONFIG, options, plan, pool, route, server


def by(manifests: list[dict], kind: str, name: str | None = None) -> dict:
    found = [m for m in manifests if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def container(m: dict, index: int = 0) -> dict:
    return m["spec"]["template"]["spec"]["containers"][index]


def test_objects_are_ordered_for_kubectl_apply() -> None:
    out = render(plan(needs_bbr=True), options("kubernetes", gateway_class="istio")).manifests
    ranks = [KIND_ORDER.index(m["kind"]) for m in out]
    assert ranks == sorted(ranks)
    assert out[0]["kind"] == "Namespace"
    assert out[0]["metadata"]["name"] == "llm"
    kinds = [m["kind"] for m in out]
    assert kinds.index("ServiceAccount") < kinds.index("Deployment") < kinds.index("Service")
    assert kinds.index("InferencePool") < kinds.index("HTTPRoute") < kinds.index("EnvoyFilter")


def test_no_namespace_object_for_default() -> None:
    out = render(plan(namespace="default"), options()).manifests
    assert "Namespace" not in {m["kind"] for m in out}
    assert {m["metadata"]["namespace"] for m in out} == {"default"}


def test_every_object_is_labelled_part_of_inferplane() -> None:
    out = render(plan(needs_bbr=True), options()).manifests
    for m in out:
        assert m["metadata"]["labels"]["app.kubernetes.io/part-of"] == "inferplane", m["kind"]
    for kind in ("Deployment",):
        for m in (x for x in out if x["kind"] == kind):
            assert m["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "inferplane"


def test_endpoint_picker_objects() -> None:
    out = render(plan(), options()).manifests
    dep = by(out, "Deployment", "qwen-pool-epp")
    c = container(dep)
    assert c["image"] == "inferplane:test"
    assert c["args"] == [
        "epp", "--pool-name", "qwen-pool", "--pool-namespace", "llm", "--config-file", "/config/epp-config.yaml",
        "--discovery", "kubernetes", "--grpc-port", "9002", "--grpc-health-port", "9003", "--metrics-port", "9090",
        "--secure-serving", "true",
    ]  # fmt: skip
    assert c["livenessProbe"]["grpc"] == {"port": 9003, "service": "liveness"}
    assert c["readinessProbe"]["grpc"] == {"port": 9003, "service": "readiness"}
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"grpc": 9002, "grpc-health": 9003, "metrics": 9090}
    assert c["securityContext"]["runAsNonRoot"] is True
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "qwen-pool-epp"
    svc = by(out, "Service", "qwen-pool-epp")
    # The GIE inferencepool chart's port names (ServiceMonitors and mesh policies select ports by name).
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("grpc-ext-proc", 9002),
                                                                      ("http-metrics", 9090)]  # fmt: skip
    assert svc["spec"]["ports"][0]["appProtocol"] == "http2"
    assert by(out, "ConfigMap", "qwen-pool-epp")["data"] == {"epp-config.yaml": EPP_CONFIG}
    # The GIE inferencepool chart's two Roles: `<epp>-sa` for pods, `<epp>-non-sa` for the inference objects.
    rules = by(out, "Role", "qwen-pool-epp-sa")["rules"] + by(out, "Role", "qwen-pool-epp-non-sa")["rules"]
    granted = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted == {("", "pods"), ("inference.networking.k8s.io", "inferencepools"),
                       ("inference.networking.x-k8s.io", "inferenceobjectives"),
                       ("inference.networking.x-k8s.io", "inferencemodelrewrites")}  # fmt: skip
    assert all(sorted(rule["verbs"]) == ["get", "list", "watch"] for rule in rules)
    for role in ("qwen-pool-epp-sa", "qwen-pool-epp-non-sa"):
        binding = by(out, "RoleBinding", role)
        assert binding["roleRef"]["name"] == role
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "qwen-pool-epp", "namespace": "llm"}]


def test_config_change_rolls_the_endpoint_picker() -> None:
    a = by(render(plan(), options()).manifests, "Deployment", "qwen-pool-epp")
    other = plan(pools=(pool(epp_config=EPP_CONFIG + "featureGates: [flowControl]\n"),))
    b = by(render(other, options()).manifests, "Deployment", "qwen-pool-epp")
    key = "inferplane.dev/config-checksum"
    assert (
        a["spec"]["template"]["metadata"]["annotations"][key] != b["spec"]["template"]["metadata"]["annotations"][key]
    )


def test_precise_prefix_cache_exposes_the_kv_events_port() -> None:
    config = EPP_CONFIG.replace("queue-scorer", "precise-prefix-cache-scorer")
    out = render(plan(pools=(pool(epp_config=config),)), options()).manifests
    c = container(by(out, "Deployment", "qwen-pool-epp"))
    assert c["args"][-2:] == ["--kv-events-bind", "tcp://*:5557"]
    assert 5557 in {p["port"] for p in by(out, "Service", "qwen-pool-epp")["spec"]["ports"]}


def test_inference_pool_v1_with_endpoint_picker_ref_and_failure_mode() -> None:
    out = render(plan(pools=(pool(failure_mode="FailOpen", epp_ref_name="picker", epp_service_port=9102),)),
                 options()).manifests  # fmt: skip
    p = by(out, "InferencePool")
    assert p["apiVersion"] == "inference.networking.k8s.io/v1"
    assert p["spec"]["selector"] == {"matchLabels": {"app": "qwen"}}
    assert p["spec"]["targetPorts"] == [{"number": 8000}]
    assert p["spec"]["endpointPickerRef"] == {
        "group": "", "kind": "Service", "name": "picker", "port": {"number": 9102}, "failureMode": "FailOpen",
    }  # fmt: skip
    # The EPP objects follow the name the pool refers to, and its Service port maps onto the gRPC port.
    svc = by(out, "Service", "picker")
    assert svc["spec"]["ports"][0] == {"name": "grpc-ext-proc", "port": 9102, "targetPort": 9002, "protocol": "TCP",
                                       "appProtocol": "http2"}  # fmt: skip
    assert crosscheck(out) == []


def test_routes_use_the_v1_pool_group_without_port() -> None:
    out = render(plan(), options()).manifests
    ref = by(out, "HTTPRoute")["spec"]["rules"][0]["backendRefs"][0]
    assert ref == {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "qwen-pool"}


@pytest.mark.parametrize(
    ("target", "flag", "expected"),
    [
        ("gke", None, "gke-l7-regional-external-managed"),
        ("gke", "gke-l7-rilb", "gke-l7-rilb"),
        ("kubernetes", None, "istio"),  # the class the deployment's Gateway names
        ("kubernetes", "kgateway", "kgateway"),
    ],
)
def test_gateway_class(target: str, flag: str | None, expected: str) -> None:
    r = render(plan(), options(target, gateway_class=flag))
    assert r.gateway_class == expected
    assert by(r.manifests, "Gateway")["spec"]["gatewayClassName"] == expected


def test_generic_cluster_with_a_gke_gateway_class_needs_a_class() -> None:
    gke_gateway = {**plan().gateways[0], "spec": {"gatewayClassName": "gke-l7-rilb", "listeners": []}}
    with pytest.raises(UsageError, match="needs the gateway class"):
        render(plan(gateways=(gke_gateway,)), options("kubernetes"))


@pytest.mark.parametrize(
    ("target", "klass", "kinds"),
    [
        ("gke", None, {"GCPRoutingExtension"}),
        ("kubernetes", "istio", {"EnvoyFilter"}),
        ("kubernetes", "eg", {"EnvoyExtensionPolicy"}),
        ("kubernetes", "kgateway", {"GatewayExtension", "TrafficPolicy"}),
    ],
)
def test_body_based_router_and_its_gateway_extension(target: str, klass: str | None, kinds: set[str]) -> None:
    two = plan(
        routes=(route("a", "qwen-pool", "Qwen/Qwen3-0.6B"),),
        needs_bbr=True,
    )
    out = render(two, options(target, gateway_class=klass)).manifests
    bbr = by(out, "Deployment", "body-based-router")
    assert container(bbr)["args"][:1] == ["bbr"]
    assert {p["port"] for p in by(out, "Service", "body-based-router")["spec"]["ports"]} == {9004, 9005}
    extension_kinds = {m["kind"] for m in out} & {"GCPRoutingExtension", "EnvoyFilter", "EnvoyExtensionPolicy",
                                                   "GatewayExtension", "TrafficPolicy"}  # fmt: skip
    assert extension_kinds == kinds
    text = yaml.safe_dump([m for m in out if m["kind"] in kinds])
    assert "body-based-router" in text
    assert "9004" in text


def test_body_based_router_on_an_unknown_gateway_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="does not know how to attach it to gateway class 'nginx'"):
        render(plan(needs_bbr=True), options("kubernetes", gateway_class="nginx"))


def test_no_body_based_router_unless_routes_need_it() -> None:
    out = render(plan(), options("kubernetes", gateway_class="nginx")).manifests
    assert all("body-based-router" not in m["metadata"]["name"] for m in out)


def test_gke_pool_policies_and_monitoring() -> None:
    out = render(plan(), options("gke")).manifests
    hc = by(out, "HealthCheckPolicy", "qwen-pool")
    assert hc["spec"]["targetRef"] == {"group": "inference.networking.k8s.io", "kind": "InferencePool",
                                       "name": "qwen-pool"}  # fmt: skip
    assert hc["spec"]["default"]["config"]["httpHealthCheck"] == {"requestPath": "/health", "port": 8000}
    assert by(out, "GCPBackendPolicy", "qwen-pool")["spec"]["default"]["timeoutSec"] == 300
    monitors = {m["metadata"]["name"]: m for m in out if m["kind"] == "PodMonitoring"}
    assert monitors["qwen"]["spec"]["endpoints"][0]["port"] == "http"
    assert monitors["qwen-pool-epp"]["spec"]["endpoints"][0]["port"] == "metrics"
    generic = render(plan(), options("kubernetes")).manifests
    assert {m["kind"] for m in generic} & {"HealthCheckPolicy", "GCPBackendPolicy", "PodMonitoring"} == set()
    assert by(generic, "PodMonitor", "qwen")["spec"]["podMetricsEndpoints"][0]["port"] == "http"
    assert by(generic, "ServiceMonitor", "qwen-pool-epp")["spec"]["endpoints"][0]["port"] == "http-metrics"


def test_tpu_model_server_on_gke() -> None:
    ms = server(accelerator="tpu", accelerator_count=4, tensor_parallel_size=4)
    dep = by(render(plan(model_servers=(ms,)), options("gke")).manifests, "Deployment", "qwen")
    spec = dep["spec"]["template"]["spec"]
    c = spec["containers"][0]
    assert c["resources"] == {"limits": {"google.com/tpu": "4"}, "requests": {"google.com/tpu": "4"}}
    assert spec["nodeSelector"] == {"cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice",
                                    "cloud.google.com/gke-tpu-topology": "2x2"}  # fmt: skip
    assert {"name": "PJRT_DEVICE", "value": "TPU"} in c["env"]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in c["volumeMounts"]
    assert {"name": "dshm", "emptyDir": {"medium": "Memory"}} in spec["volumes"]


def test_gpu_model_server() -> None:
    ms = server(accelerator_count=2, tensor_parallel_size=2, accelerator_type="nvidia-l4", image_pull_secrets=("reg",))
    gke = by(render(plan(model_servers=(ms,)), options("gke")).manifests, "Deployment", "qwen")
    spec = gke["spec"]["template"]["spec"]
    c = spec["containers"][0]
    assert c["resources"]["limits"] == {"nvidia.com/gpu": "2"}
    assert spec["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert spec["imagePullSecrets"] == [{"name": "reg"}]
    assert c["command"] == ["vllm", "serve"]
    assert c["args"] == ["Qwen/Qwen3-0.6B", "--port", "8000"]
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "HF_TOKEN"}}} in c["env"]
    generic = by(render(plan(model_servers=(ms,)), options("kubernetes")).manifests, "Deployment", "qwen")
    assert "nodeSelector" not in generic["spec"]["template"]["spec"]  # GKE node labels mean nothing elsewhere


def test_model_server_probes_and_no_shm_without_tensor_parallelism() -> None:
    c = container(by(render(plan(), options()).manifests, "Deployment", "qwen"))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": 8000}
    # Long enough for a model download: at least 20 minutes before the kubelet gives up.
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] >= 1200
    assert all(m["mountPath"] != "/dev/shm" for m in c["volumeMounts"])
    assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]


def test_pod_labels_keep_the_users_and_add_llm_d_ones() -> None:
    dep = by(render(plan(), options()).manifests, "Deployment", "qwen")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels["app"] == "qwen"
    assert labels["llm-d.ai/inference-serving"] == "true"
    assert labels["llm-d.ai/role"] == "decode"
    assert labels["llm-d.ai/model"] == "qwen3-0-6b"
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_leader_worker_set_over_ray() -> None:
    ms = server(
        "moe", labels={"role": "leader", "app": "qwen"}, worker_labels={"role": "worker"}, group_size=2,
        tensor_parallel_size=8, accelerator_count=4, args=("--max-model-len", "8192"), served_names=("moe",),
    )  # fmt: skip
    lws = by(render(plan(model_servers=(ms,)), options()).manifests, "LeaderWorkerSet", "moe")
    t = lws["spec"]["leaderWorkerTemplate"]
    assert t["size"] == 2
    assert t["restartPolicy"] == "RecreateGroupOnPodRestart"
    leader = t["leaderTemplate"]["spec"]["containers"][0]
    worker = t["workerTemplate"]["spec"]["containers"][0]
    script = leader["args"][0]
    assert script.startswith("ray start --head --port=6379")
    assert '-ge "${LWS_GROUP_SIZE}"' in script
    assert (
        "vllm serve Qwen/Qwen3-0.6B --port 8000 --tensor-parallel-size 8 --distributed-executor-backend ray" in script
    )
    assert script.endswith("--served-model-name moe --max-model-len 8192")
    assert worker["args"] == ["exec ray start --address=${LWS_LEADER_ADDRESS}:6379 --block"]
    assert "readinessProbe" in leader
    assert "readinessProbe" not in worker
    assert "ports" not in worker
    # Only leaders serve HTTP, so only they carry the pool's selector labels.
    assert t["leaderTemplate"]["metadata"]["labels"]["role"] == "leader"
    assert t["workerTemplate"]["metadata"]["labels"]["role"] == "worker"


def test_leader_worker_set_data_parallel() -> None:
    ms = server("wide", group_size=2, multinode_style="data-parallel", data_parallel_size_local=8,
                accelerator_count=8, args=("--enable-expert-parallel",))  # fmt: skip
    lws = by(render(plan(model_servers=(ms,), pools=(pool(selector={"app": "wide"}),)), options()).manifests,
             "LeaderWorkerSet", "wide")  # fmt: skip
    t = lws["spec"]["leaderWorkerTemplate"]
    assert "leaderTemplate" not in t
    script = t["workerTemplate"]["spec"]["containers"][0]["args"][0]
    for part in ("--data-parallel-size $(( LWS_GROUP_SIZE * 8 ))", "--data-parallel-address ${LWS_LEADER_ADDRESS}",
                 "--data-parallel-start-rank $(( LWS_WORKER_INDEX * 8 ))", "--data-parallel-size-local 8",
                 "--data-parallel-hybrid-lb", "--enable-expert-parallel"):  # fmt: skip
        assert part in script


def test_yaml_stream_and_directory(tmp_path) -> None:
    r = render(plan(), options())
    stream = to_stream(r, "deployments/x", options())
    assert stream.startswith("# Rendered by `inferplane render deployments/x --target gke`")
    docs = [d for d in yaml.safe_load_all(stream) if d]
    assert docs == r.manifests
    # The EPP config is written as a literal block, readable in the manifest.
    assert "epp-config.yaml: |" in stream
    (tmp_path / "999-stale-object.yaml").write_text("old")
    files = write_dir(r, tmp_path, "x", options())
    kustomize_base = ["Kustomization", "kustomizeconfig"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*(p.name for p in files), *kustomize_base])
    assert files[0].name.startswith("000-")
    assert [yaml.safe_load(p.read_text()) for p in files] == r.manifests


def test_secrets_are_listed_not_rendered() -> None:
    r = render(plan(), options())
    assert r.secrets == ["hf-token"]
    assert "Secret" not in {m["kind"] for m in r.manifests}


def test_empty_plan_renders_nothing_but_is_valid() -> None:
    r = render(RenderPlan(name="x", namespace="default"), options())
    assert r.manifests == []


def test_container_args_parse_with_the_real_commands(tmp_path) -> None:
    """The args in the EPP and BBR Deployments are accepted by `inferplane epp` / `inferplane bbr` themselves, and
    the BBR models file they point at loads."""
    from inferplane.bbr import command as bbr_command
    from inferplane.bbr.routing import BaseModels
    from inferplane.cli import build_parser

    out = render(plan(routes=(route("a", "qwen-pool", "Qwen/Qwen3-0.6B"),), needs_bbr=True,
                      bbr_models=(("Qwen/Qwen3-0.6B", ("sql-lora",)),)), options()).manifests  # fmt: skip
    epp_args = container(by(out, "Deployment", "qwen-pool-epp"))["args"]
    ns = build_parser("epp").parse_args(epp_args)
    assert (ns.pool_name, ns.pool_namespace, ns.discovery) == ("qwen-pool", "llm", "kubernetes")
    assert (ns.grpc_port, ns.grpc_health_port, ns.metrics_port) == (9002, 9003, 9090)
    bbr_args = container(by(out, "Deployment", "body-based-router"))["args"]
    ns = build_parser("bbr").parse_args(bbr_args)
    assert (ns.port, ns.health_port) == (9004, 9005)
    # GKE (options() targets it) calls the router over TLS; `inferplane bbr` then makes its certificate at start
    assert ns.secure_serving == "true"
    assert bbr_command.serving_cert_for(ns) is not None
    models = tmp_path / "models.yaml"
    models.write_text(by(out, "ConfigMap", "body-based-router")["data"]["models.yaml"])
    assert BaseModels.load(models).base_of("sql-lora") == "Qwen/Qwen3-0.6B"
    assert str(ns.models_file) == "/config/models.yaml"

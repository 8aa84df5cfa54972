"""Model servers: a Deployment per model service, or a LeaderWorkerSet when a model spans hosts (pattern 4).

What the pods get beyond the user's values: accelerator limits and node selectors for the target, `/health` probes
with a startup probe long enough for a model download, `/dev/shm` for tensor parallelism (NCCL and vLLM's
multiprocessing executor exchange tensors through shared memory, and the container default of 64 MiB is too
small), a model cache volume, and the labels the pool selector and llm-d's debugging commands rely on.

Names and selectors are the llm-d-modelservice chart's (v0.4.12): the workload is `<fullname>-<role>` and its
selector is exactly the pod labels the values set (`modelArtifacts.labels` + `llm-d.ai/role`), so `kubectl apply`
over a Helm-installed release updates the same Deployment (a selector is immutable) instead of adding pods the pool
would select next to the old ones. inferplane's own labels are added to the pods only, outside the selector.
"""

from __future__ import annotations

import shlex
from typing import Any

from inferplane.deploy.common import Manifest, base_labels, dns_label, meta, obj, selector_labels
from inferplane.deploy.plan import EnvVar, ModelServerPlan, Target

COMPONENT = "model-server"
MODEL_CACHE = "/model-cache"
RAY_PORT = 6379
DP_RPC_PORT = 5555
# 10 s × 180 = 30 minutes: a 90 GB download plus weight loading on a cold node.
STARTUP_PERIOD_S = 10
STARTUP_FAILURES = 180

GPU_RESOURCE = "nvidia.com/gpu"
TPU_RESOURCE = "google.com/tpu"
GKE_GPU_LABEL = "cloud.google.com/gke-accelerator"
GKE_TPU_LABEL = "cloud.google.com/gke-tpu-accelerator"
GKE_TPU_TOPOLOGY_LABEL = "cloud.google.com/gke-tpu-topology"
DEFAULT_GKE_GPU = "nvidia-h100-80gb"
DEFAULT_GKE_TPU = "tpu-v5-lite-podslice"
# Single-host TPU slice shapes by chip count (GKE TPU docs: v5e / v6e single-host topologies).
TPU_TOPOLOGY = {1: "1x1", 4: "2x2", 8: "2x4"}


def pod_labels(ms: ModelServerPlan) -> dict[str, str]:
    """User labels win; inferplane adds its own and the llm-d role/model labels when absent."""
    extra = {
        **base_labels(ms.object_name, COMPONENT),
        "llm-d.ai/role": ms.role,
        "llm-d.ai/model": dns_label(ms.model.rsplit("/", 1)[-1]),
    }
    return dict(sorted({**extra, **ms.labels}.items()))


def workload_selector(ms: ModelServerPlan) -> dict[str, str]:
    """The selector the workload already has in the cluster: a user Deployment's own, else the user's pod labels as
    written (chart values: modelArtifacts.labels + role, the chart's selector)."""
    if ms.selector:
        return dict(sorted(ms.selector.items()))
    return dict(sorted(ms.labels.items())) if ms.labels else selector_labels(ms.object_name, COMPONENT)


def node_selector(ms: ModelServerPlan, target: Target) -> dict[str, str]:
    out: dict[str, str] = {}
    if target == "gke" and ms.accelerator == "gpu":
        out[GKE_GPU_LABEL] = ms.accelerator_type or DEFAULT_GKE_GPU
    elif target == "gke" and ms.accelerator == "tpu":
        out[GKE_TPU_LABEL] = ms.accelerator_type or DEFAULT_GKE_TPU
        out[GKE_TPU_TOPOLOGY_LABEL] = ms.tpu_topology or TPU_TOPOLOGY.get(ms.accelerator_count, "2x2")
    out.update(ms.node_selector)
    return out


def _resources(ms: ModelServerPlan) -> dict[str, Any]:
    if ms.accelerator == "cpu":  # the simulator, or a CPU build of vLLM
        return {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}}
    resource = GPU_RESOURCE if ms.accelerator == "gpu" else TPU_RESOURCE
    # Extended resources cannot be overcommitted: requests must equal limits.
    count = str(ms.accelerator_count)
    return {"limits": {resource: count}, "requests": {resource: count}}


def _env(ms: ModelServerPlan) -> list[dict[str, Any]]:
    env = list(ms.env)
    names = {e.name for e in env}
    if ms.accelerator == "tpu" and "PJRT_DEVICE" not in names:
        env.append(EnvVar("PJRT_DEVICE", "TPU"))
    if "HF_HOME" not in names and ms.accelerator != "cpu":
        env.append(EnvVar("HF_HOME", MODEL_CACHE))
    return [e.manifest() for e in env]


def _http_probe(port: int, period: int, failures: int, timeout: int = 5) -> dict[str, Any]:
    return {
        "httpGet": {"path": "/health", "port": port},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def _needs_shm(ms: ModelServerPlan) -> bool:
    return ms.tensor_parallel_size > 1 or ms.multinode


def _container(ms: ModelServerPlan, name: str, command: list[str], args: list[str], serves: bool) -> dict[str, Any]:
    # Weights are downloaded into the cache volume; a CPU-only server (the simulator) loads none.
    mounts = [{"name": "model-cache", "mountPath": MODEL_CACHE}] if ms.accelerator != "cpu" else []
    if _needs_shm(ms):
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    c: dict[str, Any] = {"name": name, "image": ms.image, "imagePullPolicy": "IfNotPresent"}
    if command:
        c["command"] = command
    if args:
        c["args"] = args
    env = _env(ms)
    if env:
        c["env"] = env
    if serves:
        c["ports"] = [{"name": "http", "containerPort": ms.port, "protocol": "TCP"}]
        c["startupProbe"] = _http_probe(ms.port, STARTUP_PERIOD_S, STARTUP_FAILURES)
        c["readinessProbe"] = _http_probe(ms.port, 5, 3)
        c["livenessProbe"] = _http_probe(ms.port, 10, 3)
    c["resources"] = _resources(ms)
    if mounts:
        c["volumeMounts"] = mounts
    return c


def _pod_spec(ms: ModelServerPlan, target: Target, container: dict[str, Any]) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [{"name": "model-cache", "emptyDir": {}}] if ms.accelerator != "cpu" else []
    if _needs_shm(ms):
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory"}})
    spec: dict[str, Any] = {"containers": [container]}
    if volumes:
        spec["volumes"] = volumes
    selector = node_selector(ms, target)
    if selector:
        spec["nodeSelector"] = selector
    if ms.accelerator == "gpu":
        spec["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    if ms.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in ms.image_pull_secrets]
    spec["terminationGracePeriodSeconds"] = 60
    return spec


def render_deployment(ms: ModelServerPlan, namespace: str | None, target: Target) -> Manifest:
    labels = pod_labels(ms)
    container = _container(ms, ms.container_name, list(ms.command), list(ms.args), serves=True)
    return obj(
        "apps/v1",
        "Deployment",
        meta(ms.object_name, namespace, labels),
        spec={
            "replicas": ms.replicas,
            "selector": {"matchLabels": workload_selector(ms)},
            "template": {"metadata": {"labels": labels}, "spec": _pod_spec(ms, target, container)},
        },
    )


def _served_name_flags(ms: ModelServerPlan) -> list[str]:
    return ["--served-model-name", *ms.served_names] if ms.served_names else []


def ray_scripts(ms: ModelServerPlan) -> tuple[str, str]:
    """Leader and worker shell scripts for one vLLM server whose parallel ranks span the LWS group over Ray.

    The leader waits until all `LWS_GROUP_SIZE` hosts joined the Ray cluster before starting vLLM, because vLLM's
    Ray executor fails at once when the cluster has fewer accelerators than the parallelism asks for.
    """
    serve = [
        "vllm", "serve", ms.model, "--port", str(ms.port),
        "--tensor-parallel-size", str(ms.tensor_parallel_size),
        "--distributed-executor-backend", "ray",
        *_served_name_flags(ms), *ms.args,
    ]  # fmt: skip
    count_nodes = (
        'python3 -c \'import ray; ray.init(address="auto", logging_level=40); '
        'print(sum(1 for n in ray.nodes() if n["Alive"]))\''
    )
    leader = (
        f"ray start --head --port={RAY_PORT} && "
        f'until [ "$({count_nodes})" -ge "${{LWS_GROUP_SIZE}}" ]; do echo waiting for ray workers; sleep 5; done && '
        f"exec {shlex.join(serve)}"
    )
    worker = f"exec ray start --address=${{LWS_LEADER_ADDRESS}}:{RAY_PORT} --block"
    return leader, worker


def data_parallel_script(ms: ModelServerPlan) -> str:
    """Every pod of the group runs vLLM with its share of the data-parallel ranks (llm-d wide-EP style)."""
    local = ms.data_parallel_size_local
    serve = shlex.join([
        "vllm", "serve", ms.model, "--port", str(ms.port),
        "--tensor-parallel-size", str(ms.tensor_parallel_size),
        "--data-parallel-size-local", str(local),
        "--data-parallel-rpc-port", str(DP_RPC_PORT),
        "--data-parallel-hybrid-lb",
        *_served_name_flags(ms), *ms.args,
    ])  # fmt: skip
    return (
        f"exec {serve} --data-parallel-size $(( LWS_GROUP_SIZE * {local} ))"
        f" --data-parallel-address ${{LWS_LEADER_ADDRESS}}"
        f" --data-parallel-start-rank $(( LWS_WORKER_INDEX * {local} ))"
    )


def render_leader_worker_set(ms: ModelServerPlan, namespace: str | None, target: Target) -> Manifest:
    labels = pod_labels(ms)
    template: dict[str, Any] = {"size": ms.group_size, "restartPolicy": ms.restart_policy}
    if ms.multinode_style == "ray":
        leader_script, worker_script = ray_scripts(ms)
        leader = _container(ms, "vllm-leader", ["/bin/sh", "-c"], [leader_script], serves=True)
        worker = _container(ms, "vllm-worker", ["/bin/sh", "-c"], [worker_script], serves=False)
        worker_labels = {**base_labels(ms.object_name, COMPONENT), "llm-d.ai/role": ms.role}
        worker_labels = dict(sorted({**worker_labels, **(ms.worker_labels or {})}.items()))
        template["leaderTemplate"] = {"metadata": {"labels": labels}, "spec": _pod_spec(ms, target, leader)}
        template["workerTemplate"] = {"metadata": {"labels": worker_labels}, "spec": _pod_spec(ms, target, worker)}
    else:
        c = _container(ms, "vllm", ["/bin/sh", "-c"], [data_parallel_script(ms)], serves=True)
        template["workerTemplate"] = {"metadata": {"labels": labels}, "spec": _pod_spec(ms, target, c)}
    return obj(
        "leaderworkerset.x-k8s.io/v1",
        "LeaderWorkerSet",
        meta(ms.object_name, namespace, labels),
        spec={"replicas": ms.replicas, "startupPolicy": ms.startup_policy, "leaderWorkerTemplate": template},
    )


def render_model_server(ms: ModelServerPlan, namespace: str | None, target: Target) -> Manifest:
    if ms.multinode:
        return render_leader_worker_set(ms, namespace, target)
    return render_deployment(ms, namespace, target)

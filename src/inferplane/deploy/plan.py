"""What the renderers consume: a target-neutral description of one deployment.

`inferplane.deploy.source` builds a `RenderPlan` from the user's `Deployment` and the command-line options; the
renderers turn it into manifests. Keeping this layer separate lets the renderers be tested against small in-test
plans, and keeps the mapping of the user's resource model to Kubernetes objects in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from inferplane.api.gie_versions import DEFAULT as DEFAULT_GIE_VERSION

Target = Literal["gke", "kubernetes"]
Accelerator = Literal["tpu", "gpu", "cpu"]
Backend = Literal["vllm", "sim"]

PART_OF = "inferplane"
EPP_GRPC_PORT = 9002
EPP_HEALTH_PORT = 9003
EPP_METRICS_PORT = 9090
BBR_GRPC_PORT = 9004
BBR_HEALTH_PORT = 9005
BBR_METRICS_PORT = 9090
DEFAULT_GKE_GATEWAY_CLASS = "gke-l7-regional-external-managed"


@dataclass(frozen=True)
class RenderOptions:
    target: Target
    image: str
    gateway_class: str | None = None
    accelerator: Accelerator | None = None
    namespace: str | None = None
    # "sim": model servers run `inferplane sim` from the inferplane image instead of vLLM (GPU-free clusters).
    backend: Backend = "vllm"
    # The GIE release whose CRDs the cluster runs: decides which InferencePool fields are written.
    gie_version: str = DEFAULT_GIE_VERSION


@dataclass(frozen=True)
class EnvVar:
    """A container env entry: a literal value, or a key of a Secret (HF token and the like)."""

    name: str
    value: str | None = None
    secret_name: str | None = None
    secret_key: str | None = None

    def manifest(self) -> dict[str, Any]:
        if self.secret_name is not None:
            return {
                "name": self.name,
                "valueFrom": {"secretKeyRef": {"name": self.secret_name, "key": self.secret_key or self.name}},
            }
        return {"name": self.name, "value": self.value or ""}


@dataclass(frozen=True)
class ModelServerPlan:
    """One model service: a Deployment, or a LeaderWorkerSet when `group_size` > 1."""

    name: str
    model: str
    image: str
    port: int
    labels: dict[str, str]
    replicas: int = 1
    # The workload's name when the upstream chart names it differently from `name` (llm-d-modelservice
    # `<fullname>-<role>`), so that applying over a Helm release updates it in place.
    workload_name: str | None = None
    # The selector of the user's own Deployment, when the model service was written as one.
    selector: dict[str, str] | None = None
    role: str = "decode"
    served_names: tuple[str, ...] = ()
    # Single-node: the container's command and args, complete. Multi-node: `args` holds only the extra vLLM flags;
    # the renderer builds the launch script around them (model, --port and parallelism flags are its own).
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    tensor_parallel_size: int = 1
    accelerator: Accelerator = "gpu"
    accelerator_count: int = 1
    # GKE node-label values: `cloud.google.com/gke-accelerator` (GPU) or `gke-tpu-accelerator` (TPU).
    accelerator_type: str | None = None
    tpu_topology: str | None = None
    env: tuple[EnvVar, ...] = ()
    node_selector: dict[str, str] = field(default_factory=dict)
    image_pull_secrets: tuple[str, ...] = ()
    group_size: int = 1
    # "ray": one vLLM server whose tensor/pipeline parallel ranks span the group (leader runs the API);
    # "data-parallel": every pod runs vLLM with --data-parallel-* flags (wide expert parallelism).
    multinode_style: Literal["ray", "data-parallel"] = "ray"
    data_parallel_size_local: int = 1
    container_name: str = "vllm"
    # LeaderWorkerSet group semantics, kept from the user's LWS when there is one (schemas/lws/NOTES.md).
    restart_policy: str = "RecreateGroupOnPodRestart"
    startup_policy: str = "LeaderCreated"
    # Labels of LWS worker pods (ray style: workers serve no HTTP, so they must not match the pool selector).
    worker_labels: dict[str, str] | None = None

    @property
    def multinode(self) -> bool:
        return self.group_size > 1

    @property
    def object_name(self) -> str:
        return self.workload_name or self.name


@dataclass(frozen=True)
class PoolPlan:
    name: str
    selector: dict[str, str]
    target_ports: tuple[int, ...]
    epp_config: str
    failure_mode: str = "FailClose"
    app_protocol: str | None = None
    # Whether the user wrote spec.appProtocol (a GIE v1.4+ field), so an older target can warn about dropping it.
    app_protocol_written: bool = False
    epp_service_port: int = EPP_GRPC_PORT
    # The EPP Service name from the pool's endpointPickerRef; "" means the conventional `<pool>-epp`.
    epp_ref_name: str = ""

    @property
    def epp_name(self) -> str:
        return self.epp_ref_name or f"{self.name}-epp"


@dataclass(frozen=True)
class RenderPlan:
    """Everything to render. Gateway, route, objective and rewrite specs are already Kubernetes-shaped
    (dumped from the user's resources with their upstream field names)."""

    name: str
    # None: render no namespace at all, for `kubectl apply -n`, Helm, kustomize or Argo CD to set it.
    namespace: str | None
    gateways: tuple[dict[str, Any], ...] = ()
    routes: tuple[dict[str, Any], ...] = ()
    pools: tuple[PoolPlan, ...] = ()
    model_servers: tuple[ModelServerPlan, ...] = ()
    objectives: tuple[dict[str, Any], ...] = ()
    rewrites: tuple[dict[str, Any], ...] = ()
    needs_bbr: bool = False
    # (base model, LoRA adapters) per model service, for the body-based router's X-Gateway-Base-Model-Name.
    bbr_models: tuple[tuple[str, tuple[str, ...]], ...] = ()
    warnings: tuple[str, ...] = field(default=())

"""Model-service values: the llm-d-modelservice chart form and the flat `modelservice:` pattern form.

Chart values follow the v0.4.12 schema and rules (reference/deployment.md §1): the root and the decode/prefill
sections accept unknown keys (the chart ignores them, so we warn), `routing`, `modelArtifacts`, `accelerator` and
`parallelism` do not. The v0.2-era `routing` keys (modelName, parentRefs, inferencePool, inferenceModel, httpRoute,
epp) still appear in Helm-era guides; they are accepted with a warning that says v0.4 ignores them.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from inferplane.api.base import ApiModel
from inferplane.api.k8s import CONTAINER_FIELDS, Container, ContainerPort, EnvVar, K8sModel, ResourceRequirements

AcceleratorType = Literal["nvidia", "intel-i915", "intel-xe", "intel-gaudi", "amd", "google", "cpu", "rebellions-atom"]
CHART_RESOURCES = {
    "nvidia": "nvidia.com/gpu",
    "intel-i915": "gpu.intel.com/i915",
    "intel-xe": "gpu.intel.com/xe",
    "intel-gaudi": "habana.ai/gaudi",
    "amd": "amd.com/gpu",
    "google": "google.com/tpu",
    "rebellions-atom": "rebellions.ai/ATOM",
}
CHART_TOP_LEVEL = frozenset(
    [
        "accelerator",
        "common",
        "decode",
        "enabled",
        "extraObjects",
        "fullnameOverride",
        "global",
        "modelArtifacts",
        "multinode",
        "prefill",
        "requester",
        "routing",
        "serviceAccountOverride",
        "tracing",
        "schedulerName",
        "nameOverride",
    ]
)
ROLE_KEYS = frozenset(
    [
        "create",
        "autoscaling",
        "replicas",
        "strategy",
        "nodeSelector",
        "tolerations",
        "schedulerName",
        "priorityClassName",
        "parallelism",
        "accelerator",
        "resourceClaims",
        "containers",
        "volumes",
        "initContainers",
        "extraConfig",
        "annotations",
        "podAnnotations",
        "hostIPC",
        "hostPID",
        "subGroupPolicy",
        "subGroupExclusiveTopology",
        "subGroupExclusiveToplogy",
        "acceleratorTypes",
        "monitoring",
        "enableServiceLinks",
        "terminationGracePeriodSeconds",
        "affinity",
    ]
)
V02_ROUTING_KEYS = ("modelName", "parentRefs", "inferencePool", "inferenceModel", "httpRoute", "epp")


class _Lenient(ApiModel):
    """Chart sections whose schema allows unknown keys: warn about them, since the chart ignores them."""

    model_config = ConfigDict(strict=True, extra="allow")
    known_fields: ClassVar[frozenset[str]] = frozenset()
    unknown_severity: ClassVar[str] = "warning"
    unknown_note: ClassVar[str] = " (the chart ignores it)"


class ModelArtifacts(K8sModel):
    name: str = "random/model"
    uri: str | None = None
    size: int | str | None = None
    auth_secret_name: str = ""
    mount_path: str = "/model-cache"
    read_only: bool = True
    labels: dict[str, str] = Field(default_factory=dict)


class ChartAccelerator(K8sModel):
    type: AcceleratorType = "nvidia"
    dra: bool = False
    resources: dict[str, str] = Field(default_factory=dict)
    env: dict[str, list[EnvVar]] = Field(default_factory=dict)
    resource_claim_templates: dict[str, Any] = Field(default_factory=dict)


class RoleAccelerator(K8sModel):
    type: AcceleratorType | None = None
    dra: bool | None = None


class Proxy(ApiModel):
    model_config = ConfigDict(strict=True, extra="allow")

    enabled: bool = True
    target_port: int = Field(default=8200, ge=1, le=65535)
    image: str | None = None
    connector: str | None = None


class Routing(K8sModel):
    service_port: int = Field(default=8000, ge=1, le=65535)
    proxy: Proxy = Field(default_factory=Proxy)
    # v0.2-era keys (chart ≤ v0.2.16): accepted so Helm-era guides load, reported as ignored.
    model_name: str | None = None
    parent_refs: list[Any] | None = None
    inference_pool: dict[str, Any] | None = None
    inference_model: dict[str, Any] | None = None
    http_route: dict[str, Any] | None = None
    epp: dict[str, Any] | None = None


class Parallelism(K8sModel):
    tensor: int | None = Field(default=None, ge=1)
    data: int | None = Field(default=None, ge=1)
    data_local: int | None = Field(default=None, ge=1)
    workers: int | None = Field(default=None, ge=1)

    def resolve(self) -> tuple[int, int, int, int]:
        """(tensor, data, dataLocal, workers) with the chart's defaulting (ms _helpers.tpl at v0.4.12)."""
        tensor = self.tensor or 1
        workers_in = self.workers
        data_local = self.data_local
        data = self.data or (data_local * workers_in if data_local and workers_in else None) or 1
        if data_local is None:
            data_local = data // workers_in if workers_in else 1
        workers = workers_in or max(1, data // data_local)
        if data_local * workers != data:
            raise ValueError(f"parallelism: data ({data}) must equal dataLocal ({data_local}) × workers ({workers})")
        return tensor, data, data_local, workers


class ChartContainer(_Lenient):
    known_fields = CONTAINER_FIELDS | {"modelCommand", "mountModelVolume", "extraConfig"}
    unknown_severity = "error"
    unknown_note = ""

    name: str = "vllm"
    image: str | None = None
    model_command: Literal["vllmServe", "imageDefault", "custom"] = "imageDefault"
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)
    ports: list[ContainerPort] = Field(default_factory=list)
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    mount_model_volume: bool = True

    def as_container(self) -> Container:
        return Container(
            name=self.name,
            image=self.image,
            command=self.command,
            args=self.args,
            env=self.env,
            ports=self.ports,
            resources=self.resources,
        )


def default_container() -> ChartContainer:
    """The chart's default container: the llm-d simulator with the image's own entry point."""
    return ChartContainer(name="vllm", image="ghcr.io/llm-d/llm-d-inference-sim:latest")


class RoleValues(_Lenient):
    known_fields = ROLE_KEYS

    create: bool = True
    replicas: int | None = Field(default=None, ge=0)
    parallelism: Parallelism = Field(default_factory=Parallelism)
    accelerator: RoleAccelerator | None = None
    containers: list[ChartContainer] | None = None
    init_containers: list[Container] = Field(default_factory=list)


class ChartValues(_Lenient):
    """llm-d-modelservice values (v0.4.12)."""

    known_fields = CHART_TOP_LEVEL

    model_artifacts: ModelArtifacts = Field(default_factory=ModelArtifacts)
    multinode: bool = False
    accelerator: ChartAccelerator = Field(default_factory=ChartAccelerator)
    routing: Routing = Field(default_factory=Routing)
    decode: RoleValues | None = None
    prefill: RoleValues | None = None
    fullname_override: str = ""
    name_override: str = ""


# ---------------------------------------------------------------------------------------- flat pattern form


class ImageRef(K8sModel):
    repository: str = Field(min_length=1)
    tag: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}" if self.tag else self.repository


class FlatModelService(K8sModel):
    name: str = Field(min_length=1)
    image: ImageRef
    model: str = Field(min_length=1)
    replicas: int = Field(default=1, ge=0)
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    env: list[EnvVar] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    # An inferplane extension: extra pod labels (the pod always gets `app: <name>`).
    labels: dict[str, str] = Field(default_factory=dict)


class FlatValues(K8sModel):
    """The flat `modelservice:` form that pattern repositories show (reference/deployment.md §1.5)."""

    modelservice: FlatModelService

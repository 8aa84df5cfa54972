"""The core Kubernetes pieces inferplane reads: pod templates, containers, env, Services, Secrets.

Types are strict like the API server (a port written as a string is an error). Pod specs and containers model the
fields inferplane uses and accept the other Kubernetes fields as they are (listed in `known_fields`, taken from the
PodSpec and Container schemas); anything else is an unknown field with a suggestion.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from inferplane.api.base import ApiModel, ObjectMeta


class K8sModel(ApiModel):
    """Strict types, unknown fields rejected."""

    model_config = ConfigDict(strict=True)


class K8sPassThrough(ApiModel):
    """Models the fields inferplane uses; accepts the rest of a known Kubernetes field set unvalidated."""

    model_config = ConfigDict(strict=True, extra="allow")
    known_fields: ClassVar[frozenset[str]] = frozenset()


POD_SPEC_FIELDS = frozenset(
    [
        "activeDeadlineSeconds",
        "affinity",
        "automountServiceAccountToken",
        "containers",
        "dnsConfig",
        "dnsPolicy",
        "enableServiceLinks",
        "ephemeralContainers",
        "hostAliases",
        "hostIPC",
        "hostNetwork",
        "hostPID",
        "hostUsers",
        "hostname",
        "hostnameOverride",
        "imagePullSecrets",
        "initContainers",
        "nodeName",
        "nodeSelector",
        "os",
        "overhead",
        "preemptionPolicy",
        "priority",
        "priorityClassName",
        "readinessGates",
        "resourceClaims",
        "resources",
        "restartPolicy",
        "runtimeClassName",
        "schedulerName",
        "schedulingGates",
        "schedulingGroup",
        "securityContext",
        "serviceAccount",
        "serviceAccountName",
        "setHostnameAsFQDN",
        "shareProcessNamespace",
        "subdomain",
        "terminationGracePeriodSeconds",
        "tolerations",
        "topologySpreadConstraints",
        "volumes",
    ]
)
CONTAINER_FIELDS = frozenset(
    [
        "args",
        "command",
        "env",
        "envFrom",
        "image",
        "imagePullPolicy",
        "lifecycle",
        "livenessProbe",
        "name",
        "ports",
        "readinessProbe",
        "resizePolicy",
        "resources",
        "restartPolicy",
        "restartPolicyRules",
        "securityContext",
        "startupProbe",
        "stdin",
        "stdinOnce",
        "terminationMessagePath",
        "terminationMessagePolicy",
        "tty",
        "volumeDevices",
        "volumeMounts",
        "workingDir",
    ]
)

Quantity = int | float | str


class KeySelector(K8sModel):
    name: str
    key: str
    optional: bool | None = None


class EnvVarSource(K8sModel):
    secret_key_ref: KeySelector | None = None
    config_map_key_ref: KeySelector | None = None
    field_ref: dict[str, Any] | None = None
    resource_field_ref: dict[str, Any] | None = None
    file_key_ref: dict[str, Any] | None = None


class EnvVar(K8sModel):
    name: str
    value: str | None = None
    value_from: EnvVarSource | None = None

    @property
    def secret_ref(self) -> KeySelector | None:
        return self.value_from.secret_key_ref if self.value_from else None


class ContainerPort(K8sModel):
    container_port: int = Field(ge=1, le=65535)
    name: str | None = None
    protocol: str | None = None
    host_port: int | None = None
    host_ip: str | None = Field(default=None, alias="hostIP")


class ResourceRequirements(K8sModel):
    limits: dict[str, Quantity] = Field(default_factory=dict)
    requests: dict[str, Quantity] = Field(default_factory=dict)
    claims: list[dict[str, Any]] | None = None


class LocalObjectReference(K8sModel):
    name: str


class Container(K8sPassThrough):
    known_fields = CONTAINER_FIELDS

    name: str
    image: str | None = None
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)
    ports: list[ContainerPort] = Field(default_factory=list)
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    restart_policy: str | None = None


class PodSpec(K8sPassThrough):
    known_fields = POD_SPEC_FIELDS

    containers: list[Container] = Field(min_length=1)
    init_containers: list[Container] = Field(default_factory=list)
    image_pull_secrets: list[LocalObjectReference] = Field(default_factory=list)
    service_account_name: str | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)


class TemplateMeta(K8sPassThrough):
    known_fields = frozenset({"annotations", "finalizers", "labels", "name", "namespace", "generateName"})

    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class PodTemplateSpec(K8sModel):
    metadata: TemplateMeta = Field(default_factory=TemplateMeta)
    spec: PodSpec


class KubeObject(ApiModel):
    """Any other Kubernetes object (Secret, ConfigMap, Namespace, ...): kept as written."""

    model_config = ConfigDict(extra="allow")

    api_version: str
    kind: str
    metadata: ObjectMeta


class ServicePort(K8sPassThrough):
    known_fields = frozenset({"appProtocol", "name", "nodePort", "port", "protocol", "targetPort"})

    port: int = Field(ge=1, le=65535)
    name: str | None = None
    target_port: int | str | None = None


class ServiceSpec(ApiModel):
    model_config = ConfigDict(extra="allow")

    ports: list[ServicePort] = Field(default_factory=list)
    selector: dict[str, str] = Field(default_factory=dict)
    type: str | None = None


class Service(KubeObject):
    spec: ServiceSpec = Field(default_factory=ServiceSpec)


class Secret(KubeObject):
    data: dict[str, str] = Field(default_factory=dict)
    string_data: dict[str, str] = Field(default_factory=dict)

    def has_key(self, key: str) -> bool:
        return key in self.data or key in self.string_data


class WorkloadSpec(ApiModel):
    """apps/v1 Deployment/StatefulSet spec: the replicas and pod template inferplane runs."""

    model_config = ConfigDict(extra="allow", strict=True)

    replicas: int = Field(default=1, ge=0)
    template: PodTemplateSpec


class Workload(KubeObject):
    """An apps/v1 Deployment or StatefulSet; one whose pods run a model server becomes a ModelService."""

    spec: WorkloadSpec

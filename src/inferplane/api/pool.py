"""InferencePool: the v1 API, the legacy v1alpha2 API and the loose form some pattern repositories show.

Everything is converted to v1 on load (reference/deployment.md §3), so the rest of inferplane knows one shape.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from inferplane.api.base import ObjectMeta, Resource
from inferplane.api.k8s import K8sModel

V1_GROUP = "inference.networking.k8s.io"
LEGACY_GROUP = "inference.networking.x-k8s.io"
LOOSE_GROUP = "inference.gateway.llm-d.ai"
POOL_API_VERSIONS = (f"{V1_GROUP}/v1", f"{LEGACY_GROUP}/v1alpha2", f"{LOOSE_GROUP}/v1alpha2")
POOL_GROUPS = (V1_GROUP, LEGACY_GROUP)
DEFAULT_EPP_PORT = 9002
EPP_CONFIG_ANNOTATION = "inferplane.dev/endpoint-picker-config"

FailureMode = Literal["FailOpen", "FailClose"]


class _StrictResource(Resource):
    model_config = ConfigDict(strict=True)


class Port(K8sModel):
    number: int = Field(ge=1, le=65535)


class LabelSelector(K8sModel):
    match_labels: dict[str, str] = Field(min_length=1, max_length=64)


class EndpointPickerRef(K8sModel):
    group: str = ""
    kind: str = "Service"
    name: str = Field(min_length=1)
    port: Port | None = None
    failure_mode: FailureMode = "FailClose"

    @model_validator(mode="after")
    def _service_port(self) -> EndpointPickerRef:
        if self.kind == "Service" and self.port is None:
            raise ValueError(f"port: required when kind is Service: add `port: {{number: {DEFAULT_EPP_PORT}}}`")
        return self


class InferencePoolSpec(K8sModel):
    selector: LabelSelector
    target_ports: list[Port] = Field(min_length=1, max_length=8)
    app_protocol: Literal["http", "kubernetes.io/h2c"] = "http"
    endpoint_picker_ref: EndpointPickerRef | None = None

    @field_validator("target_ports")
    @classmethod
    def _unique(cls, v: list[Port]) -> list[Port]:
        numbers = [p.number for p in v]
        if len(numbers) != len(set(numbers)):
            raise ValueError(f"port numbers must be unique, found {numbers}")
        return v


class InferencePool(_StrictResource):
    """inference.networking.k8s.io/v1 InferencePool: the form inferplane works with."""

    api_version: Literal["inference.networking.k8s.io/v1"] = "inference.networking.k8s.io/v1"
    kind: Literal["InferencePool"] = "InferencePool"
    spec: InferencePoolSpec
    status: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    @property
    def match_labels(self) -> dict[str, str]:
        return self.spec.selector.match_labels

    @property
    def target_port_numbers(self) -> list[int]:
        return [p.number for p in self.spec.target_ports]

    @property
    def failure_mode(self) -> FailureMode:
        ref = self.spec.endpoint_picker_ref
        return ref.failure_mode if ref else "FailClose"

    @property
    def epp_config_ref(self) -> str | None:
        """The EndpointPickerConfig file its picker runs (annotation `inferplane.dev/endpoint-picker-config`)."""
        return self.metadata.annotations.get(EPP_CONFIG_ANNOTATION)

    def selects(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels.items())


# ------------------------------------------------------------------------------------------ legacy v1alpha2


class ExtensionRef(K8sModel):
    group: str = ""
    kind: str = "Service"
    name: str = Field(min_length=1)
    port_number: int | None = Field(default=None, ge=1, le=65535)
    failure_mode: FailureMode = "FailClose"


class LegacyPoolSpec(K8sModel):
    selector: dict[str, str] = Field(min_length=1, max_length=64)
    target_port_number: int = Field(ge=1, le=65535)
    extension_ref: ExtensionRef


class LegacyInferencePool(_StrictResource):
    """inference.networking.x-k8s.io/v1alpha2 (GIE ≤ v1.4): flat selector, one port, extensionRef."""

    api_version: Literal["inference.networking.x-k8s.io/v1alpha2"]
    kind: Literal["InferencePool"]
    spec: LegacyPoolSpec
    status: dict[str, Any] | None = None

    def to_v1(self) -> InferencePool:
        ext = self.spec.extension_ref
        return InferencePool(
            metadata=self.metadata,
            spec=InferencePoolSpec(
                selector=LabelSelector(match_labels=dict(self.spec.selector)),
                target_ports=[Port(number=self.spec.target_port_number)],
                endpoint_picker_ref=EndpointPickerRef(
                    group=ext.group,
                    kind=ext.kind,
                    name=ext.name,
                    port=Port(number=ext.port_number or DEFAULT_EPP_PORT),
                    failure_mode=ext.failure_mode,
                ),
            ),
        )


LEGACY_PATHS: dict[tuple[str | int, ...], tuple[str | int, ...]] = {
    ("spec", "selector", "matchLabels"): ("spec", "selector"),
    ("spec", "targetPorts"): ("spec", "targetPortNumber"),
    ("spec", "endpointPickerRef"): ("spec", "extensionRef"),
}

# ------------------------------------------------------------------------------- loose llm-d "pattern" form


class LooseScheduler(K8sModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["EPP"] = "EPP"


class LoosePoolSpec(K8sModel):
    selector: dict[str, Any] = Field(min_length=1)
    target_port: int = Field(ge=1, le=65535)
    scheduler: LooseScheduler | None = None

    @field_validator("selector")
    @classmethod
    def _labels(cls, v: dict[str, Any]) -> dict[str, Any]:
        labels = v.get("matchLabels", v) if set(v) == {"matchLabels"} else v
        if not isinstance(labels, dict) or not all(isinstance(x, str) for x in labels.values()):
            raise ValueError("expected label values as strings (quote true, numbers)")
        return v


class LooseInferencePool(_StrictResource):
    """`inference.gateway.llm-d.ai/v1alpha2`: shown in some pattern READMEs, not a real API group."""

    api_version: Literal["inference.gateway.llm-d.ai/v1alpha2"]
    kind: Literal["InferencePool"]
    spec: LoosePoolSpec

    def to_v1(self) -> InferencePool:
        sel = self.spec.selector
        labels = sel["matchLabels"] if set(sel) == {"matchLabels"} else sel
        return InferencePool(
            metadata=self.metadata,
            spec=InferencePoolSpec(
                selector=LabelSelector(match_labels=dict(labels)),
                target_ports=[Port(number=self.spec.target_port)],
            ),
        )


LOOSE_PATHS: dict[tuple[str | int, ...], tuple[str | int, ...]] = {
    ("spec", "selector", "matchLabels"): ("spec", "selector"),
    ("spec", "targetPorts"): ("spec", "targetPort"),
}


def make_pool(name: str, namespace: str, labels: dict[str, str], ports: list[int], **meta: Any) -> InferencePool:
    """An InferencePool built from chart values (GIE `inferencepool` chart)."""
    return InferencePool(
        metadata=ObjectMeta(name=name, namespace=namespace, **meta),
        spec=InferencePoolSpec(
            selector=LabelSelector(match_labels=labels), target_ports=[Port(number=p) for p in ports]
        ),
    )

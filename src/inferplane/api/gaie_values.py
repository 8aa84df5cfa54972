"""Values of the GIE `inferencepool` chart (and the llm-d router chart's overrides) → InferencePool + EPP config.

The chart renders an InferencePool named after the release, an EPP Deployment/Service `<release>-epp` on
`extProcPort`, and the EPP's EndpointPickerConfig from `pluginsConfigFile`: a key of `pluginsCustomConfig`, or a
file built into the image (reference/deployment.md §2). The embedded config is parsed with positions in the file.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from inferplane.api.base import ApiModel
from inferplane.api.k8s import EnvVar, K8sModel
from inferplane.api.pool import LabelSelector, Port

GIE_TOP_LEVEL = frozenset({"inferenceExtension", "inferencePool", "provider", "global", "experimentalHttpRoute"})
# Config files shipped inside the EPP images; all of them are GIE's default scorers as far as inferplane is concerned.
BUILTIN_CONFIGS = ("default-plugins.yaml", "plugins-v2.yaml", "default-config.yaml")
EXTENSION_KEYS = frozenset(
    [
        "replicas",
        "image",
        "extProcPort",
        "flags",
        "pluginsConfigFile",
        "pluginsCustomConfig",
        "extraContainerPorts",
        "extraServicePorts",
        "env",
        "monitoring",
        "tracing",
        "sidecar",
        "volumes",
        "volumeMounts",
        "logVerbosity",
        "failureMode",
        "resources",
        "affinity",
        "tolerations",
        "nodeSelector",
        "enablePprof",
        "enableLeaderElection",
        "latencyPredictor",
        "endpointsServer",
        "extraArgs",
    ]
)


class _Lenient(ApiModel):
    model_config = ConfigDict(strict=True, extra="allow")
    known_fields: ClassVar[frozenset[str]] = frozenset()
    unknown_severity: ClassVar[str] = "warning"
    unknown_note: ClassVar[str] = " (the chart ignores it)"


class InferenceExtensionValues(_Lenient):
    known_fields = EXTENSION_KEYS

    replicas: int = Field(default=1, ge=0)
    ext_proc_port: int = Field(default=9002, ge=1, le=65535)
    flags: dict[str, Any] = Field(default_factory=dict)
    plugins_config_file: str | None = None
    plugins_custom_config: dict[str, str] = Field(default_factory=dict)
    env: list[EnvVar] = Field(default_factory=list)
    failure_mode: Literal["FailOpen", "FailClose"] | None = None


class ModelServers(K8sModel):
    match_labels: dict[str, str] = Field(min_length=1)


class InferencePoolValues(_Lenient):
    known_fields = frozenset(
        {
            "targetPorts",
            "targetPortNumber",
            "modelServerType",
            "modelServers",
            "apiVersion",
            "pluginsConfigFile",
            "pluginsCustomConfig",
        }
    )

    target_ports: list[Port] | None = Field(default=None, min_length=1, max_length=8)
    target_port_number: int | None = Field(default=None, ge=1, le=65535)
    model_server_type: str = "vllm"
    model_servers: ModelServers
    api_version: str | None = None
    # The llm-d router chart (2026) moved the plugin settings here.
    plugins_config_file: str | None = None
    plugins_custom_config: dict[str, str] = Field(default_factory=dict)

    def ports(self) -> list[int]:
        if self.target_ports:
            return [p.number for p in self.target_ports]
        return [self.target_port_number or 8000]


class Provider(ApiModel):
    model_config = ConfigDict(strict=True, extra="allow")

    name: Literal["none", "istio", "gke"] = "none"


class GieValues(_Lenient):
    known_fields = GIE_TOP_LEVEL

    inference_extension: InferenceExtensionValues = Field(default_factory=InferenceExtensionValues)
    inference_pool: InferencePoolValues
    provider: Provider = Field(default_factory=Provider)

    def plugins_source(self) -> tuple[str | None, dict[str, str], tuple[str, ...]]:
        """(config file name, custom configs, values path of those settings)."""
        ext = self.inference_extension
        if ext.plugins_config_file or ext.plugins_custom_config:
            return ext.plugins_config_file, ext.plugins_custom_config, ("inferenceExtension",)
        pool = self.inference_pool
        return pool.plugins_config_file, pool.plugins_custom_config, ("inferencePool",)


class BbrImage(ApiModel):
    model_config = ConfigDict(extra="allow")


class BbrSettings(ApiModel):
    model_config = ConfigDict(strict=True, extra="allow")

    name: str = "body-based-router"
    replicas: int = Field(default=1, ge=0)
    port: int = Field(default=9004, ge=1, le=65535)
    health_check_port: int = Field(default=9005, ge=1, le=65535)


class BbrValues(_Lenient):
    """Values of GIE's `body-based-routing` chart."""

    known_fields = frozenset({"bbr", "provider", "inferenceGateway", "global"})

    bbr: BbrSettings = Field(default_factory=BbrSettings)
    provider: Provider = Field(default_factory=Provider)
    inference_gateway: dict[str, Any] = Field(default_factory=dict)


__all__ = ["BUILTIN_CONFIGS", "BbrValues", "GieValues", "LabelSelector"]

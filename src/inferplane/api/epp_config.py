"""`EndpointPickerConfig`: the endpoint picker's plugin configuration, as GIE and llm-d write it.

Decoding is strict like the upstream loader: unknown fields are errors, and so is a number written as a string.
Both API groups are accepted: `inference.networking.x-k8s.io/v1alpha1` (GIE, llm-d ≤ v0.7) and
`llm-d.ai/v1alpha1` (llm-d ≥ v0.8).
`default_epp_config` is the built-in configuration used when none is given. What depends on the plugin types
(older type names, system defaults, built-in plugins a reference may name) is the EPP's config loader's job
(`inferplane.epp.framework.config`): this model imports nothing above `api`.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Literal

from pydantic import AliasChoices, ConfigDict, Field, field_serializer, field_validator, model_validator

from inferplane.api.base import ApiModel

API_VERSIONS = ("inference.networking.x-k8s.io/v1alpha1", "llm-d.ai/v1alpha1")
KNOWN_FEATURE_GATES = ("flowControl", "dataLayer", "enableLegacyMetrics")

# A YAML 1.2 float with an exponent and no dot (`5e-324`, `1E3`), which PyYAML's 1.1 resolver leaves a string.
_YAML12_EXPONENT = re.compile(r"^[-+]?[0-9]+[eE][-+]?[0-9]+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)([KMGTPE]i?|[kmgtpe])?$")
_QUANTITY_UNITS = {
    "": 1,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


class StrictApiModel(ApiModel):
    """Strict types like the upstream Go decoder: a number written as a string ("3") is an error, not coerced.
    Durations and byte quantities, which upstream accepts as strings, convert in `mode="before"` validators."""

    model_config = ConfigDict(**ApiModel.model_config, strict=True)


def parse_duration(value: Any) -> float:
    """A Go duration (`30s`, `1m30s`, `500ms`) or a number of seconds → seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 30s or 500ms, found {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, found {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 30s or 500ms, found {value!r}")
    text = value.strip()
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"expected a duration such as 30s, 1m30s or 500ms, found {value!r}")
    return total


def parse_quantity(value: Any) -> int:
    """A byte count as an integer or a Kubernetes quantity (`1Gi`, `500M`) → bytes."""
    if isinstance(value, bool):
        raise ValueError(f"expected a byte count such as 1073741824 or 1Gi, found {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a byte count cannot be negative, found {value}")
        return value
    if isinstance(value, str):
        m = _QUANTITY.match(value.strip())
        if m:
            return int(float(m.group(1)) * _QUANTITY_UNITS[m.group(2) or ""])
    raise ValueError(f"expected a byte count such as 1073741824 or 1Gi, found {value!r}")


class PluginSpec(StrictApiModel):
    """One plugin instance: `type` is the registered type name, `name` defaults to the type."""

    name: str | None = None
    type: str
    parameters: dict[str, Any] | None = None

    @field_validator("type")
    @classmethod
    def _type_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("plugin type must not be empty")
        return v

    @property
    def plugin_name(self) -> str:
        return self.name or self.type


class ProfilePluginRef(StrictApiModel):
    plugin_ref: str
    # Applies only to scorers; default 1.0, not normalised. A JSON number upstream (`weight: 2` and `2.0` both
    # appear in llm-d configs); a quoted "3" is rejected by the Go decoder, so it is rejected here too.
    weight: float | None = Field(default=None, ge=0)

    @field_validator("weight", mode="before")
    @classmethod
    def _yaml12_exponent(cls, v: Any) -> Any:
        """PyYAML resolves plain `1e-3` (no dot) as a string, YAML 1.1 style; Go's YAML reader (1.2 style) reads a
        number, so such a string is taken as the number it was written as. `"3"` stays an error."""
        if isinstance(v, str) and _YAML12_EXPONENT.match(v):
            return float(v)
        return v


class SchedulingProfile(StrictApiModel):
    name: str
    plugins: list[ProfilePluginRef] = Field(default_factory=list)


class PluginRef(StrictApiModel):
    plugin_ref: str


class DataLayerSource(StrictApiModel):
    plugin_ref: str
    extractors: list[PluginRef] = Field(default_factory=list)


class DataLayerConfig(StrictApiModel):
    sources: list[DataLayerSource] = Field(default_factory=list)


class PriorityBandConfig(StrictApiModel):
    """One flow-control priority band; in `defaultPriorityBand` the priority may be left out."""

    priority: int | None = None
    max_bytes: int | None = None
    max_requests: int | None = None
    fairness_policy_ref: str | None = None
    ordering_policy_ref: str | None = None

    @field_validator("max_bytes", mode="before")
    @classmethod
    def _bytes(cls, v: Any) -> int | None:
        return None if v is None else parse_quantity(v)


class FlowControlConfig(StrictApiModel):
    """Flow-control limits (reference/epp.md §5); unset global limits mean unlimited."""

    max_bytes: int | None = None
    max_requests: int | None = None
    default_request_ttl: float | None = Field(
        default=None,
        validation_alias=AliasChoices("defaultRequestTTL", "defaultRequestTtl", "default_request_ttl"),
        serialization_alias="defaultRequestTTL",
    )
    default_priority_band: PriorityBandConfig | None = None
    priority_bands: list[PriorityBandConfig] = Field(default_factory=list)
    usage_limit_policy_plugin_ref: str | None = None

    @field_validator("max_bytes", mode="before")
    @classmethod
    def _bytes(cls, v: Any) -> int | None:
        return None if v is None else parse_quantity(v)

    @field_validator("default_request_ttl", mode="before")
    @classmethod
    def _ttl(cls, v: Any) -> float | None:
        return None if v is None else parse_duration(v)

    @field_serializer("default_request_ttl")
    def _ttl_out(self, v: float | None) -> str | None:
        return None if v is None else f"{v:g}s"

    @model_validator(mode="after")
    def _bands_unique(self) -> FlowControlConfig:
        seen: set[int] = set()
        for i, band in enumerate(self.priority_bands):
            if band.priority is None:
                raise ValueError(f"priorityBands[{i}].priority is required")
            if band.priority in seen:
                raise ValueError(f"priorityBands[{i}]: priority {band.priority} is listed twice")
            seen.add(band.priority)
        return self


class EndpointPickerConfig(StrictApiModel):
    api_version: Literal["inference.networking.x-k8s.io/v1alpha1", "llm-d.ai/v1alpha1"] = (
        "inference.networking.x-k8s.io/v1alpha1"
    )
    kind: Literal["EndpointPickerConfig"] = "EndpointPickerConfig"
    feature_gates: list[str] = Field(default_factory=list)
    plugins: list[PluginSpec] = Field(default_factory=list)
    scheduling_profiles: list[SchedulingProfile] = Field(default_factory=list)
    saturation_detector: PluginRef | None = None
    # The Go JSON tag is `dataLayer`; the upstream docs show `data:`. Both are accepted.
    data_layer: DataLayerConfig | None = Field(
        default=None, validation_alias=AliasChoices("dataLayer", "data", "data_layer")
    )
    flow_control: FlowControlConfig | None = None
    parser: PluginRef | None = None

    @field_validator("feature_gates")
    @classmethod
    def _known_gates(cls, v: list[str]) -> list[str]:
        for gate in v:
            if gate not in KNOWN_FEATURE_GATES:
                raise ValueError(f"unknown feature gate {gate!r}; known gates: {', '.join(KNOWN_FEATURE_GATES)}")
        return v

    @model_validator(mode="after")
    def _references(self) -> EndpointPickerConfig:
        names: set[str] = set()
        for i, p in enumerate(self.plugins):
            if p.plugin_name in names:
                raise ValueError(
                    f"plugins[{i}]: plugin name {p.plugin_name!r} is used twice; give each instance a unique `name`"
                )
            names.add(p.plugin_name)
        profile_names: set[str] = set()
        for i, prof in enumerate(self.scheduling_profiles):
            if prof.name in profile_names:
                raise ValueError(f"schedulingProfiles[{i}]: profile name {prof.name!r} is used twice")
            profile_names.add(prof.name)
            for j, ref in enumerate(prof.plugins):
                if ref.plugin_ref not in names and not _misspelled_type_explains(self.plugins, ref.plugin_ref):
                    raise ValueError(
                        f"schedulingProfiles[{i}].plugins[{j}].pluginRef: {ref.plugin_ref!r} names no plugin; "
                        f"defined plugins: {', '.join(sorted(names)) or '(none)'}"
                    )
        # saturationDetector and parser may name a type the loader creates on its own; which types those are is a
        # fact of the plugin registry, checked by the EPP's config loader (epp.framework.config).
        return self

    def has_gate(self, gate: str) -> bool:
        return gate in self.feature_gates

    def plugin(self, name: str) -> PluginSpec | None:
        for p in self.plugins:
            if p.plugin_name == name:
                return p
        return None


def _misspelled_type_explains(plugins: list[PluginSpec], ref: str) -> bool:
    """`- type: queue-scorr` without a `name` is named `queue-scorr`, so `pluginRef: queue-scorer` finds nothing.
    The misspelled type is the problem (reported on its `type` line, with a suggestion, by the EPP's config check and
    builder); blaming the pluginRef as well would point at the wrong line. The model knows no plugin types, so a
    misspelling is recognised by its spelling: an unnamed plugin whose type is a near miss of the reference. Should
    that type exist after all, the EPP's loader still rejects the dangling reference."""
    unnamed = [p.type for p in plugins if p.name is None and p.type != ref]
    return bool(difflib.get_close_matches(ref, unnamed, n=1, cutoff=0.8))


def default_epp_config() -> EndpointPickerConfig:
    """GIE's built-in configuration (pkg/epp/config/loader/defaults.go): queue 2, KV-cache 2, prefix 3."""
    return EndpointPickerConfig.model_validate(
        {
            "apiVersion": API_VERSIONS[0],
            "kind": "EndpointPickerConfig",
            "plugins": [
                {"type": "queue-scorer"},
                {"type": "kv-cache-utilization-scorer"},
                {"type": "prefix-cache-scorer"},
                {"type": "metrics-data-source"},
                {"type": "core-metrics-extractor"},
            ],
            "schedulingProfiles": [
                {
                    "name": "default",
                    "plugins": [
                        {"pluginRef": "queue-scorer", "weight": 2},
                        {"pluginRef": "kv-cache-utilization-scorer", "weight": 2},
                        {"pluginRef": "prefix-cache-scorer", "weight": 3},
                    ],
                }
            ],
            "dataLayer": {
                "sources": [
                    {"pluginRef": "metrics-data-source", "extractors": [{"pluginRef": "core-metrics-extractor"}]}
                ]
            },
        }
    )

"""EndpointPickerConfig: strict decoding, system defaults, building every config found in the shared schemas."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from inferplane.api.epp_config import (
    EndpointPickerConfig,
    default_epp_config,
    parse_duration,
    parse_quantity,
)
from inferplane.epp.framework.config import apply_system_defaults
from inferplane.epp.scheduling import build_scheduler
from inferplane.errors import ConfigError
from tests.conftest import SHARED

from .helpers import config

LLMD = SHARED / "schemas" / "llmd"


def _embedded_configs(node: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    """Every EndpointPickerConfig in a YAML document, including the texts of `pluginsCustomConfig` entries."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if node.get("kind") == "EndpointPickerConfig":
            found.append((where, node))
        for k, v in node.items():
            found += _embedded_configs(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _embedded_configs(v, f"{where}[{i}]")
    elif isinstance(node, str) and "kind: EndpointPickerConfig" in node:
        found += _embedded_configs(yaml.safe_load(node), where)
    return found


def _all_configs() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(LLMD.glob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            out += _embedded_configs(doc, f"{path.name}#{i}")
    return out


ALL = _all_configs()


def test_the_shared_schemas_hold_the_expected_configs() -> None:
    names = {w.split("#")[0] for w, _ in ALL}
    assert len(ALL) >= 12
    assert "inference-scheduler-v0.8_pd-epp-config.yaml" in names
    assert "llm-d-guides_precise-prefix-cache-aware.values.yaml" in names
    assert "infra-2025-09_ms-wide-ep_values.yaml" in names


@pytest.mark.parametrize(("where", "data"), ALL, ids=[w for w, _ in ALL])
def test_every_shared_config_loads_and_builds(where: str, data: dict[str, Any]) -> None:
    cfg = EndpointPickerConfig.model_validate(data)
    s = build_scheduler(cfg)
    assert s.profiles
    for prof in s.profiles.values():
        assert prof.picker is not None
    declared = {p.plugin_name for p in cfg.plugins}
    assert declared <= set(s.plugins)


def test_queue_scorer_copy_error_is_a_warning() -> None:
    data = dict(next(d for w, d in ALL if w.startswith("infra-2025-09_gaie-pd_values")))
    s = build_scheduler(EndpointPickerConfig.model_validate(data))
    assert any("does not take parameter 'hashBlockSize'" in w for w in s.warnings)


def test_both_api_groups_and_strictness() -> None:
    for group in ("inference.networking.x-k8s.io/v1alpha1", "llm-d.ai/v1alpha1"):
        assert config({"apiVersion": group, "kind": "EndpointPickerConfig"}).api_version == group
    with pytest.raises(ValidationError, match="apiVersion"):
        config({"apiVersion": "v1", "kind": "EndpointPickerConfig"})
    with pytest.raises(ValidationError, match="schedulingProfile"):
        config({"schedulingProfile": []})
    with pytest.raises(ValidationError, match="unknown feature gate"):
        config({"featureGates": ["flowcontrol"]})


def test_data_and_data_layer_spellings() -> None:
    src = {"sources": [{"pluginRef": "metrics-data-source", "extractors": [{"pluginRef": "core-metrics-extractor"}]}]}
    assert config({"data": src}).data_layer == config({"dataLayer": src}).data_layer
    assert config({"data": src}).data_layer is not None


def test_reference_checks() -> None:
    with pytest.raises(ValidationError, match="used twice"):
        config({"plugins": [{"type": "queue-scorer"}, {"type": "queue-scorer"}]})
    two = config({"plugins": [{"type": "queue-scorer"}, {"name": "q2", "type": "queue-scorer"}]})
    assert [p.plugin_name for p in two.plugins] == ["queue-scorer", "q2"]
    with pytest.raises(ValidationError, match="names no plugin"):
        config({"schedulingProfiles": [{"name": "d", "plugins": [{"pluginRef": "nope"}]}]})
    with pytest.raises(ValidationError, match="weight"):
        config(
            {
                "plugins": [{"type": "queue-scorer"}],
                "schedulingProfiles": [{"name": "d", "plugins": [{"pluginRef": "queue-scorer", "weight": -1}]}],
            }
        )


def test_flow_control_fields() -> None:
    cfg = config(
        {
            "featureGates": ["flowControl"],
            "flowControl": {
                "maxBytes": "1Gi",
                "maxRequests": 100,
                "defaultRequestTTL": "1m30s",
                "defaultPriorityBand": {"maxRequests": 5},
                "priorityBands": [
                    {"priority": 10, "maxBytes": 1000, "fairnessPolicyRef": "round-robin-fairness-policy"},
                    {"priority": -1, "orderingPolicyRef": "edf-ordering-policy"},
                ],
                "usageLimitPolicyPluginRef": "static-usage-limit-policy",
            },
        }
    )
    fc = cfg.flow_control
    assert fc is not None
    assert fc.max_bytes == 2**30
    assert fc.default_request_ttl == 90.0
    assert fc.priority_bands[0].fairness_policy_ref == "round-robin-fairness-policy"
    assert cfg.has_gate("flowControl")
    with pytest.raises(ValidationError, match="listed twice"):
        config({"flowControl": {"priorityBands": [{"priority": 1}, {"priority": 1}]}})
    with pytest.raises(ValidationError, match="duration"):
        config({"flowControl": {"defaultRequestTTL": "soon"}})


def test_duration_and_quantity_parsing() -> None:
    assert parse_duration("200ms") == pytest.approx(0.2)
    assert parse_duration("2m") == 120.0
    assert parse_duration(1.5) == 1.5
    assert parse_quantity("500M") == 500_000_000
    assert parse_quantity(12) == 12
    with pytest.raises(ValueError, match="byte count"):
        parse_quantity("lots")


def test_system_defaults() -> None:
    cfg = apply_system_defaults(
        config(
            {
                "plugins": [
                    {"type": "decode-filter"},
                    {"type": "kv-cache-scorer"},
                    {"type": "queue-scorer"},
                    {"type": "prefix-cache-scorer", "parameters": {"mode": "cache_tracking"}},
                ]
            }
        )
    )
    types = {p.plugin_name: p.type for p in cfg.plugins}
    assert types["kv-cache-scorer"] == "kv-cache-utilization-scorer"
    assert types["prefix-cache-scorer"] == "precise-prefix-cache-scorer"
    assert types["single-profile-handler"] == "single-profile-handler"
    (prof,) = cfg.scheduling_profiles
    assert prof.name == "default"
    refs = {r.plugin_ref: r.weight for r in prof.plugins}
    assert refs == {
        "decode-filter": None,
        "kv-cache-scorer": 1.0,
        "queue-scorer": 1.0,
        "prefix-cache-scorer": 1.0,
        "max-score-picker": None,
    }
    assert cfg.saturation_detector is not None
    assert cfg.saturation_detector.plugin_ref == "utilization-detector"
    assert cfg.parser is not None
    assert cfg.parser.plugin_ref == "openai-parser"
    assert cfg.data_layer is not None
    legacy = apply_system_defaults(config({"featureGates": ["enableLegacyMetrics"]}))
    assert legacy.data_layer is None


def test_default_config_is_queue_kv_prefix_2_2_3() -> None:
    s = build_scheduler(default_epp_config())
    (prof,) = s.profiles.values()
    assert [(p.type_name, w) for p, w in prof.scorers] == [
        ("queue-scorer", 2.0),
        ("kv-cache-utilization-scorer", 2.0),
        ("prefix-cache-scorer", 3.0),
    ]
    assert prof.picker is not None
    assert prof.picker.type_name == "max-score-picker"


def test_builder_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="unknown plugin type 'queue-scorr'") as exc:
        build_scheduler(config({"plugins": [{"type": "queue-scorr"}]}))
    assert "did you mean queue-scorer?" in str(exc.value)
    with pytest.raises(ConfigError, match=r"parameters.maxNumOfEndpoints"):
        build_scheduler(config({"plugins": [{"type": "max-score-picker", "parameters": {"maxNumOfEndpoints": 0}}]}))
    two_profiles = {
        "plugins": [{"type": "queue-scorer"}, {"type": "single-profile-handler"}],
        "schedulingProfiles": [{"name": "a", "plugins": []}, {"name": "b", "plugins": []}],
    }
    with pytest.raises(ConfigError, match="exactly one profile"):
        build_scheduler(config(two_profiles))
    pickers = {
        "plugins": [{"type": "random-picker"}, {"type": "max-score-picker"}],
        "schedulingProfiles": [
            {"name": "a", "plugins": [{"pluginRef": "random-picker"}, {"pluginRef": "max-score-picker"}]}
        ],
    }
    with pytest.raises(ConfigError, match="more than one picker"):
        build_scheduler(config(pickers))


@pytest.mark.parametrize(("where", "data"), ALL, ids=[w for w, _ in ALL])
def test_dump_round_trips(where: str, data: dict[str, Any]) -> None:
    cfg = EndpointPickerConfig.model_validate(data)
    again = EndpointPickerConfig.model_validate(yaml.safe_load(yaml.safe_dump(_dump(cfg))))
    assert again == cfg


def _dump(cfg: EndpointPickerConfig) -> dict[str, Any]:
    return cfg.model_dump(by_alias=True, exclude_none=True, mode="json")


def test_flow_control_dump_uses_upstream_spellings() -> None:
    cfg = config({"featureGates": ["flowControl"], "flowControl": {"defaultRequestTTL": "1m30s", "maxBytes": "1Ki"}})
    out = _dump(cfg)
    assert out["flowControl"] == {"maxBytes": 1024, "defaultRequestTTL": "90s", "priorityBands": []}
    assert EndpointPickerConfig.model_validate(out) == cfg
    full = apply_system_defaults(default_epp_config())
    assert EndpointPickerConfig.model_validate(_dump(full)) == full

"""EndpointPickerConfig and Gateway API numbers are strict like the Go decoders; plugin parameter problems are
reported per key in validate's own words; a single file's EPP annotation is not checked against files it lacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from inferplane.api import load_deployment
from inferplane.api.epp_config import EndpointPickerConfig
from inferplane.api.gateway_api import HTTPRoute
from tests.conftest import DEPLOYMENTS
from tests.unit.api.helpers import write_tree


def _config(weight: Any = 2, flow: dict[str, Any] | None = None) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
        "kind": "EndpointPickerConfig",
        "plugins": [{"type": "queue-scorer"}],
        "schedulingProfiles": [{"name": "default", "plugins": [{"pluginRef": "queue-scorer", "weight": weight}]}],
    }
    if flow is not None:
        cfg["featureGates"] = ["flowControl"]
        cfg["flowControl"] = flow
    return cfg


@given(st.one_of(st.integers(0, 10**6), st.floats(0, 1e6, allow_nan=False)))
def test_numeric_weights_load(weight: float) -> None:
    cfg = EndpointPickerConfig.model_validate(_config(weight))
    assert cfg.scheduling_profiles[0].plugins[0].weight == weight


@given(st.one_of(st.integers(0, 10**6).map(str), st.booleans(), st.just("3.5")))
def test_numbers_written_as_strings_or_booleans_are_rejected(weight: object) -> None:
    with pytest.raises(ValidationError):
        EndpointPickerConfig.model_validate(_config(weight))


def test_quantities_and_durations_stay_strings_as_upstream_writes_them() -> None:
    flow = {"maxBytes": "1Gi", "defaultRequestTTL": "1m30s", "priorityBands": [{"priority": 1, "maxBytes": "500M"}]}
    cfg = EndpointPickerConfig.model_validate(_config(flow=flow))
    assert cfg.flow_control is not None
    assert (cfg.flow_control.max_bytes, cfg.flow_control.default_request_ttl) == (2**30, 90.0)
    with pytest.raises(ValidationError):
        EndpointPickerConfig.model_validate(_config(flow={"maxRequests": "10"}))


def test_backend_weight_and_ports_must_be_integers() -> None:
    route: dict[str, Any] = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r"},
        "spec": {"rules": [{"backendRefs": [{"kind": "Service", "name": "s", "port": 8000, "weight": 50}]}]},
    }
    assert HTTPRoute.model_validate(route).spec.rules[0].backend_refs[0].weight == 50
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = "50"
    with pytest.raises(ValidationError, match=r"int_type|valid integer"):
        HTTPRoute.model_validate(route)


EPP_WITH_PARAMS = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
  - type: prefix-cache-scorer
    parameters:
      blockSize: 64
      maxPrefixBlocksToMatch: 256
      lruCapacityPerServr: 3
"""


def test_parameter_errors_sit_on_their_key_and_misspelt_keys_are_warned(tmp_path: Path) -> None:
    from inferplane.api import DiagnosticsError

    write_tree(tmp_path, {"epp.yaml": EPP_WITH_PARAMS})
    with pytest.raises(DiagnosticsError) as info:
        load_deployment(tmp_path / "epp.yaml")
    [error] = info.value.errors
    assert (error.line, error.column, error.path) == (6, 18, "plugins[0].parameters.blockSize")
    assert error.message.startswith("blockSize (characters) is deprecated and needs blockSizeTokens")
    assert "Value error" not in str(info.value)
    assert "parameters.:" not in str(info.value)
    [warning] = [d for d in info.value.diagnostics if d.severity == "warning"]
    assert (warning.line, warning.path) == (8, "plugins[0].parameters.lruCapacityPerServr")
    assert (
        warning.message == "plugin 'prefix-cache-scorer' does not take parameter 'lruCapacityPerServr'; it is ignored"
    )
    assert warning.hint == "did you mean lruCapacityPerServer?"


def test_one_pool_file_does_not_claim_its_config_file_is_missing() -> None:
    dep = load_deployment(DEPLOYMENTS / "pattern3-caching" / "manifests" / "inferencepool.yaml")
    assert not [d for d in dep.warnings if "EndpointPickerConfig" in d.message]
    [pool] = dep.inference_pools
    assert dep.epp_config_origins[pool.name] == "manifests/epp-config.yaml (not loaded: one file validated)"


def test_exponent_weights_read_as_numbers_as_yaml_1_2_reads_them() -> None:
    """PyYAML leaves plain `1e-3` a string (YAML 1.1); Go's reader sees a number, so it is one here too."""
    import yaml

    data = yaml.safe_load(
        "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"
        "plugins: [{type: queue-scorer}]\n"
        "schedulingProfiles: [{name: d, plugins: [{pluginRef: queue-scorer, weight: 1e-3}]}]\n"
    )
    assert EndpointPickerConfig.model_validate(data).scheduling_profiles[0].plugins[0].weight == 0.001

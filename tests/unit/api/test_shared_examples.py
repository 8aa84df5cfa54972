"""Every upstream values file, EndpointPickerConfig and CRD under ../shared/schemas loads (or fails as documented)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from inferplane.api import DiagnosticsError, load_deployment
from tests.conftest import SHARED

LLMD = SHARED / "schemas" / "llmd"
GIE = SHARED / "schemas" / "gie"
# llm-d-inference-sim's own configuration files: flags for the simulator binary, not deployment values.
SIM_CONFIGS = sorted(LLMD.glob("inference-sim_*.yaml"))
LOADABLE = sorted(p for p in LLMD.glob("*.yaml") if p not in SIM_CONFIGS)
V02_KEYS = ("modelName", "parentRefs", "inferencePool", "inferenceModel", "httpRoute", "epp")


def test_the_shared_copies_are_here() -> None:
    assert len(LOADABLE) >= 30, "expected the llm-d reference files under ../shared/schemas/llmd"


@pytest.mark.parametrize("path", LOADABLE, ids=lambda p: p.name)
def test_llmd_file_loads(path: Path) -> None:
    dep = load_deployment(path)
    loaded = dep.model_services or dep.inference_pools or dep.http_routes or dep.leader_worker_sets
    assert loaded or dep.bbr is not None or dep.standalone_epp_configs


@pytest.mark.parametrize("path", sorted(GIE.glob("*.yaml")), ids=lambda p: p.name)
def test_gie_crds_and_examples_load(path: Path) -> None:
    dep = load_deployment(path)
    assert dep.others, "CRDs and the example Envoy ConfigMaps are kept as other Kubernetes objects"


@pytest.mark.parametrize("path", SIM_CONFIGS, ids=lambda p: p.name)
def test_simulator_configs_are_not_deployment_files(path: Path) -> None:
    with pytest.raises(DiagnosticsError) as info:
        load_deployment(path)
    [error] = info.value.errors
    assert error.message == "cannot tell what this document is"
    assert error.line == (6 if "8b-h100" in path.name else 1)


@pytest.mark.parametrize("path", sorted(LLMD.glob("infra-2025-09_ms-*_values.yaml")), ids=lambda p: p.name)
def test_v02_routing_keys_are_warnings_naming_the_chart_change(path: Path) -> None:
    """Helm-era (chart v0.2) routing keys fail the v0.4.12 schema; inferplane loads the file and says they are
    ignored, rather than rejecting guides users still copy."""
    dep = load_deployment(path)
    warned = {w.path for w in dep.warnings if "llm-d-modelservice v0.2 key, ignored since chart v0.4" in w.message}
    assert warned == {f"routing.{k}" for k in V02_KEYS}


@pytest.mark.parametrize("path", sorted(LLMD.glob("inference-scheduler-*.yaml")), ids=lambda p: p.name)
def test_epp_config_samples(path: Path) -> None:
    dep = load_deployment(path)
    [cfg] = dep.standalone_epp_configs[path.name]
    assert cfg.scheduling_profiles
    assert all(p.plugins for p in cfg.scheduling_profiles)
    if "v0.8" in path.name:
        assert cfg.api_version == "llm-d.ai/v1alpha1"


def test_wide_ep_values_become_lws_groups() -> None:
    dep = load_deployment(LLMD / "infra-2025-09_ms-wide-ep_values.yaml")
    decode = dep.model_service("infra-2025-09-ms-wide-ep-decode")
    prefill = dep.model_service("infra-2025-09-ms-wide-ep-prefill")
    assert decode is not None
    assert prefill is not None
    assert decode.group_size == 2  # parallelism.data 2 nodes → LeaderWorkerSet size 2
    assert decode.model == "deepseek-ai/DeepSeek-R1-0528"
    assert decode.accelerator == "gpu"
    assert decode.accelerator_count == 8
    # decode: routing sidecar on servicePort 8000, vLLM behind it on 8200 (from the custom script)
    assert (decode.port, decode.proxy_target_port) == (8000, 8200)


def test_raw_lws_manifest_with_routing_sidecar() -> None:
    dep = load_deployment(LLMD / "llm-d-guides_wide-ep-lws_decode.yaml")
    [lws] = dep.leader_worker_sets
    assert lws.size == 2
    assert lws.restart_policy == "RecreateGroupOnPodRestart"
    [ms] = dep.model_services
    assert ms.lws == lws.name
    assert ms.group_size == 2
    assert ms.port == 8000
    assert ms.proxy_target_port == 8200
    assert ms.vllm.port == 8200
    assert "--tensor-parallel-size" in ms.vllm.unresolved  # $TP_SIZE is filled in by the shell
    assert ms.labels["llm-d.ai/role"] == "decode"


def test_kv_events_custom_command() -> None:
    dep = load_deployment(LLMD / "infra-2025-09_ms-kv-events_values.yaml")
    [ms] = dep.model_services
    assert ms.vllm.block_size == 64
    assert ms.vllm.port == 8200
    assert ms.port == 8000
    assert "--kv-events-config" in ms.vllm.unresolved  # it embeds ${NAMESPACE} and ${POD_IP}


def test_guide_inference_scheduling_pair_validates_together(tmp_path: Path) -> None:
    shutil.copy(LLMD / "llm-d-guides_ms-inference-scheduling_values.yaml", tmp_path / "ms-values.yaml")
    shutil.copy(LLMD / "llm-d-guides_gaie-inference-scheduling_values.yaml", tmp_path / "gaie-values.yaml")
    dep = load_deployment(tmp_path)
    [pool] = dep.inference_pools
    assert pool.name == "gaie"
    assert [m.name for m in dep.pool_members(pool)] == ["ms-decode"]
    assert dep.model_names_for_pool(pool) == ["Qwen/Qwen3-32B"]
    [decode] = dep.model_services
    assert decode.replicas == 8
    assert decode.vllm.tensor_parallel_size == 2
    assert decode.accelerator_count == 2
    assert dep.epp_config_origins["gaie"] == "gaie-values.yaml: built-in default-plugins.yaml (GIE default scorers)"


def test_sept_2025_pair_fails_on_the_documented_label_rename(tmp_path: Path) -> None:
    """Sept-2025 gaie values select `llm-d.ai/inferenceServing` (camelCase); chart v0.4 labels pods
    `llm-d.ai/inference-serving` (reference/deployment.md §2): the selector matches nothing."""
    shutil.copy(LLMD / "infra-2025-09_ms-inference-scheduling_values.yaml", tmp_path / "ms-values.yaml")
    shutil.copy(LLMD / "infra-2025-09_gaie-inference-scheduling_values.yaml", tmp_path / "gaie-values.yaml")
    with pytest.raises(DiagnosticsError) as info:
        load_deployment(tmp_path)
    [error] = info.value.errors
    assert (error.line, error.path) == (25, "inferencePool.modelServers.matchLabels")
    assert error.message == "selector {llm-d.ai/inferenceServing=true} matches no model service"
    assert error.hint == (
        "model services have labels ms-decode: {llm-d.ai/inference-serving=true, llm-d.ai/role=decode}"
    )


def test_embedded_plugins_config_from_gie_values() -> None:
    dep = load_deployment(LLMD / "infra-2025-09_gaie-kv-events_values.yaml")
    [pool] = dep.inference_pools
    cfg = dep.epp_configs[pool.name]
    assert [p.type for p in cfg.plugins][:2] == ["single-profile-handler", "prefix-cache-scorer"]
    assert "pluginsCustomConfig['prefix-cache-tracking-config.yaml']" in dep.epp_config_origins[pool.name]
    assert pool.spec.endpoint_picker_ref is not None
    assert pool.spec.endpoint_picker_ref.port is not None
    assert pool.spec.endpoint_picker_ref.port.number == 9002


def test_plugin_parameters_the_scheduler_ignores_are_warnings_in_place() -> None:
    dep = load_deployment(LLMD / "infra-2025-09_gaie-pd_values.yaml")
    found = {(w.line, w.column, w.path) for w in dep.warnings if "does not take parameter" in w.message}
    assert found == {
        (23, 11, "plugins[4].parameters.hashBlockSize"),
        (24, 11, "plugins[4].parameters.maxPrefixBlocksToMatch"),
        (25, 11, "plugins[4].parameters.lruCapacityPerServer"),
    }

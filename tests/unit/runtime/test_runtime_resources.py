"""The four patterns as the runtime sees them (loaded with the real loader), EPP config overrides, and the files
written for the routers — no processes."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
import yaml

from inferplane.api.epp_config import EndpointPickerConfig
from inferplane.api.loader import load_deployment
from inferplane.errors import InferplaneError
from inferplane.runtime.gateway_link import pool_bindings, write_bbr_models, write_epp_configs
from inferplane.runtime.plan import RuntimeOptions, RuntimePlan, build_plan
from inferplane.runtime.resources import RuntimeView, resolve_source, runtime_view
from inferplane.runtime.state import StateDir

REPO = Path(__file__).resolve().parents[3]
PATTERNS = REPO / "deployments"
RANDOM = {
    "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
    "kind": "EndpointPickerConfig",
    "plugins": [{"type": "random-picker"}],
    "schedulingProfiles": [{"name": "default", "plugins": [{"pluginRef": "random-picker"}]}],
}


def plan_of(view: RuntimeView, state: StateDir, name: str) -> RuntimePlan:
    """The runtime's plan for a loaded deployment, on free ports."""
    return build_plan(
        name=name,
        source="x",
        servers=view.servers,
        pools=view.pools,
        listener_ports=view.listener_ports,
        use_bbr=view.use_bbr,
        state=state,
        options=RuntimeOptions(port=0),
    )


def test_pattern_names_resolve_by_name_or_prefix() -> None:
    assert resolve_source("pattern3") == PATTERNS / "pattern3-caching"
    assert resolve_source("pattern4-moe") == PATTERNS / "pattern4-moe"
    with pytest.raises(InferplaneError, match="no deployment at 'pattern9'") as info:
        resolve_source("pattern9")
    assert "pattern1-baseline" in str(info.value)


@pytest.mark.parametrize(
    ("pattern", "servers", "pools", "bbr"),
    [
        ("pattern1-baseline", {"vllm-gemma": 1}, {"gemma-pool": "FailClose"}, False),
        (
            "pattern2-multimodel",
            {"llm-d-gemma-decode": 1, "llm-d-llama-decode": 1},
            {"gemma-2b-pool": "FailClose", "llama-8b-pool": "FailClose"},
            True,
        ),
        ("pattern3-caching", {"llm-d-pattern3-decode": 3}, {"llama-8b-pool": "FailOpen"}, False),
        ("pattern4-moe", {"mixtral-8x7b": 1}, {"mixtral-pool": "FailClose"}, False),
    ],
)
def test_patterns_become_the_expected_processes(
    pattern: str, servers: dict[str, int], pools: dict[str, str], bbr: bool
) -> None:
    view = runtime_view(load_deployment(PATTERNS / pattern))
    assert {s.name: s.replicas for s in view.servers} == servers
    assert {p.name: p.failure_mode for p in view.pools} == pools
    assert view.use_bbr is bbr
    assert view.listener_ports == [80]
    for pool in view.pools:
        assert pool.members
        assert isinstance(pool.epp_config, EndpointPickerConfig)


def test_pattern4_is_a_two_pod_group_that_recreates_as_one() -> None:
    (server,) = runtime_view(load_deployment(PATTERNS / "pattern4-moe")).servers
    assert server.lws is not None
    assert (server.lws.size, server.lws.restart_policy) == (2, "RecreateGroupOnPodRestart")
    assert "--tensor-parallel-size" in server.vllm_args
    assert server.lws.worker_command[-1].startswith("ray start --address=$(LWS_LEADER_ADDRESS)")


def test_epp_config_override_by_path_object_or_per_pool(tmp_path: Path) -> None:
    dep = load_deployment(PATTERNS / "pattern2-multimodel")
    path = tmp_path / "random.yaml"
    path.write_text(yaml.safe_dump(RANDOM))
    for override in (path, str(path), EndpointPickerConfig.model_validate(RANDOM), RANDOM):
        view = runtime_view(dep, override)
        assert all(p.epp_config.plugins[0].type == "random-picker" for p in view.pools)
    per_pool = runtime_view(dep, {"llama-8b-pool": path})
    types = {p.name: [x.type for x in p.epp_config.plugins] for p in per_pool.pools}
    assert types["llama-8b-pool"] == ["random-picker"]
    assert types["gemma-2b-pool"] != ["random-picker"]
    with pytest.raises(InferplaneError, match=r"--epp-config .*missing\.yaml"):
        runtime_view(dep, tmp_path / "missing.yaml")
    with pytest.raises(InferplaneError, match="EndpointPickerConfig override is invalid"):
        runtime_view(dep, {"kind": "EndpointPickerConfig", "plugins": [{"typo": 1}]})


def test_router_files_are_written_for_the_plan(tmp_path: Path) -> None:
    dep = load_deployment(PATTERNS / "pattern2-multimodel")
    view = runtime_view(dep)
    state = StateDir(tmp_path)
    state.prepare()
    plan = plan_of(view, state, "p2")
    write_epp_configs(plan, view)
    write_bbr_models(plan, view, state)
    for pool in plan.pools.values():
        assert pool.config_file is not None
        cfg = EndpointPickerConfig.model_validate(yaml.safe_load(Path(pool.config_file).read_text()))
        assert cfg.plugins
        assert pool.config_file in plan.component(pool.epp).argv
    models = json.loads((state.config / "bbr-models.json").read_text())
    assert {m["baseModel"] for m in models} == {"google/gemma-2b-it", "meta-llama/Llama-3.1-8B-Instruct"}


def test_a_taken_gateway_port_is_a_clear_error(tmp_path: Path) -> None:
    view = runtime_view(load_deployment(PATTERNS / "pattern1-baseline"))
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(InferplaneError, match=f"port {port} on 127.0.0.1 is in use"):
            build_plan(
                name="p1",
                source="x",
                servers=view.servers,
                pools=view.pools,
                listener_ports=[80],
                use_bbr=False,
                state=StateDir(tmp_path),
                options=RuntimeOptions(port=port),
            )


REWRITE = """apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModelRewrite
metadata:
  name: alias
spec:
  poolRef:
    name: llama-8b-pool
  rules:
    - matches:
        - model: {value: llama}
      targets:
        - modelRewrite: meta-llama/Llama-3.1-8B-Instruct
"""


@pytest.mark.parametrize("with_rewrite", [False, True])
def test_response_phases_only_for_pools_whose_model_names_are_rewritten(tmp_path: Path, with_rewrite: bool) -> None:
    root = tmp_path / "p3"
    shutil.copytree(PATTERNS / "pattern3-caching", root)
    if with_rewrite:
        (root / "manifests" / "rewrite.yaml").write_text(REWRITE)
    view = runtime_view(load_deployment(root))
    state = StateDir(tmp_path / "state")
    state.prepare()
    plan = plan_of(view, state, "p3")
    (binding,) = pool_bindings(plan, view).values()
    # the picker restores the client's model name in the answers only if it sees them
    assert binding.response_phases is with_rewrite
    assert binding.body_mode == "BUFFERED"  # pattern 3's pool is FailOpen, which Envoy refuses with full duplex


def test_fail_close_pools_get_the_one_round_trip_body_mode(tmp_path: Path) -> None:
    view = runtime_view(load_deployment(PATTERNS / "pattern1-baseline"))
    state = StateDir(tmp_path / "state")
    state.prepare()
    (binding,) = pool_bindings(plan_of(view, state, "p1"), view).values()
    assert binding.failure_mode == "FailClose"
    assert binding.body_mode == "FULL_DUPLEX_STREAMED"
    assert not binding.response_phases

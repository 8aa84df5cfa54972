"""Which EndpointPickerConfig each pool's endpoint picker runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inferplane.api import DiagnosticsError, load_deployment
from inferplane.api.deployment import Deployment
from inferplane.api.diagnostics import Diagnostic
from inferplane.api.epp_config import default_epp_config
from tests.conftest import DEPLOYMENTS
from tests.unit.api.helpers import GATEWAY, flat, pool, route, write_tree

EPP = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins: [{type: {scorer}}]
schedulingProfiles: [{name: default, plugins: [{pluginRef: {scorer}}]}]
"""


def epp(scorer: str) -> str:
    return EPP.replace("{scorer}", scorer)


def base(tmp_path: Path, extra: dict[str, str]) -> Path:
    files = {
        "a.yaml": flat("a", "org/a"),
        "b.yaml": flat("b", "org/b"),
        "manifests/gw.yaml": GATEWAY,
        "manifests/routes.yaml": route("pa") + "---\n" + route("pb"),
    }
    files.update(extra)
    return write_tree(tmp_path, files)


def scorers(dep: object, pool_name: str) -> list[str]:
    return [p.type for p in dep.epp_configs[pool_name].plugins]  # type: ignore[attr-defined]


def test_no_config_means_the_upstream_default(tmp_path: Path) -> None:
    pools = "---\n".join([pool("pa", "app: a"), pool("pb", "app: b")])
    dep = load_deployment(base(tmp_path, {"manifests/pools.yaml": pools}))
    assert dep.epp_configs["pa"] == default_epp_config()
    assert dep.epp_config_origins["pb"] == "upstream default"


def test_a_single_standalone_config_applies_to_every_pool(tmp_path: Path) -> None:
    pools = "---\n".join([pool("pa", "app: a"), pool("pb", "app: b")])
    dep = load_deployment(base(tmp_path, {"manifests/pools.yaml": pools, "manifests/epp.yaml": epp("queue-scorer")}))
    assert scorers(dep, "pa") == scorers(dep, "pb") == ["queue-scorer"]
    assert dep.epp_config_origins["pa"] == "manifests/epp.yaml"


def test_annotation_picks_a_file_by_path_or_name(tmp_path: Path) -> None:
    ann = "inferplane.dev/endpoint-picker-config"
    pools = "---\n".join(
        [
            pool("pa", "app: a", annotations=f"{ann}: manifests/x.yaml"),
            pool("pb", "app: b", annotations=f"{ann}: y.yaml"),
        ]
    )
    dep = load_deployment(
        base(
            tmp_path,
            {
                "manifests/pools.yaml": pools,
                "manifests/x.yaml": epp("queue-scorer"),
                "manifests/cfg/y.yaml": epp("prefix-cache-scorer"),
            },
        )
    )
    assert scorers(dep, "pa") == ["queue-scorer"]
    assert scorers(dep, "pb") == ["prefix-cache-scorer"]
    assert dep.epp_config_origins["pb"] == "manifests/cfg/y.yaml"


def test_several_configs_and_no_annotation_is_an_error(tmp_path: Path) -> None:
    pools = "---\n".join([pool("pa", "app: a"), pool("pb", "app: b")])
    tree = base(
        tmp_path,
        {
            "manifests/pools.yaml": pools,
            "manifests/x.yaml": epp("queue-scorer"),
            "manifests/y.yaml": epp("prefix-cache-scorer"),
        },
    )
    with pytest.raises(DiagnosticsError) as info:
        load_deployment(tree)
    messages = {e.message for e in info.value.errors}
    assert messages == {
        "several EndpointPickerConfig documents (manifests/x.yaml, manifests/y.yaml) and no "
        "inferplane.dev/endpoint-picker-config annotation to choose one for this pool"
    }
    assert len(info.value.errors) == 2


def test_gie_values_config_binds_to_its_own_pool(tmp_path: Path) -> None:
    gie = """
inferenceExtension:
  pluginsConfigFile: mine.yaml
  pluginsCustomConfig:
    mine.yaml: |
      apiVersion: llm-d.ai/v1alpha1
      kind: EndpointPickerConfig
      plugins: [{type: kv-cache-utilization-scorer}]
inferencePool:
  targetPortNumber: 8000
  modelServers: {matchLabels: {app: a}}
"""
    tree = write_tree(tmp_path, {"a.yaml": flat("a", "org/a"), "pa-values.yaml": gie})
    dep = load_deployment(tree)
    [p] = dep.inference_pools
    assert p.name == "pa"
    assert p.target_port_numbers == [8000]
    assert scorers(dep, "pa") == ["kv-cache-utilization-scorer"]
    assert dep.epp_config_origins["pa"] == "pa-values.yaml: inferenceExtension.pluginsCustomConfig['mine.yaml']"


def test_the_pickers_check_is_injected_not_imported() -> None:
    """The model runs component checks it is handed (`add_check`); the conftest composes like the CLI does."""
    from inferplane.api import crosscheck
    from inferplane.epp.config_check import check_epp_configs

    assert check_epp_configs in crosscheck.INJECTED
    seen: list[str] = []

    def probe(dep: Deployment) -> Iterator[Diagnostic]:
        seen.append(dep.root.name)
        yield from ()

    crosscheck.add_check(probe)
    crosscheck.add_check(probe)  # once is enough
    try:
        load_deployment(DEPLOYMENTS / "pattern1-baseline")
    finally:
        crosscheck.INJECTED.remove(probe)
    assert seen == ["pattern1-baseline"]

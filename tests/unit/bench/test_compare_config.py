"""The comparison's building blocks: the four named scheduler configurations and the peer-router table."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from inferplane.api.epp_config import EndpointPickerConfig
from inferplane.bench.compare import builtin_schedulers, resolve_schedulers
from inferplane.bench.peers import PEERS, resolve_peers
from inferplane.epp.framework.types import Endpoint, EndpointKey, LLMRequest, LLMRequestBody
from inferplane.epp.scheduling.builder import build_scheduler
from inferplane.errors import UsageError


def test_the_four_named_configurations_exist() -> None:
    assert set(builtin_schedulers()) >= {"round-robin", "least-request", "prefix", "precise-prefix"}


@pytest.mark.parametrize("name", ["round-robin", "least-request", "prefix", "precise-prefix"])
def test_scheduler_configs_build_with_the_endpoint_picker(name: str) -> None:
    (choice,) = resolve_schedulers(name)
    config = EndpointPickerConfig.model_validate(yaml.safe_load(choice.path.read_text()))
    scheduler = build_scheduler(config, rng=random.Random(0))
    assert scheduler is not None


def test_round_robin_config_cycles_through_endpoints() -> None:
    (choice,) = resolve_schedulers("round-robin")
    config = EndpointPickerConfig.model_validate(yaml.safe_load(choice.path.read_text()))
    scheduler = build_scheduler(config, rng=random.Random(0))
    endpoints = [Endpoint(EndpointKey(f"10.0.0.{i}", 8000)) for i in range(3)]
    picks = []
    for i in range(6):
        request = LLMRequest(f"r{i}", "m", LLMRequestBody("completions", prompt=f"prompt {i}"))
        result = scheduler.schedule(request, endpoints)
        picks.append(result.primary.target_endpoints[0].hostport)
    assert len(set(picks[:3])) == 3
    assert picks[:3] == picks[3:]


def test_scheduler_names_and_files(tmp_path: Path) -> None:
    f = tmp_path / "mine.yaml"
    f.write_text("kind: EndpointPickerConfig\n")
    choices = resolve_schedulers(f"prefix,{f}")
    assert [c.name for c in choices] == ["prefix", "mine"]
    with pytest.raises(UsageError, match="unknown configuration 'fastest'"):
        resolve_schedulers("fastest")
    with pytest.raises(UsageError, match="does not exist"):
        resolve_schedulers(str(tmp_path / "missing.yaml"))


def test_peer_table_and_skips() -> None:
    chosen, skipped = resolve_peers("sglang-router,vllm-router:cache_aware,litellm")
    assert any("unknown peer router 'litellm'" in m for m in skipped)
    policies = {peer.name: p for peer, p in chosen}
    if "sglang-router" in policies:
        assert policies["sglang-router"] == ("cache_aware", "round_robin")
    if "vllm-router" in policies:
        assert policies["vllm-router"] == ("cache_aware",)
    for peer, _ in chosen:
        assert peer.version() != "not installed"
        argv = peer.argv(1234, ["http://127.0.0.1:1", "http://127.0.0.1:2"], "cache_aware")
        assert argv[argv.index("--worker-urls") + 1 : argv.index("--policy")] == [
            "http://127.0.0.1:1",
            "http://127.0.0.1:2",
        ]
        assert argv[argv.index("--policy") + 1] == "cache_aware"
        assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert {p.name for p, _ in chosen} | {m.split(":")[0].removeprefix("skipping ") for m in skipped} >= set(PEERS)

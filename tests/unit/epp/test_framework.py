"""The plugin kernel (epp/framework): a registry that imports no plugin, facts on the `@register` decorator, typed
lookups, capabilities found by isinstance (so a renamed member is caught here), and a builder that returns its
warnings instead of logging them."""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from inferplane.api.epp_config import EndpointPickerConfig
from inferplane.epp.framework import registry
from inferplane.epp.framework.capabilities import (
    DecisionCounter,
    DecodeProfileOwner,
    Flushable,
    InflightCounts,
    KVEventsConsumer,
    PrefixIndexStats,
    ProducerConsumer,
)
from inferplane.epp.framework.config import needs_body, reference_problems
from inferplane.epp.framework.interfaces import RequestParser, Scorer
from inferplane.epp.framework.registry import NoParams, Plugin, PluginHandle, build_plugin, lookup, register
from inferplane.epp.scheduling import build_scheduler
from inferplane.epp.scheduling.plugins.load import InflightLoadProducer, TokenLoadScorer
from inferplane.errors import ConfigError
from tests.conftest import REPO

from .helpers import config


def _run(code: str) -> dict[str, Any]:
    """Run `code` in a fresh interpreter (nothing composed) and return the JSON it prints."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO, check=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def test_the_kernel_and_the_model_import_no_plugin() -> None:
    got = _run(
        "import json, sys\n"
        "import inferplane.api, inferplane.api.loader, inferplane.api.crosscheck, inferplane.api.epp_config\n"
        "api_epp = sorted(m for m in sys.modules if m.startswith('inferplane.epp'))\n"
        "import inferplane.epp.framework, inferplane.epp.framework.config\n"
        "from inferplane.epp.framework.registry import registered_types\n"
        "plugins = sorted(m for m in sys.modules if m.startswith(('inferplane.epp.scheduling',\n"
        "    'inferplane.epp.flowcontrol')))\n"
        "print(json.dumps({'api_epp': api_epp, 'plugins': plugins, 'types': len(registered_types())}))\n"
    )
    assert got == {"api_epp": [], "plugins": [], "types": 0}


def test_flow_control_loads_only_the_kernel_and_the_model() -> None:
    got = _run(
        "import json, sys\n"
        "import inferplane.epp.flowcontrol\n"
        "print(json.dumps({'others': sorted(m for m in sys.modules if m.startswith('inferplane.epp.')\n"
        "    and not m.startswith(('inferplane.epp.flowcontrol', 'inferplane.epp.framework')))}))"
    )
    assert got == {"others": []}


def test_register_in_tree_plugins_fills_the_registry_and_is_idempotent() -> None:
    got = _run(
        "import json\n"
        "from inferplane.epp.framework.registry import registered_types\n"
        "from inferplane.epp.intree import register_in_tree_plugins\n"
        "register_in_tree_plugins(); n = len(registered_types()); register_in_tree_plugins()\n"
        "print(json.dumps({'n': n, 'again': len(registered_types())}))\n"
    )
    assert got["n"] == got["again"] > 40


def test_decorator_facts() -> None:
    kv = lookup("kv-cache-scorer")
    assert kv is not None
    assert kv.type_name == "kv-cache-utilization-scorer"
    assert kv.aliases == ("kv-cache-scorer",)
    assert lookup("by-label-selector") is lookup("label-selector-filter")
    assert lookup("queue-scorer").needs_body is False  # type: ignore[union-attr]
    assert lookup("prefix-cache-scorer").needs_body is True  # type: ignore[union-attr]
    implicit = {t for t, pt in registry.registered_types().items() if pt.implicit}
    assert implicit == {
        "utilization-detector",
        "concurrency-detector",
        "openai-parser",
        "passthrough-parser",
        "vllmgrpc-parser",
        "metrics-data-source",
        "core-metrics-extractor",
    }
    # An alias counts for the body decision like its type; an unknown type is assumed to read bodies.
    assert not needs_body(config({"plugins": [{"type": "kv-cache-scorer"}, {"type": "by-label-selector"}]}))
    assert needs_body(config({"plugins": [{"type": "queue-scorer"}, {"type": "tokenizer"}]}))
    assert needs_body(config({"plugins": [{"type": "some-future-scorer"}]}))


@pytest.fixture
def scratch_registry() -> Iterator[None]:
    """Register test-only types and forget them afterwards (the near-miss hints read the registry)."""
    saved, saved_aliases = dict(registry._REGISTRY), dict(registry._ALIASES)
    try:
        yield
    finally:
        registry._REGISTRY.clear()
        registry._REGISTRY.update(saved)
        registry._ALIASES.clear()
        registry._ALIASES.update(saved_aliases)


def test_a_name_or_alias_registered_twice_is_refused(scratch_registry: None) -> None:
    with pytest.raises(RuntimeError, match="registered twice"):
        register("queue-scorer", "scorer")(type("Again", (Plugin,), {}))
    with pytest.raises(RuntimeError, match="'kv-cache-scorer' registered twice"):
        register("new-kv-scorer", "scorer", aliases=("kv-cache-scorer",))(type("Alias", (Plugin,), {}))
    register("test-only-scorer", "scorer", needs_body=False, aliases=("test-old-scorer",))(type("T", (Plugin,), {}))
    assert lookup("test-old-scorer") is lookup("test-only-scorer")
    assert registry.canonical_type("test-old-scorer") == "test-only-scorer"


def test_typed_lookup_finds_a_class_or_a_capability() -> None:
    s = build_scheduler(
        config(
            {
                "plugins": [{"type": "token-load-scorer"}],
                "schedulingProfiles": [{"name": "default", "plugins": [{"pluginRef": "token-load-scorer"}]}],
            }
        )
    )
    producer = s.handle.first(InflightLoadProducer)  # created for the scorer (its producer_type)
    assert type(producer) is InflightLoadProducer
    assert producer.type_name == "inflight-load-producer"
    assert s.handle.first(InflightCounts) is producer
    assert [p for p in s.plugins.values() if isinstance(p, Scorer)] == [s.handle.first(Scorer)]
    assert isinstance(s.handle.first(TokenLoadScorer), TokenLoadScorer)
    with pytest.raises(KeyError, match="KVEventsConsumer"):
        s.handle.first(KVEventsConsumer)


# Which registered in-tree types offer which optional capability. A plugin that renames or drops a member (say
# `flush` → `flush_all`) no longer satisfies its Protocol and fails here, instead of silently losing the feature.
CAPABILITIES: dict[type[Any], set[str]] = {
    Flushable: {"approx-prefix-cache-producer"},
    PrefixIndexStats: {"approx-prefix-cache-producer"},
    KVEventsConsumer: {"precise-prefix-cache-scorer"},
    InflightCounts: {"inflight-load-producer"},
    DecodeProfileOwner: {"pd-profile-handler", "disagg-profile-handler"},
    DecisionCounter: {"pd-profile-handler", "disagg-profile-handler"},
    ProducerConsumer: {
        "prefix-cache-scorer",
        "predicted-ttft-scorer",
        "prefix-based-pd-decider",
        "no-hit-lru-scorer",
        "token-load-scorer",
        "concurrency-detector",
    },
    RequestParser: {"openai-parser", "passthrough-parser"},
}


REQUIRED_PARAMS = {"by-label": {"label": "role"}}


@pytest.mark.parametrize("capability", list(CAPABILITIES), ids=lambda c: c.__name__)
def test_in_tree_capability_catalogue(capability: type[Any]) -> None:
    handle = PluginHandle(rng=random.Random(0), clock=lambda: 0.0)
    offered = set()
    for type_name in registry.registered_types():
        plugin, _ = build_plugin(type_name, type_name, REQUIRED_PARAMS.get(type_name), handle)
        if isinstance(plugin, capability):
            offered.add(type_name)
    assert offered == CAPABILITIES[capability]


def test_a_renamed_capability_member_is_not_taken_for_the_capability() -> None:
    class Renamed(Plugin):
        producer_kind = "inflight-load-producer"  # was producer_type

        def flush_all(self) -> None:  # was flush
            return None

    plugin = Renamed("r", NoParams(), PluginHandle(rng=random.Random(0), clock=lambda: 0.0))
    assert not isinstance(plugin, ProducerConsumer)
    assert not isinstance(plugin, Flushable)


def test_the_builder_returns_warnings_and_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    s = build_scheduler(config({"plugins": [{"type": "queue-scorer", "parameters": {"hashBlockSize": 5}}]}))
    assert s.warnings == ["plugins[0]: plugin 'queue-scorer' does not take parameter 'hashBlockSize'; it is ignored"]
    assert not [r for r in caplog.records if r.name.startswith("inferplane.epp")]


def test_references_to_built_in_plugins_are_checked_by_the_loader() -> None:
    ok = config({"saturationDetector": {"pluginRef": "concurrency-detector"}, "parser": {"pluginRef": "openai-parser"}})
    assert reference_problems(ok) == []
    bad = EndpointPickerConfig.model_validate(
        {"apiVersion": "llm-d.ai/v1alpha1", "kind": "EndpointPickerConfig", "parser": {"pluginRef": "queue-scorer"}}
    )
    assert reference_problems(bad) == [
        (("parser", "pluginRef"), "'queue-scorer' names no plugin; add `- type: queue-scorer` to plugins")
    ]
    with pytest.raises(ConfigError, match=r"^parser\.pluginRef: 'queue-scorer' names no plugin"):
        build_scheduler(bad)


def test_only_a_request_parser_may_be_the_parser() -> None:
    with pytest.raises(ConfigError, match="'vllmgrpc-parser' is not a request parser") as exc:
        build_scheduler(config({"parser": {"pluginRef": "vllmgrpc-parser"}}))
    assert exc.value.hint is not None
    assert "openai-parser" in exc.value.hint
    s = build_scheduler(config({"parser": {"pluginRef": "passthrough-parser"}}))
    assert isinstance(s.plugins["passthrough-parser"], RequestParser)
    assert s.plugins["passthrough-parser"].parse_request(b"{not json", "/v1/completions") is None
    default = build_scheduler(config({}))
    parsed = default.plugins["openai-parser"].parse_request(b'{"model": "m", "prompt": "hi"}', "/v1/completions")
    assert parsed is not None
    assert parsed.raw["model"] == "m"

"""Arbitrary input never escapes as anything but inferplane's own DiagnosticsError."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferplane.api import DiagnosticsError, load_deployment

KINDS = [
    "Gateway", "HTTPRoute", "InferencePool", "InferenceObjective", "InferenceModel", "InferenceModelRewrite",
    "LeaderWorkerSet", "EndpointPickerConfig", "Deployment", "Service", "Secret", "ConfigMap",
]  # fmt: skip
API_VERSIONS = [
    "gateway.networking.k8s.io/v1", "inference.networking.k8s.io/v1", "inference.networking.x-k8s.io/v1alpha2",
    "inference.gateway.llm-d.ai/v1alpha2", "leaderworkerset.x-k8s.io/v1", "apps/v1", "v1", "llm-d.ai/v1alpha1",
]  # fmt: skip
KEYS = [
    "spec", "selector", "matchLabels", "targetPorts", "number", "parentRefs", "rules", "backendRefs", "name",
    "kind", "group", "port", "listeners", "leaderWorkerTemplate", "workerTemplate", "containers", "args", "env",
    "modelservice", "modelArtifacts", "decode", "routing", "inferencePool", "inferenceExtension", "plugins",
    "schedulingProfiles", "pluginRef", "weight", "poolRef", "headers", "value", "image", "model", "replicas",
]  # fmt: skip
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 70000), st.sampled_from(KEYS), st.text(max_size=8))
nested = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    max_leaves=25,
)
objects = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(API_VERSIONS),
        "kind": st.sampled_from(KINDS),
        "metadata": st.fixed_dictionaries({"name": st.sampled_from(["p", "gw", "m", "r"])}),
        "spec": nested,
    }
)


def _load_text(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_deployment(path)
        except DiagnosticsError as exc:
            error: DiagnosticsError | None = exc
        else:
            error = None
    if error is not None:
        assert error.errors
        assert all(d.line >= 1 and d.column >= 1 for d in error.diagnostics)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_arbitrary_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return
    _load_text(text)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nested)
def test_arbitrary_nested_data(data: Any) -> None:
    _load_text(yaml.safe_dump(data))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(objects | st.dictionaries(st.sampled_from(KEYS), nested, max_size=4), min_size=1, max_size=4))
def test_arbitrary_objects_of_known_kinds(docs: list[Any]) -> None:
    _load_text(yaml.safe_dump_all(docs))

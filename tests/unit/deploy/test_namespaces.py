"""`--namespace` and namespace-less renders leave no `default` behind (objects, --pool-namespace, hosts, refs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from inferplane.deploy.command import render_path
from inferplane.deploy.plan import RenderOptions
from inferplane.deploy.render import to_stream
from inferplane.deploy.routing import render_route
from inferplane.errors import UsageError
from tests.conftest import DEPLOYMENTS

CASES = [
    ("pattern1-baseline", "gke", None, "tpu"),
    ("pattern2-multimodel", "gke", None, None),
    ("pattern2-multimodel", "kubernetes", "istio", None),
    ("pattern2-multimodel", "kubernetes", "kgateway", None),
    ("pattern2-multimodel", "kubernetes", "eg", None),
    ("pattern3-caching", "kubernetes", "istio", None),
    ("pattern4-moe", "kubernetes", "istio", None),
]


def strings(node: object, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from strings(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from strings(v, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def default_mentions(stream: str) -> list[str]:
    """Every line mentioning `default`, minus the two that are not namespaces: the EndpointPickerConfig's scheduling
    profile named `default` (inside a ConfigMap's text) and GKE policies' `spec.default` field."""
    return [
        line
        for line in stream.splitlines()
        if "default" in line and line.strip() not in ("- name: default", "default:") and not line.startswith("#")
    ]


@pytest.mark.parametrize(("pattern", "target", "klass", "accelerator"), CASES)
def test_namespace_team_a_leaves_no_default(pattern: str, target: str, klass: str | None,
                                            accelerator: str | None) -> None:  # fmt: skip
    options = RenderOptions(target, "inferplane:test", klass, accelerator, namespace="team-a")  # type: ignore[arg-type]
    rendered = render_path(DEPLOYMENTS / pattern, options)
    stream = to_stream(rendered, pattern, options)
    assert default_mentions(stream) == []
    for m in rendered.manifests:
        if m["kind"] != "Namespace":
            assert m["metadata"]["namespace"] == "team-a", m["kind"]
        for path, value in strings(m):
            assert value != "default", f"{m['kind']} {path}"
            assert ".default." not in value, f"{m['kind']} {path}: {value}"
    for m in rendered.manifests:
        if m["kind"] == "Deployment" and m["metadata"]["name"].endswith("-epp"):
            args = m["spec"]["template"]["spec"]["containers"][0]["args"]
            assert args[args.index("--pool-namespace") + 1] == "team-a"
        if m["kind"] == "DestinationRule":
            assert m["spec"]["host"].endswith(".team-a.svc.cluster.local")


@pytest.mark.parametrize(("pattern", "target", "klass", "accelerator"),
                         [c for c in CASES if c[2] != "istio" or c[0] != "pattern2-multimodel"])  # fmt: skip
def test_no_namespace_renders_none_at_all(
    pattern: str, target: str, klass: str | None, accelerator: str | None
) -> None:
    options = RenderOptions(target, "inferplane:test", klass, accelerator)  # type: ignore[arg-type]
    rendered = render_path(DEPLOYMENTS / pattern, options)
    stream = to_stream(rendered, pattern, options)
    assert default_mentions(stream) == []
    assert "kubectl apply -n NAMESPACE" in stream.splitlines()[1]
    assert "Namespace" not in {m["kind"] for m in rendered.manifests}
    for m in rendered.manifests:
        assert "namespace" not in m["metadata"], m["kind"]
        for path, value in strings(m):
            assert "default" not in value.replace("- name: default", ""), f"{m['kind']} {path}"
        if m["kind"] == "RoleBinding":
            assert all("namespace" not in s for s in m["subjects"])
        if m["kind"] == "Deployment" and m["metadata"]["name"].endswith("-epp"):
            c = m["spec"]["template"]["spec"]["containers"][0]
            assert c["args"][c["args"].index("--pool-namespace") + 1] == "$(NAMESPACE)"
            assert {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}} in c["env"]
        if m["kind"] == "DestinationRule":
            assert "." not in m["spec"]["host"]  # the short name, resolved in the rule's namespace


def test_istio_router_without_namespace_is_a_clear_error() -> None:
    options = RenderOptions("kubernetes", "inferplane:test", "istio")
    with pytest.raises(UsageError) as err:
        render_path(DEPLOYMENTS / "pattern2-multimodel", options)
    assert "EnvoyFilter" in err.value.message
    assert "--namespace" in (err.value.hint or "")


def test_same_namespace_references_lose_their_namespace(tmp_path) -> None:
    """A route written with `namespace: default` on its parentRef and backendRef (its own namespace) keeps no
    namespace on them; a reference into another namespace is kept."""
    src = DEPLOYMENTS / "pattern3-caching"
    for f in src.rglob("*"):
        if f.is_file():
            (tmp_path / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / f.relative_to(src)).write_bytes(f.read_bytes())
    route_file = tmp_path / "manifests" / "httproute.yaml"
    docs = list(yaml.safe_load_all(route_file.read_text()))
    route = next(d for d in docs if d and d["kind"] == "HTTPRoute")
    route["spec"]["parentRefs"][0]["namespace"] = "default"
    route["spec"]["rules"][0]["backendRefs"][0]["namespace"] = "default"
    route_file.write_text(yaml.safe_dump_all(docs))
    rendered = render_path(tmp_path, RenderOptions("kubernetes", "inferplane:test", "istio", namespace="team-a"))
    out = next(m for m in rendered.manifests if m["kind"] == "HTTPRoute")
    assert "namespace" not in out["spec"]["parentRefs"][0]
    assert "namespace" not in out["spec"]["rules"][0]["backendRefs"][0]
    # A reference into another namespace is the user's cross-namespace reference: kept as written.
    other = render_route(
        {"metadata": {"name": "r", "namespace": "apps"}, "spec": {"parentRefs": [
            {"name": "g", "namespace": "infra"}, {"name": "h", "namespace": "apps"}]}}, None
    )  # fmt: skip
    assert other["spec"]["parentRefs"] == [{"name": "g", "namespace": "infra"}, {"name": "h"}]

"""A rendered directory is a kustomize base: an overlay with `namespace` and `namePrefix`, built by the real
`kubectl kustomize`, moves every object and keeps every reference intact (the shipped nameReference configuration
covers the Gateway API and GIE fields kustomize does not know), and the result still validates and cross-checks."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from inferplane.deploy.command import render_path
from inferplane.deploy.crosscheck import crosscheck
from inferplane.deploy.plan import RenderOptions
from inferplane.deploy.render import write_dir
from inferplane.deploy.validate import ManifestValidator, find_schemas_dir
from tests.conftest import DEPLOYMENTS
from tests.support.tools import kubectl

NS = "team-z"
PREFIX = "blue-"
CASES = [
    ("pattern2-multimodel", "gke", None),
    ("pattern2-multimodel", "kubernetes", "kgateway"),
    ("pattern2-multimodel", "kubernetes", "eg"),
    ("pattern3-caching", "kubernetes", "istio"),
    ("pattern4-moe", "kubernetes", "istio"),
]


def build(tmp_path: Path, pattern: str, target: str, klass: str | None) -> list[dict]:
    options = RenderOptions(target, "inferplane:test", klass)  # type: ignore[arg-type]
    rendered = render_path(DEPLOYMENTS / pattern, options)
    write_dir(rendered, tmp_path / "base", pattern, options)
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump({"namespace": NS, "namePrefix": PREFIX, "resources": ["../base"]})
    )
    proc = subprocess.run(
        [kubectl(), "kustomize", str(overlay)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    out = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert len(out) == len(rendered.manifests)
    return out


def references(m: dict) -> Iterator[tuple[str, str, str]]:
    """(what, referenced kind, name) for every name reference an object holds."""
    kind, spec = m["kind"], m.get("spec", {})
    if kind == "InferencePool":
        yield "endpointPickerRef", "Service", spec["endpointPickerRef"]["name"]
    if kind == "HTTPRoute":
        for ref in spec.get("parentRefs", []):
            yield "parentRefs", ref.get("kind", "Gateway"), ref["name"]
        for rule in spec.get("rules", []):
            for ref in rule.get("backendRefs", []):
                yield "backendRefs", ref.get("kind", "Service"), ref["name"]
    if kind in ("InferenceObjective", "InferenceModelRewrite"):
        yield "poolRef", "InferencePool", spec["poolRef"]["name"]
    if kind in ("HealthCheckPolicy", "GCPBackendPolicy"):
        yield "targetRef", spec["targetRef"]["kind"], spec["targetRef"]["name"]
    for ref in spec.get("targetRefs", []):
        yield "targetRefs", ref["kind"], ref["name"]
    if kind == "GCPRoutingExtension":
        for chain in spec["extensionChains"]:
            for ext in chain["extensions"]:
                yield "backendRef", "Service", ext["backendRef"]["name"]
    if kind == "EnvoyExtensionPolicy":
        for proc in spec["extProc"]:
            for ref in proc["backendRefs"]:
                yield "backendRefs", "Service", ref["name"]
    if kind == "GatewayExtension":
        yield "backendRef", "Service", spec["extProc"]["grpcService"]["backendRef"]["name"]
    if kind == "TrafficPolicy":
        yield "extensionRef", "GatewayExtension", spec["extProc"]["extensionRef"]["name"]
    if kind == "DestinationRule":
        yield "host", "Service", spec["host"]
    if kind == "RoleBinding":
        yield "roleRef", m["roleRef"]["kind"], m["roleRef"]["name"]
        for s in m["subjects"]:
            yield "subjects", s["kind"], s["name"]
    template = spec.get("template", {}).get("spec")
    if kind == "Deployment" and template is not None:
        if "serviceAccountName" in template:
            yield "serviceAccountName", "ServiceAccount", template["serviceAccountName"]
        for v in template.get("volumes", []):
            if "configMap" in v:
                yield "volume", "ConfigMap", v["configMap"]["name"]
        for c in template["containers"]:
            args = c.get("args", [])
            if args[:1] == ["epp"]:
                yield "--pool-name", "InferencePool", args[args.index("--pool-name") + 1]


@pytest.mark.parametrize(("pattern", "target", "klass"), CASES)
def test_namespace_and_name_prefix_overlay_keeps_every_reference(
    tmp_path: Path, pattern: str, target: str, klass: str | None
) -> None:
    out = build(tmp_path, pattern, target, klass)
    names = {(m["kind"], m["metadata"]["name"]) for m in out}
    for m in out:
        assert m["metadata"]["namespace"] == NS, m["kind"]
        assert m["metadata"]["name"].startswith(PREFIX), m["kind"]
    checked = 0
    for m in out:
        for what, kind, name in references(m):
            assert (kind, name) in names, f"{m['kind']}/{m['metadata']['name']} {what} → {kind} {name!r} is not there"
            checked += 1
        if m["kind"] == "RoleBinding":
            assert all(s.get("namespace", NS) == NS for s in m["subjects"])
        if m["kind"] == "Deployment" and m["metadata"]["name"].endswith("-epp"):
            args = m["spec"]["template"]["spec"]["containers"][0]["args"]
            assert args[args.index("--pool-namespace") + 1] == "$(NAMESPACE)"
    assert checked >= 10
    # The built objects are still valid and still fit together (selectors, ports, picker refs, transports).
    validator = ManifestValidator(find_schemas_dir())
    assert [str(p) for p in validator.validate_all(out)] == []
    assert crosscheck(out) == []

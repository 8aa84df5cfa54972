"""`inferplane render --format helm`: the chart passes Helm's own lint and template (Helm's Go SDK through the PyPI
package helm-python-sdk, no helm binary), its default values give exactly the objects `inferplane render` writes,
and its values move the namespace, image, replicas and accelerators."""

from __future__ import annotations

from pathlib import Path

import helm_python as helm
import pytest
import yaml

from inferplane.cli import main
from inferplane.deploy.command import render_path
from inferplane.deploy.crosscheck import crosscheck
from inferplane.deploy.plan import RenderOptions
from inferplane.deploy.validate import ManifestValidator, find_schemas_dir
from tests.conftest import DEPLOYMENTS

CASES = [
    ("pattern1-baseline", ["--target", "gke", "--accelerator", "tpu"]),
    ("pattern2-multimodel", ["--target", "kubernetes", "--gateway-class", "istio"]),
    ("pattern4-moe", ["--target", "kubernetes", "--gateway-class", "istio"]),
]


def chart(tmp_path: Path, pattern: str, flags: list[str], capsys: pytest.CaptureFixture[str]) -> Path:
    out = tmp_path / "chart"
    assert main(["render", str(DEPLOYMENTS / pattern), *flags, "--format", "helm", "-o", str(out)]) == 0
    assert "wrote a chart" in capsys.readouterr().out
    return out


def template(path: Path, values: dict | None, namespace: str) -> list[dict]:
    rendered = helm.Chart.load(str(path)).render(values, name="rel", namespace=namespace)
    return [d for text in rendered.values() for d in yaml.safe_load_all(text) if d]


def keyed(manifests: list[dict]) -> dict[tuple[str, str], dict]:
    return {(m["kind"], m["metadata"]["name"]): m for m in manifests}


@pytest.mark.parametrize(("pattern", "flags"), CASES)
def test_chart_lints_and_templates_to_the_render(
    tmp_path: Path, pattern: str, flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = chart(tmp_path, pattern, flags, capsys)
    report = helm.lint(str(path), strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []
    # The default values, installed into team-a: the objects `inferplane render --namespace team-a` writes.
    docs = template(path, None, "team-a")
    target = flags[1]
    klass = flags[flags.index("--gateway-class") + 1] if "--gateway-class" in flags else None
    accelerator = flags[flags.index("--accelerator") + 1] if "--accelerator" in flags else None
    options = RenderOptions(target, "inferplane:0.1.0", klass, accelerator, namespace="team-a")  # type: ignore[arg-type]
    expected = [m for m in render_path(DEPLOYMENTS / pattern, options).manifests if m["kind"] != "Namespace"]
    assert keyed(docs) == keyed(expected)


def test_values_move_namespace_image_replicas_and_accelerators(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = chart(tmp_path, "pattern2-multimodel", ["--target", "gke"], capsys)
    values = yaml.safe_load((path / "values.yaml").read_text())
    servers = values["modelServers"]
    assert set(servers) == {"llm-d-gemma-llm-d-modelservice-decode", "llm-d-llama-llm-d-modelservice-decode"}
    first = "llm-d-gemma-llm-d-modelservice-decode"
    assert servers[first]["accelerators"] == {"nvidia.com/gpu": 1}
    override = {
        "namespace": "team-c",
        "image": {"repository": "reg.example/inferplane", "tag": "9.9"},
        "modelServers": {first: {"replicas": 4, "accelerators": {"nvidia.com/gpu": 2},
                                 "acceleratorType": "nvidia-h200-141gb"}},
    }  # fmt: skip
    docs = template(path, override, "release-ns")
    assert {d["metadata"]["namespace"] for d in docs} == {"team-c"}
    by = keyed(docs)
    server = by[("Deployment", first)]
    assert server["spec"]["replicas"] == 4
    c = server["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert c["resources"]["requests"]["nvidia.com/gpu"] == "2"
    assert server["spec"]["template"]["spec"]["nodeSelector"]["cloud.google.com/gke-accelerator"] == "nvidia-h200-141gb"
    epp = by[("Deployment", "gemma-2b-pool-epp")]["spec"]["template"]["spec"]["containers"][0]
    assert epp["image"] == "reg.example/inferplane:9.9"
    assert epp["args"][epp["args"].index("--pool-namespace") + 1] == "team-c"
    # Untouched model server keeps its values; everything still validates and fits together.
    assert by[("Deployment", "llm-d-llama-llm-d-modelservice-decode")]["spec"]["replicas"] == 1
    validator = ManifestValidator(find_schemas_dir())
    assert [str(p) for p in validator.validate_all(docs)] == []
    assert crosscheck(docs) == []
    # Without values.namespace the release namespace is used.
    assert {d["metadata"]["namespace"] for d in template(path, None, "release-ns")} == {"release-ns"}


def test_helm_format_needs_a_directory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(DEPLOYMENTS / "pattern3-caching"), "--target", "gke", "--format", "helm"]) == 2
    assert "-o DIR" in capsys.readouterr().err


def test_namespace_flag_becomes_the_values_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = chart(tmp_path, "pattern3-caching", ["--target", "gke", "--namespace", "team-q"], capsys)
    assert yaml.safe_load((path / "values.yaml").read_text())["namespace"] == "team-q"
    docs = template(path, None, "release-ns")
    assert {d["metadata"]["namespace"] for d in docs} == {"team-q"}
    assert not any(d["kind"] == "Namespace" for d in docs)  # left to helm install --create-namespace

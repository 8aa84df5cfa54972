"""`inferplane render` through the real command-line entry point (in process)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from inferplane.cli import main
from inferplane.deploy.validate import SCHEMAS_ENV
from tests.conftest import DEPLOYMENTS, SHARED

P1 = str(DEPLOYMENTS / "pattern1-baseline")
P2 = str(DEPLOYMENTS / "pattern2-multimodel")


def test_render_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", P1, "--target", "gke", "--namespace", "serving", "--image", "reg.example/inferplane:1"]) == 0
    out, err = capsys.readouterr()
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert docs[0] == {"apiVersion": "v1", "kind": "Namespace", "metadata": docs[0]["metadata"]}
    assert {d["metadata"].get("namespace", "serving") for d in docs} == {"serving"}
    epp = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "gemma-pool-epp")
    assert epp["spec"]["template"]["spec"]["containers"][0]["image"] == "reg.example/inferplane:1"
    assert "--pool-namespace" in epp["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "create these Secrets first: huggingface-token" in err


def test_render_to_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["render", P2, "--target", "kubernetes", "--gateway-class", "kgateway", "-o", str(out)]) == 0
    files = sorted(out.iterdir())
    assert files
    assert all(f.name[:3].isdigit() for f in files)
    kinds = [yaml.safe_load(f.read_text())["kind"] for f in files]
    assert (
        kinds.index("Deployment")
        < kinds.index("InferencePool")
        < kinds.index("HTTPRoute")
        < kinds.index("TrafficPolicy")
    )
    assert f"wrote {len(files)} manifests to {out}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["render", "/nonexistent", "--target", "gke"], 2, "no such file or directory"),
        (["render", P2, "--target", "kubernetes"], 2, "needs the gateway class of your cluster"),
        (["render", P2, "--target", "kubernetes", "--gateway-class", "nginx"], 2, "does not know how to attach it"),
        (["render", P2, "--target", "gke", "--accelerator", "tpu"], 2, "is written for gpu"),
        (["render", P1, "--target", "kubernetes", "--gateway-class", "istio"], 2, "needs TPUs, which only GKE offers"),
    ],
)
def test_user_errors_are_messages_not_tracebacks(
    argv: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_a_broken_deployment_reports_the_loader_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pool.yaml").write_text(
        "apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata: {name: p}\n"
        "spec: {selector: {matchLabels: {a: b}}, targetPort: [{number: 8000}]}\n"
    )
    assert main(["render", str(tmp_path), "--target", "gke"]) == 1
    err = capsys.readouterr().err
    assert "pool.yaml" in err
    assert "targetPort" in err
    assert "Traceback" not in err


def test_without_crd_schemas_render_says_what_went_unchecked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "schemas"
    empty.mkdir()
    monkeypatch.setenv(SCHEMAS_ENV, str(empty))
    assert main(["render", P1, "--target", "gke"]) == 0
    err = capsys.readouterr().err
    assert "not validated, no schema found for: Gateway, HTTPRoute, InferencePool" in err
    monkeypatch.setenv(SCHEMAS_ENV, str(SHARED / "schemas"))
    assert main(["render", P1, "--target", "gke"]) == 0
    assert "not validated" not in capsys.readouterr().err

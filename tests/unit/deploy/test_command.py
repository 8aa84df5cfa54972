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
    files = sorted(out.glob("*.yaml"))
    assert files
    assert all(f.name[:3].isdigit() for f in files)
    # Beside the objects, a kustomize base whose names `kubectl apply -f DIR` skips (no .yaml suffix).
    assert {f.name for f in out.iterdir()} - {f.name for f in files} == {"Kustomization", "kustomizeconfig"}
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
        (["render", "/nonexistent", "--target", "gke"], 2, "/nonexistent: no such file, directory or pattern"),
        (["render", P2, "--target", "kubernetes"], 2, "needs the gateway class of your cluster"),
        (["render", P2, "--target", "kubernetes", "--gateway-class", "nginx"], 2, "does not know how to attach it"),
        # A deployment without a variant for the accelerator asked for is a deployment problem (1), not usage (2).
        (["render", P2, "--target", "gke", "--accelerator", "tpu"], 1, "is written for gpu"),
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


def test_output_path_that_is_a_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["render", P1, "--target", "gke", "-o", str(afile)]) == 2
    err = capsys.readouterr().err
    assert f"error: -o {afile}: is a file, expected a directory (or - for stdout)" in err
    assert afile.read_text() == "x"
    assert main(["render", P1, "--target", "gke", "-o", str(afile / "sub")]) == 2
    assert f"error: -o {afile / 'sub'}: {afile} is a file, so no directory can be made there" in capsys.readouterr().err


def test_output_that_cannot_be_written_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A write that fails part-way (here a directory where a manifest file goes; root ignores chmod) is a message."""
    out = tmp_path / "out"
    assert main(["render", P1, "--target", "gke", "--image", "r.io/i:1", "-o", str(out)]) == 0
    first = sorted(out.iterdir())[0]
    first.unlink()
    first.mkdir()
    (first / "keep").write_text("x")
    capsys.readouterr()
    assert main(["render", P1, "--target", "gke", "--image", "r.io/i:1", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"error: -o {out}: cannot write there: " in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--image", "bad image::", "--image: 'bad image::' is not a valid image reference"),
        ("--image", "Reg.io/Upper/inferplane:1", "is not a valid image reference"),
        ("--image", "r.io/x:" + "t" * 129, "is not a valid image reference"),
        ("--namespace", "Bad_NS", "--namespace: 'Bad_NS' is not a valid namespace name"),
        ("--namespace", "-lead", "is not a valid namespace name"),
        ("--namespace", "n" * 64, "is not a valid namespace name"),
    ],
)
def test_bad_option_values_give_one_message(
    flag: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", P1, "--target", "gke", f"{flag}={value}"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1
    assert message in err
    assert "RFC 1123" in err or "REPOSITORY" in err


@pytest.mark.parametrize(
    "image",
    [
        "inferplane:0.1.0",
        "localhost:5000/inferplane",
        "us-docker.pkg.dev/my-project/repo/inferplane:0.1.0",
        "ghcr.io/org/infer_plane__x:v1.2-rc.1@sha256:" + "a" * 64,
        "[::1]:5000/inferplane:1",
    ],
)
def test_valid_image_references_are_accepted(image: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", P1, "--target", "gke", "--namespace", "llm-1", "--image", image]) == 0
    images = {c["image"] for d in yaml.safe_load_all(capsys.readouterr().out) if d and d["kind"] == "Deployment"
              for c in d["spec"]["template"]["spec"]["containers"]}  # fmt: skip
    assert image in images


def test_default_image_comes_with_a_build_and_push_note(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", P1, "--target", "gke"]) == 0
    err = capsys.readouterr().err
    assert "note: the endpoint picker (and body-based router) use image inferplane:" in err
    assert "--image REGISTRY/inferplane:" in err
    assert main(["render", P1, "--target", "gke", "--image", "r.io/i:1"]) == 0
    assert "build and push" not in capsys.readouterr().err

"""The four patterns rendered for each target and accelerator, compared with the golden files.

After an intended rendering change, regenerate the golden files and review the diff:

    make golden            # = .venv/bin/python -m inferplane.deploy.golden tests/data/golden

Every golden render is also validated against every schema (with full coverage) and cross-checked, so a golden
file can only be regenerated into something that validates.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml

from inferplane.deploy.crosscheck import crosscheck
from inferplane.deploy.golden import CASES, GoldenCase, main, render_case
from inferplane.deploy.validate import ManifestValidator
from inferplane.errors import ConfigError
from tests.conftest import DEPLOYMENTS, REPO

GOLDEN = REPO / "tests" / "data" / "golden"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.filename)
def test_render_matches_golden(case: GoldenCase) -> None:
    expected = (GOLDEN / case.filename).read_text()
    actual = render_case(case, DEPLOYMENTS)
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), "golden", "render"))
        pytest.fail(f"{case.filename} differs from the render (run `make golden` if intended):\n{diff[:6000]}")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.filename)
def test_golden_validates_and_cross_checks(case: GoldenCase, validator: ManifestValidator) -> None:
    docs = [d for d in yaml.safe_load_all((GOLDEN / case.filename).read_text()) if d]
    assert docs, case.filename
    assert validator.validate_all(docs) == []
    assert crosscheck(docs) == []


def test_golden_folder_holds_exactly_the_cases() -> None:
    assert {str(p.relative_to(GOLDEN)) for p in GOLDEN.glob("*/*.yaml")} == {c.filename for c in CASES}
    patterns = {p.name for p in DEPLOYMENTS.iterdir() if p.is_dir()}
    assert {c.pattern for c in CASES} == patterns


def test_golden_contents_per_pattern() -> None:
    def kinds(case: str) -> list[str]:
        return [d["kind"] for d in yaml.safe_load_all((GOLDEN / case).read_text()) if d]

    p1 = kinds("pattern1-baseline/gke-tpu.yaml")
    assert p1.count("InferencePool") == 1
    assert "LeaderWorkerSet" not in p1
    assert "GCPRoutingExtension" not in p1
    p2 = kinds("pattern2-multimodel/gke-gpu.yaml")
    assert p2.count("InferencePool") == 2
    assert p2.count("HTTPRoute") == 2
    assert "GCPRoutingExtension" in p2
    assert "EnvoyFilter" in kinds("pattern2-multimodel/kubernetes-gpu-istio.yaml")
    assert "LeaderWorkerSet" in kinds("pattern4-moe/gke-gpu.yaml")
    tpu = (GOLDEN / "pattern1-baseline/gke-tpu.yaml").read_text()
    gpu = (GOLDEN / "pattern1-baseline/gke-gpu.yaml").read_text()
    assert "google.com/tpu" in tpu
    assert "vllm-tpu-rhel9" in tpu
    assert "nvidia.com/gpu" not in tpu
    assert "nvidia.com/gpu" in gpu
    assert "vllm-cuda-rhel9" in gpu
    assert "PJRT_DEVICE" not in gpu


@pytest.mark.parametrize("pattern", ["pattern2-multimodel", "pattern3-caching", "pattern4-moe"])
def test_gpu_only_patterns_refuse_tpu(pattern: str) -> None:
    with pytest.raises(ConfigError, match="is written for gpu and has no variants/tpu/"):
        render_case(GoldenCase(pattern, "gke", "tpu"), DEPLOYMENTS)


def test_regeneration_writes_every_case_and_removes_stale_files(tmp_path: Path) -> None:
    stale = tmp_path / "pattern9" / "gke-gpu.yaml"
    stale.parent.mkdir()
    stale.write_text("old")
    assert main([str(tmp_path), "--deployments", str(DEPLOYMENTS)]) == 0
    assert not stale.exists()
    for case in CASES:
        assert (tmp_path / case.filename).read_text() == (GOLDEN / case.filename).read_text()

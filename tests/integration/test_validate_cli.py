"""`inferplane validate` as users run it: a real subprocess, exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEPLOYMENTS, REPO

INVALID = REPO / "tests" / "data" / "invalid"
PATTERNS = ["pattern1-baseline", "pattern2-multimodel", "pattern3-caching", "pattern4-moe"]


def validate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferplane", "validate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


@pytest.mark.parametrize("pattern", PATTERNS)
def test_patterns_validate_ok(pattern: str) -> None:
    result = validate(DEPLOYMENTS / pattern)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"ok: {DEPLOYMENTS / pattern}")
    assert "InferencePools" in result.stdout
    assert "Model services" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_pattern_json_summary() -> None:
    result = validate(DEPLOYMENTS / "pattern2-multimodel", "--output", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    pools = {p["name"]: p for p in report["summary"]["inferencePools"]}
    assert len(pools) == 2
    assert report["summary"]["bodyBasedRouting"] is True
    assert all(len(p["members"]) == 1 and len(p["models"]) == 1 for p in pools.values())
    assert all(d["severity"] == "warning" for d in report["diagnostics"])


@pytest.mark.parametrize(
    "case", ["yaml-tab-indent.yaml", "pool-unknown-field-targetport.yaml", "not-utf8.yaml", "xc-errors-across-files"]
)
def test_bad_input_exits_1_with_positions_and_no_traceback(case: str) -> None:
    result = validate(INVALID / case)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out
    assert f"{INVALID / case}" in out
    assert ": error: " in out
    assert result.stdout.rstrip().splitlines()[-1].startswith(f"{INVALID / case}: ")


def test_bad_input_json() -> None:
    result = validate(INVALID / "pool-unknown-field-targetport.yaml", "-o", "json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    [diag] = report["diagnostics"]
    assert report["ok"] is False
    assert report["summary"] is None
    assert (diag["line"], diag["column"], diag["path"], diag["hint"]) == (
        9,
        3,
        "spec.targetPort",
        "did you mean targetPorts?",
    )


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    result = validate(tmp_path / "nowhere")
    assert result.returncode == 2
    assert "nowhere: no such file, directory or pattern" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_path_is_a_usage_error() -> None:
    result = validate()
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_pattern_names_resolve_as_up_resolves_them(tmp_path: Path) -> None:
    """`validate pattern3` finds deployments/pattern3-caching, like `inferplane up pattern3`, from any directory."""
    result = subprocess.run(
        [sys.executable, "-m", "inferplane", "validate", "pattern3"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"ok: {DEPLOYMENTS / 'pattern3-caching'}")


def test_missing_path_with_json_output_prints_a_json_error(tmp_path: Path) -> None:
    result = validate(tmp_path / "nope", "-o", "json")
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["summary"] is None
    [diag] = report["diagnostics"]
    assert diag["severity"] == "error"
    assert diag["message"] == f"{tmp_path / 'nope'}: no such file, directory or pattern"
    assert "pattern3-caching" in diag["hint"]
    assert "Traceback" not in result.stderr


def test_one_pool_file_validates_without_a_false_epp_config_error() -> None:
    result = validate(DEPLOYMENTS / "pattern3-caching" / "manifests" / "inferencepool.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "holds no EndpointPickerConfig" not in result.stdout
    assert "error" not in result.stdout

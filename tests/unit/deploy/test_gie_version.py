"""`--gie-version` decides the InferencePool fields written (appProtocol only for v1.4+), and `inferplane validate
--gie-version` warns, with file and line, about a field the target release's CRDs lack."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from inferplane.api.gie_versions import DEFAULT, SUPPORTED, has_field, normalise
from inferplane.cli import main
from inferplane.errors import UsageError
from tests.conftest import DEPLOYMENTS

P3 = DEPLOYMENTS / "pattern3-caching"


def with_app_protocol(tmp_path: Path, value: str = "kubernetes.io/h2c") -> Path:
    dst = tmp_path / "p3"
    shutil.copytree(P3, dst)
    pool_file = dst / "manifests" / "inferencepool.yaml"
    text = pool_file.read_text()
    pool_file.write_text(text.replace("  targetPorts:\n", f"  appProtocol: {value}\n  targetPorts:\n"))
    return dst


def render_pool(path: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[dict, str]:
    assert main(["render", str(path), "--target", "kubernetes", "--gateway-class", "istio", *flags]) == 0
    out, err = capsys.readouterr()
    pool = next(d for d in yaml.safe_load_all(out) if d and d["kind"] == "InferencePool")
    return pool, err


def test_default_is_the_newest_supported() -> None:
    assert DEFAULT == SUPPORTED[-1] == "v1.5"
    assert has_field(DEFAULT, "InferencePool", ("spec", "appProtocol"))
    assert not has_field("v1.3", "InferencePool", ("spec", "appProtocol"))
    assert has_field("v1.4", "InferencePool", ("spec", "appProtocol"))


@pytest.mark.parametrize(("given", "line"), [("1.4", "v1.4"), ("v1.3.1", "v1.3"), ("v1.5.0", "v1.5")])
def test_version_spellings(given: str, line: str) -> None:
    assert normalise(given) == line


@given(
    major=st.integers(0, 3),
    minor=st.integers(0, 9),
    patch=st.none() | st.integers(0, 20),
    prefix=st.sampled_from(["", "v"]),
)
def test_any_release_spelling_names_its_line_or_is_refused(
    major: int, minor: int, patch: int | None, prefix: str
) -> None:
    text = f"{prefix}{major}.{minor}" + ("" if patch is None else f".{patch}")
    line = f"v{major}.{minor}"
    if line in SUPPORTED:
        assert normalise(text) == line
    else:
        with pytest.raises(UsageError):
            normalise(text)


@pytest.mark.parametrize("bad", ["v0.5", "v2.0", "latest", "1"])
def test_unsupported_version_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError) as err:
        normalise(bad)
    assert "v1.5" in (err.value.hint or "")


def test_app_protocol_written_only_for_v1_4_and_later(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = with_app_protocol(tmp_path)
    for version in ("v1.4", "v1.5"):
        pool, _ = render_pool(path, capsys, "--gie-version", version)
        assert pool["spec"]["appProtocol"] == "kubernetes.io/h2c"
    pool, err = render_pool(path, capsys, "--gie-version", "v1.3")
    assert "appProtocol" not in pool["spec"]
    assert "spec.appProtocol (kubernetes.io/h2c) is not written" in err
    # A pool that never set it: the v1.5 render writes the default, the v1.0 render nothing, and no warning.
    pool, err = render_pool(P3, capsys, "--gie-version", "v1.0")
    assert "appProtocol" not in pool["spec"]
    assert "appProtocol" not in err
    pool, _ = render_pool(P3, capsys)
    assert pool["spec"]["appProtocol"] == "http"


def test_validate_warns_about_a_field_the_target_lacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = with_app_protocol(tmp_path)
    assert main(["validate", str(path), "-o", "json", "--gie-version", "v1.3"]) == 0
    report = json.loads(capsys.readouterr().out)
    found = [d for d in report["diagnostics"] if "appProtocol" in d["message"]]
    assert len(found) == 1
    d = found[0]
    assert d["severity"] == "warning"
    assert d["file"].endswith("inferencepool.yaml")
    lines = (path / "manifests" / "inferencepool.yaml").read_text().splitlines()
    assert "appProtocol" in lines[d["line"] - 1]
    assert "v1.4" in d["message"]
    # The same deployment against v1.4 (or the default): no such warning.
    for flags in (["--gie-version", "v1.4"], []):
        assert main(["validate", str(path), "-o", "json", *flags]) == 0
        report = json.loads(capsys.readouterr().out)
        assert not [d for d in report["diagnostics"] if "appProtocol" in d["message"]]


def test_validate_rejects_an_unknown_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(P3), "--gie-version", "v9.9"]) == 2
    assert "--gie-version" in capsys.readouterr().err

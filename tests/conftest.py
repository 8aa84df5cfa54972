"""Fixtures shared by every test layer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inferplane.cli import compose_picker
from tests.support.procs import Proc

# The tests build schedulers and load deployments in-process, as the CLI's commands do: compose the endpoint picker
# the same way (in-tree plugins registered, its config check injected into the model's cross-checks).
compose_picker()

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
DEPLOYMENTS = REPO / "deployments"


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Append every Proc you start; all are stopped at teardown, pass or fail."""
    started: list[Proc] = []
    try:
        yield started
    finally:
        for p in reversed(started):
            p.stop()

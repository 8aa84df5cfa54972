"""End-to-end fixtures: one real deployment per test module (Envoy, endpoint pickers, simulators), on free ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from inferplane.runtime import Runtime
from tests.e2e.helpers import bring_up


@pytest.fixture(scope="module")
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """The pattern named by the module's PATTERN, up for the whole module."""
    pattern: str = request.module.PATTERN
    rt = bring_up(pattern, tmp_path_factory.mktemp(pattern), **getattr(request.module, "OPTIONS", {}))
    rt.start()
    try:
        yield rt
    finally:
        rt.stop()

"""`inferplane epp` and `inferplane bbr` on a port that is taken: one clear error and exit status 1, never a
traceback (a failed start used to leave the started health server to grpc.aio's finaliser on a closed loop)."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import pytest

from inferplane.net import LOOPBACK
from tests.support.procs import INFERPLANE


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        s.listen()
        yield int(s.getsockname()[1])


@pytest.mark.parametrize("server", ["h2", "grpcio"])
@pytest.mark.parametrize("which", ["ext_proc", "health"])
def test_epp_on_a_taken_port(taken_port: int, server: str, which: str) -> None:
    ports = {"ext_proc": "0", "health": "0", which: str(taken_port)}
    done = subprocess.run(
        [*INFERPLANE, "epp", "--pool-name", "p", "--bind", LOOPBACK, "--endpoints", f"{LOOPBACK}:1",
         "--grpc-port", ports["ext_proc"], "--grpc-health-port", ports["health"], "--metrics-port", "0",
         "--ext-proc-server", server],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"error: cannot listen on {LOOPBACK}:{taken_port}" in done.stderr
    assert "hint: is another process using it?" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("server", ["h2", "grpcio"])
def test_bbr_on_a_taken_port(taken_port: int, server: str) -> None:
    done = subprocess.run(
        [*INFERPLANE, "bbr", "--port", str(taken_port), "--health-port", "0", "--bind", LOOPBACK,
         "--ext-proc-server", server],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"error: cannot listen on {LOOPBACK}:{taken_port}" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr

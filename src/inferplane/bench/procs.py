"""Processes the benchmark starts itself (simulator replicas, peer routers): each in its own process group with
its output in a log file, waited on for readiness, and stopped as a group even when the benchmark fails."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from inferplane.errors import InferplaneError
from inferplane.net import http_status

INFERPLANE = [sys.executable, "-m", "inferplane"]


def http_ok(url: str) -> bool:
    return http_status(url, timeout=1.0) == 200


class ChildProcess:
    def __init__(self, name: str, argv: Sequence[str], log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                start_new_session=True,
            )

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def wait_ready(self, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while not ready():
            if self.popen.poll() is not None:
                raise InferplaneError(f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise InferplaneError(f"{self.name} was not ready after {timeout:.0f}s:\n{self.tail()}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def stop(self, grace: float = 5.0) -> None:
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(5)


@contextmanager
def started(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    ready_url: str,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
) -> Iterator[ChildProcess]:
    proc = ChildProcess(name, argv, log_dir, env)
    try:
        proc.wait_ready(partial(http_ok, ready_url), timeout)
        yield proc
    finally:
        proc.stop()


@contextmanager
def sim_replicas(
    model: str,
    ports: Sequence[int],
    log_dir: Path,
    *,
    profile: str | None = None,
    seed: int = 0,
    time_scale: float | None = None,
    extra: Sequence[str] = (),
) -> Iterator[list[str]]:
    """One simulator process per replica (separate processes, so replicas do not share a core's event loop),
    each with the same profile and seed: identical replicas for a fair comparison. Yields their base URLs."""
    procs: list[ChildProcess] = []
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for i, port in enumerate(ports):
            argv = [
                *INFERPLANE,
                "sim",
                "--model",
                model,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--seed",
                str(seed),
            ]
            argv += ["--profile", profile] if profile else []
            argv += ["--time-scale", str(time_scale)] if time_scale else []
            procs.append(ChildProcess(f"sim-{i}", [*argv, *extra], log_dir, env={"POD_NAME": f"replica-{i}"}))
        for proc, url in zip(procs, urls, strict=True):
            proc.wait_ready(partial(http_ok, url + "/health/ready"), 60.0)
        yield urls
    finally:
        for proc in procs:
            proc.stop()

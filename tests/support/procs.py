"""Starting real processes in tests: free ports, readiness waits, and cleanup that happens even on failure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from inferplane.net import wait_until

INFERPLANE = [sys.executable, "-m", "inferplane"]


class Proc:
    """A child process in its own process group, with its output in a temp file for failure messages."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None, cwd: str | None = None) -> None:
        self.argv = list(argv)
        self.log = tempfile.NamedTemporaryFile(prefix="inferplane-test-", suffix=".log", delete=False)  # noqa: SIM115
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.popen = subprocess.Popen(
            self.argv,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_ready(self, predicate: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
        def check() -> bool:
            if not self.alive():
                raise RuntimeError(
                    f"{' '.join(self.argv)} exited with {self.popen.returncode}:\n{self.output()[-4000:]}"
                )
            return predicate()

        try:
            wait_until(check, timeout, what=what or " ".join(self.argv))
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- output ---\n{self.output()[-4000:]}") from None

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(5)
        else:
            # the leader is gone, but its group may still hold children
            self.signal(signal.SIGKILL)
        self.log.close()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass


@contextmanager
def running(argv: Sequence[str], env: dict[str, str] | None = None, cwd: str | None = None) -> Iterator[Proc]:
    proc = Proc(argv, env=env, cwd=cwd)
    try:
        yield proc
    finally:
        proc.stop()

"""Running Envoy: the argv, and a small runner that starts it, waits for `/ready` on the admin port and stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from inferplane.errors import InferplaneError
from inferplane.net import http_status

ADMIN_ADDRESS_FILE = "admin-address"


def envoy_argv(
    binary: str,
    bootstrap: Path,
    *,
    admin_address_path: Path | None = None,
    concurrency: int = 2,
    log_level: str = "warning",
    extra: Sequence[str] = (),
) -> list[str]:
    """Envoy's command line. Hot restart is off: several Envoys (tests, several `up`s) share one machine, and
    endpoint changes go through EDS files instead (`eds.py`)."""
    argv = [
        binary, "-c", str(bootstrap), "--disable-hot-restart", "--concurrency", str(concurrency),
        "-l", log_level, "--drain-time-s", "1", "--parent-shutdown-time-s", "2",
        # the access log reaches its file within a second of the request (Envoy's default is every 10 s)
        "--file-flush-interval-msec", "500",
    ]  # fmt: skip
    if admin_address_path is not None:
        argv += ["--admin-address-path", str(admin_address_path)]
    return argv + list(extra)


class EnvoyProcess:
    """One Envoy for one gateway configuration directory (as written by `write_bootstrap`).

    The admin interface listens on 127.0.0.1 only; with `admin_port=0` in the bootstrap, Envoy picks a free port
    and writes it to `<config_dir>/admin-address`, so there is no race for ports."""

    def __init__(
        self,
        binary: str,
        config_dir: Path,
        *,
        bootstrap: Path | None = None,
        log_path: Path | None = None,
        concurrency: int = 2,
        log_level: str = "warning",
    ) -> None:
        self.config_dir = Path(config_dir)
        self.bootstrap = bootstrap or self.config_dir / "envoy.yaml"
        self.admin_address_path = self.config_dir / ADMIN_ADDRESS_FILE
        self.log_path = log_path or self.config_dir / "envoy.log"
        self.argv = envoy_argv(
            binary,
            self.bootstrap,
            admin_address_path=self.admin_address_path,
            concurrency=concurrency,
            log_level=log_level,
        )
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> EnvoyProcess:
        self.admin_address_path.unlink(missing_ok=True)
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def admin_url(self) -> str | None:
        try:
            text = self.admin_address_path.read_text().strip()
        except OSError:
            return None
        return f"http://{text}" if text else None

    def ready(self) -> bool:
        url = self.admin_url()
        return url is not None and http_status(f"{url}/ready", timeout=0.5) == 200

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.02
        while not self.ready():
            if not self.alive():
                code = self.popen.returncode if self.popen else None
                raise InferplaneError(f"Envoy exited with status {code} while starting:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise InferplaneError(f"Envoy was not ready after {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)

    def stop(self, timeout: float = 5.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.popen.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> EnvoyProcess:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

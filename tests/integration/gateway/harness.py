"""Real-Envoy test harness: echo backends, a running gateway for a GatewayPlan, and a plain HTTP client that sets
any Host header and never follows redirects."""

from __future__ import annotations

import http.client
import json
import sys
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferplane.gateway import EnvoyOptions, EnvoyProcess, GatewayPlan, find_envoy_binary, write_bootstrap
from tests.support.procs import Proc

ECHO_SCRIPT = Path(__file__).with_name("echo_server.py")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def backend(self) -> str | None:
        return self.headers.get("x-echo-backend")


def send(
    port: int,
    *,
    path: str = "/",
    method: str = "GET",
    host: str | None = None,
    headers: Mapping[str, str] | None = None,
    query: Sequence[tuple[str, str]] | Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
) -> Response:
    target = path
    if query:
        items = list(query.items()) if isinstance(query, Mapping) else list(query)
        target += "?" + urllib.parse.urlencode(items)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        all_headers = {"Host": host or f"127.0.0.1:{port}", **(headers or {})}
        try:
            conn.request(method, target, body=body, headers=all_headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gateway answered (e.g. 413) before reading the whole body: its answer is still readable
        resp = conn.getresponse()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


@contextmanager
def echo_backends(names: Sequence[str], workdir: Path, timeout: float = 20.0) -> Iterator[dict[str, str]]:
    """One echo process serving each name on its own free port; yields name → `127.0.0.1:port`."""
    ports_file = workdir / "echo-ports.json"
    ports_file.unlink(missing_ok=True)  # a stale file would be taken for this process's answer
    proc = Proc([sys.executable, str(ECHO_SCRIPT), "--names", ",".join(names), "--ports-file", str(ports_file)])
    try:
        proc.wait_ready(ports_file.exists, timeout=timeout, what="echo backends")
        ports = json.loads(ports_file.read_text())
        yield {name: f"127.0.0.1:{port}" for name, port in ports.items()}
    finally:
        proc.stop()


@contextmanager
def running_gateway(
    plan: GatewayPlan, workdir: Path, options: EnvoyOptions | None = None, concurrency: int = 1
) -> Iterator[EnvoyProcess]:
    """Envoy serving `plan`, ready (admin /ready = LIVE) when yielded, stopped afterwards, pass or fail."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_bootstrap(workdir, plan, admin_port=0, options=options)
    with EnvoyProcess(find_envoy_binary(None), workdir, concurrency=concurrency) as envoy:
        yield envoy


PICKER_SCRIPT = Path(__file__).with_name("picker.py")


def start_picker(endpoints: Sequence[str], workdir: Path, timeout: float = 20.0) -> tuple[Proc, int]:
    """The test endpoint picker (picker.py), listening; returns (process, port)."""
    port_file = workdir / f"picker-{len(list(workdir.glob('picker-*')))}.port"
    proc = Proc([sys.executable, str(PICKER_SCRIPT), "--endpoints", ",".join(endpoints), "--port-file", str(port_file)])
    try:
        proc.wait_ready(port_file.exists, timeout=timeout, what="test picker")
    except BaseException:
        proc.stop()
        raise
    return proc, int(port_file.read_text())


def gateway_doc(name: str = "gw", port: int = 80, **listener: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name},
        "spec": {
            "gatewayClassName": "inferplane",
            "listeners": [{"name": "http", "port": port, "protocol": "HTTP", **listener}],
        },
    }


def route_doc(name: str, rules: list[dict[str, Any]], *, gateway: str = "gw", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {"parentRefs": [{"name": gateway}], "rules": rules, **spec},
    }


def pool_ref(name: str, weight: int = 1) -> dict[str, Any]:
    return {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": name, "weight": weight}


def service_ref(name: str, weight: int = 1) -> dict[str, Any]:
    return {"name": name, "port": 8000, "weight": weight}


def sleeping(address: str) -> int:
    """How many delayed requests an echo backend is serving right now (asked directly, not through Envoy)."""
    port = int(address.rsplit(":", 1)[1])
    return int(send(port, headers={"x-echo-sleeping": "1"}).json()["sleeping"])

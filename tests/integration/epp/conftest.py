"""Real processes for the EPP integration tests: simulator replicas, `inferplane epp`, and Envoy."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inferplane.net import LOOPBACK, free_port, free_ports, http_status
from tests.support.envoy import Envoy, start_envoy
from tests.support.procs import INFERPLANE, Proc

MODEL = "m"


def start_sims(procs: list[Proc], n: int, *extra: str) -> list[int]:
    """n simulator replicas, each its own process (so one can be killed), all ready."""
    ports = free_ports(n)
    started = []
    for port in ports:
        p = Proc([*INFERPLANE, "sim", "--model", MODEL, "--host", LOOPBACK, "--port", str(port), "--seed", "1", *extra])
        procs.append(p)
        started.append(p)
    for p, port in zip(started, ports, strict=True):
        p.wait_ready(lambda port=port: http_status(f"http://{LOOPBACK}:{port}/health/ready") == 200, 60)
    return ports


def grpc_serving(port: int, service: str = "envoy.service.ext_proc.v3.ExternalProcessor") -> bool:
    try:
        with grpc.insecure_channel(f"{LOOPBACK}:{port}") as ch:
            resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service), timeout=0.5)
            return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


@dataclass
class Epp:
    proc: Proc
    grpc_port: int
    health_port: int
    metrics_port: int

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.metrics_port}/metrics", timeout=2) as r:
            return str(r.read().decode())

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels`."""
        total = 0.0
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total


def start_epp(procs: list[Proc], *args: str, interval: str = "50ms") -> Epp:
    grpc_port, health_port, metrics_port = free_ports(3)
    proc = Proc(
        [
            *INFERPLANE,
            "epp",
            "--pool-name",
            "pool",
            "--bind",
            LOOPBACK,
            "--grpc-port",
            str(grpc_port),
            "--grpc-health-port",
            str(health_port),
            "--metrics-port",
            str(metrics_port),
            "--refresh-metrics-interval",
            interval,
            "--seed",
            "3",
            *args,
        ]
    )
    procs.append(proc)
    proc.wait_ready(lambda: grpc_serving(health_port), 60, what="EPP readiness")
    return Epp(proc, grpc_port, health_port, metrics_port)


@pytest.fixture
def envoys() -> Iterator[list[Envoy]]:
    started: list[Envoy] = []
    try:
        yield started
    finally:
        for e in started:
            e.stop()


def gateway(envoys: list[Envoy], endpoints: list[str], ext_proc_port: int | None, **options: Any) -> Envoy:
    envoy = start_envoy(endpoints, ext_proc_port, **options)
    envoys.append(envoy)
    return envoy


@dataclass
class Reply:
    status: int
    port: int | None
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def cached_tokens(self) -> int:
        usage = self.body.get("usage") or {}
        return int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)


def complete(
    base: str, prompt: str, max_tokens: int = 2, timeout: float = 30.0, ignore_eos: bool = False, **headers: str
) -> Reply:
    body = json.dumps({"model": MODEL, "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": ignore_eos}).encode()
    req = urllib.request.Request(
        base + "/v1/completions",
        data=body,
        headers={"content-type": "application/json", **{k.replace("_", "-"): v for k, v in headers.items()}},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw, status, hdrs = r.read(), r.status, dict(r.headers)
    except urllib.error.HTTPError as exc:
        raw, status, hdrs = exc.read(), exc.code, dict(exc.headers)
    port = hdrs.get("x-inference-port")
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        parsed = {"raw": raw.decode(errors="replace")}
    return Reply(status, int(port) if port else None, parsed, {k.lower(): v for k, v in hdrs.items()})


def unused_port() -> int:
    return free_port()

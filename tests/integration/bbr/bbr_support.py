"""Starting a real `inferplane bbr` process for tests and waiting for its gRPC health."""

from __future__ import annotations

from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inferplane.net import free_ports
from tests.support.procs import INFERPLANE, Proc

MODELS_YAML = """\
- baseModel: meta-llama/Llama-3.1-8B-Instruct
  adapters: [food-review, sql-lora]
- baseModel: Qwen/Qwen3-32B
"""


def serving(port: int, service: str = "") -> bool:
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=0.5)
            return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


def start_bbr(workdir: Path, *extra: str) -> tuple[Proc, int, int]:
    """(process, ext_proc port, health port), ready; `extra` arguments are appended (e.g. `--secure-serving true`)."""
    models = workdir / "models.yaml"
    models.write_text(MODELS_YAML)
    port, health_port = free_ports(2)
    proc = Proc(
        [*INFERPLANE, "bbr", "--port", str(port), "--health-port", str(health_port), "--bind", "127.0.0.1",
         "--models-file", str(models), *extra]
    )  # fmt: skip
    try:
        proc.wait_ready(lambda: serving(health_port), timeout=30, what="bbr gRPC health")
    except BaseException:
        proc.stop()
        raise
    return proc, port, health_port

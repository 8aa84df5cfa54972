"""Start real `python -m inferplane sim` processes on free loopback ports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from inferplane.net import free_consecutive_ports, free_port, http_status
from tests.support.procs import INFERPLANE, Proc


@dataclass
class Sim:
    proc: Proc
    port: int
    model: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


StartSim = Callable[..., Sim]


@pytest.fixture
def start_sim(procs: list[Proc]) -> StartSim:
    def start(*args: str, model: str = "meta-llama/Llama-3.1-8B-Instruct", ports: int = 1, ready: bool = True) -> Sim:
        port = free_port() if ports == 1 else free_consecutive_ports(ports)
        argv = [*INFERPLANE, "sim", "--model", model, "--port", str(port), "--host", "127.0.0.1", *args]
        proc = Proc(argv)
        procs.append(proc)
        sim = Sim(proc, port, model)
        if ready:
            proc.wait_ready(lambda: http_status(f"{sim.url}/health") == 200, timeout=30, what=f"sim on {port}")
        return sim

    return start

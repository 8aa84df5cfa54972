"""A deployment's model servers as step engines in virtual time.

Each replica is configured exactly as `inferplane up` would start it: the runtime's sim backend builds the
`inferplane sim` command line from the model service's values, and the simulator's own flag parser turns it into a
`SimConfig`. So `--gpu-memory-utilization`, `--max-num-seqs`, `--block-size`, the accelerator's latency profile and
every other vLLM flag mean in a simulation what they mean on a local run. What differs: the engine is stepped by the
event queue instead of the asyncio driver, and nothing is served over HTTP.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inferplane.errors import UsageError
from inferplane.runtime.backends import BackendOptions, ReplicaContext, SimBackend
from inferplane.runtime.templates import ServerTemplate
from inferplane.sim import command as sim_command
from inferplane.sim.config import SimConfig
from inferplane.sim.engine import Engine, ScheduledStep, Sequence
from inferplane.sim.kvblocks import BlockManager
from inferplane.sim.latency import LatencyModel, StepBatch, build_latency_model


def sim_config(server: ServerTemplate, profile: str | None = None, sim_args: tuple[str, ...] = ()) -> SimConfig:
    """The `SimConfig` that `inferplane up` would give a replica of this model service."""
    opts = BackendOptions(profile=profile, sim_args=sim_args)
    argv = SimBackend().leader_argv(server, ReplicaContext(server.name, server.port, 0, {}), opts)
    # argv = [python, -m, inferplane, sim, ...flags]
    flags = argv[argv.index("sim") + 1 :]
    parser = argparse.ArgumentParser(prog="inferplane sim", add_help=False)
    sim_command.configure(parser)
    try:
        args = parser.parse_args(flags)
    except SystemExit:
        raise UsageError(f"model service {server.name}: its vLLM args are not valid simulator flags: {flags}") from None
    return sim_command.resolve(args)


@dataclass(frozen=True, slots=True)
class ServerSnapshot:
    """What a `/metrics` scrape of a replica would read at one instant."""

    time: float
    waiting: int
    running: int
    kv_usage: float


@dataclass(eq=False)
class VirtualReplica:
    """One model-server replica: its engine, what a scrape would see, and whether it is up."""

    name: str  # pod name, as `inferplane up` names them (<service>-<index>)
    service: str
    index: int
    cfg: SimConfig
    engine: Engine
    latency: LatencyModel
    up: bool = True
    busy: bool = False
    step: ScheduledStep | None = None
    # (time, waiting, running, kv usage) after each change; scrapes read the last one at or before their instant
    history: list[ServerSnapshot] = field(default_factory=list)

    @property
    def num_gpu_blocks(self) -> int:
        return self.engine.blocks.num_blocks

    def record(self, now: float) -> None:
        snap = ServerSnapshot(now, len(self.engine.waiting), len(self.engine.running), self.engine.blocks.usage)
        hist = self.history
        if hist and hist[-1].time == now:
            hist[-1] = snap
        else:
            hist.append(snap)

    def state_at(self, when: float) -> ServerSnapshot:
        """The replica's state as of `when` (history before the last entry at or before `when` is dropped: scrape
        instants only move forward)."""
        hist = self.history
        if not hist or hist[0].time > when:
            return ServerSnapshot(when, 0, 0, 0.0)
        # usually the answer is the last entry or close to it
        i = len(hist) - 1
        while hist[i].time > when:
            i -= 1
        if i > 0:
            del hist[:i]
        return hist[0]

    def add(self, seq: Sequence) -> None:
        self.engine.add(seq)


class ScaledLatency:
    """A latency model slowed down by `--time-scale`, as `inferplane sim --time-scale` slows a replica: a simulated
    run at time scale S reads like a measured one whose replicas ran at S (the fidelity check compares the two)."""

    def __init__(self, inner: LatencyModel, scale: float) -> None:
        self.inner = inner
        self.scale = scale
        self.name = inner.name

    def step_time(self, batch: StepBatch) -> float:
        return self.inner.step_time(batch) * self.scale

    def request_overhead(self, prompt_tokens: int) -> float:
        return self.inner.request_overhead(prompt_tokens) * self.scale


def build_replica(
    server: ServerTemplate, index: int, cfg: SimConfig, clock: Callable[[], float], seed: int | None
) -> VirtualReplica:
    blocks = BlockManager(cfg.num_gpu_blocks(), cfg.block_size, cfg.enable_prefix_caching, record_events=False)
    latency: LatencyModel = build_latency_model(
        cfg.profile,
        cfg.upstream,
        max_num_seqs=cfg.max_num_seqs,
        tensor_parallel_size=cfg.tensor_parallel_size,
        seed=seed,
    )
    if cfg.time_scale != 1.0:
        latency = ScaledLatency(latency, cfg.time_scale)
    engine = Engine(
        blocks,
        latency,
        max_num_seqs=cfg.max_num_seqs,
        max_num_batched_tokens=cfg.max_num_batched_tokens,
        max_waiting=cfg.max_waiting,
        max_loras=cfg.max_loras if cfg.enable_lora else 0,
        clock=clock,
    )
    return VirtualReplica(f"{server.name}-{index}", server.name, index, cfg, engine, latency)


@dataclass
class ServiceFleet:
    """The replicas of one model service, and what it takes to add more (what-ifs and autoscaling)."""

    server: ServerTemplate
    cfg: SimConfig
    replicas: list[VirtualReplica] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "service": self.server.name,
            "model": self.server.model,
            "replicas": len(self.replicas),
            "profile": self.cfg.profile.name,
            "accelerator": self.server.accelerator,
            "accelerators_per_replica": max(1, self.server.accelerator_count),
            "num_gpu_blocks": self.cfg.num_gpu_blocks(),
            "block_size": self.cfg.block_size,
            "max_num_seqs": self.cfg.max_num_seqs,
        }
